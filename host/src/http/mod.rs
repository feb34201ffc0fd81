//! The HTTP API (warp): routes, and the server with graceful shutdown.
//!
//! - [`server`]: the connection loop (connection cap, header timeout,
//!   graceful shutdown).
//! - [`access`], [`cors`]: who may call the API from a browser, and who may
//!   change data.
//! - [`error`]: Heroic-shaped error replies and rejection handling.
//! - [`stream`]: large JSON answers written as they are sent.
//! - [`write`]: `POST /write`.
//! - [`remote_write`]: `POST /api/v1/write`, Prometheus remote-write.
//! - [`otlp`]: `POST /v1/metrics`, OpenTelemetry's OTLP/HTTP metrics.
//! - [`prometheus_api`]: Prometheus' query API (`/api/v1/query`, …).
//! - [`status`]: `GET /`, `GET /status`, `GET /backends` and `GET /metrics`
//!   (the Prometheus scrape).
//! - [`cluster`]: `/cluster/status`, `/cluster/nodes`, `/cluster/refresh`.
//! - [`query`]: `/query/metrics` (alias `/metrics`), `/query/batch`, `/parser/*`.
//! - [`response`]: the JSON of one query's answer, with its trace.
//! - [`render`](mod@render): `GET /render/image`, a query drawn as a PNG chart.
//! - [`ui`]: `GET /ui/`, the web console's embedded files.
//! - [`metadata`]: `/metadata/series` (POST, PUT, DELETE), `/metadata/series-count`,
//!   `/metadata/keys` (alias `/keys`), `/metadata/tags` (alias `/tags`).
//! - [`routes`](mod@routes): the methods each path answers (`OPTIONS`, `Allow`).
//! - [`suggest`]: `/metadata/key-suggest`, `/metadata/tag-suggest`,
//!   `/metadata/tag-value-suggest`, `/metadata/tag-values-suggest`, `/metadata/tagkey-count`.

pub mod access;
pub mod cluster;
pub mod cors;
pub mod error;
pub mod metadata;
pub mod otlp;
pub mod prometheus_api;
pub mod query;
pub mod remote_write;
pub mod render;
pub mod response;
pub mod routes;
pub mod server;
pub mod status;
pub mod stream;
pub mod suggest;
pub mod ui;
pub mod write;
mod write_samples;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use std::time::Instant;
use warp::filters::BoxedFilter;

use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::node::Node;
use error::{respond, ApiError};

fn with_node(node: Arc<Node>) -> impl Filter<Extract = (Arc<Node>,), Error = Infallible> + Clone {
    warp::any().map(move || node.clone())
}

/// A body of at most `max` bytes: 413 when its `Content-Length` says more,
/// or, for a body sent in chunks without one (as OpenTelemetry's
/// JavaScript exporters send theirs), as soon as more has arrived. Nothing
/// past the limit is kept.
fn body(max: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |length: Option<u64>, stream| read_body(length, stream, max))
}

async fn read_body<S, B>(length: Option<u64>, stream: S, max: u64) -> Result<Bytes, Rejection>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use bytes::BufMut;
    use futures::TryStreamExt;
    let refuse = |e: ApiError| warp::reject::custom(error::Refused(e));
    let too_large = || {
        refuse(ApiError::new(
            warp::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than this route's limit of {max} bytes"),
        ))
    };
    if length.is_some_and(|l| l > max) {
        return Err(too_large());
    }
    let mut out = bytes::BytesMut::with_capacity(length.unwrap_or(0) as usize);
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) =
        stream.try_next().await.map_err(|e| refuse(ApiError::bad_request(format!("reading the request body: {e}"))))?
    {
        if (out.len() + chunk.remaining()) as u64 > max {
            // What the client is still sending is read and dropped (up to
            // as much again as the limit, at most 1 MiB) before answering:
            // a connection closed on unread data is reset by the kernel,
            // and the client may then see the reset instead of the 413.
            let cap = max.min(1 << 20);
            let mut drained = 0u64;
            while drained <= cap {
                match stream.try_next().await {
                    Ok(Some(more)) => drained += more.remaining() as u64,
                    _ => break,
                }
            }
            return Err(too_large());
        }
        out.put(chunk);
    }
    Ok(out.freeze())
}

