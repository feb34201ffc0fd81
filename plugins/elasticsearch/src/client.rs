//! The HTTP side: an `elasticsearch` crate transport over our own connection
//! pool (so node discovery never panics, unlike the crate's built-in
//! reseeding, which unwraps every step), JSON requests with retries, and the
//! node discovery task.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use elasticsearch::http::headers::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use elasticsearch::http::transport::{Connection, ConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, Url};
use elasticsearch::Elasticsearch;
use heroic_plugin_api::sdk::support::{Counter, HealthTracker, RetryPolicy};
use heroic_plugin_api::types::Health;
use parking_lot::RwLock;
use serde_json::Value;

use crate::config::{BasicAuth, Settings, Sniff};
use crate::error::{Error, Result};

/// Round-robin over the current node list; the discovery task replaces it.
#[derive(Debug, Clone)]
struct NodePool {
    nodes: Arc<RwLock<Vec<Connection>>>,
    next: Arc<AtomicUsize>,
}

impl ConnectionPool for NodePool {
    fn next(&self) -> Connection {
        let nodes = self.nodes.read();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % nodes.len().max(1);
        nodes[i].clone()
    }
}

heroic_plugin_api::counter_set! {
    /// The client's counters, reported as statistics after the writer's.
    #[derive(Debug, Default)]
    pub struct ClientStats {
        /// Requests sent (attempts, retries included).
        pub requests: Counter,
        /// Requests sent again after a failure or a 429/502–504 answer.
        pub request_retries: Counter = "request-retries",
        /// Requests no node answered, after every retry.
        pub request_failures: Counter = "request-failures",
        /// Keys or tags answered by paging documents instead of an aggregation.
        pub scan_fallbacks: Counter = "scan-fallbacks",
        /// Node discovery rounds that found nodes.
        pub sniffs: Counter,
        /// Node discovery rounds that failed (the node list is kept).
        pub sniff_failures: Counter = "sniff-failures",
    }
}

pub struct EsClient {
    es: Elasticsearch,
    pool: NodePool,
    seeds: Vec<Url>,
    timeout: Duration,
    retry: RetryPolicy,
    pub stats: ClientStats,
    /// Outcome of the latest request, for `health()`.
    health: HealthTracker,
}

