//! The node's ingestion filter: an HQL filter, compiled once, that every
//! consumed series must match to be written. A file of its own so that the
//! config can check it without depending on the ingestion pipeline.

use heroic_plugin_api::filter::SeriesMatcher;

/// Parses and compiles an ingestion filter (HQL).
pub fn compile_filter(hql: &str) -> Result<SeriesMatcher, String> {
    let filter = heroic_query::hql::parse_filter(hql).map_err(|e| e.to_string())?;
    filter.compile().map_err(|e| e.to_string())
}
