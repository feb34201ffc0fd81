//! Index layout (single or rotating names), the index templates and
//! mappings, and `configure`.
//!
//! Every field is a `keyword` (exact terms with doc values). Word and prefix
//! tokens for suggestions are computed by the plugin ([`crate::tokens`]) and
//! stored as keywords too, because the two test servers disagree on
//! analyzers (osmem indexes nothing for `word_delimiter` after a `keyword`
//! tokenizer) and keyword terms behave the same everywhere.

use elasticsearch::http::Method;
use heroic_plugin_api::types::TimeRange;
use serde_json::{json, Map, Value};

use crate::client::{Body, EsClient};
use crate::config::{IndexConfig, Role, Settings};
use crate::error::{Error, Result};

/// Names of the indices to read and write.
#[derive(Debug, Clone)]
pub struct Layout {
    role: Role,
    index: IndexConfig,
    interval_ms: Option<i64>,
}

const MAX_DYNAMIC_READ: i64 = 64;

impl Layout {
    pub fn new(settings: &Settings) -> Self {
        Layout { role: settings.role, index: settings.fields.index.clone(), interval_ms: settings.interval_ms }
    }

    fn name_at(&self, base: i64) -> String {
        match &self.index {
            IndexConfig::Single { name } => name.clone().unwrap_or_else(|| format!("heroic-{}", self.role.as_str())),
            IndexConfig::Rotating { pattern, .. } => {
                pattern.replacen("%s", &format!("{}-{base}", self.role.as_str()), 1)
            }
        }
    }

    /// The glob the template applies to.
    pub fn pattern(&self) -> String {
        match &self.index {
            IndexConfig::Single { .. } => self.name_at(0),
            IndexConfig::Rotating { pattern, .. } => pattern.replacen("%s", &format!("{}-*", self.role.as_str()), 1),
        }
    }

    fn base(&self, t: i64) -> i64 {
        let i = self.interval_ms.unwrap_or(1);
        t - t.rem_euclid(i)
    }

    /// Indices written at time `now`: the current one and, with
    /// `max_write_indices > 1`, the previous ones.
    pub fn write_indices(&self, now: i64) -> Vec<String> {
        match (&self.index, self.interval_ms) {
            (IndexConfig::Rotating { max_write_indices, .. }, Some(i)) => {
                (0..*max_write_indices as i64).map(|k| self.name_at(self.base(now) - k * i)).collect()
            }
            _ => vec![self.name_at(0)],
        }
    }

    /// Indices read for a query over `range` at time `now`.
    pub fn read_indices(&self, range: TimeRange, now: i64) -> Vec<String> {
        match (&self.index, self.interval_ms) {
            (IndexConfig::Rotating { max_read_indices, dynamic_max_read_indices, .. }, Some(i)) => {
                let newest = self.base(now);
                let count = if *dynamic_max_read_indices {
                    let oldest = self.base(range.start.max(now - MAX_DYNAMIC_READ * i));
                    ((newest - oldest) / i + 1).clamp(1, MAX_DYNAMIC_READ)
                } else {
                    *max_read_indices as i64
                };
                (0..count).map(|k| self.name_at(newest - k * i)).collect()
            }
            _ => vec![self.name_at(0)],
        }
    }

    /// Whether a query can read more than one index (then one series may
    /// have a document in several and answers are de-duplicated).
    pub fn multi_read(&self) -> bool {
        matches!(&self.index, IndexConfig::Rotating { max_read_indices, dynamic_max_read_indices, .. }
            if *max_read_indices > 1 || *dynamic_max_read_indices)
    }
}

fn keyword() -> Value {
    json!({"type": "keyword"})
}

/// Mappings of metadata documents: `{key, tags:["k\0v"], tag_keys, resource, hash}`.
pub fn metadata_mappings(index_resource: bool) -> Value {
    json!({
        "dynamic": "strict",
        "properties": {
            "key": keyword(),
            "tags": keyword(),
            "tag_keys": keyword(),
            "hash": keyword(),
            "resource": {"type": "keyword", "index": index_resource},
        }
    })
}

