//! The graph core: nodes, edges, emission, acknowledgements and the two handle types.
//!
//! A brooklet graph is a push DAG. [`Source::emit`] calls straight into the first node, which
//! calls into its targets, and so on: a chain of synchronous nodes costs a few dynamic calls and
//! no allocation. Nodes that hold elements (buffers, windows, `zip`) accept each element at once
//! and, when they are over their bound, hand back a wait that the caller's [`Emit`] future
//! resolves on. That is the whole backpressure protocol: a producer that awaits `emit` never
//! runs ahead of its slowest consumer, and one that drops the future loses nothing.
//!
//! This module holds no operator. Operators live in `ops` (element-wise and combining),
//! `time` (runtime-driven), `window` (event time) and `parallel`; each is a small struct that
//! implements the crate-internal `Operator` trait.

mod ack;
mod cx;
mod detach;
mod dot;
// The crate's audited `unsafe` code: the edge dispatch (`Target`) and the single-edge fast
// path (`Outputs::single`).
#[allow(unsafe_code)]
mod edges;
mod emit;
mod error;
mod join;
mod node;
mod side;
mod source;
mod source_sink;
mod stream;
pub(crate) mod sync;
pub(crate) mod task;
mod try_emit;

pub use ack::{Ack, Outcome};
pub use emit::Emit;
pub use error::Error;
pub use join::{Connect, Join};
pub(crate) use join::{Inputs, SamePort};
pub use source::{Source, WeakSource};
pub(crate) use stream::metrics as metrics_of;
pub use stream::{Metrics, Stream};
pub use try_emit::TryEmitError;

pub(crate) use ack::{Acks, dropping_lost, panic_site};
#[allow(unused_imports)]
pub(crate) use cx::{Cx, Pending};
pub(crate) use edges::Outputs;
#[allow(unused_imports)]
pub(crate) use error::panic_message;
pub(crate) use node::{Input, Node, NodeDyn, Operator, Room};
pub(crate) use side::Side;

use std::sync::MutexGuard;
use sync::Lock;

/// What may flow through a stream: any owned value that can cross threads and be cloned for
/// fan-out. Blanket-implemented; you never implement it yourself.
///
/// ```
/// fn takes_items<T: brooklet::Item>(_: T) {}
/// takes_items(vec![1, 2, 3]);
/// takes_items(String::from("hi"));
/// ```
///
/// A value that cannot be cloned (an `io::Error`, a file handle, a `oneshot::Sender`) enters a
/// graph behind an `Arc`, which clones by sharing; a node that needs to own it back can take
/// it out with `Arc::try_unwrap` or a `Mutex<Option<_>>`:
///
/// ```
/// use std::sync::Arc;
/// use brooklet::Source;
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let lines = source
///     .map(|line: Arc<std::io::Result<String>>| match &*line {
///         Ok(text) => text.len(),
///         Err(_) => 0,
///     })
///     .sink_to_vec();
/// source.emit(Arc::new(Ok("hello".to_string()))).await?;
/// source.emit(Arc::new(Err(std::io::Error::other("bad input")))).await?;
/// assert_eq!(lines.snapshot(), vec![5, 0]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
///
/// A value that must be owned again further down, such as a reply channel, travels as
/// `Arc<Mutex<Option<_>>>`, and the node that consumes it takes it out once:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use brooklet::Source;
/// use tokio::sync::oneshot;
/// # futures::executor::block_on(async {
/// type Reply = Arc<Mutex<Option<oneshot::Sender<u64>>>>;
/// let requests: Source<(u64, Reply)> = Source::new();
/// requests.sink(|(x, reply): (u64, Reply)| {
///     if let Some(reply) = reply.lock().unwrap().take() {
///         let _ = reply.send(x * x);
///     }
/// });
/// let (tx, rx) = oneshot::channel();
/// requests.emit((12, Arc::new(Mutex::new(Some(tx))))).await?;
/// assert_eq!(rx.await.unwrap(), 144);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
///
/// Writing `Source<std::io::Result<String>>` or mapping to a `File` fails to compile with
/// this trait's message, which says to wrap the value in `Arc`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot flow through a brooklet stream",
    label = "elements must be `Clone + Send + 'static`",
    note = "a stream clones elements for fan-out and moves them across threads: wrap a value \
            that is not `Clone` in `Arc` (an `io::Result`, a file handle, a sender), and one \
            that is not `Send` in a type that is"
)]
pub trait Item: Clone + Send + 'static {}
// Without `do_not_recommend`, rustc reports the missing `Clone` or `Send` of this impl's bounds
// and never shows the message above, which says what to do about it.
#[diagnostic::do_not_recommend]
impl<T: Clone + Send + 'static> Item for T {}

static TOPOLOGY: Lock<()> = Lock::new(());

/// The global topology lock: every change to any graph's edges holds it, so cycle detection
/// sees a stable graph. Pushes never take it.
pub(crate) fn topology() -> MutexGuard<'static, ()> {
    TOPOLOGY.lock()
}
