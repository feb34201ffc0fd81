//! Functions over instant vectors and scalars.

use super::*;

fn store() -> Vec<RangeSeries> {
    vec![
        series(&[("__name__", "v"), ("i", "1")], &[(0.0, -2.5)]),
        series(&[("__name__", "v"), ("i", "2")], &[(0.0, 2.5)]),
        series(&[("__name__", "v"), ("i", "3")], &[(0.0, 16.0)]),
    ]
}

fn values(query: &str) -> Vec<f64> {
    vector(query, 10.0, &store()).into_iter().map(|(_, v)| v).collect()
}

#[test]
fn math_functions_drop_the_name() {
    assert_eq!(values("abs(v)"), [2.5, 2.5, 16.0]);
    assert_eq!(values("ceil(v)"), [-2.0, 3.0, 16.0]);
    assert_eq!(values("floor(v)"), [-3.0, 2.0, 16.0]);
    // Ties round up.
    assert_eq!(values("round(v)"), [-2.0, 3.0, 16.0]);
    assert_eq!(values("round(v, 5)"), [0.0, 5.0, 15.0]);
    assert_eq!(values("sqrt(v)")[2], 4.0);
    assert!(values("sqrt(v)")[0].is_nan());
    assert_close(values("exp(v)")[1], 2.5f64.exp());
    assert_close(values("ln(v)")[2], 16f64.ln());
    assert_eq!(values("log2(v)")[2], 4.0);
    assert_close(values("log10(v)")[2], 16f64.log10());
    assert_eq!(values("clamp(v, 0, 10)"), [0.0, 2.5, 10.0]);
    assert!(values("clamp(v, 10, 0)").is_empty());
    assert_eq!(values("clamp_min(v, 0)"), [0.0, 2.5, 16.0]);
    assert_eq!(values("clamp_max(v, 3)"), [-2.5, 2.5, 3.0]);
    assert_eq!(values("sgn(v)"), [-1.0, 1.0, 1.0]);
    assert_eq!(vector("abs(v)", 10.0, &store())[0].0, labels(&[("i", "1")]));
}

#[test]
fn scalar_vector_time_timestamp() {
    let s = store();
    assert_eq!(scalar("scalar(v{i=\"3\"})", 10.0, &s), 16.0);
    assert!(scalar("scalar(v)", 10.0, &s).is_nan());
    assert_eq!(vector("vector(7)", 10.0, &s), [(Labels::default(), 7.0)]);
    assert_eq!(scalar("time()", 123.5, &s), 123.5);
    // timestamp() of a selector answers the sample's time, not the evaluation's.
    assert_eq!(one("timestamp(v{i=\"1\"})", 10.0, &s), 0.0);
    assert_eq!(one("timestamp(abs(v{i=\"1\"}))", 10.0, &s), 10.0);
    assert_eq!(vector("timestamp(v{i=\"1\"})", 10.0, &s)[0].0, labels(&[("i", "1")]));
    assert_eq!(scalar("pi()", 0.0, &s), std::f64::consts::PI);
}

