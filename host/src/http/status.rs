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
    errors: u64,
    consuming_threads: u64,
    total_threads: u64,
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
    GroupStatus {
        ok: mine.iter().all(|c| c.ok),
        available: mine.len(),
        ready: mine.iter().filter(|c| c.ready).count(),
    }
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
    let consumers = ConsumerStatus { ok: true, ..Default::default() };
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
