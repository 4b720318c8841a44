//! A node's outgoing edges, read on every push without a lock or a read-modify-write.
//!
//! Topology changes (adding an operator, `connect`, `disconnect`) are rare; pushes are many. So
//! the edge list is append-only: slots are `OnceLock`s filled in order under the global topology
//! lock, and a reader walks them with acquire loads (plain loads on x86) until the first empty
//! slot. `disconnect` does not remove a slot; it clears the edge's `active` flag (a tombstone),
//! and reconnecting the same target re-activates that slot.
//!
//! Invariants:
//! - Slots are filled in order, so a reader that sees slot `k` filled also sees slots `0..k`.
//! - A forward edge owns its target (`Arc`): a graph lives as long as its sources, and a sink
//!   needs no handle. A feedback edge, one whose target can reach the edge's own node, is a
//!   `Weak`, so cycles never keep memory alive; the target is owned by its own upstream path.
//! - Fan-out delivers in edge creation order; every branch but the last gets a clone and the
//!   last gets the element itself.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use super::ack::{Acks, note_panic_site};
use super::cx::Cx;
use super::node::{Label, NodeDyn, Push};
use super::sync::Counter;

const CHUNK: usize = 4;

/// Where an edge leads: an input port to push into, and the node it belongs to (for graph
/// walks).
///
/// A push through an edge is one indirect call on the port's own address (`port`, `call`):
/// going from one node to the next is a single dependent load. Dispatching through the owning
/// `Box<dyn Push>` instead would cost two (the box, then the `Arc` inside it), and through an
/// `Arc<dyn Push>` also two (the vtable's alignment feeds the data address); in a deep chain
/// those loads are the critical path, and `benches/overhead.rs` measures the difference (see
/// BENCHMARKS.md). `owner` keeps the port alive for as long as the edge exists and serves the
/// cold paths (`end`).
pub(crate) struct Target<T> {
    port: usize,
    call: unsafe fn(usize, T, &mut Cx),
    owner: Box<dyn Push<T>>,
    node: NodeLink,
    addr: usize,
    feedback: bool,
}

/// Pushes into the `P` at address `port`.
///
/// # Safety
///
/// `port` must be the address of a live `P`. `Target` guarantees it: `port` points into what
/// its `owner` owns (the `Arc<P>`'s value, or the boxed `FeedbackPort`), and an edge is only
/// read through a shared borrow of the node that holds it, which keeps `owner` alive.
#[inline(always)]
unsafe fn call_port<T, P: Push<T>>(port: usize, x: T, cx: &mut Cx) {
    // SAFETY: see the function's contract above.
    let p = unsafe { &*std::ptr::with_exposed_provenance::<P>(port) };
    p.push(x, cx);
}

enum NodeLink {
    Forward(Arc<dyn NodeDyn>),
    Feedback(Weak<dyn NodeDyn>),
}

/// A feedback edge's port: it does not own its target, and a push through it never makes the
/// emission wait. A loop that waited on its own nodes would wait on itself: the node that must
/// make room is the one whose push is waiting. Failures still travel back to the caller.
struct FeedbackPort<P>(Weak<P>);

impl<T, P: Push<T>> Push<T> for FeedbackPort<P> {
    fn push(&self, x: T, cx: &mut Cx) {
        if let Some(p) = self.0.upgrade() {
            let mut looped = Cx::with_acks(cx.acks.clone());
            p.push(x, &mut looped);
            cx.absorb_failures(looped);
        }
    }

    fn end(&self, _cx: &mut Cx) {
        // A feedback edge never ends its target.
    }
}

impl<T: 'static> Target<T> {
    /// A forward edge: it owns its target.
    pub(crate) fn forward<P: Push<T>>(port: Arc<P>, node: Arc<dyn NodeDyn>) -> Target<T> {
        let addr = Arc::as_ptr(&port).expose_provenance();
        Target {
            port: addr,
            call: call_port::<T, P>,
            owner: Box::new(port),
            node: NodeLink::Forward(node),
            addr,
            feedback: false,
        }
    }

    /// A feedback edge: it closes a cycle, so it holds its target weakly.
    pub(crate) fn feedback<P: Push<T>>(port: &Arc<P>, node: &Arc<dyn NodeDyn>) -> Target<T> {
        let owner = Box::new(FeedbackPort(Arc::downgrade(port)));
        Target {
            port: (&*owner as *const FeedbackPort<P>).expose_provenance(),
            call: call_port::<T, FeedbackPort<P>>,
            owner,
            node: NodeLink::Feedback(Arc::downgrade(node)),
            addr: Arc::as_ptr(port) as usize,
            feedback: true,
        }
    }
}

