//! Speaking Prometheus' protocols on top of the node's own write path.
//!
//! - [`remote_write`]: the remote-write 1.0 `WriteRequest` (snappy and
//!   protobuf) read into write batches; the route is `http::remote_write`.

pub mod remote_write;
