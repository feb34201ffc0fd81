//! Aggregations from HQL expressions (`average(10m) by host | topk(3)`).

use super::json::{check_quantile, NAMES};
use super::{Aggregation, BucketKind, CardinalityMethod, FilterK};
use crate::duration::Duration;
use crate::error::Result;
use crate::hql::{Expr, ExprKind};

/// The arguments of one call, consumed as they are read so that leftovers
/// can be reported.
struct Args<'a> {
    name: &'a str,
    call: &'a Expr,
    pos: Vec<Option<&'a Expr>>,
    kw: Vec<(&'a str, Option<&'a Expr>)>,
}

impl<'a> Args<'a> {
    fn positional(&mut self, i: usize) -> Option<&'a Expr> {
        self.pos.get_mut(i).and_then(Option::take)
    }

    fn keyword(&mut self, name: &str) -> Option<&'a Expr> {
        self.kw.iter_mut().find(|(k, _)| *k == name).and_then(|(_, v)| v.take())
    }

    /// Positional `i` or keyword `name`.
    fn arg(&mut self, i: usize, name: &str) -> Option<&'a Expr> {
        let p = self.positional(i);
        let k = self.keyword(name);
        p.or(k)
    }

    fn finish(self) -> Result<()> {
        if let Some(extra) = self.pos.iter().flatten().next() {
            return Err(extra.error(format!("too many arguments for {}", self.name)));
        }
        if let Some((k, _)) = self.kw.iter().find(|(_, v)| v.is_some()) {
            return Err(self.call.error(format!("unknown argument '{k}' for {}", self.name)));
        }
        Ok(())
    }
}

fn number(e: &Expr, what: &str) -> Result<f64> {
    match &e.kind {
        ExprKind::Integer(i) => Ok(*i as f64),
        ExprKind::Float(f) => Ok(*f),
        ExprKind::Negate(inner) => number(inner, what).map(|n| -n),
        _ => Err(e.error(format!("expected a number for {what}, got {}", e.describe()))),
    }
}

fn integer(e: &Expr, what: &str) -> Result<u64> {
    match &e.kind {
        ExprKind::Integer(i) if *i >= 0 => Ok(*i as u64),
        _ => Err(e.error(format!("expected a non-negative integer for {what}, got {}", e.describe()))),
    }
}

fn string(e: &Expr, what: &str) -> Result<String> {
    match &e.kind {
        ExprKind::Str(s) => Ok(s.clone()),
        ExprKind::Function { name, args, kwargs } if args.is_empty() && kwargs.is_empty() => Ok(name.clone()),
        _ => Err(e.error(format!("expected a string for {what}, got {}", e.describe()))),
    }
}

