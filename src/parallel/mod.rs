//! Parallel map: heavy functions on worker threads, futures on the runtime, with bounded
//! in-flight work and ordered output.
//!
//! A window closes every second and a model must score it without stalling the stream: that
//! is [`Stream::par_map`](crate::Stream::par_map). The function runs on a pool of dedicated
//! threads (so heavy work never starves the runtime's timers), the results come back in input
//! order through a reorder buffer (or as they finish, with
//! [`par_map_unordered`](crate::Stream::par_map_unordered)), and the worker that finished one
//! pushes it downstream (a push that must wait is awaited by a task on the ambient tokio
//! runtime). [`Stream::map_async`](crate::Stream::map_async) does the same for functions that
//! return futures. [`try_par_map`](crate::Stream::try_par_map)
//! routes `Err` results to an error stream.
//!
//! Invariants:
//! - **Bounded**: at most [`ParMap::in_flight`] elements are in flight (accepted, not yet
//!   accepted downstream) while producers await `emit`; the push that fills the node makes its
//!   `emit` pend. Nothing is dropped and no thread blocks: the element is always accepted.
//! - **No lock across a push**: the pool's, turn's and inbox's locks only guard queue
//!   operations; whichever thread pushes downstream (one at a time) holds no lock then.
//! - **Errors are never lost**: a panic in the function is caught on the worker, which
//!   lives on (the pool never shrinks), and is reported on the next `emit` or by `close()`.
//! - **At-least-once**: an element's tokens travel with it to the worker and back, and are
//!   dropped only after its result (or error record) has been accepted downstream, whatever
//!   order results complete in.
//! - **Lifetimes**: `close()` waits for all work in flight; when every source handle is
//!   dropped, the pool's job channel closes, the workers finish what is queued and exit, and
//!   the task ends its targets and stops. Nothing outlives the graph.
//!
//! ```
//! use brooklet::Source;
//! # #[tokio::main]
//! # async fn main() -> Result<(), brooklet::Error> {
//! let source = Source::new();
//! let scores = source
//!     .partition(3)
//!     .par_map(2, |window: Vec<f64>| window.iter().sum::<f64>() / window.len() as f64)
//!     .sink_to_vec();
//! for x in [1.0, 2.0, 3.0, 10.0, 20.0, 30.0] {
//!     source.emit(x).await?;
//! }
//! source.close().await?;
//! assert_eq!(scores.snapshot(), vec![2.0, 20.0]);
//! # Ok(()) }
//! ```

mod gate;
mod map_async;
mod options;
mod par_map;
mod pool;
mod reorder;

pub use options::ParMap;
