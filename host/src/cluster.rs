//! The cluster as `/cluster/*` and `/status` report it: this node, plus the
//! other nodes named in `[cluster] nodes` (Heroic's static node list, which
//! `POST`/`DELETE /cluster/nodes` change at run time).
//!
//! Nodes do not federate queries; the list only reports which of the other
//! nodes answer. A refresh asks each `http://` node for its
//! `/cluster/status` (a plain HTTP/1.0 GET, 2 s at most) and takes the first
//! entry, that node itself. Nodes of other schemes cannot be asked and count
//! as offline.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::config::ClusterConfig;

/// How long one node may take to answer a refresh.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest `/cluster/status` answer read from another node.
const MAX_PROBE_ANSWER: u64 = 1024 * 1024;

/// One node of `/cluster/status`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Member {
    /// Free text: what the node is.
    pub node: String,
    pub id: String,
    pub version: u32,
    pub tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    /// The static node URIs, in the order they were added.
    nodes: Vec<String>,
    /// The other nodes that answered the last refresh.
    online: Vec<Member>,
    /// The other nodes that did not.
    offline: usize,
}

pub struct Cluster {
    local: Member,
    state: Mutex<State>,
}

impl Cluster {
    pub fn new(config: &ClusterConfig, node_id: &str, description: String) -> Cluster {
        let local = Member { node: description, id: node_id.to_string(), version: 0, tags: config.tags.clone() };
        let mut nodes: Vec<String> = Vec::new();
        for uri in &config.nodes {
            if !nodes.contains(uri) {
                nodes.push(uri.clone());
            }
        }
        // Until the first refresh, the other nodes count as offline.
        let offline = nodes.len();
        Cluster { local, state: Mutex::new(State { nodes, online: Vec::new(), offline }) }
    }

    /// This node, then the other nodes that answered the last refresh.
    pub async fn members(&self) -> Vec<Member> {
        let state = self.state.lock().await;
        std::iter::once(self.local.clone()).chain(state.online.iter().cloned()).collect()
    }

    /// `(online, offline)` nodes, this one included.
    pub fn counts(&self) -> (u32, u32) {
        // `/status` must not wait behind a refresh: while one runs, the
        // counts of the last one are not available, and the cluster is
        // reported as this node alone.
        match self.state.try_lock() {
            Ok(state) => (1 + state.online.len() as u32, state.offline as u32),
            Err(_) => (1, 0),
        }
    }

    pub async fn static_nodes(&self) -> Vec<String> {
        self.state.lock().await.nodes.clone()
    }

    /// Adds a static node (once) and refreshes.
    pub async fn add(&self, uri: String) {
        {
            let mut state = self.state.lock().await;
            if !state.nodes.contains(&uri) {
                state.nodes.push(uri);
            }
        }
        self.refresh().await;
    }

    /// Removes a static node and refreshes.
    pub async fn remove(&self, uri: &str) {
        self.state.lock().await.nodes.retain(|n| n != uri);
        self.refresh().await;
    }

    /// Asks every static node for its status, all at once.
    pub async fn refresh(&self) {
        let nodes = self.state.lock().await.nodes.clone();
        let answers = futures::future::join_all(nodes.iter().map(|uri| probe(uri))).await;
        let mut online = Vec::new();
        for (uri, answer) in nodes.iter().zip(answers) {
            match answer {
                Ok(member) => online.push(member),
                Err(reason) => tracing::info!(node = %uri, %reason, "cluster node did not answer the refresh"),
            }
        }
        let mut state = self.state.lock().await;
        state.offline = nodes.len() - online.len();
        state.online = online;
    }
}

/// `host:port` of an `http://` URI (port 80 by default).
fn http_authority(uri: &str) -> Result<String, String> {
    let rest = uri.strip_prefix("http://").ok_or_else(|| "only http:// nodes can be asked".to_string())?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err("no host in the URI".into());
    }
    let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    Ok(if has_port { authority.to_string() } else { format!("{authority}:80") })
}

/// The node at `uri` as it describes itself in its `/cluster/status`.
async fn probe(uri: &str) -> Result<Member, String> {
    let authority = http_authority(uri)?;
    let body = tokio::time::timeout(PROBE_TIMEOUT, get(&authority, "/cluster/status"))
        .await
        .map_err(|_| format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))??;
    let status: Value = serde_json::from_slice(&body).map_err(|e| format!("not a cluster status: {e}"))?;
    let own = &status["nodes"][0];
    let id = own["id"].as_str().ok_or("no node id in its cluster status")?.to_string();
    let tags = serde_json::from_value(own["tags"].clone()).unwrap_or_default();
    Ok(Member { node: uri.to_string(), id, version: own["version"].as_u64().unwrap_or(0) as u32, tags })
}

/// The body of a `200` answer to `GET path` on `authority`.
async fn get(authority: &str, path: &str) -> Result<Vec<u8>, String> {
    let mut stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.take(MAX_PROBE_ANSWER).read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP answer")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status_line:?}"));
    }
    Ok(answer[split + 4..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_nodes_are_asked() {
        assert_eq!(http_authority("http://10.0.0.2:8080").unwrap(), "10.0.0.2:8080");
        assert_eq!(http_authority("http://db.example.com/x").unwrap(), "db.example.com:80");
        assert!(http_authority("grpc://10.0.0.2:9698").is_err());
        assert!(http_authority("http://").is_err());
    }

    #[tokio::test]
    async fn unreachable_and_foreign_nodes_count_as_offline() {
        let config = ClusterConfig {
            nodes: vec!["grpc://10.0.0.2:9698".into(), "http://127.0.0.1:1".into(), "grpc://10.0.0.2:9698".into()],
            tags: BTreeMap::new(),
        };
        let cluster = Cluster::new(&config, "id-1", "local".into());
        assert_eq!(cluster.static_nodes().await.len(), 2, "duplicates are listed once");
        cluster.refresh().await;
        assert_eq!(cluster.counts(), (1, 2));
        cluster.remove("grpc://10.0.0.2:9698").await;
        assert_eq!(cluster.counts(), (1, 1));
        assert_eq!(cluster.members().await.len(), 1);
    }
}
