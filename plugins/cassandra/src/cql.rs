//! The CQL this plugin sends, as text. Heroic's statements (its
//! `NextGenSchema`) are kept where they exist; the `IN` read, the per-point
//! delete and the key listing are this plugin's own.
//!
//! Names are validated by the config (letters, digits, `_`), so they are
//! written unquoted, as Heroic writes them (Cassandra lowercases them).

/// The statements of one keyspace and table.
#[derive(Clone, Debug)]
pub struct Cql {
    /// `keyspace.table`.
    table: String,
    keyspace: String,
}

impl Cql {
    pub fn new(keyspace: &str, table: &str) -> Self {
        Cql { table: format!("{keyspace}.{table}"), keyspace: keyspace.to_string() }
    }

    /// Heroic's `keyspace.cql`, with the replication factor configurable.
    pub fn create_keyspace(&self, replication_factor: u32) -> String {
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH REPLICATION = \
             {{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}",
            self.keyspace
        )
    }

    /// Heroic's `tables.cql`. `COMPACT STORAGE` only on request: Cassandra
    /// 4+ refuses it, and the columns CQL sees are the same without it.
    pub fn create_table(&self, compact_storage: bool) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (metric_key blob, data_timestamp_offset int, data_value double, \
             PRIMARY KEY (metric_key, data_timestamp_offset)){}",
            self.table,
            if compact_storage { " WITH COMPACT STORAGE" } else { "" }
        )
    }

    /// Heroic's write: one point.
    pub fn insert(&self) -> String {
        format!("INSERT INTO {} (metric_key, data_timestamp_offset, data_value) VALUES (?, ?, ?)", self.table)
    }

    /// Heroic's fetch: offsets `(after, upto]` of one row, `LIMIT` points.
    pub fn fetch_row(&self) -> String {
        format!(
            "SELECT data_timestamp_offset, data_value FROM {} WHERE metric_key = ? \
             AND data_timestamp_offset > ? AND data_timestamp_offset <= ? LIMIT ?",
            self.table
        )
    }

    /// Whole rows, several at once: `metric_key IN ?` binds a list of keys.
    pub fn fetch_rows(&self) -> String {
        format!(
            "SELECT metric_key, data_timestamp_offset, data_value FROM {} WHERE metric_key IN ? LIMIT ?",
            self.table
        )
    }

    /// One point (Heroic deletes whole rows only; a range delete here may
    /// cover part of a row).
    pub fn delete_point(&self) -> String {
        format!("DELETE FROM {} WHERE metric_key = ? AND data_timestamp_offset = ?", self.table)
    }

    /// A page of row keys in token order, after a token: Heroic's key
    /// streaming (`BackendKeyUtils`).
    pub fn list_keys(&self) -> String {
        format!("SELECT DISTINCT metric_key, token(metric_key) FROM {} WHERE token(metric_key) > ? LIMIT ?", self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_matches_heroic() {
        let cql = Cql::new("heroic", "metrics");
        assert_eq!(
            cql.create_keyspace(3),
            "CREATE KEYSPACE IF NOT EXISTS heroic WITH REPLICATION = {'class': 'SimpleStrategy', 'replication_factor': 3}"
        );
        assert_eq!(
            cql.create_table(false),
            "CREATE TABLE IF NOT EXISTS heroic.metrics (metric_key blob, data_timestamp_offset int, \
             data_value double, PRIMARY KEY (metric_key, data_timestamp_offset))"
        );
        assert!(cql.create_table(true).ends_with(")) WITH COMPACT STORAGE"));
    }

    #[test]
    fn statements_use_heroic_columns_and_bounds() {
        let cql = Cql::new("ks", "points");
        assert_eq!(
            cql.insert(),
            "INSERT INTO ks.points (metric_key, data_timestamp_offset, data_value) VALUES (?, ?, ?)"
        );
        assert_eq!(
            cql.fetch_row(),
            "SELECT data_timestamp_offset, data_value FROM ks.points WHERE metric_key = ? \
             AND data_timestamp_offset > ? AND data_timestamp_offset <= ? LIMIT ?"
        );
        assert_eq!(
            cql.fetch_rows(),
            "SELECT metric_key, data_timestamp_offset, data_value FROM ks.points WHERE metric_key IN ? LIMIT ?"
        );
        assert_eq!(cql.delete_point(), "DELETE FROM ks.points WHERE metric_key = ? AND data_timestamp_offset = ?");
        assert_eq!(
            cql.list_keys(),
            "SELECT DISTINCT metric_key, token(metric_key) FROM ks.points WHERE token(metric_key) > ? LIMIT ?"
        );
    }
}
