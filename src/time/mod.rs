//! Runtime-driven nodes: they hold elements and release them on a tokio task, by time
//! (`rate_limit`, `delay`, `timed_window`, `timed_window_unique`, `partition_timeout`) or by
//! capacity (`buffer`, `latest`, `sink_async`), and the periodic source (`Source::from_periodic`).
//!
//! These are the nodes that make `emit` pend, and so the ones that carry brooklet's
//! backpressure promise: each is bounded, accepts what it is given (a dropped `Emit` future
//! loses nothing), and reports failures on its task on the next `emit` or at `close()`. They read
//! the tokio clock, so tests run them on a paused clock, exactly.
//!
//! Invariants shared by every node here:
//! - Building one outside a tokio runtime panics with a message that says so.
//! - Zero durations and zero capacities are rejected with a panic that names the node. Huge
//!   durations (up to `Duration::MAX`) are accepted and mean "practically never": a deadline
//!   past what `Instant` can represent is put about 30 years on instead of overflowing.
//! - `close()` resolves only once the node has drained its queue or flushed its window, and
//!   the nodes after it have ended.
//! - Tokens of held elements are released once what was built from them has been accepted
//!   downstream (or, for `latest`, when the element is replaced).
//!
//! ```
//! use std::time::Duration;
//! use brooklet::Source;
//! use tokio::time::Instant;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), brooklet::Error> {
//! let start = Instant::now();
//! let source = Source::new();
//! let seen = source
//!     .buffer(16) // decouples the producer from what follows
//!     .rate_limit(Duration::from_millis(10)) // at most one element per 10 ms
//!     .map(move |x: u32| (x, start.elapsed().as_millis()))
//!     .sink_to_vec();
//! for x in 0..3 {
//!     source.emit(x).await?;
//! }
//! source.close().await?; // resolves once the last element has passed
//! assert_eq!(seen.snapshot(), vec![(0, 0), (1, 10), (2, 20)]);
//! # Ok(()) }
//! ```

mod buffer;
mod delay;
mod latest;
mod partition_timeout;
mod periodic;
mod queued;
mod rate_limit;
mod sink_async;
mod timed_window;
mod timed_window_unique;

use std::time::Duration;

use tokio::time::Instant;

pub use delay::DEFAULT_DELAY_CAPACITY;
pub use sink_async::AsyncSink;
pub use timed_window::{DEFAULT_TIMED_WINDOW_BOUND, TimedWindowOptions};

/// How far off a deadline that `Instant` cannot represent is put: about 30 years, as tokio
/// does for `sleep(Duration::MAX)`.
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The instant `d` after `at`, or a far-off one (about 30 years on, never reached in practice)
/// when `at + d` does not fit in an `Instant`: a huge duration means "never", not a panic.
pub(crate) fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or_else(|| at + FAR)
}
