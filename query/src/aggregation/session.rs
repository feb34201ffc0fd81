//! Streaming execution of an aggregation tree.
//!
//! The host feeds one fetched chunk at a time with
//! [`AggregationSession::update`]; bucketed aggregations fold each chunk
//! into per-bucket arrays, so raw points are not retained (except by
//! `empty`, the delta/filter aggregations and `quantile`, which need them).

use std::collections::HashMap;

/// Series of a group, in the order they first came (the metadata
/// backends'): hashed with foldhash (SipHash over every tag of thousands of
/// series showed in profiles), and kept in order so that the group's list
/// needs no sort (sorting 100,000 series was a fifth of a query).
type SeriesSet = indexmap::IndexSet<Series, foldhash::fast::RandomState>;

use heroic_plugin_api::buckets::BucketPartials;
use heroic_plugin_api::types::{Series, TimeRange};

use super::bucket::{BucketMapping, BucketStrategy, State};
use super::instance::AggregationInstance;
use super::post;
use super::result::{series_key, GroupKey, MetricValues, Output, ResultGroup, SpreadValue};
use crate::error::{QueryError, Result};

// Here rather than in instance.rs, next to what it builds: instances then
// do not depend on sessions, which depend on instances.
impl AggregationInstance {
    /// Starts a streaming session over `range` (`(start, end]`). Fails with
    /// [`QueryError::Layout`] when a bucketed aggregation would have fewer
    /// than 1 or more than [`MAX_BUCKET_COUNT`](super::MAX_BUCKET_COUNT)
    /// buckets, or a size or extent out of bounds, whatever `limit` is.
    ///
    /// `limit` (`aggregationLimit`) bounds the buckets plus raw points the
    /// session holds. Every bucketed aggregation counts its buckets when it
    /// is set up: a top-level one, or a chain's first step, here; one under
    /// a group when the group first sees data; a later chain step when the
    /// step before it finishes. Going over fails this call,
    /// [`update`](AggregationSession::update) or
    /// [`finish`](AggregationSession::finish) with
    /// [`QueryError::AggregationLimit`].
    pub fn session(
        &self,
        range: TimeRange,
        strategy: BucketStrategy,
        limit: Option<u64>,
    ) -> Result<AggregationSession> {
        self.validate(range, strategy)?;
        AggregationSession::new(self.clone(), range, strategy, limit)
    }
}

/// Input data of one update.
#[derive(Clone, Copy)]
pub(crate) enum Data<'a> {
    Points(&'a [i64], &'a [f64]),
    Spreads(&'a [(i64, SpreadValue)]),
}

/// Session-wide settings and the retained-data budget.
pub(crate) struct Ctx {
    range: TimeRange,
    strategy: BucketStrategy,
    retained: u64,
    limit: Option<u64>,
}

impl Ctx {
    fn retain(&mut self, n: u64) -> Result<()> {
        self.retained += n;
        match self.limit {
            Some(limit) if self.retained > limit => Err(QueryError::AggregationLimit { limit }),
            _ => Ok(()),
        }
    }
}

fn add_series(set: &mut SeriesSet, series: &[Series]) {
    for s in series {
        if !set.contains(s) {
            set.insert(s.clone());
        }
    }
}

fn in_order(set: SeriesSet) -> Vec<Series> {
    set.into_iter().collect()
}

/// Adds series the caller gives up (no clone of those already there).
fn add_owned_series(set: &mut SeriesSet, series: Vec<Series>) {
    set.extend(series);
}

/// Collects raw data per key (the `empty` aggregation).
#[derive(Default)]
pub(crate) struct Collector {
    groups: HashMap<GroupKey, Collected>,
}

#[derive(Default)]
struct Collected {
    series: SeriesSet,
    points: Vec<(i64, f64)>,
    spreads: Vec<(i64, SpreadValue)>,
}

impl Collector {
    fn update(&mut self, ctx: &mut Ctx, key: &GroupKey, series: &[Series], data: Data<'_>) -> Result<()> {
        let g = match self.groups.get_mut(key) {
            Some(g) => g,
            None => self.groups.entry(key.clone()).or_default(),
        };
        add_series(&mut g.series, series);
        match data {
            Data::Points(ts, vs) => {
                ctx.retain(ts.len() as u64)?;
                g.points.extend(ts.iter().copied().zip(vs.iter().copied()));
            }
            Data::Spreads(s) => {
                ctx.retain(s.len() as u64)?;
                g.spreads.extend_from_slice(s);
            }
        }
        Ok(())
    }

    /// One output per key and collection type, sorted by time (stable, so
    /// equal timestamps keep their arrival order).
    pub(crate) fn finish(self) -> Vec<Output> {
        let mut out = Vec::new();
        for (key, mut g) in self.groups {
            let series = in_order(g.series);
            if !g.points.is_empty() {
                g.points.sort_by_key(|p| p.0);
                out.push(Output { key: key.clone(), series: series.clone(), values: MetricValues::Points(g.points) });
            }
            if !g.spreads.is_empty() {
                g.spreads.sort_by_key(|p| p.0);
                out.push(Output { key, series, values: MetricValues::Spreads(g.spreads) });
            }
        }
        out
    }
}

