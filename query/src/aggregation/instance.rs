//! Aggregations with every size and extent resolved to milliseconds.

use heroic_plugin_api::types::TimeRange;

use super::bucket::{BucketMapping, BucketStrategy};
use super::{Aggregation, BucketKind, FilterK};
use crate::duration::Duration;
use crate::error::Result;

/// An aggregation ready to run: sizes resolved, chains flattened.
#[derive(Clone, Debug, PartialEq)]
pub enum AggregationInstance {
    Empty,
    Group {
        of: Option<Vec<String>>,
        each: Box<AggregationInstance>,
    },
    Collapse {
        of: Option<Vec<String>>,
        each: Box<AggregationInstance>,
    },
    Chain(Vec<AggregationInstance>),
    Bucket {
        kind: BucketKind,
        size: i64,
        extent: i64,
    },
    /// Merges t-digest sketches (`distributionPoints`): see [`Aggregation::Tdigest`].
    Tdigest {
        size: i64,
        extent: i64,
    },
    Delta,
    DeltaPerSecond,
    NotNegative,
    Filter(FilterK),
    PointsAbove(f64),
    PointsBelow(f64),
}

/// Sizes set by an enclosing `opts`, and the default from the range.
#[derive(Clone, Copy)]
struct Context {
    size: Option<Duration>,
    extent: Option<Duration>,
    default_size: i64,
}

impl Aggregation {
    /// Resolves sizes: an unset size comes from an enclosing `opts`, else
    /// `default_size` (see [`cadence_from_range`](crate::duration::cadence_from_range));
    /// an unset extent is the size.
    pub fn apply(&self, default_size: i64) -> Result<AggregationInstance> {
        apply(self, Context { size: None, extent: None, default_size })
    }
}

/// Size and extent in ms. A size or extent that is not positive is left
/// as it is: laying the buckets out refuses it with
/// [`QueryError::Layout`](crate::QueryError::Layout), which the host reports on the query alone (a
/// Grafana `sampling.value` of `0.0001` s must not fail a whole batch).
fn resolve(size: Option<Duration>, extent: Option<Duration>, ctx: Context) -> (i64, i64) {
    let s = size.or(ctx.size).map(Duration::to_millis).unwrap_or(ctx.default_size);
    let e = extent.or(size).or(ctx.extent).map(Duration::to_millis).unwrap_or(s);
    (s, e)
}

fn apply(a: &Aggregation, ctx: Context) -> Result<AggregationInstance> {
    Ok(match a {
        Aggregation::Empty => AggregationInstance::Empty,
        Aggregation::Group { of, each } => {
            AggregationInstance::Group { of: of.clone(), each: Box::new(apply(each, ctx)?) }
        }
        Aggregation::Collapse { of, each } => {
            AggregationInstance::Collapse { of: of.clone(), each: Box::new(apply(each, ctx)?) }
        }
        Aggregation::Chain(items) => {
            let mut flat = Vec::new();
            for i in items {
                match apply(i, ctx)? {
                    AggregationInstance::Chain(c) => flat.extend(c),
                    other => flat.push(other),
                }
            }
            match flat.len() {
                0 => AggregationInstance::Empty,
                1 => flat.pop().expect("one"),
                _ => AggregationInstance::Chain(flat),
            }
        }
        Aggregation::Options { size, extent, aggregation } => apply(
            aggregation,
            Context { size: size.or(ctx.size), extent: extent.or(ctx.extent), default_size: ctx.default_size },
        )?,
        Aggregation::Bucket { kind, size, extent } => {
            let (size, extent) = resolve(*size, *extent, ctx);
            AggregationInstance::Bucket { kind: kind.clone(), size, extent }
        }
        Aggregation::Tdigest { size, extent } => {
            let (size, extent) = resolve(*size, *extent, ctx);
            AggregationInstance::Tdigest { size, extent }
        }
        Aggregation::Delta => AggregationInstance::Delta,
        Aggregation::DeltaPerSecond => AggregationInstance::DeltaPerSecond,
        Aggregation::NotNegative => AggregationInstance::NotNegative,
        Aggregation::Filter(f) => AggregationInstance::Filter(f.clone()),
        Aggregation::PointsAbove(t) => AggregationInstance::PointsAbove(*t),
        Aggregation::PointsBelow(t) => AggregationInstance::PointsBelow(*t),
    })
}

impl AggregationInstance {
    /// The cadence reported on result groups: the bucket size; 0 for
    /// `empty`; -1 for delta/filter aggregations; a chain reports its last
    /// non-negative cadence; groups that of their `each`.
    pub fn cadence(&self) -> i64 {
        match self {
            AggregationInstance::Empty => 0,
            AggregationInstance::Group { each, .. } | AggregationInstance::Collapse { each, .. } => each.cadence(),
            AggregationInstance::Chain(c) => c.iter().map(Self::cadence).rfind(|c| *c >= 0).unwrap_or(-1),
            AggregationInstance::Bucket { size, .. } | AggregationInstance::Tdigest { size, .. } => *size,
            _ => -1,
        }
    }

    pub(crate) fn validate(&self, range: TimeRange, strategy: BucketStrategy) -> Result<()> {
        match self {
            AggregationInstance::Bucket { size, extent, .. } | AggregationInstance::Tdigest { size, extent } => {
                BucketMapping::new(range, *size, *extent, strategy).map(|_| ())
            }
            AggregationInstance::Group { each, .. } | AggregationInstance::Collapse { each, .. } => {
                each.validate(range, strategy)
            }
            AggregationInstance::Chain(c) => c.iter().try_for_each(|i| i.validate(range, strategy)),
            _ => Ok(()),
        }
    }
}

impl AggregationInstance {
    /// Whether `tdigest` is anywhere in the tree: it reads t-digest sketches
    /// (`distributionPoints`), never points.
    pub fn uses_tdigest(&self) -> bool {
        match self {
            AggregationInstance::Tdigest { .. } => true,
            AggregationInstance::Group { each, .. } | AggregationInstance::Collapse { each, .. } => each.uses_tdigest(),
            AggregationInstance::Chain(c) => c.iter().any(Self::uses_tdigest),
            _ => false,
        }
    }
}
