//! Functions over instant vectors and scalars (Prometheus 2.42's
//! `promql/functions.go`): math, clamping, rounding, conversions, time,
//! sorting, label rewriting, `absent` and `histogram_quantile`. Functions
//! over range vectors are in [`super::range_fns`].

use std::borrow::Cow;
use std::rc::Rc;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::token::T_EQL_REGEX;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Call, Expr, VectorSelector};

use super::quantile::{bucket_quantile, Bucket};
use super::range_fns::{absent_labels_of, unparen, RangeFn};
use super::{in_order, latest_sample, scalar_elem, Elem, Evaluator, Matrix, Vector};
use crate::error::Error;
use crate::plan::offset_ms;
use crate::value::{is_label_name, Labels, Sample, METRIC_NAME};

/// Functions over instant vectors and scalars that this node evaluates.
const INSTANT_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "ceil",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "exp",
    "floor",
    "histogram_quantile",
    "hour",
    "label_join",
    "label_replace",
    "ln",
    "log10",
    "log2",
    "minute",
    "month",
    "pi",
    "rad",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

pub(crate) fn is_instant_function(name: &str) -> bool {
    INSTANT_FUNCTIONS.contains(&name)
}

/// A function ready to apply at each step, its string arguments read.
enum Prepared {
    /// Applies to each value and drops the metric name.
    Math(fn(f64) -> f64),
    Clamp,
    ClampMin,
    ClampMax,
    Round,
    Scalar,
    Vector,
    Time,
    Pi,
    Sort {
        desc: bool,
    },
    Timestamp,
    LabelReplace {
        dst: String,
        repl: String,
        src: String,
        re: Matcher,
    },
    LabelJoin {
        dst: String,
        sep: String,
        srcs: Vec<String>,
    },
    Absent(Rc<Labels>),
    HistogramQuantile,
    Date(fn(&Civil) -> f64),
}

impl Evaluator<'_> {
    /// Evaluates a function call.
    pub(crate) fn call(&mut self, c: &Call) -> Result<Matrix, Error> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|a| unparen(a)).collect();
        if let Some(f) = RangeFn::from_name(name) {
            return self.range_call(f, &args);
        }
        if let (true, Some(Expr::VectorSelector(vs))) = (name == "timestamp", args.first()) {
            return self.timestamp_of_selector(vs);
        }
        let f = prepare(name, &args)?;
        let mut mats = Vec::with_capacity(args.len());
        for a in &args {
            // String arguments are read from the expression, as in Prometheus.
            mats.push(if a.value_type() == ValueType::String { Matrix::new() } else { self.eval_matrix(a)? });
        }
        self.range_eval(mats, |_, t, vals| apply(&f, t, vals))
    }

    /// `timestamp(selector)`: the time of each series' sample, not of the
    /// evaluation.
    fn timestamp_of_selector(&mut self, vs: &VectorSelector) -> Result<Matrix, Error> {
        let (offset, lookback) = (offset_ms(vs), self.lookback);
        let data: Vec<(Rc<Labels>, Cow<'_, [Sample]>)> = self
            .series_of(vs)?
            .iter()
            .map(|s| {
                // Copied only when out of order (`in_order` then fills
                // `scratch`).
                let mut scratch = Vec::new();
                in_order(&s.samples, false, &mut scratch);
                let samples =
                    if scratch.is_empty() { Cow::Borrowed(s.samples.as_slice()) } else { Cow::Owned(scratch) };
                (Rc::new(s.labels.without_name()), samples)
            })
            .collect();
        self.range_eval(Vec::new(), |_, t, _| {
            Ok(data
                .iter()
                .filter_map(|(labels, samples)| {
                    let p = latest_sample(samples, t.saturating_sub(offset), lookback)?;
                    Some(Elem { labels: labels.clone(), t, v: p.t as f64 / 1000.0 })
                })
                .collect())
        })
    }
}

fn string_arg(args: &[&Expr], i: usize) -> Result<String, Error> {
    match args.get(i).map(|a| unparen(a)) {
        Some(Expr::StringLiteral(s)) => Ok(s.val.clone()),
        _ => Err(Error::Execution(format!("expected a string literal as argument {}", i + 1))),
    }
}

