//! The `Stream<T>` handle and run-time topology changes (`connect`, `disconnect`).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use super::cx::Cx;
use super::edges::Target;
use super::join::Connect;
use super::node::{Input, Node, NodeDyn, Operator, Producer, Push};
use super::{Item, dot, topology};

/// A handle to a node that emits elements of type `T`.
///
/// Every operator is a method on `Stream` that adds a node downstream of this one and returns a
/// handle to it. Handles are cheap to clone, `Send + Sync`, and can be used from any thread.
/// Calling two operators on one handle fans out: each element goes to both, in the order the
/// operators were added. A node lives as long as something upstream of it does, so you need
/// not keep handles to sinks.
///
/// ```
/// use brooklet::Source;
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let doubled = source.map(|x: i32| x * 2);
/// let a = doubled.sink_to_vec();
/// let b = doubled.filter(|x| *x > 2).sink_to_vec();
/// for x in 1..=3 {
///     source.emit(x).await?;
/// }
/// assert_eq!(a.snapshot(), vec![2, 4, 6]);
/// assert_eq!(b.snapshot(), vec![4, 6]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub struct Stream<T> {
    pub(crate) node: Arc<dyn Producer<T>>,
}

impl<T> Clone for Stream<T> {
    fn clone(&self) -> Self {
        Stream {
            node: self.node.clone(),
        }
    }
}

impl<T: Item> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("name", &self.node.meta().name())
            .field("metrics", &metrics(&*self.node))
            .finish()
    }
}

/// Counters of one node, read while the graph runs.
///
/// `received` and `emitted` are statistics: exact while one thread at a time pushes into the
/// node, and they may miss increments when several threads push into the same node at once
/// (they are updated without an atomic read-modify-write, to keep the synchronous path at a few
/// nanoseconds). `errors` is always exact.
///
/// ```
/// use brooklet::Source;
/// let source = Source::new();
/// let evens = source.filter(|x: &u32| x % 2 == 0);
/// let _sink = evens.sink(|_| ());
/// for x in 0..10 {
///     drop(source.emit(x));
/// }
/// let m = evens.metrics();
/// assert_eq!((m.received, m.emitted), (10, 5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Metrics {
    /// Elements pushed into the node.
    pub received: u64,
    /// Elements the node pushed downstream (once per element, whatever the fan-out).
    pub emitted: u64,
    /// Elements the node holds right now (queued, windowed, waiting for a partner).
    pub held: u64,
    /// Panics caught in, or raised from, the node's user functions.
    pub errors: u64,
}

pub(crate) fn metrics(n: &dyn NodeDyn) -> Metrics {
    Metrics {
        received: n.meta().received.get(),
        emitted: n.emitted(),
        held: n.held(),
        errors: n.errors(),
    }
}

pub(crate) fn addr<N: ?Sized>(n: &Arc<N>) -> *const () {
    Arc::as_ptr(n) as *const ()
}

/// Whether `to` can be reached from `from` along forward edges.
pub(crate) fn reaches(from: &Arc<dyn NodeDyn>, to: *const ()) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from.clone()];
    while let Some(n) = stack.pop() {
        if addr(&n) == to {
            return true;
        }
        if !seen.insert(addr(&n)) {
            continue;
        }
        for link in n.links() {
            if let (Some(next), false) = (link.node, link.feedback) {
                stack.push(next);
            }
        }
    }
    false
}

impl<T: Item> Stream<T> {
    pub(crate) fn from_node(node: Arc<dyn Producer<T>>) -> Stream<T> {
        Stream { node }
    }

    fn as_dyn(&self) -> Arc<dyn NodeDyn> {
        self.node.clone()
    }

