//! `GET /`, `GET /status` and `GET /backends`, in Heroic's shapes
//! (`StatusResource`, `StatusResponse.kt`), with this server's own details
//! as extra fields (clients ignore them); and `GET /metrics`, the node's
//! figures for Prometheus.

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use crate::node::Node;
use crate::plugins::Role;

/// Heroic's `ServiceInfo`: what `GET /` answers, and `service` of
/// `GET /status`.
#[derive(Serialize)]
pub struct ServiceInfo<'a> {
    name: &'a str,
    version: &'a str,
    id: &'a str,
    commit: &'a str,
}

impl<'a> ServiceInfo<'a> {
    pub fn of(node: &'a Node) -> Self {
        ServiceInfo {
            name: &node.server.service,
            version: env!("CARGO_PKG_VERSION"),
            id: &node.server.id,
            // Set at build time by whoever builds a release; Heroic's
            // default is "HEAD" too.
            commit: option_env!("HEROIC_COMMIT").unwrap_or("HEAD"),
        }
    }
}

/// `GET /metrics`: every figure of [`crate::telemetry`], as Prometheus
/// scrapes it.
pub fn scrape(node: &Node) -> Response {
    let body = node
        .telemetry
        .encode(|r| crate::telemetry::scrape::register(r, &node.backends, &node.consumers, &node.admission));
    warp::reply::with_header(body, "content-type", crate::telemetry::CONTENT_TYPE).into_response()
}

pub fn service_info(node: &Node) -> Response {
    warp::reply::json(&ServiceInfo::of(node)).into_response()
}

/// `GET /backends`: `{"data": [description, …]}`, the metric backends, then
/// the metadata, then the suggest backends.
pub fn backends(node: &Node) -> Response {
    let data: Vec<String> = [Role::Metrics, Role::Metadata, Role::Suggest]
        .into_iter()
        .flat_map(|role| node.backends.describe(role))
        .collect();
    warp::reply::json(&serde_json::json!({ "data": data })).into_response()
}

#[derive(Serialize, Default)]
struct GroupStatus {
    ok: bool,
    available: usize,
    ready: usize,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConsumerStatus {
    /// Every consumer is ready, and each consumes with all its threads.
    ok: bool,
    available: usize,
    ready: usize,
    /// Decode errors plus failed batch writes, over the ready consumers
    /// (as the next two).
    errors: u64,
    consuming_threads: u64,
    total_threads: u64,
    /// Totals over all consumers (not in Heroic).
    messages_consumed: u64,
    decode_errors: u64,
    write_errors: u64,
    points_written: u64,
    /// Messages behind the end of the queue, when the plugins report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    lag: Option<u64>,
    /// Each consumer with its own counters (not in Heroic).
    details: Vec<ConsumerDetail>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerDetail {
    id: String,
    plugin: String,
    schema: &'static str,
    ok: bool,
    ready: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    messages_consumed: u64,
    /// By reason: malformed, invalid (messages), unstorable (distribution
    /// values no metric backend can store).
    decode_errors: std::collections::BTreeMap<&'static str, u64>,
    filtered: u64,
    points_written: u64,
    distributions_written: u64,
    batches_written: u64,
    write_errors: u64,
    /// The plugin's own statistics, by name.
    statistics: std::collections::BTreeMap<String, f64>,
}

fn consumer_status(node: &Node) -> ConsumerStatus {
    use crate::ingest::IngestStats;
    let mut status = ConsumerStatus { ok: true, ..Default::default() };
    for r in node.consumers.reports() {
        let s = r.stats;
        let ready = r.started && r.health.ready;
        status.available += 1;
        let decode_errors = s.decode_errors();
        let write_errors = IngestStats::get(&s.write_errors);
        // Heroic's rule: `ok` when every consumer is ready and each ready
        // one consumes with all its threads; the counts are over ready ones.
        if ready {
            let consuming = r.plugin_stat("consuming_threads").unwrap_or(1.0) as u64;
            let total = r.plugin_stat("total_threads").unwrap_or(1.0) as u64;
            status.ready += 1;
            status.ok &= consuming == total;
            status.consuming_threads += consuming;
            status.total_threads += total;
            status.errors += decode_errors + write_errors;
        } else {
            status.ok = false;
        }
        status.decode_errors += decode_errors;
        status.write_errors += write_errors;
        status.messages_consumed += IngestStats::get(&s.messages);
        status.points_written += IngestStats::get(&s.points_written);
        if let Some(lag) = r.plugin_stat("lag") {
            *status.lag.get_or_insert(0) += lag.max(0.0) as u64;
        }
        status.details.push(ConsumerDetail {
            id: r.id.to_string(),
            plugin: r.plugin.to_string(),
            schema: r.schema,
            ok: r.health.ok,
            ready,
            message: r.health.message.to_string(),
            messages_consumed: IngestStats::get(&s.messages),
            decode_errors: [
                ("malformed", IngestStats::get(&s.malformed)),
                ("invalid", IngestStats::get(&s.invalid)),
                ("unstorable", IngestStats::get(&s.unstorable)),
            ]
            .into_iter()
            .collect(),
            filtered: IngestStats::get(&s.filtered),
            points_written: IngestStats::get(&s.points_written),
            distributions_written: IngestStats::get(&s.distributions_written),
            batches_written: IngestStats::get(&s.batches_ok),
            write_errors,
            statistics: r.plugin_stats.iter().map(|st| (st.name.to_string(), st.value)).collect(),
        });
    }
    status
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterStatus {
    ok: bool,
    online_nodes: u32,
    offline_nodes: u32,
}

#[derive(Serialize)]
struct ComponentStatus {
    role: &'static str,
    id: String,
    ok: bool,
    ready: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    service: ServiceInfo<'a>,
    ok: bool,
    consumers: ConsumerStatus,
    backends: GroupStatus,
    metadata_backend: GroupStatus,
    /// Not in Heroic, and not part of `ok` (as there).
    suggest_backend: GroupStatus,
    cluster: ClusterStatus,
    /// Every component with its own health (not in Heroic).
    components: Vec<ComponentStatus>,
}

fn group(components: &[ComponentStatus], role: Role) -> GroupStatus {
    let mine: Vec<&ComponentStatus> = components.iter().filter(|c| c.role == role.name()).collect();
    let ready = mine.iter().filter(|c| c.ready).count();
    // Heroic's `available == ready`, and every member healthy (Heroic counts
    // a failing backend as ready; this server reports real readiness).
    GroupStatus { ok: ready == mine.len() && mine.iter().all(|c| c.ok), available: mine.len(), ready }
}

pub fn status(node: &Node) -> Response {
    let components: Vec<ComponentStatus> = node
        .backends
        .health()
        .into_iter()
        .map(|c| ComponentStatus {
            role: c.role.name(),
            id: c.id,
            ok: c.health.ok,
            ready: c.health.ready,
            message: c.health.message.into_string(),
        })
        .collect();
    let backends = group(&components, Role::Metrics);
    let metadata_backend = group(&components, Role::Metadata);
    let suggest_backend = group(&components, Role::Suggest);
    let consumers = consumer_status(node);
    let (online, offline) = node.cluster.counts();
    let cluster = ClusterStatus { ok: offline == 0 || online > 0, online_nodes: online, offline_nodes: offline };
    let ok = !node.is_stopping() && backends.ok && metadata_backend.ok && consumers.ok && cluster.ok;
    let status = Status {
        service: ServiceInfo::of(node),
        ok,
        consumers,
        backends,
        metadata_backend,
        suggest_backend,
        cluster,
        components,
    };
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    warp::reply::with_status(warp::reply::json(&status), code).into_response()
}