/// A route with a body, answered by `$handler(&node, &body)`; `$guard`
/// (a filter extracting nothing) runs once path and method match.
macro_rules! body_route {
    ($node:expr, $max_body:expr, $method:expr, $path:expr, $guard:expr, $handler:path) => {
        $path
            .and($method)
            .and($guard)
            .and(with_node($node.clone()))
            .and(body($max_body))
            .then(|n: Arc<Node>, body: Bytes| async move { respond($handler(&n, &body).await) })
            .boxed()
    };
}

/// A read route with a body, run in a query slot and within the query
/// timeout like `/query/*`: metadata lookups and suggestions can be as
/// heavy as queries (a regex over every series).
macro_rules! read_route {
    ($node:expr, $max_body:expr, $path:expr, $handler:path) => {
        $path
            .and(warp::post())
            .and(with_node($node.clone()))
            .and(body($max_body))
            .then(|n: Arc<Node>, body: Bytes| async move { respond(query::admitted(&n, $handler(&n, &body)).await) })
            .boxed()
    };
}

/// The metadata and suggest routes (boxed, to keep the route type small).
fn metadata_routes(node: &Arc<Node>) -> BoxedFilter<(Response,)> {
    let n = node;
    let (small, large) = (node.server.max_request_body_bytes, node.server.max_write_body_bytes);
    let series = || warp::path!("metadata" / "series");
    let may_change = || access::may_change(node.access.clone());
    read_route!(n, small, series(), metadata::find_series)
        .or(body_route!(n, large, warp::put(), series(), may_change(), metadata::write_series))
        .unify()
        .or(body_route!(n, small, warp::delete(), series(), may_change(), metadata::delete_series))
        .unify()
        .or(read_route!(n, small, warp::path!("metadata" / "series-count"), metadata::count_series))
        .unify()
        .or(read_route!(n, small, warp::path!("metadata" / "keys"), metadata::find_keys))
        .unify()
        .or(read_route!(n, small, warp::path!("metadata" / "tags"), metadata::find_tags))
        .unify()
        // Heroic's aliases (rewritten by its Jetty before routing).
        .or(read_route!(n, small, warp::path!("keys"), metadata::find_keys))
        .unify()
        .or(read_route!(n, small, warp::path!("tags"), metadata::find_tags))
        .unify()
        .or(read_route!(n, small, warp::path!("metadata" / "key-suggest"), suggest::key_suggest))
        .unify()
        .or(read_route!(n, small, warp::path!("metadata" / "tag-suggest"), suggest::tag_suggest))
        .unify()
        .or(read_route!(n, small, warp::path!("metadata" / "tag-value-suggest"), suggest::tag_value_suggest))
        .unify()
        .or(read_route!(n, small, warp::path!("metadata" / "tag-values-suggest"), suggest::tag_values_suggest))
        .unify()
        .or(read_route!(n, small, warp::path!("metadata" / "tagkey-count"), suggest::tag_key_count))
        .unify()
        .boxed()
}