impl Aggregation {
    /// Builds an aggregation from an HQL expression (a function call, a bare
    /// name, `a by b` or `a | b`).
    pub fn from_expr(e: &Expr) -> Result<Aggregation> {
        let empty = Vec::new();
        let (name, args, kwargs) = match &e.kind {
            ExprKind::Str(name) => (name.as_str(), &empty, &Vec::new()),
            ExprKind::Function { name, args, kwargs } => (name.as_str(), args, kwargs),
            _ => return Err(e.error(format!("expected an aggregation (like average(10m)), got {}", e.describe()))),
        };
        let mut a = Args {
            name,
            call: e,
            pos: args.iter().map(Some).collect(),
            kw: kwargs.iter().map(|(k, v)| (k.as_str(), Some(v))).collect(),
        };
        let result = match name {
            "chain" => {
                let items = args.iter().map(Aggregation::from_expr).collect::<Result<Vec<_>>>()?;
                a.pos.clear();
                // Nested chains flatten: (a | b) | c is a | b | c.
                let mut flat = Vec::new();
                for i in items {
                    match i {
                        Aggregation::Chain(c) => flat.extend(c),
                        other => flat.push(other),
                    }
                }
                Aggregation::chain(flat)
            }
            "group" | "collapse" => {
                let of = a.arg(0, "of").map(group_of).transpose()?.flatten();
                let each = a.arg(1, "each").map(Aggregation::from_expr).transpose()?.unwrap_or(Aggregation::Empty);
                let each = Box::new(each);
                if name == "group" {
                    Aggregation::Group { of, each }
                } else {
                    Aggregation::Collapse { of, each }
                }
            }
            "empty" => Aggregation::Empty,
            "opts" => {
                let size = a.keyword("size").map(Expr::as_duration).transpose()?;
                let extent = a.keyword("extent").map(Expr::as_duration).transpose()?;
                let inner =
                    a.arg(0, "aggregation").map(Aggregation::from_expr).transpose()?.unwrap_or(Aggregation::Empty);
                Aggregation::Options { size, extent, aggregation: Box::new(inner) }
            }
            simple if BucketKind::simple(simple).is_some() => {
                let kind = BucketKind::simple(simple).expect("checked");
                let (size, extent) = sampling(&mut a)?;
                Aggregation::Bucket { kind, size, extent }
            }
            "quantile" => {
                let (size, extent) = sampling(&mut a)?;
                let q = a.keyword("q").map(|q| number(q, "q")).transpose()?.unwrap_or(0.5);
                let error = a.keyword("error").map(|q| number(q, "error")).transpose()?.unwrap_or(0.01);
                check_quantile(q, error).map_err(|m| e.error(m))?;
                Aggregation::Bucket { kind: BucketKind::Quantile { q, error }, size, extent }
            }
            "cardinality" => {
                let (size, extent) = sampling(&mut a)?;
                let method = a.keyword("method").map(method).transpose()?.unwrap_or_default();
                Aggregation::Bucket { kind: BucketKind::Cardinality(method), size, extent }
            }
            "tdigest" => {
                let (size, extent) = sampling(&mut a)?;
                Aggregation::Tdigest { size, extent }
            }
            "delta" => Aggregation::Delta,
            "deltaPerSecond" => Aggregation::DeltaPerSecond,
            "notNegative" => Aggregation::NotNegative,
            "topk" | "bottomk" => {
                let k = a.arg(0, "k").ok_or_else(|| e.error(format!("{name} needs an argument k")))?;
                let k = integer(k, "k")?;
                Aggregation::Filter(if name == "topk" { FilterK::TopK(k) } else { FilterK::BottomK(k) })
            }
            "abovek" | "belowk" => {
                let k = a.arg(0, "k").ok_or_else(|| e.error(format!("{name} needs an argument k")))?;
                let k = number(k, "k")?;
                Aggregation::Filter(if name == "abovek" { FilterK::AboveK(k) } else { FilterK::BelowK(k) })
            }
            "pointsabove" | "pointsbelow" => {
                let t = a.arg(0, "threshold").ok_or_else(|| e.error(format!("{name} needs an argument threshold")))?;
                let t = number(t, "threshold")?;
                if name == "pointsabove" {
                    Aggregation::PointsAbove(t)
                } else {
                    Aggregation::PointsBelow(t)
                }
            }
            other => return Err(e.error(format!("unknown aggregation '{other}' (expected one of {NAMES})"))),
        };
        a.finish()?;
        Ok(result)
    }
}

/// `size`, `extent` as positional 0/1 or keywords.
fn sampling(a: &mut Args<'_>) -> Result<(Option<Duration>, Option<Duration>)> {
    let size = a.arg(0, "size").map(Expr::as_duration).transpose()?;
    let extent = a.arg(1, "extent").map(Expr::as_duration).transpose()?;
    Ok((size, extent))
}

/// The `of` of `group`: a tag name, a list of them, or `*` (none: per tag set).
fn group_of(e: &Expr) -> Result<Option<Vec<String>>> {
    match &e.kind {
        ExprKind::Empty => Ok(None),
        ExprKind::List(items) => items.iter().map(|i| string(i, "a group tag")).collect::<Result<_>>().map(Some),
        _ => Ok(Some(vec![string(e, "a group tag")?])),
    }
}

fn method(e: &Expr) -> Result<CardinalityMethod> {
    let (name, kwargs) = match &e.kind {
        ExprKind::Str(s) => (s.as_str(), &[][..]),
        ExprKind::Function { name, args, kwargs } if args.is_empty() => (name.as_str(), &kwargs[..]),
        _ => return Err(e.error("expected a cardinality method: exact, hll or hllp")),
    };
    let mut include_key = false;
    let mut precision: Option<&Expr> = None;
    for (k, v) in kwargs {
        match k.as_str() {
            "includeKey" => include_key = string(v, "includeKey")? == "true",
            "precision" => precision = Some(v),
            other => return Err(v.error(format!("unknown argument '{other}' for cardinality method {name}"))),
        }
    }
    Ok(match name {
        "exact" => CardinalityMethod::Exact { include_key },
        "hll" => {
            let precision = precision.map(|p| number(p, "precision")).transpose()?.unwrap_or(0.01);
            if !(precision > 0.0 && precision < 1.0) {
                return Err(e.error("hll precision must be a relative error between 0 and 1"));
            }
            CardinalityMethod::Hll { precision, include_key }
        }
        "hllp" => {
            let precision = precision.map(|p| integer(p, "precision")).transpose()?.unwrap_or(16);
            if !(4..=18).contains(&precision) {
                return Err(e.error("hllp precision must be an integer from 4 to 18"));
            }
            CardinalityMethod::Hllp { precision: precision as u8, include_key }
        }
        other => return Err(e.error(format!("unknown cardinality method '{other}' (expected exact, hll or hllp)"))),
    })
}
