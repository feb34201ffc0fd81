//! The paths of the API and the methods each answers: the `Allow` header of
//! an `OPTIONS` answer.

/// Every path of the API with the methods it answers, `OPTIONS` included,
/// as an `Allow` value.
const ROUTES: &[(&str, &str)] = &[
    ("/", "GET,OPTIONS"),
    ("/backends", "GET,OPTIONS"),
    ("/status", "GET,OPTIONS"),
    ("/cluster/status", "GET,OPTIONS"),
    ("/render/image", "GET,OPTIONS"),
    ("/cluster/nodes", "GET,POST,DELETE,OPTIONS"),
    ("/metadata/series", "POST,PUT,DELETE,OPTIONS"),
    ("/parser/parse-filter", "GET,POST,OPTIONS"),
    // GET is the Prometheus scrape; POST is Heroic's alias of /query/metrics.
    ("/metrics", "GET,POST,OPTIONS"),
    ("/cluster/refresh", "POST,OPTIONS"),
    ("/write", "POST,OPTIONS"),
    ("/api/v1/write", "POST,OPTIONS"),
    ("/v1/metrics", "POST,OPTIONS"),
    ("/api/v1/query", "GET,POST,OPTIONS"),
    ("/api/v1/query_range", "GET,POST,OPTIONS"),
    ("/api/v1/series", "GET,POST,OPTIONS"),
    ("/api/v1/labels", "GET,POST,OPTIONS"),
    ("/api/v1/status/buildinfo", "GET,OPTIONS"),
    ("/api/v1/metadata", "GET,OPTIONS"),
    ("/query/metrics", "POST,OPTIONS"),
    ("/query/batch", "POST,OPTIONS"),
    ("/parser/parse-query", "POST,OPTIONS"),
    ("/tags", "POST,OPTIONS"),
    ("/keys", "POST,OPTIONS"),
    ("/metadata/tags", "POST,OPTIONS"),
    ("/metadata/keys", "POST,OPTIONS"),
    ("/metadata/series-count", "POST,OPTIONS"),
    ("/metadata/tagkey-count", "POST,OPTIONS"),
    ("/metadata/key-suggest", "POST,OPTIONS"),
    ("/metadata/tag-suggest", "POST,OPTIONS"),
    ("/metadata/tag-value-suggest", "POST,OPTIONS"),
    ("/metadata/tag-values-suggest", "POST,OPTIONS"),
];

/// The web console: `/ui` and every file under `/ui/`, one route.
const CONSOLE: &(&str, &str) = &("/ui/", "GET,OPTIONS");

/// Prometheus' `/api/v1/label/<name>/values`, one route for every name.
const LABEL_VALUES: &(&str, &str) = &("/api/v1/label/:name/values", "GET,OPTIONS");

fn find(path: &str) -> Option<&'static (&'static str, &'static str)> {
    if path == "/ui" || path.starts_with("/ui/") {
        return Some(CONSOLE);
    }
    if let Some(name) = path.strip_prefix("/api/v1/label/").and_then(|p| p.strip_suffix("/values")) {
        return (!name.is_empty() && !name.contains('/')).then_some(LABEL_VALUES);
    }
    ROUTES.iter().find(|(p, _)| *p == path)
}

/// The methods `path` answers, `OPTIONS` included, as an `Allow` value;
/// `None` for a path the API does not have.
pub fn allowed(path: &str) -> Option<&'static str> {
    find(path).map(|(_, methods)| *methods)
}

/// `path` as the API's own string (a label that a client cannot choose);
/// `None` for a path the API does not have.
pub fn route(path: &str) -> Option<&'static str> {
    find(path).map(|(p, _)| *p)
}

#[cfg(test)]
mod tests {
    use super::{allowed, route};

    #[test]
    fn every_path_has_its_methods() {
        assert_eq!(allowed("/query/batch"), Some("POST,OPTIONS"));
        assert_eq!(allowed("/cluster/nodes"), Some("GET,POST,DELETE,OPTIONS"));
        assert_eq!(allowed("/metadata/tag-values"), None, "Heroic has no such path");
        assert_eq!(allowed("/nope"), None);
        assert_eq!(allowed("/metrics"), Some("GET,POST,OPTIONS"));
        assert_eq!(route("/keys"), Some("/keys"));
        assert_eq!(route("/keys/"), None);
        assert_eq!(route("/ui/js/main.js"), Some("/ui/"));
        assert_eq!(allowed("/ui"), Some("GET,OPTIONS"));
        assert_eq!(route("/api/v1/label/job/values"), Some("/api/v1/label/:name/values"));
        assert_eq!(allowed("/api/v1/label//values"), None);
        assert_eq!(allowed("/api/v1/query"), Some("GET,POST,OPTIONS"));
    }
}
