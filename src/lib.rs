//! # brooklet
//!
//! In-process reactive stream processing: users wire nodes into a graph and push data through
//! it, in the style of Python's Streamz, with what Faust and Quix Streams users need on top
//! (windows over event time, a parallel map, at-least-once acknowledgements).
//!
//! ## A graph in five lines
//!
//! ```
//! use brooklet::Source;
//! # futures::executor::block_on(async {
//! let source = Source::new();
//! let totals = source.map(|x: u64| x * 2).filter(|x| x % 3 == 0).accumulate(0, |a, x| a + x).sink_to_vec();
//! source.emit(3).await?;
//! source.emit(6).await?;
//! assert_eq!(totals.snapshot(), vec![6, 18]);
//! # Ok::<(), brooklet::Error>(()) }).unwrap();
//! ```
//!
//! [`Source::emit`] pushes the element through every synchronous node before it returns: a
//! chain of synchronous nodes costs a few nanoseconds per node, allocates nothing and takes no
//! lock unless a node has state. The returned [`Emit`] future resolves when every downstream
//! node has accepted the element.
//!
//! ## Backpressure
//!
//! Nodes that hold elements are bounded. Past its bound, a node still takes the element (a
//! dropped [`Emit`] never loses data) but makes the future pend until it has room. A producer
//! that awaits `emit` therefore runs at the pace of its slowest consumer, and memory stays flat.
//! A producer that cannot await uses [`Source::try_emit`], which hands the element back in a
//! [`TryEmitError`] when a bounded node it would reach is full.
//!
//! ```
//! use brooklet::Source;
//! # futures::executor::block_on(async {
//! let (a, b) = (Source::new(), Source::new());
//! let pairs = a.zip_bounded(&b, 1).sink_to_vec();
//! a.emit(1).await?;
//! let ahead = a.emit(2); // `a` is two elements ahead of `b`: this pends
//! assert!(!ahead.is_complete());
//! b.emit('x').await?;
//! ahead.await?;
//! assert_eq!(pairs.snapshot(), vec![(1, 'x')]);
//! # Ok::<(), brooklet::Error>(()) }).unwrap();
//! ```
//!
//! ## Fan-out, merging and feedback
//!
//! Calling two operators on one handle fans out (in creation order, depth first). `union`,
//! `zip`, `combine_latest` and `zip_latest` merge streams. [`Stream::connect`] wires a node into
//! a source at run time, which makes feedback loops possible; a feedback edge never keeps a
//! graph alive, and a loop runs in constant stack (elements sent back go round breadth-first).
//! A function that emits into its own source itself (for a few turns: each one runs inside
//! the push that caused it) holds a [`WeakSource`] ([`Source::downgrade`]): a `Source` held
//! there would keep its graph alive for ever.
//!
//! ```
//! use brooklet::Source;
//! # futures::executor::block_on(async {
//! let source = Source::new();
//! let fib = source.sliding_window(2).map(|w: Vec<u64>| w[0] + w[1]);
//! let seen = fib.sink_to_vec();
//! fib.filter(|x| *x < 20).connect(&source);
//! source.emit(1).await?;
//! source.emit(1).await?;
//! assert_eq!(seen.snapshot(), vec![2, 3, 5, 8, 13, 21]);
//! # Ok::<(), brooklet::Error>(()) }).unwrap();
//! ```
//!
//! ## Ending a stream
//!
//! [`Source::close`] ends the stream: windows and batches flush, queues drain, and the future
//! resolves when the graph is done. Dropping the last clone of a `Source` ends it the same way.
//! A node with several upstreams ends when all of them have.
//!
//! ## Acknowledgements
//!
//! [`Source::emit_with_ack`] attaches an [`Ack`] to an element; its callback runs once, with
//! the element's [`Outcome`]: [`Outcome::Done`] once every output built from the element has
//! been accepted downstream (or the element was dropped on purpose), [`Outcome::Failed`] when
//! it was lost (a panic on its path, a node that failed under it, a runtime that shut down, a
//! closed graph). Nodes that hold elements hold their tokens. An at-least-once source commits
//! an element only once it is done, and never past a failed one.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use brooklet::{Ack, Outcome, Source};
//! # futures::executor::block_on(async {
//! let source = Source::new();
//! let parsed = source.try_map(|s: &str| s.parse::<i32>());
//! let _numbers = parsed.sink(|_| ());
//! let _dead_letters = parsed.errors().sink(|_| ()); // errors taken here count as handled
//! let outcomes = Arc::new(Mutex::new(Vec::new()));
//! for s in ["1", "x"] {
//!     let o = outcomes.clone();
//!     source.emit_with_ack(s, Ack::new(move |outcome| o.lock().unwrap().push(outcome))).await?;
//! }
//! assert_eq!(*outcomes.lock().unwrap(), vec![Outcome::Done, Outcome::Done]);
//! # Ok::<(), brooklet::Error>(()) }).unwrap();
//! ```
//!
//! ## Errors
//!
//! A panic in a user function on the synchronous path unwinds into the caller of `emit`, and
//! the graph keeps working for the next element. Failures on asynchronous paths are reported as
//! an [`Error`] on the next `emit` or by `close`, naming the node whose function failed;
//! several failures before a report come as one [`Error::Several`] with their count. Whatever
//! `emit` accepted with `Ok` is delivered; an element that cannot be (the graph was closed
//! under it, the runtime of a node shut down) gets an `Err`, promptly: no call hangs.
//!
//! ## Where things are
//!
//! - [`Source`], [`Stream`], [`Emit`], [`Ack`], [`Error`], [`Metrics`]: the graph core.
//! - [`ops`]: synchronous operators, one module per operator (all are methods on [`Stream`]).
//! - [`time`]: runtime-driven nodes (`buffer`, `rate_limit`, `delay`, `timed_window`,
//!   `latest`, ...) on the ambient tokio runtime.
//! - [`window`]: event-time windows (tumbling, hopping, sliding, count) with watermarks, grace,
//!   late events and aggregates, and mini-batch emitters.
//! - [`parallel`]: `par_map` on worker threads and `map_async` on the runtime.
//! - [`guide::coming_from`]: Streamz, Faust and Quix Streams concepts, side by side with
//!   brooklet's.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod graph;
pub mod guide;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod ops;
pub mod parallel;
pub mod time;
pub mod window;

pub use graph::{
    Ack, Connect, Emit, Error, Item, Join, Metrics, Outcome, Source, Stream, TryEmitError,
    WeakSource,
};
pub use ops::{Collect, EmitOn, Fallible, Pull, Sink, VecSink};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
