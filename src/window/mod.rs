//! Event-time windows, watermarks, late events, aggregates and mini-batch emitters.
//!
//! # Where to look
//!
//! | you want | go to |
//! |---|---|
//! | start a window on a stream | [`Stream::window`](crate::Stream::window) → [`WindowBuilder`] |
//! | windows over arrival (processing) time, closed by a timer | [`Stream::processing_window`](crate::Stream::processing_window) → [`ProcessingWindowBuilder`] |
//! | window shapes, and which windows an event is in | [`Window`] (`assign.rs`) |
//! | the clock, the watermark, grace, idle timeout, skew | [`clock`] |
//! | sum, count, mean, min, max, first, last, collect, reduce, several at once, your own | [`aggregate`], [`Aggregator`] |
//! | what comes out | [`WindowResult`], [`LateEvent`], [`WindowStats`] |
//! | the late stream, explicit watermarks | [`Windowed`] |
//! | mini-batches driven by an emitter (omega\|ml) | [`Stream::batch`](crate::Stream::batch), [`Emitter`], [`CountWindow`], [`FixedTimeWindow`], [`RelaxedTimeWindow`] |
//!
//! # The rules
//!
//! **Time.** Timestamps are `i64` ms since the Unix epoch, read by
//! [`timestamp`](WindowBuilder::timestamp). Durations are `i64` ms or
//! [`std::time::Duration`] rounded to the nearest ms ([`IntoMillis`]); sizes and steps must be
//! at least 1, grace at least 0. Arithmetic saturates: timestamps near `i64::MIN`/`i64::MAX`
//! never panic. A window whose end lies past `i64::MAX` is reported with its end clamped there
//! and closes only at the end of the stream (before it, the watermark stays below `i64::MAX`).
//!
//! **Membership.** Windows are half-open `[start, end)` (an event exactly at `end` belongs to
//! the next window), aligned to the epoch plus an optional [offset](Window::offset); starts
//! below 0 are real windows unless [dropped](WindowBuilder::drop_negative_starts).
//! Tumbling: `start = floor(ts / size) * size`. Hopping(size, step): every start that is a
//! multiple of `step` with `start <= ts < start + size`; the event lands in every one of them.
//! Sliding(size): one window `[u - size, u]` per distinct record timestamp `u` of the key,
//! reported with `end = u` and `end_inclusive` set, unlike the half-open kinds, so results
//! compare directly with Kafka Streams' and Quix Streams'. Count(n, step): event `i` of a key is in the windows
//! starting at `k * step` with `k * step <= i < k * step + n`.
//!
//! **Clock.** One event clock per operator (or [per key](WindowBuilder::per_key_clock)): the
//! largest timestamp seen, or [explicit watermarks](WindowBuilder::explicit_watermarks) only.
//! **watermark = clock − grace.** See [`clock`] for idle timeout and maximum future skew.
//!
//! **Closing.** A time window `[s, e)` closes when `e <= watermark`; a sliding window ending
//! at `u` when `u + 1 <= watermark`; a count window on its n-th event. Closing is checked
//! after each event, each watermark, each idle tick, and at end of stream, which sets the
//! clock to +infinity ([`Source::close`](crate::Source::close)). An event never closes a time
//! window it has just updated. Windows closing together are emitted by ascending
//! `(end, start)`, and the keys of one window in the order they first appeared in it.
//!
//! **Emitting.** [`EmitMode::Final`] emits once per (key, window) at close and drops its
//! state; [`EmitMode::Current`] emits after every accepted event, once per updated window
//! (ascending start), and nothing at close. Empty windows are never emitted. A result's own
//! timestamp is `end - 1` ([`WindowResult::timestamp`]).
//!
//! **Late events.** An event whose window is closed is rejected by that window; a closed
//! window is never reopened or emitted twice. If any window rejected it, exactly one
//! [`LateEvent`] goes to [`Windowed::late`]; [`WindowStats`] counts late events and rejected
//! windows; with nothing connected to `late`, events are logged at debug level plus a
//! rate-limited warning (powers of two), never one warning per event. A sliding-window event
//! is fully late when `ts + size + 1 <= watermark`.
//!
//! **Cost.** Hopping windows aggregate per pane (`gcd(size, step)` ms) and merge panes when a
//! window closes, so an event costs the same whatever `size / step` is (for aggregates that
//! [merge](Aggregator::MERGEABLE)). Every window an event falls in is still emitted, so the
//! constructors reject shapes that put an event in more than
//! [`Window::MAX_WINDOWS_PER_EVENT`] windows. Windows hold their events' acknowledgement tokens
//! until their result has been emitted.
//!
//! **Failures.** A panic in a user function (timestamp or key extractor, aggregate, `reduce`
//! closure, your own [`Aggregator`]) reaches the caller of `emit` and leaves the operator
//! exactly as it was before the event: an event goes into all its windows or none. A panic
//! downstream of one result (a `map` after the window that fails for one key) does not keep
//! the other results closed at the same moment from being delivered: each is pushed on its
//! own, the panic is counted in the node's `errors`, the failed result's tokens fail, and the
//! first panic then goes on to the caller. NaN values: [`min`](WindowBuilder::min) and
//! [`max`](WindowBuilder::max) ignore them, [`mean`](WindowBuilder::mean) propagates them (see
//! [`aggregate`]).
//!
//! **Memory and backpressure.** A window operator holds accumulators, not queues: one per open
//! window (or pane) with data per key, plus, for sliding windows, the records a window may
//! still need. The watermark bounds how long any of them lives, so windows never make `emit`
//! pend (a window that waited for room could only get it from the next event: a deadlock).
//! Bound memory with grace, an idle timeout, and a maximum future skew. The mini-batch
//! operator holds a bounded buffer ([`Emitter::capacity`]) fed through a bounded queue, and
//! does make `emit` pend when both are full.
//!
//! **Keys are forgotten.** A key's state (accumulators, panes, records, timers, bookkeeping) is
//! freed as soon as it has no open window and nothing pending: for sliding windows, once its
//! records can be in no future window (`ts + size < watermark`), even if the key sends nothing
//! more. So a stream with ever new keys (session ids) holds state only for keys with open
//! windows. With the operator clock (the default) nothing about a freed key is kept, and a key
//! that comes back is exactly a fresh key (every window it had is closed, and the watermark
//! bounds a fresh key's windows the same way). With a [per-key clock](WindowBuilder::per_key_clock)
//! a freed key keeps one `(key, clock)` entry, so its late events are still recognised: memory
//! then grows with the number of distinct keys, by one small entry each. Count windows free a
//! key with no partial window (tumbling count windows, after each n-th event); without a
//! timestamp extractor they keep a `(key, event count)` entry so event indexes go on.
//! [`WindowStats::keys`] and [`WindowStats::retired_keys`] count both.
//!
//! **Threads.** State is updated under the operator's lock, which is released before anything
//! is pushed downstream. When several threads emit into one window operator at once, each
//! result is still emitted exactly once, but results produced by different threads may
//! interleave. Aggregate functions (and `reduce`) may run under that lock: one that emits
//! into the graph feeding the same window would wait for the lock it holds. Emit back from downstream of the window instead (a sink, or a loop built
//! with [`connect`](crate::Stream::connect)).
//!
//! ```
//! use brooklet::Source;
//! use brooklet::window::{Window, WindowResult};
//! # futures::executor::block_on(async {
//! let source = Source::new();
//! let sums = source
//!     .window(Window::tumbling(1_000))
//!     .timestamp(|e: &(i64, &str, u32)| e.0)
//!     .key_by(|e| e.1)
//!     .sum(|e| e.2)
//!     .sink_to_vec();
//! for e in [(100, "a", 1), (200, "b", 2), (900, "a", 3), (1_000, "a", 4)] {
//!     source.emit(e).await?;
//! }
//! source.close().await?;
//! assert_eq!(sums.snapshot(), vec![
//!     WindowResult { key: "a", start: 0, end: 1_000, end_inclusive: false, value: 4 },
//!     WindowResult { key: "b", start: 0, end: 1_000, end_inclusive: false, value: 2 },
//!     WindowResult { key: "a", start: 1_000, end: 2_000, end_inclusive: false, value: 4 },
//! ]);
//! # Ok::<(), brooklet::Error>(()) }).unwrap();
//! ```

pub mod aggregate;
mod assign;
mod batch;
mod builder;
pub mod clock;
mod count;
mod emitters;
mod hopping;
pub(crate) mod keyhash;
mod late;
mod operator;
mod processing;
mod result;
mod sliding;
mod slots;
mod timers;
mod tumbling;

pub use aggregate::Aggregator;
pub use assign::{IntoMillis, Window, WindowKind};
pub use batch::{BATCH_CAPACITY, BatchOptions, Batched, Buffered, Emitter, Poll, Slice};
pub use builder::{EmitMode, Leftover, WindowBuilder, Windowed};
pub use emitters::{CountWindow, FixedTimeWindow, RelaxedTimeWindow};
pub use operator::WindowKey;
pub use processing::{
    ProcessingWindow, ProcessingWindowBuilder, ProcessingWindowStats, ProcessingWindowed,
};
pub use result::{LateEvent, WindowResult, WindowStats};
