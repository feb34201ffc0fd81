//! A minimal metric backend plugin for the Heroic host: it keeps points in
//! memory, sorted per series. Replace the storage with your database.
//!
//! Build it with `cargo build --release`, copy
//! `target/release/libheroic_plugin_template.so` into a directory listed in
//! the host's `[plugins] dirs`, and name it in the config:
//!
//! ```toml
//! [[metrics]]
//! plugin = "template"
//! [metrics.config]
//! max_series = 1000
//! ```

use std::collections::HashMap;
use std::sync::RwLock;

use heroic_plugin_api::sdk::support::PointBudget;
use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::types::{FetchRequest, FetchResponse, FetchedSeries, PointBatch, Series, SeriesPoints};
use heroic_plugin_api::{PluginError, PluginResult, RVec};

/// The plugin's config table. `deny_unknown_fields` makes the host report
/// a misspelt key instead of silently ignoring it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// Refuse writes that would create more series than this.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
}

fn default_max_series() -> usize {
    10_000
}

/// Points of one series, kept sorted by timestamp.
#[derive(Default)]
struct Column {
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

impl Column {
    fn insert(&mut self, t: i64, v: f64) {
        match self.timestamps.binary_search(&t) {
            Ok(i) => self.values[i] = v, // same timestamp: the last write wins
            Err(i) => {
                self.timestamps.insert(i, t);
                self.values.insert(i, v);
            }
        }
    }

    /// Points in `(start, end]`, the first ones only when `budget` runs
    /// out.
    fn slice(&self, start: i64, end: i64, budget: &PointBudget) -> PointBatch {
        let from = self.timestamps.partition_point(|&t| t <= start);
        let to = self.timestamps.partition_point(|&t| t <= end);
        let to = from + budget.claim(to - from);
        PointBatch {
            timestamps: self.timestamps[from..to].to_vec().into(),
            values: self.values[from..to].to_vec().into(),
        }
    }
}

pub struct TemplateBackend {
    max_series: usize,
    series: RwLock<HashMap<Series, Column>>,
}

impl MetricBackend for TemplateBackend {
    type Config = TemplateConfig;

    async fn create(config: TemplateConfig) -> PluginResult<Self> {
        tracing::info!(max_series = config.max_series, "template backend ready");
        Ok(TemplateBackend { max_series: config.max_series, series: RwLock::default() })
    }

    async fn write(&self, batch: RVec<SeriesPoints>) -> PluginResult<()> {
        let mut all = self.series.write().map_err(|_| PluginError::internal("lock poisoned"))?;
        for item in batch.iter() {
            if !all.contains_key(&item.series) && all.len() >= self.max_series {
                return Err(PluginError::invalid_input(format_args!("more than {} series", self.max_series)));
            }
            let column = all.entry(item.series.clone()).or_default();
            for (t, v) in item.points.timestamps.iter().zip(item.points.values.iter()) {
                column.insert(*t, *v);
            }
        }
        Ok(())
    }

    async fn fetch(&self, request: FetchRequest) -> PluginResult<FetchResponse> {
        let all = self.series.read().map_err(|_| PluginError::internal("lock poisoned"))?;
        // At most `point_limit` points over all series (0: no limit). A
        // backend reading series concurrently shares the same budget.
        let budget = PointBudget::new(request.point_limit);
        let found = request.series.iter().enumerate().filter_map(|(i, s)| {
            let column = all.get(s)?;
            Some(FetchedSeries {
                request_index: i as u32,
                resource: s.resource.clone(),
                points: column.slice(request.range.start, request.range.end, &budget),
            })
        });
        let series = found.collect();
        Ok(FetchResponse { series, limited: budget.limited() })
    }
}

// One macro exports the plugin: its name and the backends it provides.
heroic_plugin_api::export_plugin! {
    name: "template",
    metrics: TemplateBackend,
}