enum Node {
    Empty(Collector),
    Group {
        collapse: bool,
        of: Option<Vec<String>>,
        each: AggregationInstance,
        sessions: HashMap<GroupKey, Node>,
    },
    Chain {
        first: Box<Node>,
        rest: Vec<AggregationInstance>,
    },
    Bucket {
        mapping: BucketMapping,
        state: State,
        series: SeriesSet,
    },
    /// Delta, filter and threshold aggregations: collect, then transform.
    Post {
        op: AggregationInstance,
        inner: Collector,
    },
    /// `tdigest`: its input is t-digest sketches, so points and spreads
    /// pass it by, as in Heroic (the host does not run it: see
    /// [`AggregationInstance::uses_tdigest`]).
    Discard,
}

impl Node {
    fn new(instance: &AggregationInstance, ctx: &mut Ctx) -> Result<Node> {
        Ok(match instance {
            AggregationInstance::Empty => Node::Empty(Collector::default()),
            AggregationInstance::Group { of, each } | AggregationInstance::Collapse { of, each } => Node::Group {
                collapse: matches!(instance, AggregationInstance::Collapse { .. }),
                of: of.clone(),
                each: (**each).clone(),
                sessions: HashMap::new(),
            },
            AggregationInstance::Chain(items) => {
                Node::Chain { first: Box::new(Node::new(&items[0], ctx)?), rest: items[1..].to_vec() }
            }
            AggregationInstance::Bucket { kind, size, extent } => {
                let mapping = BucketMapping::new(ctx.range, *size, *extent, ctx.strategy)?;
                ctx.retain(mapping.count() as u64)?;
                Node::Bucket { mapping, state: State::new(kind, mapping.count()), series: SeriesSet::default() }
            }
            AggregationInstance::Tdigest { .. } => Node::Discard,
            other => Node::Post { op: other.clone(), inner: Collector::default() },
        })
    }

    fn update(&mut self, ctx: &mut Ctx, key: &GroupKey, series: &[Series], data: Data<'_>) -> Result<()> {
        match self {
            Node::Empty(c) => c.update(ctx, key, series, data),
            Node::Group { collapse, of, each, sessions } => {
                let gk = group_key(*collapse, of.as_deref(), key);
                let node = match sessions.get_mut(&gk) {
                    Some(n) => n,
                    None => {
                        let n = Node::new(each, ctx)?;
                        sessions.entry(gk.clone()).or_insert(n)
                    }
                };
                node.update(ctx, &gk, series, data)
            }
            Node::Chain { first, .. } => first.update(ctx, key, series, data),
            Node::Bucket { mapping, state, series: set } => {
                add_series(set, series);
                match data {
                    Data::Points(ts, vs) => ctx.retain(state.update_points(mapping, key, ts, vs)),
                    Data::Spreads(s) => {
                        state.update_spreads(mapping, key, s);
                        Ok(())
                    }
                }
            }
            Node::Post { op, inner } => {
                // Delta and notNegative only take points, as in Heroic.
                let points_only = matches!(
                    op,
                    AggregationInstance::Delta | AggregationInstance::DeltaPerSecond | AggregationInstance::NotNegative
                );
                if points_only && matches!(data, Data::Spreads(_)) {
                    return Ok(());
                }
                inner.update(ctx, key, series, data)
            }
            Node::Discard => Ok(()),
        }
    }

    /// Merges the partials of group `group` of a bucket fetch (see
    /// `pushdown.rs`): into this bucket, or the `each` of a group.
    fn merge_partials(
        &mut self,
        ctx: &mut Ctx,
        key: &GroupKey,
        series: Vec<Series>,
        partials: &BucketPartials,
        group: usize,
    ) -> Result<()> {
        match self {
            Node::Bucket { mapping, state, series: set } => {
                add_owned_series(set, series);
                state.merge_partials(partials, group * mapping.count(), mapping.count());
                Ok(())
            }
            Node::Group { each, sessions, .. } => {
                let node = match sessions.get_mut(key) {
                    Some(n) => n,
                    None => {
                        let n = Node::new(each, ctx)?;
                        sessions.entry(key.clone()).or_insert(n)
                    }
                };
                node.merge_partials(ctx, key, series, partials, group)
            }
            _ => Err(QueryError::Invalid("bucket partials for an aggregation that is not pushed down".into())),
        }
    }