fn prepare(name: &str, args: &[&Expr]) -> Result<Prepared, Error> {
    use Prepared as P;
    let math = |f: fn(f64) -> f64| Ok(P::Math(f));
    match name {
        "abs" => math(f64::abs),
        "ceil" => math(f64::ceil),
        "floor" => math(f64::floor),
        "exp" => math(f64::exp),
        "sqrt" => math(f64::sqrt),
        "ln" => math(f64::ln),
        "log2" => math(f64::log2),
        "log10" => math(f64::log10),
        "sin" => math(f64::sin),
        "cos" => math(f64::cos),
        "tan" => math(f64::tan),
        "asin" => math(f64::asin),
        "acos" => math(f64::acos),
        "atan" => math(f64::atan),
        "sinh" => math(f64::sinh),
        "cosh" => math(f64::cosh),
        "tanh" => math(f64::tanh),
        "asinh" => math(f64::asinh),
        "acosh" => math(f64::acosh),
        "atanh" => math(f64::atanh),
        "rad" => math(|v| v * std::f64::consts::PI / 180.0),
        "deg" => math(|v| v * 180.0 / std::f64::consts::PI),
        "sgn" => math(|v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "clamp" => Ok(P::Clamp),
        "clamp_min" => Ok(P::ClampMin),
        "clamp_max" => Ok(P::ClampMax),
        "round" => Ok(P::Round),
        "scalar" => Ok(P::Scalar),
        "vector" => Ok(P::Vector),
        "time" => Ok(P::Time),
        "pi" => Ok(P::Pi),
        "sort" => Ok(P::Sort { desc: false }),
        "sort_desc" => Ok(P::Sort { desc: true }),
        "timestamp" => Ok(P::Timestamp),
        "histogram_quantile" => Ok(P::HistogramQuantile),
        "absent" => Ok(P::Absent(Rc::new(absent_labels_of(args.first().copied())))),
        "label_replace" => {
            let (dst, repl, src, re) =
                (string_arg(args, 1)?, string_arg(args, 2)?, string_arg(args, 3)?, string_arg(args, 4)?);
            let re = Matcher::new_matcher(T_EQL_REGEX, String::new(), re.clone())
                .map_err(|_| Error::Execution(format!("invalid regular expression in label_replace(): {re}")))?;
            if !is_label_name(&dst) {
                return Err(Error::Execution(format!("invalid destination label name in label_replace(): {dst}")));
            }
            Ok(P::LabelReplace { dst, repl, src, re })
        }
        "label_join" => {
            let (dst, sep) = (string_arg(args, 1)?, string_arg(args, 2)?);
            let srcs = (3..args.len()).map(|i| string_arg(args, i)).collect::<Result<Vec<_>, _>>()?;
            if let Some(bad) = srcs.iter().find(|s| !is_label_name(s)) {
                return Err(Error::Execution(format!("invalid source label name in label_join(): {bad}")));
            }
            if !is_label_name(&dst) {
                return Err(Error::Execution(format!("invalid destination label name in label_join(): {dst}")));
            }
            Ok(P::LabelJoin { dst, sep, srcs })
        }
        "days_in_month" => Ok(P::Date(|c| f64::from(days_in_month(c.year, c.month)))),
        "day_of_month" => Ok(P::Date(|c| f64::from(c.day))),
        "day_of_week" => Ok(P::Date(|c| f64::from(c.weekday))),
        "day_of_year" => Ok(P::Date(|c| f64::from(c.yearday))),
        "hour" => Ok(P::Date(|c| f64::from(c.hour))),
        "minute" => Ok(P::Date(|c| f64::from(c.minute))),
        "month" => Ok(P::Date(|c| f64::from(c.month))),
        "year" => Ok(P::Date(|c| c.year as f64)),
        _ => Err(Error::Unsupported(format!("function {name}"))),
    }
}

/// A scalar argument's value at this step.
fn scalar_arg(vals: &[Vector], i: usize) -> f64 {
    vals.get(i).and_then(|v| v.first()).map_or(f64::NAN, |e| e.v)
}

fn vector_arg(vals: &[Vector], i: usize) -> &[Elem] {
    vals.get(i).map_or(&[], |v| v.as_slice())
}

/// Each element of the first argument mapped by `f`, the metric name dropped.
fn map_dropping_name(vals: &[Vector], f: impl Fn(&Elem) -> f64) -> Vector {
    vector_arg(vals, 0).iter().map(|e| Elem { labels: Rc::new(e.labels.without_name()), t: e.t, v: f(e) }).collect()
}

fn apply(f: &Prepared, t: i64, vals: &[Vector]) -> Result<Vector, Error> {
    use Prepared as P;
    Ok(match f {
        P::Math(g) => map_dropping_name(vals, |e| g(e.v)),
        P::Clamp => {
            let (min, max) = (scalar_arg(vals, 1), scalar_arg(vals, 2));
            if max < min {
                return Ok(Vector::new());
            }
            map_dropping_name(vals, |e| go_max(min, go_min(max, e.v)))
        }
        P::ClampMin => {
            let min = scalar_arg(vals, 1);
            map_dropping_name(vals, |e| go_max(min, e.v))
        }
        P::ClampMax => {
            let max = scalar_arg(vals, 1);
            map_dropping_name(vals, |e| go_min(max, e.v))
        }
        P::Round => {
            let to_nearest = if vals.len() >= 2 { scalar_arg(vals, 1) } else { 1.0 };
            // Inverted as Prometheus does: fewer floating point surprises.
            let inverse = 1.0 / to_nearest;
            map_dropping_name(vals, |e| (e.v * inverse + 0.5).floor() / inverse)
        }
        P::Scalar => {
            let v = vector_arg(vals, 0);
            vec![scalar_elem(if v.len() == 1 { v.first().map_or(f64::NAN, |e| e.v) } else { f64::NAN })]
        }
        P::Vector => vec![scalar_elem(scalar_arg(vals, 0))],
        P::Time => vec![scalar_elem(t as f64 / 1000.0)],
        P::Pi => vec![scalar_elem(std::f64::consts::PI)],
        P::Sort { desc } => {
            let mut v = vector_arg(vals, 0).to_vec();
            // NaN sorts last either way.
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if *desc => b.v.total_cmp(&a.v),
                _ => a.v.total_cmp(&b.v),
            });
            v
        }
        P::Timestamp => map_dropping_name(vals, |e| e.t as f64 / 1000.0),
        P::LabelReplace { dst, repl, src, re } => {
            let MatchOp::Re(re) = &re.op else { return Ok(vector_arg(vals, 0).to_vec()) };
            vector_arg(vals, 0)
                .iter()
                .map(|e| {
                    let Some(caps) = re.captures(e.labels.get(src)) else { return e.clone() };
                    let mut value = String::new();
                    caps.expand(repl, &mut value);
                    Elem { labels: Rc::new(e.labels.with(dst, &value)), t: e.t, v: e.v }
                })
                .collect()
        }
        P::LabelJoin { dst, sep, srcs } => vector_arg(vals, 0)
            .iter()
            .map(|e| {
                let value = srcs.iter().map(|s| e.labels.get(s)).collect::<Vec<_>>().join(sep);
                Elem { labels: Rc::new(e.labels.with(dst, &value)), t: e.t, v: e.v }
            })
            .collect(),
        P::Absent(labels) => {
            if vector_arg(vals, 0).is_empty() {
                vec![Elem { labels: labels.clone(), t, v: 1.0 }]
            } else {
                Vector::new()
            }
        }
        P::HistogramQuantile => histogram_quantile(scalar_arg(vals, 0), vector_arg(vals, 1)),
        P::Date(g) => {
            if vals.is_empty() {
                vec![scalar_elem(g(&Civil::from_unix(t.div_euclid(1000))))]
            } else {
                // Go converts with int64(v): truncation toward zero.
                map_dropping_name(vals, |e| g(&Civil::from_unix(e.v as i64)))
            }
        }
    })
}

