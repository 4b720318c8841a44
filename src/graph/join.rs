//! Run-time inputs: what [`Stream::connect`] can feed (a [`Source`] or a [`Join`]) and the
//! plumbing that adds and cuts one input of a node while the graph runs.
//!
//! Invariants:
//! - An upstream feeds a given target at most once; connecting again changes nothing.
//! - A connection that would close a cycle is a feedback edge: it holds its target weakly,
//!   never ends it and never makes an emission wait (see [`Stream::connect`]).
//! - Cutting an input takes back the end it may have delivered, so a node with several inputs
//!   still waits for every input it has left; a join whose remaining inputs have all ended
//!   ends when the cut leaves it so, as it would have had the cut input ended.
//! - A join with per-input state ([`Stream::zip_all`], [`Stream::combine_latest_all`]) tells
//!   its operator about every input added, ended and cut, under the operator's own lock, so
//!   an input cut while it holds elements frees them and never wedges the others.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::cx::Cx;
use super::edges::{Conn, Outputs};
use super::node::{Input, Node, NodeDyn, Operator, Push};
use super::source::Source;
use super::stream::{Stream, addr, reaches};
use super::{Item, topology};

mod sealed {
    /// Keeps [`Connect`](super::Connect) implemented by this crate's types only.
    pub trait Sealed<T> {}
}

/// What [`Stream::connect`] and [`Stream::disconnect`] can target: a [`Source`], or a
/// [`Join`] (a `union`, `zip_all` or `combine_latest_all`), which takes the connection as one
/// more input. Implemented by those types only.
///
/// ```
/// use brooklet::Source;
/// # futures::executor::block_on(async {
/// let a = Source::new();
/// let b = Source::new();
/// let into_source = Source::new();
/// let merged = a.union(&b);
/// let seen = merged.sink_to_vec();
/// let late = Source::new();
/// late.connect(&merged); // a Join
/// late.connect(&into_source); // a Source
/// late.emit(7).await?;
/// assert_eq!(seen.snapshot(), vec![7]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub trait Connect<T>: sealed::Sealed<T> {
    #[doc(hidden)]
    fn connect_from(&self, upstream: &Stream<T>);
    #[doc(hidden)]
    fn disconnect_from(&self, upstream: &Stream<T>) -> bool;
}

/// Connects `upstream` into `port`, an input of `node` (a feedback edge if that closes a
/// cycle). Returns `false` when `upstream` already feeds `node`. An upstream that has already
/// ended ends the new input at once.
pub(crate) fn connect_port<T: Item, P: Push<T>>(
    upstream: &Stream<T>,
    port: &Arc<P>,
    node: &Arc<dyn NodeDyn>,
) -> bool {
    let me: Arc<dyn NodeDyn> = upstream.node.clone();
    let ended = {
        let _g = topology();
        if upstream.node.outputs().is_connected(addr(node)) {
            return false;
        }
        let conn = if reaches(node, addr(&me)) {
            Conn::feedback(port, node)
        } else {
            Conn::forward(port.clone(), node.clone())
        };
        let forward = !conn.is_feedback();
        node.meta().add_uplink(Arc::downgrade(&me), !forward);
        upstream.node.outputs().connect(conn);
        forward && me.meta().is_done()
    };
    if ended {
        // Ends just the new edge (a node whose task still drains has not ended its others).
        upstream.node.outputs().end_to(addr(node), &mut Cx::new());
    }
    true
}

/// Cuts `upstream`'s connection into `node`. Returns `None` when there was none, else whether
/// every input `node` has left has ended.
pub(crate) fn disconnect_port<T: Item>(
    upstream: &Stream<T>,
    node: &Arc<dyn NodeDyn>,
) -> Option<bool> {
    let me: Arc<dyn NodeDyn> = upstream.node.clone();
    let (cut, all_ended) = {
        let _g = topology();
        let cut = upstream.node.outputs().disconnect(addr(node))?;
        let all_ended = node
            .meta()
            .remove_uplink(addr(&me), !cut.feedback, cut.ended);
        (cut, all_ended)
    };
    // Dropped here, outside the topology lock: it may be the last hold on a graph.
    drop(cut);
    Some(all_ended)
}

