//! `GET /render/image?q=<hql>&title=&width=600&height=400&highlight=<json>&threshold=<n>&backend=`:
//! the answer to an HQL query drawn as a PNG chart (see [`crate::render`]).
//!
//! As in Heroic, it needs no `X-Client-Id` and runs like any query (a
//! query slot, the query timeout, the node's limits). `backend` names a
//! backend group in Heroic; a node here has one, so it is accepted and not
//! used.

use std::collections::HashMap;

use heroic_query::QueryMetrics;
use warp::http::header::CONTENT_TYPE;
use warp::http::HeaderValue;
use warp::reply::Response;

use crate::http::error::{ApiError, ApiResult};
use crate::http::query::outcome;
use crate::node::Node;
use crate::render::{check_size, render_png, ChartSpec};

/// Heroic's default size.
const DEFAULT_WIDTH: u32 = 600;
const DEFAULT_HEIGHT: u32 = 400;

fn size(params: &HashMap<String, String>, name: &str, default: u32) -> ApiResult<u32> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("{name}: expected a number of pixels, got {v:?}"))),
    }
}

/// Reads the query parameters into the query to run and the chart to draw.
fn parse(params: &HashMap<String, String>) -> ApiResult<(QueryMetrics, ChartSpec)> {
    let q = params
        .get("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("'q' must be defined: the HQL query to draw"))?;
    let (width, height) = (size(params, "width", DEFAULT_WIDTH)?, size(params, "height", DEFAULT_HEIGHT)?);
    check_size(width, height).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let threshold = match params.get("threshold") {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite())
                .ok_or_else(|| ApiError::bad_request(format!("threshold: expected a number, got {v:?}")))?,
        ),
    };
    let highlight = match params.get("highlight") {
        None => Vec::new(),
        Some(raw) => serde_json::from_str::<HashMap<String, String>>(raw)
            .map_err(|e| ApiError::bad_request(format!("highlight: expected a JSON object of tag values: {e}")))?
            .into_iter()
            .collect(),
    };
    let spec = ChartSpec { title: params.get("title").cloned(), width, height, threshold, highlight, range: 0..0 };
    Ok((QueryMetrics::from_hql(q), spec))
}

pub async fn image(node: &Node, params: HashMap<String, String>) -> ApiResult<Response> {
    let (request, mut spec) = parse(&params)?;
    let (outcome, _, retained) = outcome(node, &request).await?;
    spec.range = outcome.range.start..outcome.range.end;
    // Drawing is CPU work of up to a few hundred milliseconds: off the
    // threads that serve requests.
    let png = tokio::task::spawn_blocking(move || {
        let png = render_png(&outcome.groups, &spec);
        drop(retained);
        png
    })
    .await
    .map_err(|e| ApiError::internal(format!("drawing the chart failed: {e}")))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = Response::new(png.into());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parameters_are_checked() {
        let (_, spec) = parse(&params(&[("q", "* from points(1h)")])).unwrap();
        assert_eq!((spec.width, spec.height, spec.threshold), (600, 400, None));
        let (_, spec) = parse(&params(&[
            ("q", "* from points(1h)"),
            ("width", "100"),
            ("height", "50"),
            ("threshold", "2.5"),
            ("highlight", r#"{"host": "a"}"#),
            ("title", "cpu"),
        ]))
        .unwrap();
        assert_eq!((spec.width, spec.height, spec.threshold), (100, 50, Some(2.5)));
        assert_eq!(spec.highlight, vec![("host".to_string(), "a".to_string())]);
        assert_eq!(spec.title.as_deref(), Some("cpu"));
        for bad in [
            vec![],
            vec![("q", " ")],
            vec![("q", "*"), ("width", "x")],
            vec![("q", "*"), ("width", "0")],
            vec![("q", "*"), ("width", "100000"), ("height", "100000")],
            vec![("q", "*"), ("threshold", "NaN")],
            vec![("q", "*"), ("highlight", "[1]")],
        ] {
            let e = parse(&params(&bad)).err().unwrap_or_else(|| panic!("{bad:?} was accepted"));
            assert_eq!(e.status, 400, "{bad:?}");
        }
    }
}
