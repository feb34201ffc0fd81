//! `/cluster/status`, `/cluster/nodes` (GET, POST, DELETE) and
//! `/cluster/refresh`, in Heroic's shapes (`ClusterResource`).

use serde::Serialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use crate::cluster::Member;
use crate::http::error::{parse_json, ApiError, ApiResult};
use crate::node::Node;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Statistics {
    online_nodes: u32,
    offline_nodes: u32,
}

#[derive(Serialize)]
struct ClusterStatus {
    nodes: Vec<Member>,
    statistics: Statistics,
}

/// `GET /cluster/status`: this node, the other nodes that answered the
/// last refresh, and the counts.
pub async fn status(node: &Node) -> Response {
    let nodes = node.cluster.members().await;
    let (online_nodes, offline_nodes) = node.cluster.counts();
    warp::reply::json(&ClusterStatus { nodes, statistics: Statistics { online_nodes, offline_nodes } }).into_response()
}

/// `GET /cluster/nodes`: the static node URIs.
pub async fn nodes(node: &Node) -> Response {
    warp::reply::json(&node.cluster.static_nodes().await).into_response()
}

/// The body of `POST` and `DELETE /cluster/nodes`: a JSON string URI.
fn uri(body: &[u8]) -> ApiResult<String> {
    let uri: String = parse_json(body)?;
    match uri.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && !rest.is_empty() => Ok(uri),
        _ => Err(ApiError::json("", format!("{uri:?} is not a node URI (scheme://host:port)"))),
    }
}

/// `POST /cluster/nodes` `"<uri>"`: adds a static node, then refreshes.
pub async fn add_node(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let uri = uri(body)?;
    tracing::info!(node = %uri, "cluster node added");
    node.cluster.add(uri).await;
    Ok(warp::reply::json(&json!({"data": true})))
}

/// `DELETE /cluster/nodes` `"<uri>"`: removes a static node, then refreshes.
pub async fn remove_node(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let uri = uri(body)?;
    tracing::info!(node = %uri, "cluster node removed");
    node.cluster.remove(&uri).await;
    Ok(warp::reply::json(&json!({"data": true})))
}

/// `POST /cluster/refresh`: asks the other nodes again; 200, empty body.
pub async fn refresh(node: &Node) -> Response {
    node.cluster.refresh().await;
    StatusCode::OK.into_response()
}