impl<T: Item> sealed::Sealed<T> for Source<T> {}

impl<T: Item> Connect<T> for Source<T> {
    fn connect_from(&self, upstream: &Stream<T>) {
        let node: Arc<dyn NodeDyn> = self.node.clone();
        connect_port(upstream, &self.node, &node);
    }

    fn disconnect_from(&self, upstream: &Stream<T>) -> bool {
        let node: Arc<dyn NodeDyn> = self.node.clone();
        disconnect_port(upstream, &node).is_some()
    }
}

/// A node with several inputs that can change while the graph runs: what [`Stream::union`],
/// [`Stream::union_all`], [`Stream::zip_all`] and [`Stream::combine_latest_all`] return.
///
/// A `Join<I, O>` takes inputs of type `I` and emits `O`; it dereferences to the
/// [`Stream<O>`] of its output, so every operator applies to it directly. Any stream of `I`
/// can become one more input with [`connect`](Stream::connect), and stop being one with
/// [`disconnect`](Stream::disconnect), the inputs it was built with included (Streamz's
/// `connect` and `disconnect` on joins). A join ends when every input it has ended.
///
/// ```
/// use brooklet::Source;
/// # futures::executor::block_on(async {
/// let a = Source::new();
/// let b = Source::new();
/// let rows = a.zip_all([&*b]);
/// let seen = rows.sink_to_vec();
/// a.emit(1).await?;
/// b.emit(2).await?;
/// let c = Source::new();
/// c.connect(&rows); // now rows of three
/// a.emit(3).await?;
/// b.emit(4).await?;
/// c.emit(5).await?;
/// assert_eq!(seen.snapshot(), vec![vec![1, 2], vec![3, 4, 5]]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub struct Join<I, O> {
    stream: Stream<O>,
    inputs: Arc<dyn JoinInputs<I>>,
}

impl<I, O> Clone for Join<I, O> {
    fn clone(&self) -> Self {
        Join {
            stream: self.stream.clone(),
            inputs: self.inputs.clone(),
        }
    }
}

impl<I, O: Item> fmt::Debug for Join<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("stream", &self.stream)
            .finish()
    }
}

impl<I, O> Deref for Join<I, O> {
    type Target = Stream<O>;

    fn deref(&self) -> &Stream<O> {
        &self.stream
    }
}

impl<I, O> sealed::Sealed<I> for Join<I, O> {}

impl<I: Item, O> Connect<I> for Join<I, O> {
    fn connect_from(&self, upstream: &Stream<I>) {
        self.inputs.add(upstream);
    }

    fn disconnect_from(&self, upstream: &Stream<I>) -> bool {
        self.inputs.cut(upstream)
    }
}

impl<I: Item, O: Item> Join<I, O> {
    pub(crate) fn new(stream: Stream<O>, inputs: Arc<dyn JoinInputs<I>>) -> Join<I, O> {
        Join { stream, inputs }
    }

    /// The join's output as a plain [`Stream`] handle (a `Join` also dereferences to it).
    ///
    /// ```
    /// use brooklet::{Source, Stream};
    /// let a = Source::<u8>::new();
    /// let b = Source::new();
    /// let merged: Stream<u8> = a.union(&b).into_stream();
    /// assert_eq!(merged.name(), "union");
    /// ```
    pub fn into_stream(self) -> Stream<O> {
        self.stream
    }
}

/// How a join adds and cuts inputs.
pub(crate) trait JoinInputs<I>: Send + Sync {
    fn add(&self, upstream: &Stream<I>);
    fn cut(&self, upstream: &Stream<I>) -> bool;
}

/// A join whose node is its own input port (`union`): every input is alike.
pub(crate) struct SamePort<Op: Operator>(pub(crate) Arc<Node<Op>>);

impl<I: Item, Op: Input<0, In = I>> JoinInputs<I> for SamePort<Op> {
    fn add(&self, upstream: &Stream<I>) {
        let node: Arc<dyn NodeDyn> = self.0.clone();
        connect_port(upstream, &self.0, &node);
    }