struct Edge<T> {
    target: Target<T>,
    active: AtomicBool,
}

impl<T: 'static> Edge<T> {
    #[inline(always)]
    fn deliver(&self, x: T, cx: &mut Cx) {
        // SAFETY: `port` and `call` were made together by `Target::forward` or
        // `Target::feedback`, and `self` (so `owner`) is alive while we hold `&self`.
        unsafe { (self.target.call)(self.target.port, x, cx) }
    }
}

struct Chunk<T> {
    slots: [OnceLock<Edge<T>>; CHUNK],
    next: OnceLock<Box<Chunk<T>>>,
}

impl<T> Chunk<T> {
    fn new() -> Self {
        Chunk {
            slots: std::array::from_fn(|_| OnceLock::new()),
            next: OnceLock::new(),
        }
    }
}

/// One downstream link as seen by graph walks (DOT export, cycle detection).
pub(crate) struct DownLink {
    /// `None` when a feedback target is already gone.
    pub(crate) node: Option<Arc<dyn NodeDyn>>,
    pub(crate) feedback: bool,
    pub(crate) active: bool,
}

/// The outgoing edges of a node, plus its `emitted` and `errors` counters.
pub(crate) struct Outputs<T> {
    first: Chunk<T>,
    /// The shape of the edge list, so a push checks one byte: [`NO_EDGE`], [`ONE_EDGE`] (slot
    /// 0 is the only active edge) or [`FAN_OUT`]. Rewritten under the topology lock after every
    /// change.
    shape: AtomicU8,
    pub(crate) emitted: Counter,
    pub(crate) errors: Counter,
    /// The owning node's name, for errors that name a panicking function's node.
    label: Arc<Label>,
}

const NO_EDGE: u8 = 0;
const ONE_EDGE: u8 = 1;
const FAN_OUT: u8 = 2;

impl<T> Outputs<T> {
    pub(crate) fn new(label: Arc<Label>) -> Self {
        Outputs {
            first: Chunk::new(),
            shape: AtomicU8::new(NO_EDGE),
            emitted: Counter::default(),
            errors: Counter::default(),
            label,
        }
    }

    /// The owning node's name.
    pub(crate) fn name(&self) -> String {
        self.label.display()
    }
}

