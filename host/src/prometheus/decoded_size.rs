//! What decoding a protobuf or JSON body may allocate, estimated from its
//! bytes before it is decoded.
//!
//! A decoded message is a struct of vectors and strings, larger than the
//! two bytes an empty one takes on the wire (or the three of `{},` in
//! JSON): a body of empty messages decodes to fifty times its size, and a
//! 64 MiB body could take gigabytes. The writes of Prometheus' and OTLP's
//! protocols are refused (413) when this estimate passes [`LIMIT_FACTOR`]
//! times their size limit.
//!
//! The protobuf scan needs no schema: a length-delimited field that reads
//! as a whole message is taken for one (charged [`MESSAGE_COST`], plus
//! what it holds), anything else for a string or packed numbers (charged
//! its length). Each byte is read once, nesting is followed no deeper than
//! prost decodes it (100), and nothing is allocated.

/// What one decoded message is charged: about the larger structs of the
/// protocols read here (an OTLP data point or resource, ~100 bytes; a
/// remote-write label is 48, a sample 16).
pub const MESSAGE_COST: usize = 96;
/// How many times the limit on the wire (`server.max_write_body_bytes`) a
/// body may take once decoded, by these estimates: 256 MiB at the
/// defaults. They charge a remote-write body about 3–9 times its size, an
/// OTLP body up to about 11 times (small nested messages), a body of
/// empty messages 48 times.
pub const LIMIT_FACTOR: usize = 4;
/// A string's or vector's own header.
const BYTES_COST: usize = 24;
/// prost's recursion limit: deeper bodies fail to decode anyway.
const MAX_DEPTH: usize = 100;

/// The limit that `estimate` passes, for a body allowed `max_body` bytes
/// on the wire (decompressed); `None` within it.
pub fn exceeds(estimate: usize, max_body: usize) -> Option<usize> {
    let limit = max_body.saturating_mul(LIMIT_FACTOR);
    (estimate > limit).then_some(limit)
}

/// The bytes decoding `body` as protobuf may allocate, at most about.
pub fn protobuf(body: &[u8]) -> usize {
    message(body, 0).unwrap_or(body.len() + BYTES_COST)
}

/// A varint at the start of `buf`: its value and length.
fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The cost of `buf` read as a message's fields; `None` if it is not one.
fn message(buf: &[u8], depth: usize) -> Option<usize> {
    let (mut i, mut cost) = (0usize, 0usize);
    while i < buf.len() {
        let (key, n) = varint(buf.get(i..)?)?;
        i += n;
        if key >> 3 == 0 {
            return None;
        }
        let skip = match key & 7 {
            0 => varint(buf.get(i..)?)?.1,
            1 => 8,
            5 => 4,
            2 => {
                let (len, n) = varint(buf.get(i..)?)?;
                i += n;
                let end = i.checked_add(usize::try_from(len).ok()?)?;
                let payload = buf.get(i..end)?;
                let nested = if depth < MAX_DEPTH { message(payload, depth + 1) } else { None };
                cost = cost.saturating_add(match nested {
                    Some(c) => c.saturating_add(MESSAGE_COST),
                    None => payload.len() + BYTES_COST,
                });
                end - i
            }
            _ => return None,
        };
        if key & 7 != 2 {
            cost += 8;
        }
        i = i.checked_add(skip).filter(|&e| e <= buf.len())?;
    }
    Some(cost)
}

/// The bytes decoding `body` as JSON may allocate, at most about: every
/// object and array may become a struct or a vector, and every byte part
/// of a string.
pub fn json(body: &[u8]) -> usize {
    let (mut containers, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => containers += 1,
                _ => {}
            }
        }
    }
    containers.saturating_mul(MESSAGE_COST).saturating_add(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
    use proptest::prelude::*;
    use prost::Message;

    /// An empty message repeated: two bytes each on the wire, a struct
    /// each once decoded; the estimate sees the structs.
    #[test]
    fn empty_messages_are_charged_as_structs() {
        let request = ExportMetricsServiceRequest { resource_metrics: vec![ResourceMetrics::default(); 1000] };
        let body = request.encode_to_vec();
        assert_eq!(body.len(), 2000);
        assert!(protobuf(&body) >= 1000 * MESSAGE_COST, "{}", protobuf(&body));
        let text =
            serde_json::to_vec(&serde_json::json!({"resourceMetrics": vec![serde_json::json!({}); 1000]})).unwrap();
        assert!(json(&text) >= 1000 * MESSAGE_COST);
    }

    /// Ordinary data: strings cost about their length.
    #[test]
    fn ordinary_bodies_are_charged_about_their_size() {
        let text = br#"{"name": "a long metric name with \"quotes\" and { braces [ inside", "value": 1}"#;
        assert_eq!(json(text), MESSAGE_COST + text.len());
        // A string that does not read as protobuf is a string.
        let mut body = vec![0x0a, 20];
        body.extend_from_slice(b"http_requests_total!");
        assert_eq!(protobuf(&body), 20 + BYTES_COST);
    }

    proptest! {
        /// Any bytes: an estimate, never a panic, at least the body's size
        /// for JSON.
        #[test]
        fn any_bytes_are_estimated(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = protobuf(&bytes);
            prop_assert!(json(&bytes) >= bytes.len());
        }
    }
}
