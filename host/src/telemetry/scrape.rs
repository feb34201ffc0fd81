//! What is read at each scrape rather than counted as it happens: the
//! backends' and consumers' health and statistics (asked of the plugins),
//! the consumers' ingestion counters, query admission, and the process.

use std::sync::atomic::AtomicU64;

use heroic_plugin_api::types::{Health, Statistic};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::backends::Backends;
use crate::consumers::Consumers;
use crate::ingest::IngestStats;
use crate::query::admission::Admission;

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Component {
    role: &'static str,
    id: String,
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentStatistic {
    role: &'static str,
    id: String,
    plugin: String,
    /// The plugin's own name for it (`series`, `lag`, `messages_consumed` …).
    statistic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Consumer {
    consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerOutcome {
    consumer: String,
    outcome: &'static str,
}

/// A consumer's lag: per partition (`<topic>/<partition>`) where the plugin
/// reports it so, else the consumer's whole lag with no partition label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerPartition {
    consumer: String,
    partition: Option<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// The health and statistics of every backend and consumer.
#[derive(Default)]
struct Components {
    up: Family<Component, Gauge>,
    ready: Family<Component, Gauge>,
    statistics: Family<ComponentStatistic, FloatGauge>,
}

impl Components {
    fn add(&self, role: &'static str, id: &str, plugin: &str, health: &Health, statistics: &[Statistic]) {
        let c = Component { role, id: id.to_string(), plugin: plugin.to_string() };
        self.up.get_or_create(&c).set(i64::from(health.ok));
        self.ready.get_or_create(&c).set(i64::from(health.ready));
        for s in statistics {
            let Component { role, id, plugin } = c.clone();
            let label = ComponentStatistic { role, id, plugin, statistic: s.name.to_string() };
            self.statistics.get_or_create(&label).set(s.value);
        }
    }

    fn register(self, r: &mut Registry) {
        r.register("heroic_component_up", "1 while a backend or consumer says it works as it should", self.up);
        r.register("heroic_component_ready", "1 while a backend or consumer is ready to serve", self.ready);
        r.register(
            "heroic_component_statistic",
            "A backend's or consumer's own statistics, as its plugin names them",
            self.statistics,
        );
    }
}

/// Registers what is read now of the node's parts.
pub fn register(r: &mut Registry, b: &Backends, c: &Consumers, a: &Admission) {
    let components = Components::default();
    for m in &b.metrics {
        components.add("metrics", &m.id, &m.plugin, &m.client.health(), &m.client.statistics());
    }
    for m in &b.metadata {
        components.add("metadata", &m.id, &m.plugin, &m.client.health(), &m.client.statistics());
    }
    for s in &b.suggest {
        components.add("suggest", &s.id, &s.plugin, &s.client.health(), &s.client.statistics());
    }
    let consumers = ConsumerFamilies::default();
    for report in c.reports() {
        components.add("consumer", report.id, report.plugin, &report.health, &report.plugin_stats);
        consumers.add(report.id, report.stats, report.plugin_stat("messages_dead_lettered"));
        consumers.lag(report.id, &report.plugin_stats);
    }
    components.register(r);
    consumers.register(r);
    admission(r, a);
    process(r);
}

/// The consumers' ingestion, counted by the host for each consumer.
#[derive(Default)]
struct ConsumerFamilies {
    messages: Family<Consumer, Counter>,
    refused: Family<ConsumerOutcome, Counter>,
    dead_lettered: Family<Consumer, Counter>,
    points: Family<Consumer, Counter>,
    batches: Family<ConsumerOutcome, Counter>,
    lag: Family<ConsumerPartition, FloatGauge>,
}

impl ConsumerFamilies {
    fn add(&self, id: &str, stats: &IngestStats, dead_lettered: Option<f64>) {
        let get = IngestStats::get;
        let consumer = || Consumer { consumer: id.to_string() };
        let outcome = |outcome| ConsumerOutcome { consumer: id.to_string(), outcome };
        self.messages.get_or_create(&consumer()).inc_by(get(&stats.messages));
        self.refused.get_or_create(&outcome("malformed")).inc_by(get(&stats.malformed));
        self.refused.get_or_create(&outcome("invalid")).inc_by(get(&stats.invalid));
        self.points.get_or_create(&consumer()).inc_by(get(&stats.points_written) + get(&stats.distributions_written));
        self.batches.get_or_create(&outcome("ok")).inc_by(get(&stats.batches_ok));
        self.batches.get_or_create(&outcome("write_error")).inc_by(get(&stats.write_errors));
        if let Some(n) = dead_lettered {
            self.dead_lettered.get_or_create(&consumer()).inc_by(n as u64);
        }
    }

    /// The plugin's `lag/<partition>` statistics, one series each, or its
    /// `lag` when it reports no partitions (never both: a `sum` over the
    /// consumer must not count the lag twice).
    fn lag(&self, id: &str, statistics: &[Statistic]) {
        let label = |partition: Option<&str>| ConsumerPartition {
            consumer: id.to_string(),
            partition: partition.map(str::to_string),
        };
        let mut per_partition = false;
        for s in statistics {
            if let Some(partition) = s.name.as_str().strip_prefix("lag/") {
                self.lag.get_or_create(&label(Some(partition))).set(s.value);
                per_partition = true;
            }
        }
        if !per_partition {
            if let Some(total) = statistics.iter().find(|s| s.name.as_str() == "lag") {
                self.lag.get_or_create(&label(None)).set(total.value);
            }
        }
    }

    fn register(self, r: &mut Registry) {
        r.register("heroic_consumer_messages", "Messages a consumer handed to the node", self.messages);
        r.register(
            "heroic_consumer_messages_refused",
            "Messages refused: not decodable (malformed) or failing validation (invalid)",
            self.refused,
        );
        r.register(
            "heroic_consumer_messages_dead_lettered",
            "Messages refused for good and stored in the dead-letter destination (consumers that report it)",
            self.dead_lettered,
        );
        r.register("heroic_consumer_points_written", "Points and samples a consumer's messages wrote", self.points);
        r.register(
            "heroic_consumer_batches",
            "Batches acknowledged to the consumer (ok) or refused because a backend failed (write_error)",
            self.batches,
        );
        r.register(
            "heroic_consumer_lag_messages",
            "Messages behind the head of a partition the consumer reads (consumers that report it; kafka: per partition)",
            self.lag,
        );
    }
}

/// Query slots and the retained-data budget, shared by queries and metadata
/// and suggest reads.
fn admission(r: &mut Registry, a: &Admission) {
    let refused = Family::<Reason, Counter>::default();
    let get = |c: &AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    refused.get_or_create(&Reason { reason: "busy" }).inc_by(get(&a.stats.refused_busy));
    refused.get_or_create(&Reason { reason: "memory" }).inc_by(get(&a.stats.refused_memory));
    r.register(
        "heroic_query_refused",
        "Queries and metadata reads refused: every query slot stayed busy (busy), or the node held all the query data it may (memory)",
        refused,
    );
    let (taken, total) = a.slots();
    let gauge = |v: usize| {
        let g = Gauge::<i64>::default();
        g.set(v as i64);
        g
    };
    r.register("heroic_query_slots_in_use", "Query slots taken now (query.max_concurrent)", gauge(taken));
    r.register("heroic_query_slots", "Query slots in all (query.max_concurrent)", gauge(total));
    r.register(
        "heroic_query_retained_points",
        "Points and buckets held by running queries and answers being sent (query.max_retained_points)",
        gauge(a.retained_points() as usize),
    );
}

/// The process, under the names every Prometheus client library uses.
fn process(r: &mut Registry) {
    let Ok(me) = procfs::process::Process::myself() else { return };
    let float = |v: f64| {
        let g = FloatGauge::default();
        g.set(v);
        g
    };
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        let cpu = Counter::<f64, AtomicU64>::default();
        cpu.inc_by((stat.utime + stat.stime) as f64 / ticks);
        r.register_with_unit("process_cpu", "User and system CPU time used", Unit::Seconds, cpu);
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            float((stat.rss * procfs::page_size()) as f64),
        );
        r.register_with_unit("process_virtual_memory", "Virtual memory size", Unit::Bytes, float(stat.vsize as f64));
        r.register("process_threads", "Threads of the process", float(stat.num_threads as f64));
        if let Ok(boot) = procfs::boot_time_secs() {
            let start = boot as f64 + stat.starttime as f64 / ticks;
            r.register_with_unit("process_start_time", "Start time since the Unix epoch", Unit::Seconds, float(start));
        }
    }
    if let Ok(n) = me.fd_count() {
        r.register("process_open_fds", "Open file descriptors", float(n as f64));
    }
    if let Ok(limits) = me.limits() {
        if let procfs::process::LimitValue::Value(n) = limits.max_open_files.soft_limit {
            r.register("process_max_fds", "The most file descriptors the process may open", float(n as f64));
        }
    }
}
