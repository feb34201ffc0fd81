//! The metric suite's cases for samples other than points (interface 1.2:
//! distributions, t-digest points, spreads), in a file of their own; they
//! run as `metric::distributions`, `metric::tdigests` and
//! `metric::spreads`.

use crate::client::MetricBackendClient;
use crate::samples::*;
use crate::types::*;

use super::{new_series, optional, required};

/// Optional (interface 1.2): distribution samples written with
/// `write_samples` come back from `fetch_samples` byte for byte, in
/// `(start, end]`, sorted, the last write of a timestamp winning, per
/// series. Called through the raw interface (the host's client would not
/// call an undeclared backend), so an undeclared backend that stores them
/// anyway is caught too.
pub async fn distributions(c: &MetricBackendClient) {
    sketches(c, "distributions", SampleKind::DISTRIBUTION, MetricCapabilities::DISTRIBUTIONS).await;
}

/// Optional (interface 1.2): t-digest points behave as distributions do
/// (see [`distributions`]), and the two kinds are kept apart: a series'
/// t-digest points are not read back as its distributions, nor the other
/// way round.
pub async fn tdigests(c: &MetricBackendClient) {
    let case = "tdigests";
    let Some(a) = sketches(c, case, SampleKind::TDIGEST, MetricCapabilities::TDIGESTS).await else {
        return;
    };
    if !c.capabilities().contains(MetricCapabilities::DISTRIBUTIONS) {
        return;
    }
    let mut batch = SampleBatch::new();
    batch.push(4000, b"a distribution");
    let request = SampleWriteRequest {
        kind: SampleKind::DISTRIBUTION,
        batch: vec![SeriesSamples { series: a.clone(), samples: batch }].into(),
    };
    required(case, "write_samples", c.ffi.write_samples(request).await.into_result());
    let fetch = |kind: SampleKind| SampleFetchRequest {
        kind,
        series: vec![a.clone()].into(),
        range: TimeRange::new(0, 10_000),
        sample_limit: 0,
    };
    let read = |response: SampleFetchResponse| -> Vec<(i64, Vec<u8>)> {
        response.series.iter().flat_map(|s| s.samples.iter().map(|(t, v)| (t, v.to_vec()))).collect()
    };
    let distributions =
        read(required(case, "fetch_samples", c.ffi.fetch_samples(fetch(SampleKind::DISTRIBUTION)).await.into_result()));
    assert_eq!(
        distributions,
        vec![(4000, b"a distribution".to_vec())],
        "{case}: t-digest points read as distributions"
    );
    let tdigests =
        read(required(case, "fetch_samples", c.ffi.fetch_samples(fetch(SampleKind::TDIGEST)).await.into_result()));
    assert!(
        tdigests.iter().all(|(_, v)| v.as_slice() != b"a distribution"),
        "{case}: a distribution read back as a t-digest point"
    );
}

/// The round trip of [`distributions`] for a kind of opaque sketches; the
/// first series written, or `None` when the backend does not store `kind`.
async fn sketches(
    c: &MetricBackendClient,
    case: &str,
    kind: SampleKind,
    capability: MetricCapabilities,
) -> Option<Series> {
    let (a, b) = (new_series(case), new_series(case));
    let sketch = |i: i64| -> Vec<u8> { (0..(i % 7 + 1) * 100).map(|j| (i + j) as u8).collect() };
    let mut first = SampleBatch::new();
    for i in 1..=10 {
        first.push(i * 1000, &sketch(i));
    }
    let mut other = SampleBatch::new();
    other.push(5000, b"other series");
    let write = |batch: Vec<SeriesSamples>| c.ffi.write_samples(SampleWriteRequest { kind, batch: batch.into() });
    let written = write(vec![
        SeriesSamples { series: a.clone(), samples: first },
        SeriesSamples { series: b.clone(), samples: other },
    ])
    .await
    .into_result();
    let operation = format!("write_samples ({})", kind.name());
    optional("metric", case, &operation, c.capabilities().contains(capability), written)?;
    let mut again = SampleBatch::new();
    again.push(3000, b"overwritten");
    required(
        case,
        "write_samples",
        write(vec![SeriesSamples { series: a.clone(), samples: again }]).await.into_result(),
    );

    let request = SampleFetchRequest {
        kind,
        series: vec![a.clone(), b.clone(), new_series(case)].into(),
        range: TimeRange::new(2000, 6000),
        sample_limit: 0,
    };
    let response = required(case, "fetch_samples", c.ffi.fetch_samples(request).await.into_result());
    let mut got: Vec<(u32, i64, Vec<u8>)> = Vec::new();
    for s in response.series.iter() {
        s.samples.validate().unwrap_or_else(|e| panic!("{case}: fetch_samples answered a malformed batch: {e}"));
        assert!(s.samples.is_strictly_sorted(), "{case}: samples not strictly increasing");
        got.extend(s.samples.iter().map(|(t, v)| (s.request_index, t, v.to_vec())));
    }
    got.sort();
    let mut want: Vec<(u32, i64, Vec<u8>)> =
        (3..=6).map(|i| (0, i * 1000, if i == 3 { b"overwritten".to_vec() } else { sketch(i) })).collect();
    want.push((1, 5000, b"other series".to_vec()));
    want.sort();
    assert_eq!(got, want, "{case}: (2000, 6000] of two series, 3000 overwritten, an unwritten series absent");
    Some(a)
}