    /// Adds a new node running `op` downstream of this one.
    pub(crate) fn then<Op>(&self, kind: &'static str, op: Op) -> Stream<Op::Out>
    where
        Op: Input<0, In = T>,
    {
        Stream::from_node(self.then_node(kind, op))
    }

    /// Like [`then`](Self::then), returning the concrete node for handles that need it.
    pub(crate) fn then_node<Op>(&self, kind: &'static str, op: Op) -> Arc<Node<Op>>
    where
        Op: Input<0, In = T>,
    {
        let node = Arc::new(Node::new(kind, op));
        self.link(node.clone(), node.clone());
        node
    }

    /// Adds a forward edge from this node to `push`, an input port of `node`. Used for new
    /// nodes (which cannot close a cycle) and for extra input ports.
    pub(crate) fn link<P: Push<T>>(&self, push: Arc<P>, node: Arc<dyn NodeDyn>) {
        let upstream_done = {
            let _g = topology();
            node.meta()
                .add_uplink(Arc::downgrade(&self.as_dyn()), false);
            self.node
                .outputs()
                .add(Target::forward(push.clone(), node.clone()));
            self.node.meta().is_done()
        };
        if upstream_done {
            // Attached to a node that has already ended: this input has ended too. Ends just
            // the new edge, and marks it so (a node whose task still drains has not ended its
            // other edges yet, and must not have them ended here).
            self.node
                .outputs()
                .end_to(Arc::as_ptr(&node) as *const (), &mut Cx::new());
        }
    }

    /// The node's name: the one given with [`named`](Self::named), or the operator's kind
    /// (`"map"`, `"zip"`, ...).
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<i32>::new();
    /// assert_eq!(source.map(|x| x + 1).name(), "map");
    /// ```
    pub fn name(&self) -> String {
        self.node.meta().name()
    }

    /// Names the node (shown by [`to_dot`](Self::to_dot) and in error messages) and returns
    /// a handle to it.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<i32>::new();
    /// let scaled = source.map(|x| x * 10).named("scale");
    /// assert_eq!(scaled.name(), "scale");
    /// ```
    pub fn named(&self, name: impl Into<String>) -> Stream<T> {
        self.node.meta().set_name(name.into());
        self.clone()
    }

    /// The node's counters; see [`Metrics`].
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::new();
    /// drop(source.emit(1u8));
    /// assert_eq!(source.metrics().received, 1);
    /// ```
    pub fn metrics(&self) -> Metrics {
        metrics(&*self.node)
    }

    /// Renders the whole graph this node belongs to as Graphviz DOT. Feedback edges are dashed.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<i32>::new().named("numbers");
    /// let _sink = source.map(|x| x + 1).sink(|_| ());
    /// let dot = source.to_dot();
    /// assert!(dot.starts_with("digraph"));
    /// assert!(dot.contains("numbers") && dot.contains("map") && dot.contains("sink"));
    /// ```
    pub fn to_dot(&self) -> String {
        dot::render(self.as_dyn(), false)
    }

    /// Like [`to_dot`](Self::to_dot), with each node's counters (see [`Metrics`]) in its
    /// label: elements in and out, and those held or failed when there are any. A picture of
    /// a running graph: where elements pile up, where they are dropped.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new().named("numbers");
    /// let _evens = source.filter(|x: &u32| x % 2 == 0).sink(|_| ());
    /// for x in 0..10 {
    ///     source.emit(x).await?;
    /// }
    /// let dot = source.to_dot_with_metrics();
    /// assert!(dot.contains("filter\\nin 10 · out 5"));
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn to_dot_with_metrics(&self) -> String {
        dot::render(self.as_dyn(), true)
    }

    /// Sends everything this node emits into `target` as well, from now on. `target` is a
    /// [`Source`](crate::Source), or a [`Join`](crate::Join) (a `union`, `zip_all` or
    /// `combine_latest_all`), for which this stream becomes one more input (see [`Join`](crate::Join)).
    ///
    /// Connecting is idempotent: a node is connected to a given target at most once, so
    /// connecting it again while it is connected changes nothing (each element still arrives
    /// once), and one [`disconnect`](Self::disconnect) undoes it.
    ///
    /// This is how graphs are wired at run time, and how feedback loops are built: connecting
    /// a node back into a source upstream of it makes a cycle. A feedback edge does not keep
    /// the graph alive, does not end `target` when this node ends, and never makes an emission
    /// wait (a loop waiting on its own bounded nodes would wait on itself): bounding how much a
    /// loop generates is the loop's own business, with a `filter` or a `rate_limit`.
    ///
    /// A loop runs in constant stack, however many turns it makes: an element sent back while
    /// another one is already going round on the same thread is queued, and goes round once
    /// the push in progress has returned (breadth-first, where Streamz recurses depth-first).
    /// Failures found on the way reach the caller of `emit` all the same. If a user function
    /// panics inside the loop, the panic reaches the caller of `emit` and what was still queued
    /// is dropped.
    ///
    /// A forward edge (one that makes no cycle) counts as an upstream of `target`: a source fed
    /// only by forward edges ends when all of them have ended.
    ///
    /// Fan-out goes in edge order, which is creation order, except that a connection may take
    /// the place of one disconnected earlier.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let upstream = Source::new();
    /// let downstream = Source::new();
    /// let seen = downstream.map(|x: i32| x + 1).sink_to_vec();
    /// upstream.connect(&downstream);
    /// upstream.connect(&downstream); // already connected: no change
    /// upstream.emit(2).await?;
    /// upstream.emit(4).await?;
    /// assert_eq!(seen.snapshot(), vec![3, 5]);
    ///
    /// // A loop of 100,000 turns through synchronous nodes, in constant stack.
    /// let counter = Source::new();
    /// counter.filter(|x: &u32| *x < 100_000).map(|x| x + 1).connect(&counter);
    /// counter.emit(0).await?;
    /// assert_eq!(counter.metrics().received, 100_001);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn connect<C: Connect<T> + ?Sized>(&self, target: &C) {
        target.connect_from(self);
    }

    /// Stops sending elements into `target`. Returns whether there was such a connection.
    ///
    /// The connection's hold on `target` goes with it: a target that nothing else holds (no
    /// handle, no other connection) is freed at once, so connecting and disconnecting fresh
    /// targets over and over uses no more memory, and no more time per change, than one
    /// connection does.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let upstream = Source::new();
    /// let downstream = Source::new();
    /// let seen = downstream.sink_to_vec();
    /// upstream.connect(&downstream);
    /// upstream.emit(1).await?;
    /// assert!(upstream.disconnect(&downstream));
    /// assert!(!upstream.disconnect(&downstream)); // nothing left to disconnect
    /// upstream.emit(2).await?;
    /// assert_eq!(seen.snapshot(), vec![1]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn disconnect<C: Connect<T> + ?Sized>(&self, target: &C) -> bool {
        target.disconnect_from(self)
    }
}

