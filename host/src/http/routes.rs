//! The paths of the API and the methods each answers: the `Allow` header of
//! an `OPTIONS` answer.

/// The methods `path` answers, `OPTIONS` included, as an `Allow` value;
/// `None` for a path the API does not have.
pub fn allowed(path: &str) -> Option<&'static str> {
    Some(match path {
        "/" | "/backends" | "/status" | "/cluster/status" | "/render/image" => "GET,OPTIONS",
        "/cluster/nodes" => "GET,POST,DELETE,OPTIONS",
        "/metadata/series" => "POST,PUT,DELETE,OPTIONS",
        "/parser/parse-filter" => "GET,POST,OPTIONS",
        "/cluster/refresh"
        | "/write"
        | "/query/metrics"
        | "/query/batch"
        | "/metrics"
        | "/parser/parse-query"
        | "/tags"
        | "/keys"
        | "/metadata/tags"
        | "/metadata/keys"
        | "/metadata/series-count"
        | "/metadata/tagkey-count"
        | "/metadata/key-suggest"
        | "/metadata/tag-suggest"
        | "/metadata/tag-value-suggest"
        | "/metadata/tag-values-suggest" => "POST,OPTIONS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn every_path_has_its_methods() {
        assert_eq!(allowed("/query/batch"), Some("POST,OPTIONS"));
        assert_eq!(allowed("/cluster/nodes"), Some("GET,POST,DELETE,OPTIONS"));
        assert_eq!(allowed("/metadata/tag-values"), None, "Heroic has no such path");
        assert_eq!(allowed("/nope"), None);
    }
}