#[test]
fn sort_orders_by_value() {
    let order = |q: &str| match instant(q, 10.0, &store()) {
        Ok(Value::Vector(v)) => v.into_iter().map(|(l, s)| (l.get("i").to_string(), s.v)).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(order("sort_desc(v)"), [("3".into(), 16.0), ("2".into(), 2.5), ("1".into(), -2.5)]);
    assert_eq!(order("sort(v)"), [("1".into(), -2.5), ("2".into(), 2.5), ("3".into(), 16.0)]);
    // sort keeps the metric name.
    assert_eq!(vector("sort(v)", 10.0, &store())[0].0.get("__name__"), "v");
}

#[test]
fn label_replace_and_label_join() {
    let s = store();
    let got = vector("label_replace(v{i=\"1\"}, \"dst\", \"x-$1\", \"i\", \"(.*)\")", 10.0, &s);
    assert_eq!(got, [(labels(&[("__name__", "v"), ("dst", "x-1"), ("i", "1")]), -2.5)]);
    // No match leaves the series alone.
    let got = vector("label_replace(v{i=\"1\"}, \"dst\", \"x\", \"i\", \"9\")", 10.0, &s);
    assert_eq!(got[0].0, labels(&[("__name__", "v"), ("i", "1")]));
    // An empty replacement removes the label.
    let got = vector("label_replace(v{i=\"1\"}, \"i\", \"\", \"i\", \".*\")", 10.0, &s);
    assert_eq!(got[0].0, labels(&[("__name__", "v")]));
    let got = vector("label_join(v{i=\"1\"}, \"j\", \"-\", \"__name__\", \"i\")", 10.0, &s);
    assert_eq!(got[0].0, labels(&[("__name__", "v"), ("i", "1"), ("j", "v-1")]));
    assert!(matches!(instant("label_replace(v, \"0x\", \"\", \"i\", \".*\")", 10.0, &s), Err(Error::Execution(_))));
    assert!(matches!(instant("label_replace(v, \"d\", \"\", \"i\", \"(\")", 10.0, &s), Err(Error::Execution(_))));
    assert!(matches!(instant("label_join(v, \"d\", \"\", \"1x\")", 10.0, &s), Err(Error::Execution(_))));
}

#[test]
fn absent_answers_the_equality_labels() {
    let s = store();
    assert!(vector("absent(v)", 10.0, &s).is_empty());
    assert_eq!(vector("absent(nope{job=\"x\", i=~\"a.*\"})", 10.0, &s), [(labels(&[("job", "x")]), 1.0)]);
    assert_eq!(vector("absent(nope{job=\"x\", job=\"y\"})", 10.0, &s), [(Labels::default(), 1.0)]);
    // Any other matcher on a label leaves it out, whatever the order.
    assert_eq!(vector("absent(nope{a!=\"1\", a=\"2\"})", 10.0, &s), [(Labels::default(), 1.0)]);
    assert_eq!(vector("absent(sum(nope))", 10.0, &s), [(Labels::default(), 1.0)]);
}

fn buckets(counts: &[(&str, f64)]) -> Vec<RangeSeries> {
    counts.iter().map(|(le, c)| series(&[("__name__", "h_bucket"), ("job", "a"), ("le", le)], &[(0.0, *c)])).collect()
}

#[test]
fn histogram_quantile_interpolates_within_buckets() {
    let s = buckets(&[("0.1", 1.0), ("0.5", 3.0), ("1", 4.0), ("+Inf", 4.0)]);
    let hq = |q: f64| one(&format!("histogram_quantile({q}, h_bucket)"), 0.0, &s);
    // rank 2 falls in (0.1, 0.5] holding 2: 0.1 + 0.4 × 1/2.
    assert_close(hq(0.5), 0.3);
    assert_close(hq(0.99), 0.98);
    assert_close(hq(1.0), 1.0);
    // The first bucket starts at 0.
    assert_close(hq(0.1), 0.04);
    assert_eq!(hq(-0.5), f64::NEG_INFINITY);
    assert_eq!(hq(1.5), f64::INFINITY);
    assert_eq!(vector("histogram_quantile(0.5, h_bucket)", 0.0, &s)[0].0, labels(&[("job", "a")]));
    // A rank in the +Inf bucket answers the largest finite bound.
    let s = buckets(&[("1", 1.0), ("+Inf", 4.0)]);
    assert_close(one("histogram_quantile(0.9, h_bucket)", 0.0, &s), 1.0);
}

#[test]
fn histogram_quantile_degenerate_buckets() {
    let no_inf = buckets(&[("0.1", 1.0), ("1", 4.0)]);
    assert!(one("histogram_quantile(0.5, h_bucket)", 0.0, &no_inf).is_nan());
    let only_inf = buckets(&[("+Inf", 4.0)]);
    assert!(one("histogram_quantile(0.5, h_bucket)", 0.0, &only_inf).is_nan());
    let empty = buckets(&[("1", 0.0), ("+Inf", 0.0)]);
    assert!(one("histogram_quantile(0.5, h_bucket)", 0.0, &empty).is_nan());
    // Non-monotonic counts are raised to the running maximum: 1, 3, 3, 4.
    let bumpy = buckets(&[("0.1", 1.0), ("0.5", 3.0), ("0.7", 2.0), ("1", 4.0), ("+Inf", 4.0)]);
    assert_close(one("histogram_quantile(0.5, h_bucket)", 0.0, &bumpy), 0.3);
    assert_close(one("histogram_quantile(0.875, h_bucket)", 0.0, &bumpy), 0.85);
    // A bad le is ignored.
    let mut bad = buckets(&[("0.1", 1.0), ("+Inf", 2.0)]);
    bad.push(series(&[("__name__", "h_bucket"), ("job", "a"), ("le", "x")], &[(0.0, 5.0)]));
    assert_close(one("histogram_quantile(0.5, h_bucket)", 0.0, &bad), 0.1);
}

#[test]
fn date_functions() {
    // 2024-02-29T13:45:00Z is 1709214300.
    let s: Vec<RangeSeries> = Vec::new();
    let at = |q: &str| one(q, 1_709_214_300.0, &s);
    assert_eq!(at("year()"), 2024.0);
    assert_eq!(at("month()"), 2.0);
    assert_eq!(at("day_of_month()"), 29.0);
    assert_eq!(at("days_in_month()"), 29.0);
    assert_eq!(at("day_of_year()"), 60.0);
    assert_eq!(at("day_of_week()"), 4.0);
    assert_eq!(at("hour()"), 13.0);
    assert_eq!(at("minute()"), 45.0);
    assert_eq!(at("year(vector(0))"), 1970.0);
}