/// Optional (interface 1.2): spreads written with `write_samples` come back
/// from `fetch_samples` as written (all five fields, infinities kept), in
/// `(start, end]`, the last write of a timestamp winning, and apart from
/// the series' distributions.
pub async fn spreads(c: &MetricBackendClient) {
    let case = "spreads";
    let a = new_series(case);
    let spread = |i: i64| Spread {
        count: i as u64,
        sum: i as f64 * 1.5,
        sum2: (i * i) as f64,
        min: if i == 1 { f64::NEG_INFINITY } else { -(i as f64) },
        max: i as f64 + 0.25,
    };
    let mut batch = SampleBatch::new();
    for i in 1..=6 {
        batch.push(i * 1000, &spread(i).encode());
    }
    let written = c
        .ffi
        .write_samples(SampleWriteRequest {
            kind: SampleKind::SPREAD,
            batch: vec![SeriesSamples { series: a.clone(), samples: batch }].into(),
        })
        .await
        .into_result();
    if optional(
        "metric",
        case,
        "write_samples (spreads)",
        c.capabilities().contains(MetricCapabilities::SPREADS),
        written,
    )
    .is_none()
    {
        return;
    }
    let mut again = SampleBatch::new();
    again.push(2000, &spread(20).encode());
    let rewrite = SampleWriteRequest {
        kind: SampleKind::SPREAD,
        batch: vec![SeriesSamples { series: a.clone(), samples: again }].into(),
    };
    required(case, "write_samples", c.ffi.write_samples(rewrite).await.into_result());
    let fetch = |kind: SampleKind| SampleFetchRequest {
        kind,
        series: vec![a.clone()].into(),
        range: TimeRange::new(1000, 4000),
        sample_limit: 0,
    };
    let response = required(case, "fetch_samples", c.ffi.fetch_samples(fetch(SampleKind::SPREAD)).await.into_result());
    let mut got: Vec<(i64, Spread)> = Vec::new();
    for s in response.series.iter() {
        s.samples.validate().unwrap_or_else(|e| panic!("{case}: fetch_samples answered a malformed batch: {e}"));
        for (t, bytes) in s.samples.iter() {
            let decoded = Spread::decode(bytes)
                .unwrap_or_else(|| panic!("{case}: a spread came back as {} bytes, not 40", bytes.len()));
            got.push((t, decoded));
        }
    }
    let want = vec![(2000, spread(20)), (3000, spread(3)), (4000, spread(4))];
    assert_eq!(got, want, "{case}: (1000, 4000] of one series, 2000 overwritten");
    if c.capabilities().contains(MetricCapabilities::DISTRIBUTIONS) {
        let other =
            required(case, "fetch_samples", c.ffi.fetch_samples(fetch(SampleKind::DISTRIBUTION)).await.into_result());
        let n: usize = other.series.iter().map(|s| s.samples.len()).sum();
        assert_eq!(n, 0, "{case}: spreads came back as distribution samples");
    }
}