    fn finish(self, ctx: &mut Ctx) -> Result<Vec<Output>> {
        Ok(match self {
            Node::Empty(c) => c.finish(),
            Node::Group { sessions, .. } => {
                let mut out = Vec::new();
                for (gk, node) in sessions {
                    for mut o in node.finish(ctx)? {
                        o.key = gk.clone();
                        out.push(o);
                    }
                }
                out
            }
            Node::Chain { first, rest } => {
                let mut current = first.finish(ctx)?;
                for instance in &rest {
                    let mut node = Node::new(instance, ctx)?;
                    for o in &current {
                        let data = match &o.values {
                            MetricValues::Points(p) => {
                                // Columnar copy for the next step's update.
                                let (ts, vs): (Vec<i64>, Vec<f64>) = p.iter().copied().unzip();
                                node.update(ctx, &o.key, &o.series, Data::Points(&ts, &vs))?;
                                continue;
                            }
                            MetricValues::Spreads(s) => Data::Spreads(s),
                            // Only `count` and `group-unique` read groups in
                            // Heroic; a `group-unique` before another step
                            // is not worth their machinery here.
                            MetricValues::Groups(_)
                            | MetricValues::Distributions(_)
                            | MetricValues::TdigestPoints(_) => continue,
                        };
                        node.update(ctx, &o.key, &o.series, data)?;
                    }
                    current = node.finish(ctx)?;
                }
                current
            }
            Node::Bucket { mapping, mut state, series } => {
                vec![Output { key: GroupKey::new(), series: in_order(series), values: state.build(&mapping) }]
            }
            Node::Post { op, inner } => post::apply(&op, inner.finish()),
            Node::Discard => Vec::new(),
        })
    }
}

/// The key of the group a series (or upstream group) with `key` falls in.
pub(super) fn group_key(collapse: bool, of: Option<&[String]>, key: &GroupKey) -> GroupKey {
    match (collapse, of) {
        (false, None) => key.clone(),
        (false, Some(of)) => of.iter().filter_map(|k| key.get(k).map(|v| (k.clone(), v.clone()))).collect(),
        (true, None) => GroupKey::new(),
        (true, Some(of)) => key.iter().filter(|(k, _)| !of.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

/// A running aggregation. Create it with [`AggregationInstance::session`],
/// feed it with [`update`](Self::update), then call [`finish`](Self::finish).
pub struct AggregationSession {
    instance: AggregationInstance,
    root: Node,
    ctx: Ctx,
}

impl AggregationSession {
    /// The limit is known before the root is built, so that the buckets of
    /// a top-level bucketed aggregation count against it (and are refused
    /// before they are allocated) like those of nested ones.
    pub(crate) fn new(
        instance: AggregationInstance,
        range: TimeRange,
        strategy: BucketStrategy,
        limit: Option<u64>,
    ) -> Result<Self> {
        let mut ctx = Ctx { range, strategy, retained: 0, limit };
        let root = Node::new(&instance, &mut ctx)?;
        Ok(AggregationSession { instance, root, ctx })
    }

    /// Buckets plus raw points currently retained.
    pub fn retained(&self) -> u64 {
        self.ctx.retained
    }

    pub(super) fn instance(&self) -> &AggregationInstance {
        &self.instance
    }

    /// The mapping of a bucketed aggregation of this session.
    pub(super) fn mapping(&self, size: i64, extent: i64) -> Result<BucketMapping> {
        BucketMapping::new(self.ctx.range, size, extent, self.ctx.strategy)
    }

    /// Merges the partials of one group (cells `group × buckets …`) of a
    /// bucket fetch (see `pushdown.rs`); `series` are the group's series
    /// that had data (none: nothing to merge, as no point would have been
    /// folded). Fails like [`update`](Self::update) when a new group's
    /// buckets go over `aggregationLimit`.
    pub fn update_partials(
        &mut self,
        key: &GroupKey,
        series: Vec<Series>,
        partials: &BucketPartials,
        group: usize,
    ) -> Result<()> {
        if series.is_empty() {
            return Ok(());
        }
        self.root.merge_partials(&mut self.ctx, key, series, partials, group)
    }

    /// Feeds one chunk of one series: `timestamps[i]` goes with
    /// `values[i]`. The series' tags and resource tags (resource wins on a
    /// clash) form the key groups are made from. Non-finite values are
    /// ignored by bucketed aggregations.
    pub fn update(&mut self, series: &Series, timestamps: &[i64], values: &[f64]) -> Result<()> {
        let n = timestamps.len().min(values.len());
        let key = series_key(series);
        self.root.update(
            &mut self.ctx,
            &key,
            std::slice::from_ref(series),
            Data::Points(&timestamps[..n], &values[..n]),
        )
    }

    /// Feeds one chunk of stored spreads (the `spreads` source) of one
    /// series, sorted by time. As in Heroic, the bucketed aggregations fold
    /// a spread's summary (`count` counts it as one sample), `empty` keeps
    /// the spreads, and the points-only ones (`delta`, `notNegative`,
    /// `tpl`, `quantile`, rates) pass them by.
    pub fn update_spreads(&mut self, series: &Series, spreads: &[(i64, SpreadValue)]) -> Result<()> {
        let key = series_key(series);
        self.root.update(&mut self.ctx, &key, std::slice::from_ref(series), Data::Spreads(spreads))
    }

    /// The result groups, sorted by key.
    pub fn finish(mut self) -> Result<Vec<ResultGroup>> {
        let cadence = self.instance.cadence();
        let mut groups: Vec<ResultGroup> = self
            .root
            .finish(&mut self.ctx)?
            .into_iter()
            .map(|o| ResultGroup { key: o.key, series: o.series, cadence, values: o.values })
            .collect();
        groups.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.series.cmp(&b.series)));
        Ok(groups)
    }
}
