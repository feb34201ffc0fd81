//! Aggregations that transform collected groups: `delta`,
//! `deltaPerSecond`, `notNegative`, `pointsabove`/`pointsbelow` and the
//! group filters `topk`, `bottomk`, `abovek`, `belowk`.

use super::instance::AggregationInstance;
use super::result::{MetricValues, Output};
use super::FilterK;

type PointsFn<'a> = &'a dyn Fn(Vec<(i64, f64)>) -> Vec<(i64, f64)>;

pub(crate) fn apply(op: &AggregationInstance, outputs: Vec<Output>) -> Vec<Output> {
    let map_points = |outputs: Vec<Output>, f: PointsFn<'_>| -> Vec<Output> {
        outputs
            .into_iter()
            .map(|mut o| {
                if let MetricValues::Points(p) = o.values {
                    o.values = MetricValues::Points(f(p));
                }
                o
            })
            .collect()
    };
    match op {
        AggregationInstance::Delta => {
            map_points(outputs, &|p| p.windows(2).map(|w| (w[1].0, w[1].1 - w[0].1)).collect())
        }
        AggregationInstance::DeltaPerSecond => map_points(outputs, &|p| {
            p.windows(2).map(|w| (w[1].0, (w[1].1 - w[0].1) * 1000.0 / (w[1].0 - w[0].0) as f64)).collect()
        }),
        AggregationInstance::NotNegative => {
            map_points(outputs, &|p| p.into_iter().filter(|&(_, v)| v >= 0.0).collect())
        }
        AggregationInstance::PointsAbove(t) => {
            map_points(outputs, &|p| p.into_iter().filter(|&(_, v)| v > *t).collect())
        }
        AggregationInstance::PointsBelow(t) => {
            map_points(outputs, &|p| p.into_iter().filter(|&(_, v)| v < *t).collect())
        }
        AggregationInstance::Filter(f) => filter_groups(f, outputs),
        _ => outputs,
    }
}

fn points(o: &Output) -> &[(i64, f64)] {
    match &o.values {
        MetricValues::Points(p) => p,
        MetricValues::Spreads(_)
        | MetricValues::Groups(_)
        | MetricValues::Distributions(_)
        | MetricValues::TdigestPoints(_) => &[],
    }
}

fn filter_groups(f: &FilterK, outputs: Vec<Output>) -> Vec<Output> {
    match f {
        FilterK::TopK(k) | FilterK::BottomK(k) => {
            let mut scored: Vec<(f64, Output)> =
                outputs.into_iter().filter(|o| !o.values.is_empty()).map(|o| (area(points(&o)), o)).collect();
            // Sort by key first so that ties are broken the same way every time.
            scored.sort_by(|a, b| a.1.key.cmp(&b.1.key));
            if matches!(f, FilterK::TopK(_)) {
                scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            } else {
                scored.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            scored.into_iter().take(*k as usize).map(|(_, o)| o).collect()
        }
        FilterK::AboveK(k) => outputs
            .into_iter()
            .filter(|o| points(o).iter().map(|p| p.1).reduce(f64::max).is_some_and(|m| m > *k))
            .collect(),
        FilterK::BelowK(k) => outputs
            .into_iter()
            .filter(|o| points(o).iter().map(|p| p.1).reduce(f64::min).is_some_and(|m| m < *k))
            .collect(),
    }
}

/// Signed area between the curve and the x axis, by trapezoids; a segment
/// that crosses zero is split at the crossing (Heroic's `PointPairArea`).
pub(crate) fn area(points: &[(i64, f64)]) -> f64 {
    points.windows(2).map(|w| pair_area(w[0], w[1])).sum()
}

fn pair_area(a: (i64, f64), b: (i64, f64)) -> f64 {
    if a.0 == b.0 {
        return 0.0;
    }
    let (a, b) = if a.0 > b.0 { (b, a) } else { (a, b) };
    let (x1, y1, x2, y2) = (a.0 as f64, a.1, b.0 as f64, b.1);
    let positive = |x1: f64, y1: f64, x2: f64, y2: f64| {
        let base = x2 - x1;
        let h = y1.min(y2);
        base * h + base * (y1.max(y2) - h) / 2.0
    };
    let same_sign = y1 == 0.0 || y2 == 0.0 || (y1 < 0.0) == (y2 < 0.0);
    if same_sign {
        let sign = if y1 == 0.0 { y2 } else { y1 };
        positive(x1, y1.abs(), x2, y2.abs()).copysign(sign)
    } else {
        let slope = (y2 - y1) / (x2 - x1);
        let xi = x1 - y1 / slope;
        positive(x1, y1.abs(), xi, 0.0).copysign(y1) + positive(xi, 0.0, x2, y2.abs()).copysign(y2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas() {
        assert_eq!(area(&[(10, 1.0), (30, 2.0)]), 30.0);
        assert_eq!(area(&[(10, 1.0), (20, 4.0)]), 25.0);
        assert_eq!(area(&[(0, -2.0), (10, -2.0)]), -20.0);
        // crosses zero at x=5: +5 and -5
        assert_eq!(area(&[(0, 2.0), (10, -2.0)]), 0.0);
        assert_eq!(area(&[(0, 1.0)]), 0.0);
    }
}
