//! Binary operators (Prometheus 2.42's `promql/engine.go`): arithmetic,
//! comparisons (filters, or 0/1 with `bool`) and the set operators, between
//! scalars and vectors, with one-to-one and many-to-one / one-to-many
//! vector matching (`on`, `ignoring`, `group_left`, `group_right`).

use std::rc::Rc;

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD, T_MUL, T_NEQ, T_POW,
    T_SUB,
};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::{scalar_elem, Elem, Evaluator, Matrix, Vector};
use crate::error::Error;
use crate::value::{Labels, METRIC_NAME};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn from_token(id: u16) -> Option<Op> {
        Some(match id {
            T_ADD => Op::Add,
            T_SUB => Op::Sub,
            T_MUL => Op::Mul,
            T_DIV => Op::Div,
            T_MOD => Op::Mod,
            T_POW => Op::Pow,
            T_ATAN2 => Op::Atan2,
            T_EQLC => Op::Eq,
            T_NEQ => Op::Ne,
            T_GTR => Op::Gt,
            T_LSS => Op::Lt,
            T_GTE => Op::Ge,
            T_LTE => Op::Le,
            T_LAND => Op::And,
            T_LOR => Op::Or,
            T_LUNLESS => Op::Unless,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Arithmetic changes what a value means, so the metric name goes
    /// (not for atan2, as in Prometheus).
    fn drops_name(self) -> bool {
        matches!(self, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod | Op::Pow)
    }
}

/// The value of `l op r`, and whether a comparison holds (always true
/// for arithmetic); a comparison's value is `l`.
fn elem_binop(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (f64::NAN, false),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// How the two sides of a vector operation match.
struct Matching {
    card: Card,
    /// `on(…)` rather than `ignoring(…)` (or nothing).
    on: bool,
    labels: Vec<String>,
    /// `group_left(…)` / `group_right(…)` labels taken from the "one" side.
    include: Vec<String>,
}

impl Matching {
    /// The labels two series must share to match.
    fn signature(&self, l: &Labels) -> Labels {
        if self.on {
            l.keep(&self.labels)
        } else {
            let mut drop: Vec<&str> = self.labels.iter().map(String::as_str).collect();
            drop.push(METRIC_NAME);
            l.without(&drop)
        }
    }
}

impl Evaluator<'_> {
    /// Evaluates a binary expression at each step.
    pub(crate) fn binary(&mut self, b: &BinaryExpr) -> Result<Matrix, Error> {
        let op = Op::from_token(b.op.id()).ok_or_else(|| Error::Unsupported(format!("operator {}", b.op)))?;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let l_scalar = b.lhs.value_type() == ValueType::Scalar;
        let r_scalar = b.rhs.value_type() == ValueType::Scalar;
        let l = self.eval_matrix(&b.lhs)?;
        let r = self.eval_matrix(&b.rhs)?;
        let first = |vals: &[Vector], i: usize| vals.get(i).and_then(|v| v.first()).map_or(f64::NAN, |e| e.v);
        let side = |vals: &[Vector], i: usize| vals.get(i).cloned().unwrap_or_default();
        match (l_scalar, r_scalar) {
            (true, true) => self.range_eval(vec![l, r], |_, _, vals| {
                let (v, keep) = elem_binop(op, first(vals, 0), first(vals, 1));
                let v = if op.is_comparison() { f64::from(u8::from(keep)) } else { v };
                Ok(vec![scalar_elem(v)])
            }),
            (false, true) => self.range_eval(vec![l, r], |_, _, vals| {
                Ok(vector_scalar(op, side(vals, 0), first(vals, 1), false, return_bool))
            }),
            (true, false) => self.range_eval(vec![l, r], |_, _, vals| {
                Ok(vector_scalar(op, side(vals, 1), first(vals, 0), true, return_bool))
            }),
            (false, false) => {
                let m = matching(b, op);
                self.range_eval(vec![l, r], |_, _, vals| {
                    let (lhs, rhs) = (side(vals, 0), side(vals, 1));
                    match op {
                        Op::And => Ok(vector_and(lhs, &rhs, &m)),
                        Op::Or => Ok(vector_or(lhs, rhs, &m)),
                        Op::Unless => Ok(vector_unless(lhs, &rhs, &m)),
                        _ => vector_binop(op, lhs, rhs, &m, return_bool),
                    }
                })
            }
        }
    }
}

fn matching(b: &BinaryExpr, op: Op) -> Matching {
    let (on, labels) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        None => (false, Vec::new()),
    };
    let (card, include) = match b.modifier.as_ref().map(|m| &m.card) {
        _ if matches!(op, Op::And | Op::Or | Op::Unless) => (Card::ManyToMany, Vec::new()),
        Some(VectorMatchCardinality::ManyToOne(l)) => (Card::ManyToOne, l.labels.clone()),
        Some(VectorMatchCardinality::OneToMany(l)) => (Card::OneToMany, l.labels.clone()),
        Some(VectorMatchCardinality::ManyToMany) => (Card::ManyToMany, Vec::new()),
        Some(VectorMatchCardinality::OneToOne) | None => (Card::OneToOne, Vec::new()),
    };
    Matching { card, on, labels, include }
}

/// A vector and a scalar (`swap`: the scalar is on the left).
fn vector_scalar(op: Op, vec: Vector, scalar: f64, swap: bool, return_bool: bool) -> Vector {
    let mut out = Vector::with_capacity(vec.len());
    for mut e in vec {
        let (l, r) = if swap { (scalar, e.v) } else { (e.v, scalar) };
        let (mut v, mut keep) = elem_binop(op, l, r);
        // A comparison keeps the vector's value even when it is on the right.
        if op.is_comparison() && swap {
            v = r;
        }
        if return_bool {
            v = f64::from(u8::from(keep));
            keep = true;
        }
        if keep {
            e.v = v;
            if op.drops_name() || return_bool {
                e.labels = Rc::new(e.labels.without_name());
            }
            out.push(e);
        }
    }
    out
}

fn signatures(v: &[Elem], m: &Matching) -> foldhash::HashSet<Labels> {
    v.iter().map(|e| m.signature(&e.labels)).collect()
}

fn vector_and(lhs: Vector, rhs: &[Elem], m: &Matching) -> Vector {
    if lhs.is_empty() || rhs.is_empty() {
        return Vector::new();
    }
    let right = signatures(rhs, m);
    lhs.into_iter().filter(|e| right.contains(&m.signature(&e.labels))).collect()
}

fn vector_or(mut lhs: Vector, rhs: Vector, m: &Matching) -> Vector {
    if lhs.is_empty() || rhs.is_empty() {
        lhs.extend(rhs);
        return lhs;
    }
    let left = signatures(&lhs, m);
    lhs.extend(rhs.into_iter().filter(|e| !left.contains(&m.signature(&e.labels))));
    lhs
}

fn vector_unless(lhs: Vector, rhs: &[Elem], m: &Matching) -> Vector {
    if lhs.is_empty() || rhs.is_empty() {
        return lhs;
    }
    let right = signatures(rhs, m);
    lhs.into_iter().filter(|e| !right.contains(&m.signature(&e.labels))).collect()
}

/// Arithmetic or comparison between two vectors, one-to-one or
/// many-to-one (one-to-many by swapping sides).
fn vector_binop(op: Op, lhs: Vector, rhs: Vector, m: &Matching, return_bool: bool) -> Result<Vector, Error> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vector::new());
    }
    let swapped = m.card == Card::OneToMany;
    let (lhs, rhs) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    // The "one" side, by signature.
    let mut right: foldhash::HashMap<Labels, &Elem> = foldhash::HashMap::default();
    for r in &rhs {
        let sig = m.signature(&r.labels);
        if let Some(dup) = right.get(&sig) {
            let side = if swapped { "left" } else { "right" };
            return Err(Error::Execution(format!(
                "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{}, {}];\
                 many-to-many matching not allowed: matching labels must be unique on one side",
                r.labels, dup.labels
            )));
        }
        right.insert(sig, r);
    }
    // Signatures matched so far; for many-to-one, with the result labels.
    let mut matched: foldhash::HashMap<Labels, foldhash::HashSet<Rc<Labels>>> = foldhash::HashMap::default();
    let mut out = Vector::new();
    for l in &lhs {
        let sig = m.signature(&l.labels);
        let Some(r) = right.get(&sig) else { continue };
        let (lv, rv) = if swapped { (r.v, l.v) } else { (l.v, r.v) };
        let (mut v, keep) = elem_binop(op, lv, rv);
        if return_bool {
            v = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        let labels = Rc::new(result_labels(&l.labels, &r.labels, op, m, return_bool));
        let seen = matched.entry(sig).or_default();
        if m.card == Card::OneToOne {
            if !seen.is_empty() {
                return Err(Error::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                        .into(),
                ));
            }
        } else if seen.contains(&labels) {
            return Err(Error::Execution(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        seen.insert(labels.clone());
        out.push(Elem { labels, t: l.t, v });
    }
    Ok(out)
}

/// The labels of a result (Prometheus' `resultMetric`): the left (or
/// "many") side's, without the metric name for arithmetic and `bool`;
/// one-to-one keeps only the `on` labels or drops the `ignoring` ones;
/// `group_*` labels come from the "one" side.
fn result_labels(l: &Labels, r: &Labels, op: Op, m: &Matching, return_bool: bool) -> Labels {
    let mut out = if op.drops_name() { l.without_name() } else { l.clone() };
    if m.card == Card::OneToOne {
        out = if m.on { out.keep(&m.labels) } else { out.without(&m.labels) };
    }
    for name in &m.include {
        out = out.with(name, r.get(name));
    }
    if return_bool {
        out = out.without_name();
    }
    out
}
