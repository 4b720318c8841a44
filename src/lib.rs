//! brooklet: placeholder
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod graph;
pub mod ops;
pub mod time;

pub use graph::{Ack, Emit, Error, Item, Metrics, Source, Stream};
pub use ops::{Collect, EmitOn, Pull, Sink, VecSink};