impl<T: 'static> Outputs<T> {
    /// Runs a user function, counting a panic that unwinds out of it in `errors` and noting
    /// this node as where the panic began (so errors and failed tokens can name it). Free on
    /// the non-panicking path: the guard is forgotten, only the unwind landing pad remains.
    #[inline(always)]
    pub(crate) fn call<R>(&self, f: impl FnOnce() -> R) -> R {
        struct CountPanic<'a, T>(&'a Outputs<T>);
        impl<T> Drop for CountPanic<'_, T> {
            #[cold]
            fn drop(&mut self) {
                self.0.errors.inc_exact();
                note_panic_site(self.0.name());
            }
        }
        let guard = CountPanic(self);
        let r = f();
        std::mem::forget(guard);
        r
    }

    /// Pushes an element built by this node from held elements, carrying `acks` (their tokens)
    /// instead of the tokens of the push in progress.
    pub(crate) fn push_acked(&self, x: T, acks: Acks, cx: &mut Cx)
    where
        T: Clone,
    {
        let saved = std::mem::replace(&mut cx.acks, acks);
        self.push(x, cx);
        cx.acks = saved;
    }

    fn edges(&self) -> impl Iterator<Item = &Edge<T>> {
        let mut chunk = Some(&self.first);
        let mut i = 0;
        std::iter::from_fn(move || {
            loop {
                let c = chunk?;
                if i == CHUNK {
                    chunk = c.next.get().map(|b| &**b);
                    i = 0;
                    continue;
                }
                let e = c.slots[i].get();
                i += 1;
                if e.is_none() {
                    chunk = None;
                }
                return e;
            }
        })
    }

    /// Pushes `x` to every active edge, in creation order.
    #[inline(always)]
    pub(crate) fn push(&self, x: T, cx: &mut Cx)
    where
        T: Clone,
    {
        self.emitted.inc();
        match self.shape.load(Ordering::Acquire) {
            // Fast path: a single edge, the shape of most of a graph. It needs no saved
            // registers, so the push into the next node compiles to a tail call.
            ONE_EDGE => {
                if let Some(e) = self.first.slots[0].get() {
                    e.deliver(x, cx);
                }
            }
            NO_EDGE => {}
            _ => self.push_fan_out(x, cx),
        }
    }

    /// Fan-out: every branch but the last gets a clone, the last gets `x`.
    #[inline(never)]
    fn push_fan_out(&self, x: T, cx: &mut Cx)
    where
        T: Clone,
    {
        let mut prev: Option<&Edge<T>> = None;
        for e in self.edges() {
            if !e.active.load(Ordering::Acquire) {
                continue;
            }
            if let Some(p) = prev.replace(e) {
                p.deliver(x.clone(), cx);
            }
        }
        if let Some(p) = prev {
            p.deliver(x, cx);
        }
    }

    /// Tells every active forward target that this upstream has ended. Feedback edges are
    /// skipped: a feedback edge never keeps its target open, nor closes it.
    ///
    /// A panic while one target flushes does not stop the others from ending: it is caught,
    /// every other target is ended, and then it goes on to the caller.
    pub(crate) fn end(&self, cx: &mut Cx) {
        let mut panic = None;
        for e in self.edges() {
            if !e.target.feedback && e.active.load(Ordering::Acquire) {
                let ended = catch_unwind(AssertUnwindSafe(|| e.target.owner.end(cx)));
                if let Err(payload) = ended {
                    panic.get_or_insert(payload);
                }
            }
        }
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
    }

    /// Whether any active edge leads anywhere.
    pub(crate) fn has_active(&self) -> bool {
        self.edges().any(|e| e.active.load(Ordering::Acquire))
    }

    /// Adds an edge, or re-activates a tombstoned edge of the same kind to the same target.
    /// Must be called with the topology lock held.
    pub(crate) fn add(&self, target: Target<T>) {
        for e in self.edges() {
            if e.target.addr == target.addr
                && e.target.feedback == target.feedback
                && !e.active.load(Ordering::Acquire)
            {
                e.active.store(true, Ordering::Release);
                self.reshape();
                return;
            }
        }
        let mut edge = Some(Edge {
            target,
            active: AtomicBool::new(true),
        });
        let mut chunk = &self.first;
        'placed: loop {
            for slot in &chunk.slots {
                if slot.get().is_none() {
                    let _ = slot.set(edge.take().expect("edge placed once"));
                    break 'placed;
                }
            }
            chunk = chunk.next.get_or_init(|| Box::new(Chunk::new()));
        }
        self.reshape();
    }

    /// Recomputes `shape` after a change (topology lock held).
    fn reshape(&self) {
        let active: Vec<bool> = self
            .edges()
            .map(|e| e.active.load(Ordering::Acquire))
            .collect();
        let shape = match active.iter().filter(|a| **a).count() {
            0 => NO_EDGE,
            1 if active[0] => ONE_EDGE,
            _ => FAN_OUT,
        };
        self.shape.store(shape, Ordering::Release);
    }

    /// Tombstones the active edge to the target at `addr`. Returns whether it was a forward
    /// edge, or `None` when there was no such active edge. Must be called with the topology lock
    /// held.
    pub(crate) fn remove(&self, addr: *const ()) -> Option<bool> {
        let e = self
            .edges()
            .find(|e| e.target.addr == addr as usize && e.active.load(Ordering::Acquire))?;
        e.active.store(false, Ordering::Release);
        self.reshape();
        Some(!e.target.feedback)
    }

    /// Every edge, for graph walks.
    pub(crate) fn links(&self) -> Vec<DownLink> {
        self.edges()
            .map(|e| DownLink {
                node: match &e.target.node {
                    NodeLink::Forward(n) => Some(n.clone()),
                    NodeLink::Feedback(n) => n.upgrade(),
                },
                feedback: e.target.feedback,
                active: e.active.load(Ordering::Acquire),
            })
            .collect()
    }
}
