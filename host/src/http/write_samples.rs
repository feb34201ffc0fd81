//! The `data` of `/write`s of samples, read straight into a columnar
//! [`SampleBatch`]:
//! - `distributionPoints` and `tdigestPoints`: `[{"value": "<base64 t-digest>", "timestamp": t}, …]`.
//!   Each value is decoded into one scratch buffer reused for every sample
//!   (no allocation per sample) and checked to be a t-digest Heroic's
//!   clients could have written.
//! - `spreads`: `[[t, {"count": n, "sum": x, "sum2": x, "min": x, "max": x}], …]`,
//!   each stored as the 40 bytes of [`Spread::encode`].

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use heroic_plugin_api::samples::{SampleBatch, Spread};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The samples read, or the first one that is not a sketch (its index and
/// why), reported with its path by the caller.
pub struct ColumnarSamples {
    pub batch: SampleBatch,
    pub bad: Option<(usize, String)>,
}

/// One `{"value", "timestamp"}` object, its value still base64.
struct Sample<'a> {
    value: Cow<'a, str>,
    timestamp: i64,
}

impl<'de> Deserialize<'de> for Sample<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SampleVisitor;
        impl<'de> Visitor<'de> for SampleVisitor {
            type Value = Sample<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a distribution point {\"value\": \"<base64 t-digest>\", \"timestamp\": t}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sample<'de>, A::Error> {
                let (mut value, mut timestamp): (Option<Cow<'de, str>>, Option<i64>) = (None, None);
                while let Some(field) = map.next_key::<Cow<'de, str>>()? {
                    match field.as_ref() {
                        "value" => value = Some(map.next_value::<CowStr<'de>>()?.0),
                        "timestamp" => timestamp = Some(map.next_value()?),
                        other => return Err(de::Error::unknown_field(other, &["value", "timestamp"])),
                    }
                }
                Ok(Sample {
                    value: value.ok_or_else(|| de::Error::missing_field("value"))?,
                    timestamp: timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?,
                })
            }
        }
        d.deserialize_map(SampleVisitor)
    }
}

/// A string borrowed from the body when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(StrVisitor)
    }
}

impl<'de> Deserialize<'de> for ColumnarSamples {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SamplesVisitor;
        impl<'de> Visitor<'de> for SamplesVisitor {
            type Value = ColumnarSamples;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of {\"value\": \"<base64 t-digest>\", \"timestamp\": t} objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ColumnarSamples, A::Error> {
                let n = seq.size_hint().unwrap_or(64);
                let mut out = ColumnarSamples { batch: SampleBatch::with_capacity(n, 0), bad: None };
                let mut scratch = Vec::new();
                while let Some(sample) = seq.next_element::<Sample<'de>>()? {
                    if out.bad.is_some() {
                        continue; // Reported already; the rest is only read past.
                    }
                    let index = out.batch.len();
                    scratch.clear();
                    if let Err(e) =
                        base64::engine::general_purpose::STANDARD.decode_vec(sample.value.as_bytes(), &mut scratch)
                    {
                        out.bad = Some((index, format!("value is not base64: {e}")));
                        continue;
                    }
                    if let Err(e) = heroic_query::distribution::decode(&scratch) {
                        out.bad = Some((index, format!("value is not a serialised t-digest: {e}")));
                        continue;
                    }
                    out.batch.push(sample.timestamp, &scratch);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(SamplesVisitor)
    }
}

/// The `data` of a `spreads` write.
pub struct ColumnarSpreads(pub SampleBatch);

/// One spread's fields, all required, as Heroic's `Spread` has them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpreadJson {
    count: u64,
    sum: f64,
    sum2: f64,
    min: f64,
    max: f64,
}

impl<'de> Deserialize<'de> for ColumnarSpreads {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpreadsVisitor;
        impl<'de> Visitor<'de> for SpreadsVisitor {
            type Value = ColumnarSpreads;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of [timestamp, {\"count\", \"sum\", \"sum2\", \"min\", \"max\"}] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ColumnarSpreads, A::Error> {
                let n = seq.size_hint().unwrap_or(64);
                let mut batch = SampleBatch::with_capacity(n, n * Spread::ENCODED_LEN);
                while let Some((t, s)) = seq.next_element::<(i64, SpreadJson)>()? {
                    let spread = Spread { count: s.count, sum: s.sum, sum2: s.sum2, min: s.min, max: s.max };
                    batch.push(t, &spread.encode());
                }
                Ok(ColumnarSpreads(batch))
            }
        }
        d.deserialize_seq(SpreadsVisitor)
    }
}
