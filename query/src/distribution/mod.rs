//! Distribution points (Heroic's `distributionPoints`): the byte format of
//! the t-digest sketches clients write ([`codec`]) and the queries that
//! read them ([`DistributionSession`]: raw, or merged per bucket by
//! `tdigest` into P50/P75/P99 series).

pub mod codec;
mod session;
#[cfg(test)]
mod tests;

pub use codec::{decode, Sketch, SketchError};
pub use session::{DistributionSession, PERCENTILES, STAT_TAG};
