//! Synchronous operators: element-wise (`map`, `filter`, `accumulate`, ...), count-based
//! (`sliding_window`, `partition`, `collect`), combining (`union`, `zip`, `combine_latest`,
//! `zip_latest`) and sinks.
//!
//! Each file holds one operator: a small struct implementing the graph's operator trait, and
//! the method on [`Stream`](crate::Stream) that adds it to a graph. Operators run inside the
//! caller's `emit`; the ones that hold elements hold their acknowledgement tokens with them.

mod accumulate;
mod collect;
mod combine_latest;
mod combine_latest_all;
mod filter;
mod filter_map;
mod flat_map;
mod map;
pub(crate) mod partition;
pub(crate) mod partition_unique;
mod sink;
mod slice;
mod sliding_window;
mod to_stream;
mod try_map;
mod union;
mod unique;
pub(crate) mod zip;
mod zip_all;
mod zip_latest;

pub use collect::Collect;
pub use combine_latest::EmitOn;
pub use partition_unique::Keep;
pub use sink::{Sink, VecSink};
pub use to_stream::{DEFAULT_PULL_CAPACITY, Pull};
pub use try_map::Fallible;
pub use zip::DEFAULT_ZIP_BOUND;
