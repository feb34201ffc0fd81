//! Speaking Prometheus' protocols on top of the node's own write path,
//! query path and plugins.
//!
//! - [`dropped`]: what a write drops because the node cannot store it.
//! - [`decoded_size`]: what a protobuf or JSON body may take once decoded,
//!   estimated before decoding it.
//! - [`remote_write`]: the remote-write 1.0 `WriteRequest` (snappy and
//!   protobuf) read into write batches; the route is `http::remote_write`.
//! - [`remote_write_v2`]: remote-write 2.0's `Request` (a symbols table and
//!   label references) read the same way.
//! - [`otlp`]: OTLP/HTTP metrics (protobuf or JSON) translated into write
//!   batches as Prometheus' OTLP receiver translates them; the route is
//!   `http::otlp`.
//! - [`params`]: the query API's parameters, times and durations.
//! - [`answer`]: the query API's JSON answers and errors.
//! - [`selector`]: PromQL label matchers as filters, series as labels.
//! - [`read`]: the points of a PromQL selection, read through the metadata
//!   and metric plugins; the routes are `http::prometheus_api`.

pub mod answer;
pub mod decoded_size;
pub mod dropped;
pub mod otlp;
pub mod params;
pub mod read;
pub mod remote_write;
pub mod remote_write_v2;
pub mod selector;
