//! `GET /` and `GET /status`.

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use crate::node::Node;
use crate::plugins::Role;

#[derive(Serialize)]
struct ServiceInfo<'a> {
    name: &'a str,
    version: &'a str,
    id: &'a str,
    commit: &'a str,
}

pub fn service_info(node: &Node) -> Response {
    warp::reply::json(&ServiceInfo {
        name: &node.server.service,
        version: env!("CARGO_PKG_VERSION"),
        id: &node.id,
        commit: option_env!("HEROIC_COMMIT").unwrap_or("unknown"),
    })
    .into_response()
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
    ok: bool,
    available: usize,
    ready: usize,
    /// Decode errors plus failed batch writes, over all consumers.
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
    /// By reason: malformed, invalid, distribution.
    decode_errors: std::collections::BTreeMap<&'static str, u64>,
    filtered: u64,
    points_written: u64,
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
        status.ok &= r.health.ok;
        status.available += 1;
        status.ready += ready as usize;
        status.consuming_threads += r.plugin_stat("consuming_threads").unwrap_or(ready as u64 as f64) as u64;
        status.total_threads += r.plugin_stat("total_threads").unwrap_or(1.0) as u64;
        let decode_errors = s.decode_errors();
        let write_errors = IngestStats::get(&s.write_errors);
        status.errors += decode_errors + write_errors;
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
                ("distribution", IngestStats::get(&s.distribution)),
            ]
            .into_iter()
            .collect(),
            filtered: IngestStats::get(&s.filtered),
            points_written: IngestStats::get(&s.points_written),
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
struct Status {
    service: String,
    ok: bool,
    consumers: ConsumerStatus,
    backends: GroupStatus,
    metadata_backend: GroupStatus,
    suggest_backend: GroupStatus,
    cluster: ClusterStatus,
    /// Every component with its own health (not in Heroic).
    components: Vec<ComponentStatus>,
}

fn group(components: &[ComponentStatus], role: Role) -> GroupStatus {
    let mine: Vec<&ComponentStatus> = components.iter().filter(|c| c.role == role.name()).collect();
    GroupStatus { ok: mine.iter().all(|c| c.ok), available: mine.len(), ready: mine.iter().filter(|c| c.ready).count() }
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
    let ok = !node.is_stopping() && backends.ok && metadata_backend.ok && suggest_backend.ok && consumers.ok;
    let status = Status {
        service: node.server.service.clone(),
        ok,
        consumers,
        backends,
        metadata_backend,
        suggest_backend,
        cluster: ClusterStatus { ok: true, online_nodes: 1, offline_nodes: 0 },
        components,
    };
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    warp::reply::with_status(warp::reply::json(&status), code).into_response()
}