/// `host:port` means `<default_scheme>://host:port` (`https` when `tls` is set).
/// Credentials in the URL are refused: node URLs appear in errors, logs and
/// `/status`, so they belong in `basic_auth`.
fn seed_url(seed: &str, default_scheme: &str) -> Result<Url> {
    // Whatever precedes an `@` may be a password: never echoed.
    let shown = match seed.rsplit_once('@') {
        Some((_, host)) => format!("<redacted>@{host}"),
        None => seed.to_string(),
    };
    let text = if seed.contains("://") { seed.to_string() } else { format!("{default_scheme}://{seed}") };
    let mut url = Url::parse(&text).map_err(|e| Error::Config(format!("bad seed {shown:?}: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(format!(
            "seed {shown:?} has credentials in its url, which would show in logs and errors: use basic_auth"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl EsClient {
    pub fn new(settings: &Settings) -> Result<Arc<Self>> {
        let f = &settings.fields;
        let scheme = if f.tls.is_some() { "https" } else { "http" };
        let seeds = f.seeds.iter().map(|s| seed_url(s, scheme)).collect::<Result<Vec<_>>>()?;
        let pool = NodePool {
            nodes: Arc::new(RwLock::new(seeds.iter().cloned().map(Connection::new).collect())),
            next: Arc::new(AtomicUsize::new(0)),
        };
        let mut builder = TransportBuilder::new(pool.clone()).timeout(settings.request_timeout);
        if let Some(auth) = &f.basic_auth {
            // A header rather than the crate's `Credentials::Basic`: the
            // crate holds one credential, and a client certificate (`tls`)
            // takes that slot.
            builder = builder.header(AUTHORIZATION, basic_auth_header(auth)?);
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &f.tls {
            builder = crate::tls::configure(builder, tls)?;
        }
        let transport = builder.build().map_err(|e| Error::Config(format!("cannot build the http client: {e}")))?;
        let client = Arc::new(EsClient {
            es: Elasticsearch::new(transport),
            pool,
            seeds,
            timeout: settings.request_timeout,
            retry: settings.retry_policy(),
            stats: ClientStats::default(),
            health: HealthTracker::new(),
        });
        if f.sniff != Sniff::None {
            spawn_discovery(Arc::downgrade(&client), f.sniff, Duration::from_secs(f.sniff_interval_seconds.max(1)));
        }
        Ok(client)
    }

    /// The nodes requests currently go to, for messages.
    pub fn nodes(&self) -> String {
        let nodes = self.pool.nodes.read();
        nodes.iter().map(|c| c.url().as_str().trim_end_matches('/').to_string()).collect::<Vec<_>>().join(", ")
    }

    /// The health to report: unhealthy, and not ready, from a request no
    /// node answered (or a 5xx answer) until the next good answer.
    pub fn health(&self) -> Health {
        match self.health.last_error() {
            None => Health::healthy(),
            Some(e) => Health::unhealthy(e.message),
        }
    }

    /// Sends one request, retrying connection failures, timeouts, 429 and
    /// 502–504 with exponential backoff (at least as long as a 429's or
    /// 503's `Retry-After`); returns the status and JSON body.
    pub async fn send(
        &self,
        op: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<(u16, Value)> {
        let mut backoff = self.retry.backoff();
        loop {
            let attempt = backoff.attempts();
            self.stats.requests.inc();
            let outcome = self.send_once(method, path, query, body.as_ref()).await;
            let delay = match &outcome {
                Ok(answer) if matches!(answer.status, 429 | 502 | 503 | 504) => match answer.retry_after {
                    // A node that asks for more than a request may take
                    // gets its answer passed on now rather than a retry
                    // sooner than it asked for.
                    Some(hint) if hint > self.timeout => None,
                    hint => backoff.next_delay(hint),
                },
                Ok(_) => None,
                Err(_) => backoff.next_delay(None),
            };
            let Some(delay) = delay else {
                return match outcome {
                    Ok(Answer { status, value, .. }) => {
                        if status < 500 {
                            self.health.succeeded();
                        } else {
                            self.health.failed(format_args!("{op}: http {status}"));
                        }
                        Ok((status, value))
                    }
                    Err(SendError { timeout, certificate, reason }) => {
                        self.stats.request_failures.inc();
                        let e = if certificate {
                            Error::Certificate { op: op.to_string(), nodes: self.nodes(), reason }
                        } else if timeout {
                            Error::Timeout { op: op.to_string(), attempts: attempt, reason }
                        } else {
                            Error::Unavailable { op: op.to_string(), attempts: attempt, nodes: self.nodes(), reason }
                        };
                        self.health.failed(&e);
                        Err(e)
                    }
                };
            };
            self.stats.request_retries.inc();
            tracing::debug!(op, attempt, delay_ms = delay.as_millis() as u64, "elasticsearch request failed, retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Body>,
    ) -> Result<Answer, SendError> {
        let mut headers = HeaderMap::new();
        // osmem-server answers 406 to the vnd.elasticsearch media types.
        let content_type = match body {
            Some(Body::Ndjson(_)) => "application/x-ndjson",
            _ => "application/json",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let query = (!query.is_empty()).then_some(query);
        let response = match body {
            None => self.es.send(method, path, headers, query, None::<Vec<u8>>, Some(self.timeout)).await,
            Some(Body::Json(v)) => {
                self.es
                    .send(method, path, headers, query, Some(serde_json::to_vec(v).expect("json")), Some(self.timeout))
                    .await
            }
            Some(Body::Ndjson(s)) => {
                self.es.send(method, path, headers, query, Some(s.as_bytes()), Some(self.timeout)).await
            }
        };
        let response = response.map_err(SendError::from)?;
        let status = response.status_code().as_u16();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let text = response.text().await.map_err(SendError::from)?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, value, retry_after })
    }

    /// Like [`send`](Self::send), but a non-2xx answer is an error.
    pub async fn ok(
        &self,
        op: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<Value> {
        let (status, value) = self.send(op, method, path, query, body).await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(Error::Server { op: op.to_string(), status, reason: error_reason(&value) })
        }
    }

    /// A search over `indices`; missing indices count as empty (a rotating
    /// index that was never written, or a cluster not configured yet).
    pub async fn search(&self, op: &str, indices: &[String], body: Value) -> Result<Value> {
        let path = format!("{}/_search", indices.join(","));
        self.ok(
            op,
            Method::Post,
            &path,
            &[("ignore_unavailable", "true"), ("allow_no_indices", "true")],
            Some(Body::Json(body)),
        )
        .await
    }

    /// Checks that some node answers.
    pub async fn ping(&self) -> Result<()> {
        self.ok("ping", Method::Get, "/", &[], None).await.map(|_| ())
    }

    /// One discovery round: replaces the node list, keeps it on failure.
    pub async fn discover(&self, mode: Sniff) -> Result<usize> {
        let found = match mode {
            Sniff::None => return Ok(self.pool.nodes.read().len()),
            Sniff::Nodes => self.nodes_from_cluster().await?,
            Sniff::Dns => self.nodes_from_dns().await?,
        };
        if found.is_empty() {
            return Err(Error::Decode { op: "node discovery".into(), reason: "no node found".into() });
        }
        let n = found.len();
        *self.pool.nodes.write() = found.into_iter().map(Connection::new).collect();
        Ok(n)
    }

    async fn nodes_from_cluster(&self) -> Result<Vec<Url>> {
        let value = self.ok("node discovery", Method::Get, "_nodes/http", &[], None).await?;
        let scheme = self.seeds[0].scheme().to_string();
        let mut urls = Vec::new();
        for node in value["nodes"].as_object().into_iter().flat_map(|m| m.values()) {
            // `publish_address` is `ip:port` or `hostname/ip:port`.
            let Some(address) = node["http"]["publish_address"].as_str() else { continue };
            let address = address.rsplit('/').next().unwrap_or(address);
            if let Ok(url) = seed_url(&format!("{scheme}://{address}"), &scheme) {
                urls.push(url);
            }
        }
        Ok(urls)
    }

    async fn nodes_from_dns(&self) -> Result<Vec<Url>> {
        let mut urls = Vec::new();
        for seed in &self.seeds {
            let host = seed.host_str().unwrap_or("localhost").to_string();
            let port = seed.port_or_known_default().unwrap_or(9200);
            let addrs = tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| Error::Unavailable {
                op: "dns discovery".into(),
                attempts: 1,
                nodes: host.clone(),
                reason: e.to_string(),
            })?;
            for addr in addrs {
                let mut url = seed.clone();
                if url.set_ip_host(addr.ip()).is_ok() {
                    urls.push(url);
                }
            }
        }
        urls.sort();
        urls.dedup();
        Ok(urls)
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Json(Value),
    /// Newline-delimited JSON (bulk).
    Ndjson(String),
}

/// A node's answer to one attempt.
struct Answer {
    status: u16,
    value: Value,
    /// The wait a 429 or 503 asked for (`Retry-After`).
    retry_after: Option<Duration>,
}

/// `Retry-After` in its delay-seconds form. The HTTP-date form, which
/// Elasticsearch never sends, is ignored (the backoff alone decides).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().filter(|s| *s > 0).map(Duration::from_secs)
}

struct SendError {
    timeout: bool,
    /// A TLS certificate was refused (see `tls::is_certificate_error`).
    certificate: bool,
    reason: String,
}

impl From<elasticsearch::Error> for SendError {
    fn from(e: elasticsearch::Error) -> Self {
        #[cfg(feature = "tls")]
        let certificate = crate::tls::is_certificate_error(&e);
        #[cfg(not(feature = "tls"))]
        let certificate = false;
        SendError { timeout: e.is_timeout(), certificate, reason: error_chain(&e) }
    }
}

/// `e` and its causes: the crate's own message is only "error sending
/// request for url (…)", the reason (refused, certificate …) is below it.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let message = cause.to_string();
        if !text.contains(&message) {
            text = format!("{text}: {message}");
        }
        next = cause.source();
    }
    text
}

/// `Authorization: Basic …`, marked sensitive so that the HTTP stack
/// does not print it in its own debug output.
fn basic_auth_header(auth: &BasicAuth) -> Result<HeaderValue> {
    use base64::Engine as _;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", auth.username, auth.password.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {token}"))
        .map_err(|_| Error::Config("basic_auth cannot be sent as an http header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The most useful part of an error answer.
pub fn error_reason(value: &Value) -> String {
    let e = &value["error"];
    if let Some(reason) = e["reason"].as_str() {
        return match e["type"].as_str() {
            Some(t) => format!("{t}: {reason}"),
            None => reason.to_string(),
        };
    }
    let text = value.to_string();
    text.chars().take(300).collect()
}

/// Rediscovers nodes every `interval` until the client is dropped.
fn spawn_discovery(client: Weak<EsClient>, mode: Sniff, interval: Duration) {
    heroic_plugin_api::sdk::runtime().spawn(async move {
        loop {
            let Some(c) = client.upgrade() else { return };
            match c.discover(mode).await {
                Ok(n) => {
                    c.stats.sniffs.inc();
                    tracing::debug!("elasticsearch node discovery found {n} node(s)");
                }
                Err(e) => {
                    c.stats.sniff_failures.inc();
                    tracing::warn!("elasticsearch node discovery failed, keeping {}: {e}", c.nodes());
                }
            }
            drop(c);
            tokio::time::sleep(interval).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_without_scheme_are_http() {
        assert_eq!(seed_url("db:9200", "http").unwrap().as_str(), "http://db:9200/");
        assert_eq!(seed_url("db:9200", "https").unwrap().as_str(), "https://db:9200/");
        assert_eq!(seed_url("https://x/es", "http").unwrap().as_str(), "https://x/es/");
        assert!(seed_url("http://[bad", "http").is_err());
    }

    #[test]
    fn seeds_with_credentials_are_refused_without_echoing_them() {
        for seed in ["https://elastic:hunter2@es:9200", "elastic:hunter2@es:9200", "http://elastic:hunter2@[bad"] {
            let e = seed_url(seed, "http").unwrap_err().to_string();
            assert!(!e.contains("hunter2") && e.contains("<redacted>@"), "{seed}: {e}");
        }
        let e = seed_url("https://elastic:hunter2@es:9200", "http").unwrap_err().to_string();
        assert!(e.contains("use basic_auth"), "{e}");
    }

    #[test]
    fn basic_auth_is_a_sensitive_header() {
        let auth = BasicAuth { username: "u".into(), password: "p".into() };
        let value = basic_auth_header(&auth).unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic dTpw");
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("dTpw"), "{value:?}");
    }

    #[test]
    fn error_chains_keep_the_cause() {
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, "invalid peer certificate: UnknownIssuer");
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request for url (https://es:9200/)")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let text = error_chain(&Outer(inner));
        assert_eq!(text, "error sending request for url (https://es:9200/): invalid peer certificate: UnknownIssuer");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn error_reason_prefers_the_server_reason() {
        let v = serde_json::json!({"error": {"type": "x_exception", "reason": "broken"}, "status": 400});
        assert_eq!(error_reason(&v), "x_exception: broken");
    }
}