/// `GET /backends` and the `/cluster/*` routes (boxed, to keep the route
/// type small).
fn node_routes(node: &Arc<Node>) -> BoxedFilter<(Response,)> {
    let n = node;
    let small = node.server.max_request_body_bytes;
    let may_change = || access::may_change(node.access.clone());
    let backends =
        warp::path!("backends").and(warp::get()).and(with_node(n.clone())).map(|n: Arc<Node>| status::backends(&n));
    let cluster_status = warp::path!("cluster" / "status")
        .and(warp::get())
        .and(with_node(n.clone()))
        .then(|n: Arc<Node>| async move { cluster::status(&n).await });
    let nodes = || warp::path!("cluster" / "nodes");
    let list_nodes =
        nodes().and(warp::get()).and(with_node(n.clone())).then(|n: Arc<Node>| async move { cluster::nodes(&n).await });
    let refresh = warp::path!("cluster" / "refresh")
        .and(warp::post())
        .and(may_change())
        .and(with_node(n.clone()))
        .then(|n: Arc<Node>| async move { cluster::refresh(&n).await });
    backends
        .or(cluster_status)
        .unify()
        .or(list_nodes)
        .unify()
        .or(body_route!(n, small, warp::post(), nodes(), may_change(), cluster::add_node))
        .unify()
        .or(body_route!(n, small, warp::delete(), nodes(), may_change(), cluster::remove_node))
        .unify()
        .or(refresh)
        .unify()
        .boxed()
}