/// Go's `math.Max`: NaN wins, then the larger.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins, then the smaller.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `histogram_quantile(φ, buckets)` over classic histograms: the buckets
/// grouped by their labels but `le`.
fn histogram_quantile(q: f64, v: &[Elem]) -> Vector {
    // Groups in order of first appearance: (signature, output labels, buckets).
    let mut groups: Vec<(Labels, Rc<Labels>, Vec<Bucket>)> = Vec::new();
    let mut position: foldhash::HashMap<Labels, usize> = foldhash::HashMap::default();
    for e in v {
        let Ok(upper) = e.labels.get("le").parse::<f64>() else { continue };
        let signature = e.labels.without(&["le"]);
        let i = *position.entry(signature.clone()).or_insert_with(|| {
            groups.push((signature, Rc::new(e.labels.without(&[METRIC_NAME, "le"])), Vec::new()));
            groups.len() - 1
        });
        if let Some(g) = groups.get_mut(i) {
            g.2.push(Bucket { upper, count: e.v });
        }
    }
    groups
        .into_iter()
        .map(|(_, labels, mut buckets)| Elem { labels, t: 0, v: bucket_quantile(q, &mut buckets) })
        .collect()
}

/// A UTC calendar time, for the date functions.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    weekday: u32,
    yearday: u32,
}

impl Civil {
    /// From seconds since the epoch (Howard Hinnant's days-to-civil).
    fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let before: u32 = (1..month).map(|m| days_in_month(year, m)).sum();
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            // 1970-01-01 was a Thursday (4; Sunday is 0).
            weekday: (days + 4).rem_euclid(7) as u32,
            yearday: before + day,
        }
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
