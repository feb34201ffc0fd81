//! Binary operators: arithmetic, comparisons, set operators, matching.

use super::*;

fn store() -> Vec<RangeSeries> {
    vec![
        series(&[("__name__", "a"), ("i", "1")], &[(0.0, 2.0)]),
        series(&[("__name__", "a"), ("i", "2")], &[(0.0, 4.0)]),
        series(&[("__name__", "b"), ("i", "1")], &[(0.0, 10.0)]),
        series(&[("__name__", "m"), ("i", "1"), ("k", "p")], &[(0.0, 1.0)]),
        series(&[("__name__", "m"), ("i", "1"), ("k", "q")], &[(0.0, 2.0)]),
        series(&[("__name__", "info"), ("i", "1"), ("owner", "me")], &[(0.0, 1.0)]),
    ]
}

fn q(query: &str) -> Vec<(Labels, f64)> {
    vector(query, 0.0, &store())
}

#[test]
fn arithmetic_matches_one_to_one_and_drops_the_name() {
    assert_eq!(q("a + b"), [(labels(&[("i", "1")]), 12.0)]);
    assert_eq!(q("a * 2"), [(labels(&[("i", "1")]), 4.0), (labels(&[("i", "2")]), 8.0)]);
    assert_eq!(q("10 / a"), [(labels(&[("i", "1")]), 5.0), (labels(&[("i", "2")]), 2.5)]);
    assert_eq!(q("a ^ 2")[1].1, 16.0);
    assert_eq!(q("a % 3")[1].1, 1.0);
    assert_eq!(q("-a")[0], (labels(&[("i", "1")]), -2.0));
    // atan2 keeps the metric name, as Prometheus does.
    assert_eq!(q("a atan2 b")[0].0, labels(&[("__name__", "a"), ("i", "1")]));
    assert_eq!(q("a / 0")[0].1, f64::INFINITY);
}

#[test]
fn comparisons_filter_and_keep_the_name_unless_bool() {
    assert_eq!(q("a > 3"), [(labels(&[("__name__", "a"), ("i", "2")]), 4.0)]);
    // A scalar on the left still answers the vector's value.
    assert_eq!(q("3 < a"), [(labels(&[("__name__", "a"), ("i", "2")]), 4.0)]);
    assert_eq!(q("a > bool 3"), [(labels(&[("i", "1")]), 0.0), (labels(&[("i", "2")]), 1.0)]);
    assert_eq!(q("a < b"), [(labels(&[("__name__", "a"), ("i", "1")]), 2.0)]);
    assert_eq!(q("a != bool b"), [(labels(&[("i", "1")]), 1.0)]);
    assert!(q("a == b").is_empty());
}

#[test]
fn on_and_ignoring_choose_the_matching_labels() {
    // One-to-one with on(): the result keeps only the on() labels.
    assert_eq!(q("a + on(i) info"), [(labels(&[("i", "1")]), 3.0)]);
    assert_eq!(q("a + ignoring(owner) info"), [(labels(&[("i", "1")]), 3.0)]);
    assert!(q("a + info").is_empty());
}

#[test]
fn group_left_and_group_right_copy_labels_from_the_one_side() {
    assert_eq!(
        q("m * on(i) group_left(owner) info"),
        [
            (labels(&[("i", "1"), ("k", "p"), ("owner", "me")]), 1.0),
            (labels(&[("i", "1"), ("k", "q"), ("owner", "me")]), 2.0)
        ]
    );
    assert_eq!(
        q("info * on(i) group_right(owner) m"),
        [
            (labels(&[("i", "1"), ("k", "p"), ("owner", "me")]), 1.0),
            (labels(&[("i", "1"), ("k", "q"), ("owner", "me")]), 2.0)
        ]
    );
    // A comparison keeps the many side's metric name.
    assert_eq!(q("m > on(i) group_left info")[0].0, labels(&[("__name__", "m"), ("i", "1"), ("k", "q")]));
}

#[test]
fn duplicates_on_the_one_side_are_refused() {
    let err = instant("a + on(i) m", 0.0, &store()).unwrap_err();
    match err {
        Error::Execution(msg) => {
            assert!(
                msg.starts_with("found duplicate series for the match group {i=\"1\"} on the right hand-side"),
                "{msg}"
            )
        }
        other => panic!("{other:?}"),
    }
    let err = instant("m + on(i) a", 0.0, &store()).unwrap_err();
    assert!(
        matches!(&err, Error::Execution(m) if m.starts_with("multiple matches for labels: many-to-one")),
        "{err:?}"
    );
    // Many series on the many side are fine when their labels differ.
    assert_eq!(q("info * on(i) group_right m").len(), 2);
    let err = instant("m + on(i) group_right a", 0.0, &store()).unwrap_err();
    assert!(matches!(&err, Error::Execution(m) if m.contains("on the left hand-side")), "{err:?}");
}

#[test]
fn set_operators() {
    assert_eq!(q("a and b"), [(labels(&[("__name__", "a"), ("i", "1")]), 2.0)]);
    assert_eq!(q("a unless b"), [(labels(&[("__name__", "a"), ("i", "2")]), 4.0)]);
    let or = q("b or a");
    assert_eq!(or, [(labels(&[("__name__", "a"), ("i", "2")]), 4.0), (labels(&[("__name__", "b"), ("i", "1")]), 10.0)]);
    assert_eq!(q("a and on(i) m").len(), 1);
    assert_eq!(q("a and on() m").len(), 2);
    assert_eq!(q("a or nope").len(), 2);
    assert!(q("nope and a").is_empty());
}