/// Every route of the API.
pub fn routes(node: Arc<Node>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let small = node.server.max_request_body_bytes;
    let large = node.server.max_write_body_bytes;

    let index =
        warp::path::end().and(warp::get()).and(with_node(node.clone())).map(|n: Arc<Node>| status::service_info(&n));
    let status =
        warp::path!("status").and(warp::get()).and(with_node(node.clone())).map(|n: Arc<Node>| status::status(&n));
    // `GET /metrics` is the scrape; `POST /metrics` Heroic's query alias.
    let scrape =
        warp::path!("metrics").and(warp::get()).and(with_node(node.clone())).map(|n: Arc<Node>| status::scrape(&n));
    let write = warp::path!("write")
        .and(warp::post())
        .and(access::may_change(node.access.clone()))
        .and(with_node(node.clone()))
        .and(body(large))
        .then(|n: Arc<Node>, body: Bytes| async move { respond(write::handle(&n, &body).await) });
    let remote_write = warp::path!("api" / "v1" / "write")
        .and(warp::post())
        .and(access::may_change_as(node.access.clone(), &[remote_write::PROTOBUF]))
        .and(with_node(node.clone()))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(body(large))
        .then(|n: Arc<Node>, ct: Option<String>, enc: Option<String>, body: Bytes| async move {
            respond(remote_write::handle(&n, ct, enc, &body).await)
        });
    let otlp = warp::path!("v1" / "metrics")
        .and(warp::post())
        .and(access::may_change_as(node.access.clone(), otlp::MEDIA))
        .and(with_node(node.clone()))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-encoding"))
        .and(body(large))
        .then(|n: Arc<Node>, ct: Option<String>, enc: Option<String>, body: Bytes| async move {
            otlp::handle(&n, ct, enc, &body).await
        });

    let client_id = || warp::header::optional::<String>("x-client-id");
    let content_type = || warp::header::optional::<String>("content-type");
    // `/metrics` is Heroic's alias of `/query/metrics`.
    let query_metrics = warp::path!("query" / "metrics")
        .or(warp::path!("metrics"))
        .unify()
        .and(warp::post())
        .and(with_node(node.clone()))
        .and(client_id())
        .and(content_type())
        .and(body(small))
        .then(|n: Arc<Node>, id: Option<String>, ct: Option<String>, body: Bytes| async move {
            respond(query::metrics(&n, id, ct, &body).await)
        });
    let query_batch = warp::path!("query" / "batch")
        .and(warp::post())
        .and(with_node(node.clone()))
        .and(client_id())
        .and(body(small))
        .then(
            |n: Arc<Node>, id: Option<String>, body: Bytes| async move { respond(query::batch(&n, id, &body).await) },
        );
    let parse_query = warp::path!("parser" / "parse-query")
        .and(warp::post())
        .and(body(small))
        .map(|body: Bytes| respond(query::parse_query(&body)));
    let parse_filter_get = warp::path!("parser" / "parse-filter")
        .and(warp::get())
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .map(|q: std::collections::HashMap<String, String>| {
            respond(
                q.get("filter")
                    .ok_or_else(|| ApiError::bad_request("missing query parameter: filter"))
                    .and_then(|f| query::parse_filter(f)),
            )
        });
    let parse_filter_post =
        warp::path!("parser" / "parse-filter").and(warp::post()).and(body(small)).map(|body: Bytes| {
            respond(
                std::str::from_utf8(&body)
                    .map_err(|_| ApiError::bad_request("the filter is not UTF-8"))
                    .and_then(query::parse_filter),
            )
        });

    let render_image = warp::path!("render" / "image")
        .and(warp::get())
        .and(with_node(node.clone()))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .then(|n: Arc<Node>, q: std::collections::HashMap<String, String>| async move {
            respond(render::image(&n, q).await)
        });

    // The console: `/ui` and every path under `/ui/`.
    // (The path before the method: a method rejection would outrank the
    // 404 of every other unknown path.)
    let console = warp::path("ui")
        .and(warp::get())
        .and(warp::path::full())
        .map(|path: FullPath| respond(ui::serve(path.as_str())));

    let api = index
        .or(console)
        .unify()
        .or(status)
        .unify()
        .or(scrape)
        .unify()
        .or(render_image)
        .unify()
        .or(write)
        .unify()
        .or(remote_write)
        .unify()
        .or(otlp)
        .unify()
        .or(query_metrics)
        .unify()
        .or(query_batch)
        .unify()
        .or(parse_query)
        .unify()
        .or(parse_filter_get)
        .unify()
        .or(parse_filter_post)
        .unify()
        // Boxed part-way: every `or` nests the types of all before it, and
        // the compiler's trait checks of the whole chain grow much faster
        // than its length (half an hour of compile time, once).
        .boxed()
        .or(metadata_routes(&node))
        .unify()
        .or(node_routes(&node))
        .unify()
        .or(prometheus_api::routes(&node, small))
        .unify()
        .boxed();

    // `OPTIONS` is answered on every path of the API, `/query/*` included
    // and without `X-Client-Id`, before anything else; on an unknown path it
    // is a 404 like any other method.
    let access = node.access.clone();
    // (Not `warp::options()`: its "method not allowed" would win over the
    // "not found" of an unknown path.)
    let preflight = warp::method()
        .and_then(|m: warp::http::Method| async move {
            if m == warp::http::Method::OPTIONS {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(warp::path::full())
        .and_then(|path: warp::path::FullPath| async move {
            routes::allowed(path.as_str()).ok_or_else(warp::reject::not_found)
        })
        .and(warp::header::headers_cloned())
        .map(move |allow: &'static str, h: HeaderMap| access.cors.preflight(&h, allow));

    // While the node stops, refuse new work with 503 as Heroic does.
    let stopping = with_node(node.clone()).and_then(|n: Arc<Node>| async move {
        if n.is_stopping() {
            Ok::<Response, Rejection>(ApiError::unavailable("Heroic is shutting down").into_response())
        } else {
            Err(warp::reject::not_found())
        }
    });

    let access = node.access.clone();
    let http_metrics = node.telemetry.http.clone();
    warp::any()
        .map(Instant::now)
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(preflight.or(stopping).unify().or(api).unify().recover(error::recover).unify())
        .map(move |arrived: Instant, method: Method, path: FullPath, request: HeaderMap, mut response: Response| {
            access.cors.decorate(&request, &mut response);
            http_metrics.observe(&method, path.as_str(), response.status(), arrived.elapsed());
            response
        })
        .with(warp::trace::request())
        .map(Reply::into_response)
}

/// Serves `routes` on `listener` until `shutdown` resolves, then waits for
/// in-flight requests (so acknowledged writes are complete) and returns.
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = server::ConnectionLimits::from(&node.server);
    server::serve(routes(node), listener, limits, shutdown).await;
}