    fn cut(&self, upstream: &Stream<I>) -> bool {
        let node: Arc<dyn NodeDyn> = self.0.clone();
        match disconnect_port(upstream, &node) {
            None => false,
            Some(all_ended) => {
                if all_ended {
                    self.0.finish(&mut Cx::new());
                }
                true
            }
        }
    }
}

static NEXT_INPUT: AtomicU64 = AtomicU64::new(1);

/// An operator that keeps state per input and hears when inputs come and go.
pub(crate) trait Inputs: Operator {
    type In: Item;
    /// A new input, fed by the upstream at address `upstream` through `port` (the operator
    /// keeps it: a feedback edge holds it only weakly). Inputs are numbered in the order they
    /// were added.
    fn added(&self, input: u64, upstream: usize, port: Arc<dyn Any + Send + Sync>);
    /// An element from `input`.
    fn on_input_from(&self, input: u64, x: Self::In, out: &Outputs<Self::Out>, cx: &mut Cx);
    /// `input` ended.
    fn ended(&self, input: u64, out: &Outputs<Self::Out>, cx: &mut Cx);
    /// `input` was cut; what it held is dropped (its tokens released).
    fn cut(&self, input: u64, out: &Outputs<Self::Out>, cx: &mut Cx);
    /// The input fed by the upstream at `upstream`, if any.
    fn input_of(&self, upstream: *const ()) -> Option<u64>;
}

/// One input of an [`Inputs`] operator.
pub(crate) struct InputPort<Op: Operator> {
    node: Weak<Node<Op>>,
    input: u64,
}

impl<Op: Inputs> Push<<Op as Inputs>::In> for InputPort<Op> {
    fn push(&self, x: <Op as Inputs>::In, cx: &mut Cx) {
        if let Some(node) = self.node.upgrade() {
            node.meta.received.inc();
            node.op.on_input_from(self.input, x, &node.out, cx);
        }
    }

    fn end(&self, cx: &mut Cx) {
        if let Some(node) = self.node.upgrade() {
            node.op.ended(self.input, &node.out, cx);
            node.upstream_ended(cx);
        }
    }
}

/// A join whose operator keeps per-input state (`zip_all`, `combine_latest_all`).
pub(crate) struct PerInput<Op: Operator>(pub(crate) Arc<Node<Op>>);

impl<Op: Inputs> JoinInputs<<Op as Inputs>::In> for PerInput<Op> {
    fn add(&self, upstream: &Stream<<Op as Inputs>::In>) {
        let node: Arc<dyn NodeDyn> = self.0.clone();
        let up = addr(&upstream.node);
        if self.0.op.input_of(up).is_some() {
            return;
        }
        let input = NEXT_INPUT.fetch_add(1, Ordering::Relaxed);
        let port = Arc::new(InputPort {
            node: Arc::downgrade(&self.0),
            input,
        });
        self.0.op.added(input, up as usize, port.clone());
        if !connect_port(upstream, &port, &node) {
            let mut cx = Cx::new();
            self.0.op.cut(input, &self.0.out, &mut cx);
        }
    }

    fn cut(&self, upstream: &Stream<<Op as Inputs>::In>) -> bool {
        let node: Arc<dyn NodeDyn> = self.0.clone();
        let Some(all_ended) = disconnect_port(upstream, &node) else {
            return false;
        };
        let mut cx = Cx::new();
        if let Some(input) = self.0.op.input_of(addr(&upstream.node)) {
            self.0.op.cut(input, &self.0.out, &mut cx);
        }
        if all_ended {
            self.0.finish(&mut cx);
        }
        true
    }
}

impl<T: Item> Stream<T> {
    /// Adds a node with per-input state fed by this stream and `others`.
    pub(crate) fn join_per_input<'a, Op>(
        &self,
        kind: &'static str,
        op: Op,
        others: impl IntoIterator<Item = &'a Stream<T>>,
    ) -> Join<T, Op::Out>
    where
        Op: Inputs<In = T>,
    {
        let node = Arc::new(Node::new(kind, op));
        let inputs = PerInput(node.clone());
        inputs.add(self);
        for other in others {
            inputs.add(other);
        }
        Join::new(Stream::from_node(node), Arc::new(inputs))
    }
}