/// Extra input ports for multi-input operators.
impl<Op: Operator> Node<Op> {
    /// Wires `upstream` into input port `P` of this node.
    pub(crate) fn link_port<const P: usize>(
        self: &Arc<Self>,
        upstream: &Stream<<Op as Input<P>>::In>,
    ) where
        Op: Input<P>,
        <Op as Input<P>>::In: Item,
        super::node::Port<Op, P>: Push<<Op as Input<P>>::In>,
    {
        let port = Arc::new(super::node::Port::<Op, P>(self.clone()));
        upstream.link(port, self.clone());
    }
}

#[cfg(test)]
mod tests {
    use crate::Source;

    #[test]
    fn connect_disconnect_cycles_reuse_one_edge() {
        let upstream = Source::<u32>::new();
        let stream = upstream.map(|x| x + 1);
        let kept = Source::new();
        stream.connect(&kept);
        for _ in 0..10_000 {
            let target = Source::new();
            stream.connect(&target);
            assert!(stream.disconnect(&target));
        }
        // The kept connection plus one slot reused by every fresh target.
        assert_eq!(stream.node.outputs().edge_count(), 2);
        // Connecting the same target again does not add an edge either.
        stream.connect(&kept);
        assert_eq!(stream.node.outputs().edge_count(), 2);
    }
}
