//! Nodes: the traits every node implements and the generic node that wraps an operator.
//!
//! A node is an [`Operator`] (what it does to elements) wrapped in a [`Node`] (its name,
//! counters, upstream links and outgoing edges). Operators are small structs in `crate::ops`,
//! `crate::time` and so on; the graph core never needs to know them.
//!
//! Invariants:
//! - `Push::push` is called with no lock of the caller held. A node updates its own state under
//!   its own lock, releases it, and only then pushes downstream; so feedback loops and re-entrant
//!   emits never deadlock.
//! - A node ends exactly once: when every forward upstream has ended, or when it is closed
//!   directly (a source). Ending runs `Operator::on_end` (flush) and then ends the node's
//!   forward targets. Feedback upstreams are not counted.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::Item;
use super::cx::Cx;
use super::edges::{DownLink, Outputs};
use super::sync::{Counter, Lock};

/// Something elements of type `T` can be pushed into: a node's input port.
pub(crate) trait Push<T>: Send + Sync + 'static {
    /// Delivers one element.
    fn push(&self, x: T, cx: &mut Cx);
    /// Delivers a batch, in order. The default pushes the elements one by one, so a port that
    /// does not specialise sees exactly what the same elements emitted one at a time would
    /// give it (waits, tokens and order included).
    fn push_batch(&self, xs: Vec<T>, cx: &mut Cx) {
        for x in xs {
            self.push(x, cx);
        }
    }
    /// Tells the node that one of its forward upstreams has ended.
    fn end(&self, cx: &mut Cx);
}

/// An `Arc` of a port is a port: edges box `Arc<ConcreteNode>` so a push is one dynamic call
/// followed by static dispatch.
impl<T, P: Push<T>> Push<T> for Arc<P> {
    #[inline(always)]
    fn push(&self, x: T, cx: &mut Cx) {
        (**self).push(x, cx);
    }

    #[inline(always)]
    fn push_batch(&self, xs: Vec<T>, cx: &mut Cx) {
        (**self).push_batch(xs, cx);
    }

    fn end(&self, cx: &mut Cx) {
        (**self).end(cx);
    }
}

/// The type-erased view of a node, for graph walks, names and counters.
pub(crate) trait NodeDyn: Send + Sync + 'static {
    fn meta(&self) -> &Meta;
    fn links(&self) -> Vec<DownLink>;
    fn emitted(&self) -> u64;
    fn errors(&self) -> u64;
    fn held(&self) -> u64;
    fn room(&self) -> Room;
    /// Cuts this node's active edge to the node at `addr` (see `Outputs::disconnect`):
    /// whether it was a feedback edge, whether it had delivered this node's end, and what it
    /// held, for the caller to drop outside the topology lock.
    fn cut_to(&self, addr: *const ()) -> Option<(bool, bool, Box<dyn Any + Send>)>;
    /// Tells the node at `addr` that this one has ended, on their edge only.
    fn end_to(&self, addr: *const (), cx: &mut Cx);
    /// Ends the node now (see `Node::finish`).
    fn finish_now(&self, cx: &mut Cx);
}

/// What a node says when asked whether it has room for one more element (see
/// [`Operator::room`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// The node passes what it takes on synchronously: ask its targets.
    PassOn,
    /// The node takes an element now without making the push wait, and passes nothing on
    /// synchronously (a queue drained by a task, a pull adapter).
    Free,
    /// A push now would make the caller wait.
    Full,
}

/// A node that produces elements of type `T`: what a `Stream<T>` handle points to.
pub(crate) trait Producer<T>: NodeDyn {
    fn outputs(&self) -> &Outputs<T>;
}

/// What a node does. Inputs are declared with [`Input`].
pub(crate) trait Operator: Send + Sync + Sized + 'static {
    /// The element type this node emits.
    type Out: Item;

    /// Called once, when the node ends, before its targets are ended: flush what is held.
    fn on_end(&self, _out: &Outputs<Self::Out>, _cx: &mut Cx) {}

    /// When true, the node passes on exactly one output per element it receives (with
    /// `Outputs::pass`, which does not count), unless its own function panics on it or a
    /// panic earlier in a batch dropped it (counted in `Outputs::skipped`): its `emitted` is
    /// derived from `received`, saving a counter update per element.
    const PASSES_EACH: bool = false;

    /// When true, ending the node does not end its targets: the operator's background task
    /// does, once it has drained what it holds (see `graph::task`).
    const DEFERS_END: bool = false;

    /// [`DEFERS_END`](Self::DEFERS_END) for this node: an operator whose background task is
    /// optional (a window's idle timer) decides per node.
    #[inline]
    fn defers_end(&self) -> bool {
        Self::DEFERS_END
    }

    /// How many elements the node holds right now (the `held` counter).
    fn held(&self) -> usize {
        0
    }

    /// Whether the node would take one more element now without making the push wait, for
    /// [`Source::try_emit`](crate::Source::try_emit). The default, [`Room::PassOn`], fits
    /// nodes that pass what they take on synchronously: their targets are asked in turn.
    fn room(&self) -> Room {
        Room::PassOn
    }

    /// The node's side outputs (errors, late events), shown as its targets in graph walks.
    fn sides(&self) -> Vec<Arc<dyn NodeDyn>> {
        Vec::new()
    }
}

