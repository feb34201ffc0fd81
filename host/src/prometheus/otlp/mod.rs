//! OTLP/HTTP metrics (`POST /v1/metrics`): an `ExportMetricsServiceRequest`
//! as protobuf or JSON, gzip-compressed or not, read and translated into
//! the node's write batches as Prometheus' OTLP receiver translates it.
//!
//! - [`names`]: metric names, label names and values as Prometheus writes
//!   them.
//! - [`translate`]: metrics, points and resources as series and samples.
//!
//! The route is `http::otlp`.

pub mod names;
pub mod translate;

use std::io::Read;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

use super::decoded_size;

/// How the body is encoded (its `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`: protobuf's JSON mapping, with OTLP's rules
    /// (lower camel case keys, 64-bit integers as strings or numbers, enums
    /// as integers).
    Json,
}

/// Why a body could not be read. None of these can succeed on a retry.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the body is not gzip: {0}")]
    Gzip(std::io::Error),
    #[error("the body decompresses to more than the {limit} bytes allowed (server.max_write_body_bytes)")]
    TooLarge { limit: usize },
    #[error("the body would take about {estimate} bytes once decoded, more than the {limit} allowed (a multiple of server.max_write_body_bytes): many small messages decode to many times their size; send fewer a request")]
    DecodesTooLarge { estimate: usize, limit: usize },
    #[error("the body is not an OTLP ExportMetricsServiceRequest protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("the body is not an OTLP ExportMetricsServiceRequest in JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads a body, gunzipping it first when `gzip`; `max_decompressed`
/// bounds what gzip may expand it to (read in pieces and stopped there,
/// never allocated whole first), and what it may decode to
/// ([`decoded_size`]).
pub fn decode(
    body: &[u8],
    format: Format,
    gzip: bool,
    max_decompressed: usize,
) -> Result<ExportMetricsServiceRequest, DecodeError> {
    let inflated;
    let raw = if gzip {
        let mut out = Vec::new();
        let mut reader = flate2::read::MultiGzDecoder::new(body).take(max_decompressed as u64 + 1);
        reader.read_to_end(&mut out).map_err(DecodeError::Gzip)?;
        if out.len() > max_decompressed {
            return Err(DecodeError::TooLarge { limit: max_decompressed });
        }
        inflated = out;
        &inflated[..]
    } else {
        body
    };
    let estimate = match format {
        Format::Protobuf => decoded_size::protobuf(raw),
        Format::Json => decoded_size::json(raw),
    };
    if let Some(limit) = decoded_size::exceeds(estimate, max_decompressed) {
        return Err(DecodeError::DecodesTooLarge { estimate, limit });
    }
    Ok(match format {
        Format::Protobuf => <ExportMetricsServiceRequest as prost::Message>::decode(raw)?,
        Format::Json => serde_json::from_slice(raw)?,
    })
}

#[cfg(test)]
mod tests;
