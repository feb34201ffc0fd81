//! `GET /ui/`: the web console (see `docs/console.md`), static files
//! embedded in the binary from `host/ui/` at build time, so a node needs
//! nothing beside itself to serve it and no JavaScript tool chain is needed
//! to build it (the files are plain ES modules; uPlot is vendored, with its
//! licence, under `host/ui/vendor/`).

use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use crate::http::error::ApiError;

/// The console's files: (path under `/ui/`, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("", "text/html; charset=utf-8", include_bytes!("../../ui/index.html")),
    ("console.css", "text/css; charset=utf-8", include_bytes!("../../ui/console.css")),
    ("js/main.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/js/main.js")),
    ("js/api.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/js/api.js")),
    ("js/range.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/js/range.js")),
    ("js/complete.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/js/complete.js")),
    ("js/chart.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/js/chart.js")),
    ("js/browser.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/js/browser.js")),
    ("js/status.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/js/status.js")),
    ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/vendor/uPlot.iife.min.js")),
    ("vendor/uPlot.min.css", "text/css; charset=utf-8", include_bytes!("../../ui/vendor/uPlot.min.css")),
    ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8", include_bytes!("../../ui/vendor/uPlot.LICENSE")),
];

/// The page may load only its own files and talk only to its own node;
/// uPlot sets element styles, hence `'unsafe-inline'` for styles alone.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/// `GET /ui` (to `/ui/`, so that the page's relative paths resolve) and
/// `GET /ui/<file>`.
pub fn serve(full_path: &str) -> Result<Response, ApiError> {
    if full_path == "/ui" {
        let mut response = Response::new(Vec::new().into());
        *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
        response.headers_mut().insert(LOCATION, HeaderValue::from_static("/ui/"));
        return Ok(response);
    }
    let file = full_path.strip_prefix("/ui/").unwrap_or_default();
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(path, ..)| *path == file)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("the console has no file {file:?}")))?;
    let mut response = Response::new((*body).into());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The files change with the binary: a browser asks again each time
    // (cheap: a few tens of kB from the node itself).
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("content-security-policy", HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quoted names of `.js` and `.css` files in `text`.
    fn named(text: &[u8]) -> Vec<&str> {
        let text = std::str::from_utf8(text).unwrap();
        text.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css")).collect()
    }

    #[test]
    fn every_file_the_page_names_is_served() {
        let mut files: Vec<String> = named(ASSETS[0].2).into_iter().map(str::to_string).collect();
        // The modules import each other as "./name.js", relative to js/.
        for (_, _, body) in ASSETS.iter().filter(|a| a.0.starts_with("js/")) {
            let imports: Vec<&str> = named(body).into_iter().filter_map(|s| s.strip_prefix("./")).collect();
            files.extend(imports.into_iter().map(|s| format!("js/{s}")));
        }
        assert!(files.len() >= 9, "{files:?}");
        for file in files {
            assert!(serve(&format!("/ui/{file}")).is_ok(), "{file} is named but not served");
        }
        assert_eq!(serve("/ui").unwrap().status(), 301);
        assert_eq!(serve("/ui/").unwrap().headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(serve("/ui/nope.js").err().unwrap().status, 404);
        assert_eq!(serve("/ui/../Cargo.toml").err().unwrap().status, 404);
    }
}