/// Input port number `P` of an operator. Single-input operators implement `Input<0>` only;
/// `zip` and friends implement `Input<0>` and `Input<1>`.
pub(crate) trait Input<const P: usize>: Operator {
    type In: Send + 'static;
    fn on_input(&self, x: Self::In, out: &Outputs<Self::Out>, cx: &mut Cx);

    /// A batch of elements, in order, already counted in `received`. The default hands them
    /// to [`on_input`](Self::on_input) one by one; element-wise operators override it to pay
    /// their dispatch once per batch. An override must give the same outputs, in the same
    /// order, as the default; when a user function panics at one element, the outputs of the
    /// elements before it are pushed before the panic goes on.
    fn on_batch(&self, xs: Vec<Self::In>, out: &Outputs<Self::Out>, cx: &mut Cx) {
        for x in xs {
            self.on_input(x, out, cx);
        }
    }

    /// Called each time an upstream feeding this port ends (before the node itself may end).
    fn on_upstream_end(&self, _out: &Outputs<Self::Out>, _cx: &mut Cx) {}
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct UpLink {
    node: Weak<dyn NodeDyn>,
    feedback: bool,
}

#[derive(Default)]
struct Links {
    ups: Vec<UpLink>,
    forward: isize,
    /// Ends counted from forward upstreams. Signed: a cut that takes back an end may run just
    /// before that end is counted (see `Outputs::end`), and the count is right once both ran.
    ended: isize,
    done: bool,
}

/// A node's kind and user-given name, shared with its [`Outputs`] so that a panic in one of
/// its functions can name it.
pub(crate) struct Label {
    kind: &'static str,
    name: Lock<Option<String>>,
}

impl Label {
    /// The user-given name, or the operator's kind.
    pub(crate) fn display(&self) -> String {
        self.name
            .lock()
            .clone()
            .unwrap_or_else(|| self.kind.to_string())
    }
}

/// Name, counters and upstream links of a node.
pub(crate) struct Meta {
    id: u64,
    label: Arc<Label>,
    pub(crate) received: Counter,
    links: Lock<Links>,
}

impl Meta {
    pub(crate) fn new(kind: &'static str) -> Meta {
        Meta {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            label: Arc::new(Label {
                kind,
                name: Lock::new(None),
            }),
            received: Counter::default(),
            links: Lock::new(Links::default()),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn kind(&self) -> &'static str {
        self.label.kind
    }

    /// The user-given name, or the operator's kind.
    pub(crate) fn name(&self) -> String {
        self.label.display()
    }

    pub(crate) fn set_name(&self, name: String) {
        *self.label.name.lock() = Some(name);
    }

    pub(crate) fn add_uplink(&self, node: Weak<dyn NodeDyn>, feedback: bool) {
        let mut l = self.links.lock();
        l.ups.push(UpLink { node, feedback });
        if !feedback {
            l.forward += 1;
        }
    }

    /// Forgets the upstream at `addr` (cut by `disconnect`). `ended` says whether it had
    /// already delivered its end: that end no longer counts, so the node still waits for every
    /// upstream it has left. Returns whether every upstream left has ended (at least one
    /// forward upstream left, and the node not done yet): a multi-input node then ends, as it
    /// would have had the cut input ended.
    pub(crate) fn remove_uplink(&self, addr: *const (), forward: bool, ended: bool) -> bool {
        let mut l = self.links.lock();
        if let Some(i) = l
            .ups
            .iter()
            .position(|u| Weak::as_ptr(&u.node) as *const () == addr && u.feedback != forward)
        {
            l.ups.remove(i);
            if forward {
                l.forward -= 1;
                if ended {
                    l.ended -= 1;
                }
            }
        }
        !l.done && l.forward > 0 && l.ended >= l.forward
    }

    /// Live upstream nodes, with whether each link is a feedback edge.
    pub(crate) fn uplinks(&self) -> Vec<(Arc<dyn NodeDyn>, bool)> {
        self.links
            .lock()
            .ups
            .iter()
            .filter_map(|u| u.node.upgrade().map(|n| (n, u.feedback)))
            .collect()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.links.lock().done
    }

    /// Whether every forward upstream has ended (true when there is none).
    pub(crate) fn upstreams_ended(&self) -> bool {
        let l = self.links.lock();
        l.ended >= l.forward
    }

    /// Marks the node done; true the first time only.
    fn mark_done(&self) -> bool {
        !std::mem::replace(&mut self.links.lock().done, true)
    }

    /// Counts one forward upstream as ended; true when that makes all of them ended.
    fn count_end(&self) -> bool {
        let mut l = self.links.lock();
        l.ended += 1;
        !l.done && l.ended >= l.forward
    }
}

/// The generic node: an operator plus its metadata and outgoing edges.
pub(crate) struct Node<Op: Operator> {
    pub(crate) meta: Meta,
    pub(crate) op: Op,
    pub(crate) out: Outputs<Op::Out>,
}

impl<Op: Operator> Node<Op> {
    pub(crate) fn new(kind: &'static str, op: Op) -> Node<Op> {
        let meta = Meta::new(kind);
        let out = Outputs::new(meta.label.clone());
        Node { meta, op, out }
    }