/// Mappings of suggest documents. One index holds two kinds (`kind`):
/// `series` (one per series, for key suggestions) and `tag` (one per series
/// and tag, for tag suggestions). Both carry the series' `key`, `tags` and
/// `tag_keys` so filters apply to either.
pub fn suggest_mappings() -> Value {
    let mut props = Map::new();
    for f in [
        "kind",
        "key",
        "tags",
        "tag_keys",
        "series_id",
        "key_prefix",
        "key_words",
        "skey",
        "sval",
        "kv",
        "skey_prefix",
        "skey_words",
        "sval_prefix",
        "sval_words",
    ] {
        props.insert(f.into(), keyword());
    }
    json!({"dynamic": "strict", "properties": props})
}

fn settings_of(settings: &Settings) -> Value {
    let mut index = Map::new();
    if let Some(n) = settings.fields.number_of_shards {
        index.insert("number_of_shards".into(), json!(n));
    }
    if let Some(n) = settings.fields.number_of_replicas {
        index.insert("number_of_replicas".into(), json!(n));
    }
    Value::Object(index)
}

/// The composable index template for this backend's indices.
pub fn template(settings: &Settings, layout: &Layout, mappings: &Value) -> Value {
    json!({
        "index_patterns": [layout.pattern()],
        "priority": 100,
        "template": {"settings": settings_of(settings), "mappings": mappings},
        "_meta": {"created_by": "heroic-plugin-elasticsearch"},
    })
}

/// Installs the template, then creates the current write indices (an
/// existing index is fine) so the first write and the first read find them.
pub async fn configure(
    client: &EsClient,
    settings: &Settings,
    layout: &Layout,
    mappings: &Value,
    now: i64,
) -> Result<()> {
    let path = format!("_index_template/{}", settings.template_name);
    client
        .ok("put index template", Method::Put, &path, &[], Some(Body::Json(template(settings, layout, mappings))))
        .await?;
    for index in layout.write_indices(now) {
        let body = json!({"settings": settings_of(settings), "mappings": mappings});
        let (status, value) = client.send("create index", Method::Put, &index, &[], Some(Body::Json(body))).await?;
        let exists = value["error"]["type"].as_str().is_some_and(|t| t.contains("already_exists"));
        if !(200..300).contains(&status) && !exists {
            return Err(Error::Server {
                op: format!("create index {index}"),
                status,
                reason: crate::client::error_reason(&value),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MetadataConfig, Role};

    fn layout(index: IndexConfig) -> Layout {
        let c = MetadataConfig { index, ..Default::default() };
        Layout::new(&c.settings(Role::Metadata).unwrap())
    }

    #[test]
    fn rotating_names_follow_heroic() {
        let l = layout(IndexConfig::Rotating {
            pattern: "heroic-%s".into(),
            interval: "7d".into(),
            max_read_indices: 2,
            max_write_indices: 1,
            dynamic_max_read_indices: false,
        });
        let week = 7 * 86_400_000i64;
        let now = 1_535_587_200_000 + 5;
        let base = now - now % week;
        assert_eq!(l.write_indices(now), vec![format!("heroic-metadata-{base}")]);
        assert_eq!(
            l.read_indices(TimeRange::new(0, now), now),
            vec![format!("heroic-metadata-{base}"), format!("heroic-metadata-{}", base - week)]
        );
        assert_eq!(l.pattern(), "heroic-metadata-*");
        assert!(l.multi_read());
    }

    #[test]
    fn single_index_defaults_to_the_role() {
        let l = layout(IndexConfig::Single { name: None });
        assert_eq!(l.write_indices(1), vec!["heroic-metadata".to_string()]);
        assert!(!l.multi_read());
    }
}