    /// Ends the node now, whatever its upstreams do: flush, then end the targets.
    ///
    /// A panic during the flush still ends the targets (so nothing downstream waits for an
    /// end that never comes), then goes on to the caller.
    pub(crate) fn finish(&self, cx: &mut Cx) {
        if self.meta.mark_done() {
            let flushed = catch_unwind(AssertUnwindSafe(|| self.op.on_end(&self.out, cx)));
            if !self.op.defers_end() {
                self.out.end(cx);
            }
            if let Err(payload) = flushed {
                resume_unwind(payload);
            }
        }
    }

    pub(crate) fn upstream_ended(&self, cx: &mut Cx) {
        if self.meta.count_end() {
            self.finish(cx);
        }
    }
}

impl<Op: Operator> NodeDyn for Node<Op> {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn links(&self) -> Vec<DownLink> {
        let mut links = self.out.links();
        links.extend(self.op.sides().into_iter().map(|node| DownLink {
            node: Some(node),
            feedback: false,
        }));
        links
    }

    fn emitted(&self) -> u64 {
        if Op::PASSES_EACH {
            let lost = self.out.errors.get() + self.out.skipped.get();
            self.meta.received.get().saturating_sub(lost)
        } else {
            self.out.emitted.get()
        }
    }

    fn errors(&self) -> u64 {
        self.out.errors.get()
    }

    fn cut_to(&self, addr: *const ()) -> Option<(bool, bool, Box<dyn Any + Send>)> {
        self.out.disconnect(addr).map(|cut| {
            (
                cut.feedback,
                cut.ended,
                Box::new(cut) as Box<dyn Any + Send>,
            )
        })
    }

    fn end_to(&self, addr: *const (), cx: &mut Cx) {
        self.out.end_to(addr, cx);
    }

    fn finish_now(&self, cx: &mut Cx) {
        self.finish(cx);
    }

    fn held(&self) -> u64 {
        self.op.held() as u64
    }

    fn room(&self) -> Room {
        self.op.room()
    }
}

impl<Op: Operator> Producer<Op::Out> for Node<Op> {
    fn outputs(&self) -> &Outputs<Op::Out> {
        &self.out
    }
}

impl<Op: Input<0>> Push<<Op as Input<0>>::In> for Node<Op> {
    #[inline]
    fn push(&self, x: <Op as Input<0>>::In, cx: &mut Cx) {
        self.meta.received.inc();
        self.op.on_input(x, &self.out, cx);
    }

    #[inline]
    fn push_batch(&self, xs: Vec<<Op as Input<0>>::In>, cx: &mut Cx) {
        self.meta.received.add(xs.len());
        self.op.on_batch(xs, &self.out, cx);
    }

    fn end(&self, cx: &mut Cx) {
        <Op as Input<0>>::on_upstream_end(&self.op, &self.out, cx);
        self.upstream_ended(cx);
    }
}

/// Input port `P > 0` of a multi-input node.
pub(crate) struct Port<Op: Operator, const P: usize>(pub(crate) Arc<Node<Op>>);

impl<Op: Input<P>, const P: usize> Push<<Op as Input<P>>::In> for Port<Op, P> {
    #[inline]
    fn push(&self, x: <Op as Input<P>>::In, cx: &mut Cx) {
        self.0.meta.received.inc();
        self.0.op.on_input(x, &self.0.out, cx);
    }

    #[inline]
    fn push_batch(&self, xs: Vec<<Op as Input<P>>::In>, cx: &mut Cx) {
        self.0.meta.received.add(xs.len());
        <Op as Input<P>>::on_batch(&self.0.op, xs, &self.0.out, cx);
    }

    fn end(&self, cx: &mut Cx) {
        <Op as Input<P>>::on_upstream_end(&self.0.op, &self.0.out, cx);
        self.0.upstream_ended(cx);
    }
}
