//! A node's outgoing edges, read on every push without a lock or a read-modify-write.
//!
//! Topology changes (adding an operator, `connect`, `disconnect`) are rare; pushes are many. So
//! the edge list is append-only: slots are `OnceLock`s filled in order under the global topology
//! lock, and a reader walks them with acquire loads (plain loads on x86) until the first empty
//! slot. An edge made by an operator lives as long as its node and is never removed.
//!
//! An edge made by `connect` is a reusable [`Slot`]: its target sits behind a small lock,
//! `disconnect` empties it (so the target is freed at once when nothing else holds it) and
//! turns the edge's `active` flag off, and the next `connect` refills the first empty slot
//! before it appends one. So a node that is connected and disconnected many times keeps as many
//! edges as it ever had connections at once, and a change costs the same after a million of
//! them as after one. Only pushes through a `connect` edge pay for the lock (and the count
//! update that keeps the target alive while the push is under way); operator edges, the hot
//! path, do not.
//!
//! A push through a feedback edge (one that closes a cycle) does not call into its target while
//! another feedback push is under way on the same thread: it queues the push on a thread-local
//! queue, and the outermost feedback push drains that queue in a loop once its own push has
//! returned. A loop through synchronous nodes therefore runs in constant stack however many
//! turns it makes; its elements go round breadth-first rather than depth-first.
//!
//! Invariants:
//! - Slots are filled in order, so a reader that sees slot `k` filled also sees slots `0..k`.
//! - The shape byte says "one edge" only once slot 0 is filled and is its only active edge; a
//!   push that reads that shape (with `Acquire`) takes slot 0 without checking it again.
//! - A forward edge owns its target (`Arc`): a graph lives as long as its sources, and a sink
//!   needs no handle. A feedback edge holds its target weakly (`Weak`), so cycles never keep
//!   memory alive; the target is owned by its own upstream path.
//! - Fan-out delivers in edge order: creation order, except that a `connect` may take the place
//!   of an earlier, disconnected one. Every branch but the last gets a clone and the last gets
//!   the element itself.
//! - A node is connected to a given target at most once.
//! - The feedback queue is empty whenever no feedback push is under way on its thread, also
//!   after a push from the queue panicked (what was still queued is dropped with the panic).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use super::ack::{Acks, note_panic_site, panic_site};
use super::cx::Cx;
use super::error::Error;
use super::node::{Label, NodeDyn, Push};
use super::sync::{Counter, Lock};

const CHUNK: usize = 4;

/// A panic caught in a batch, to be resumed once what came before it was pushed.
pub(crate) type Panic = Box<dyn std::any::Any + Send>;

/// Where an edge leads: an input port to push into, and who keeps it alive.
///
/// A push through an edge is one indirect call on the port's own address (`port`, `call`):
/// going from one node to the next is a single dependent load. Dispatching through the owning
/// `Box<dyn Push>` instead would cost two (the box, then the `Arc` inside it), and through an
/// `Arc<dyn Push>` also two (the vtable's alignment feeds the data address); in a deep chain
/// those loads are the critical path, and `benchmarks/benches/overhead.rs` measures the difference (see
/// BENCHMARKS.md). `owner` keeps the port alive for as long as the edge exists and serves the
/// cold paths (`end`, graph walks).
pub(crate) struct Target<T> {
    port: usize,
    call: unsafe fn(usize, T, &mut Cx),
    /// The same port's batch entry (see `Push::push_batch`).
    call_batch: unsafe fn(usize, Vec<T>, &mut Cx),
    owner: Owner<T>,
}

enum Owner<T> {
    /// An edge made by an operator: it owns its target for as long as it exists.
    Fixed {
        port: Box<dyn Push<T>>,
        node: Arc<dyn NodeDyn>,
    },
    /// An edge made by `connect`: `port` points at the slot itself.
    Slot(Box<Slot<T>>),
}

/// Pushes into the `P` at address `port`.
///
/// # Safety
///
/// `port` must be the address of a live `P`. `Target` guarantees it: `port` points into what
/// its `owner` owns (the `Arc<P>`'s value, or the boxed `Slot`), and an edge is only read
/// through a shared borrow of the node that holds it, which keeps `owner` alive.
#[inline(always)]
unsafe fn call_port<T, P: Push<T>>(port: usize, x: T, cx: &mut Cx) {
    // SAFETY: see the function's contract above.
    let p = unsafe { &*std::ptr::with_exposed_provenance::<P>(port) };
    p.push(x, cx);
}

/// Pushes a batch into the `P` at address `port`.
///
/// # Safety
///
/// As for [`call_port`].
unsafe fn call_port_batch<T, P: Push<T>>(port: usize, xs: Vec<T>, cx: &mut Cx) {
    // SAFETY: see the function's contract above.
    let p = unsafe { &*std::ptr::with_exposed_provenance::<P>(port) };
    p.push_batch(xs, cx);
}

impl<T: 'static> Target<T> {
    /// An operator's edge: it owns its target.
    pub(crate) fn forward<P: Push<T>>(port: Arc<P>, node: Arc<dyn NodeDyn>) -> Target<T> {
        Target {
            port: Arc::as_ptr(&port).expose_provenance(),
            call: call_port::<T, P>,
            call_batch: call_port_batch::<T, P>,
            owner: Owner::Fixed {
                port: Box::new(port),
                node,
            },
        }
    }

    /// A `connect` edge, holding `conn`.
    fn slot(conn: Conn<T>) -> Target<T> {
        let slot = Box::new(Slot {
            conn: Lock::new(Some(conn)),
        });
        Target {
            port: (&*slot as *const Slot<T>).expose_provenance(),
            call: call_port::<T, Slot<T>>,
            call_batch: call_port_batch::<T, Slot<T>>,
            owner: Owner::Slot(slot),
        }
    }
}

/// What a `connect` edge leads to.
pub(crate) struct Conn<T> {
    /// The target's address, to find the connection again.
    addr: usize,
    link: ConnLink<T>,
}

enum ConnLink<T> {
    /// A forward connection owns its target.
    Forward {
        port: Arc<dyn Push<T>>,
        node: Arc<dyn NodeDyn>,
    },
    /// A feedback connection closes a cycle, so it holds its target weakly.
    Feedback {
        port: Weak<dyn Push<T>>,
        node: Weak<dyn NodeDyn>,
    },
}

impl<T: 'static> Conn<T> {
    /// A connection that makes no cycle: it owns `port` (an input port of `node`), and is
    /// found again by `node`'s address.
    pub(crate) fn forward<P: Push<T>>(port: Arc<P>, node: Arc<dyn NodeDyn>) -> Conn<T> {
        Conn {
            addr: Arc::as_ptr(&node) as *const () as usize,
            link: ConnLink::Forward { port, node },
        }
    }

    /// A connection that closes a cycle: it holds `port` weakly.
    pub(crate) fn feedback<P: Push<T>>(port: &Arc<P>, node: &Arc<dyn NodeDyn>) -> Conn<T> {
        let weak: Weak<P> = Arc::downgrade(port);
        Conn {
            addr: Arc::as_ptr(node) as *const () as usize,
            link: ConnLink::Feedback {
                port: weak,
                node: Arc::downgrade(node),
            },
        }
    }

    /// Whether this connection closes a cycle.
    pub(crate) fn is_feedback(&self) -> bool {
        matches!(self.link, ConnLink::Feedback { .. })
    }
}

/// What [`Outputs::disconnect`] cut: the connection it held (dropped by the caller outside the
/// topology lock), whether it was a feedback edge, and whether it had delivered its upstream's
/// end to the target.
pub(crate) struct Cut<T> {
    _conn: Option<Conn<T>>,
    pub(crate) feedback: bool,
    pub(crate) ended: bool,
}

/// A `connect` edge's reusable slot (see the module documentation).
struct Slot<T> {
    conn: Lock<Option<Conn<T>>>,
}

impl<T: 'static> Slot<T> {
    fn addr(&self) -> Option<usize> {
        self.conn.lock().as_ref().map(|c| c.addr)
    }

    /// Nothing took the element: if the slot is a feedback edge whose target is gone (every
    /// handle of the source was dropped), the graph ended under the element, as when it
    /// reaches a closed source, and its tokens fail. An empty slot just drops it.
    #[cold]
    fn lost_feedback(&self, cx: &mut Cx) {
        if self.conn.lock().as_ref().is_some_and(Conn::is_feedback) {
            cx.acks.fail(&Error::Closed);
        }
    }
}

impl<T: 'static> Slot<T> {
    /// The target, cloned out under the lock (so a concurrent `disconnect` cannot free it under
    /// a push, and the lock is not held across the push), and whether the edge is a feedback
    /// edge. `None` when the slot is empty or its feedback target is gone.
    fn target(&self) -> Option<(Arc<dyn Push<T>>, bool)> {
        match self.conn.lock().as_ref().map(|c| &c.link) {
            None => None,
            Some(ConnLink::Forward { port, .. }) => Some((port.clone(), false)),
            Some(ConnLink::Feedback { port, .. }) => port.upgrade().map(|port| (port, true)),
        }
    }
}

impl<T: 'static> Push<T> for Slot<T> {
    fn push(&self, x: T, cx: &mut Cx) {
        match self.target() {
            None => self.lost_feedback(cx),
            Some((port, true)) => push_feedback(port, move |p, cx| p.push(x, cx), cx),
            Some((port, false)) => port.push(x, cx),
        }
    }

    fn push_batch(&self, xs: Vec<T>, cx: &mut Cx) {
        match self.target() {
            None => self.lost_feedback(cx),
            Some((port, true)) => push_feedback(port, move |p, cx| p.push_batch(xs, cx), cx),
            Some((port, false)) => port.push_batch(xs, cx),
        }
    }

    fn end(&self, cx: &mut Cx) {
        // A feedback edge never ends its target.
        let port = match self.conn.lock().as_ref().map(|c| &c.link) {
            Some(ConnLink::Forward { port, .. }) => port.clone(),
            _ => return,
        };
        port.end(cx);
    }
}

/// A push waiting on the feedback queue: it runs with the outermost feedback push's context.
type Looped = Box<dyn FnOnce(&mut Cx)>;

struct FeedbackQueue {
    /// A feedback push is under way on this thread: the next ones queue.
    running: Cell<bool>,
    queue: RefCell<VecDeque<Looped>>,
}

thread_local! {
    static FEEDBACK: FeedbackQueue = const {
        FeedbackQueue {
            running: Cell::new(false),
            queue: RefCell::new(VecDeque::new()),
        }
    };
}

/// Resets the queue when the outermost feedback push ends, also by a panic: what is still
/// queued then is dropped (outside the borrow, since dropping it may run user code).
struct Draining<'a>(&'a FeedbackQueue);

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        let left = std::mem::take(&mut *self.0.queue.borrow_mut());
        self.0.running.set(false);
        drop(left);
    }
}

/// Pushes into `port` over a feedback edge (`push` pushes one element or a batch): at once if no other feedback push is under way
/// on this thread, else on the thread's queue (see the module documentation). Either way the
/// push never makes the emission wait (a loop waiting on its own bounded nodes would wait on
/// itself: the node that must make room is the one whose push is waiting), and its failures
/// reach `cx`, the context of the outermost feedback push, and so the caller of `emit`.
fn push_feedback<T: 'static>(
    port: Arc<dyn Push<T>>,
    push: impl FnOnce(&dyn Push<T>, &mut Cx) + 'static,
    cx: &mut Cx,
) {
    let acks = cx.acks.clone();
    let run = move |cx: &mut Cx| {
        let mut looped = Cx::with_acks(acks);
        push(&*port, &mut looped);
        cx.absorb_failures(looped);
    };
    match FEEDBACK.try_with(|q| q.running.get()) {
        Ok(false) => {}
        Ok(true) => {
            FEEDBACK.with(|q| q.queue.borrow_mut().push_back(Box::new(run)));
            return;
        }
        // The thread is being torn down: no queue any more, push directly.
        Err(_) => return run(cx),
    }
    FEEDBACK.with(|q| {
        q.running.set(true);
        let _reset = Draining(q);
        run(cx);
        loop {
            let next = q.queue.borrow_mut().pop_front();
            match next {
                Some(run) => run(cx),
                None => break,
            }
        }
    });
}

struct Edge<T> {
    target: Target<T>,
    active: AtomicBool,
    /// Set when this edge delivered its upstream's end, so that cutting the edge later takes
    /// that end back from the target's count (see [`Outputs::disconnect`]).
    ended: AtomicBool,
}

impl<T: 'static> Edge<T> {
    #[inline(always)]
    fn deliver(&self, x: T, cx: &mut Cx) {
        // SAFETY: `port` and `call` were made together by `Target::forward` or
        // `Target::slot`, and `self` (so `owner`) is alive while we hold `&self`.
        unsafe { (self.target.call)(self.target.port, x, cx) }
    }

    #[inline(always)]
    fn deliver_batch(&self, xs: Vec<T>, cx: &mut Cx) {
        // SAFETY: as in `deliver`.
        unsafe { (self.target.call_batch)(self.target.port, xs, cx) }
    }

    fn slot(&self) -> Option<&Slot<T>> {
        match &self.target.owner {
            Owner::Slot(s) => Some(s),
            Owner::Fixed { .. } => None,
        }
    }

    /// Whether the edge leads to the target at `addr`: the address a `connect` edge was made
    /// for, or an operator edge's node.
    fn leads_to(&self, addr: usize) -> bool {
        match &self.target.owner {
            Owner::Slot(s) => s.addr() == Some(addr),
            Owner::Fixed { node, .. } => Arc::as_ptr(node) as *const () as usize == addr,
        }
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
}

/// The outgoing edges of a node, plus its `emitted` and `errors` counters.
pub(crate) struct Outputs<T> {
    first: Chunk<T>,
    /// The shape of the edge list, so a push checks one byte: [`NO_EDGE`], [`ONE_EDGE`] (slot
    /// 0 is the only active edge) or [`FAN_OUT`]. Rewritten under the topology lock after every
    /// change.
    shape: AtomicU8,
    pub(crate) emitted: Counter,
    /// For nodes whose `emitted` is derived from `received` (see `Operator::PASSES_EACH`):
    /// the elements they received but did not pass on without a panic of their own, the
    /// ones after a panic in a batch.
    pub(crate) skipped: Counter,
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
            skipped: Counter::default(),
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

    /// Runs `f` on every element of `xs`, in order, as [`call`](Self::call) runs one function,
    /// and collects its `Some` results (in place, with no allocation, when the input and
    /// output types have the same size and alignment). A panic in `f` stops the batch: the
    /// results before it are returned with the panic, which the caller hands to
    /// [`push_batch_then`](Self::push_batch_then) so that they are pushed before it goes on.
    /// The elements after the panicking one are dropped.
    #[inline]
    pub(crate) fn call_each<X, Y>(
        &self,
        xs: Vec<X>,
        mut f: impl FnMut(X) -> Option<Y>,
    ) -> (Vec<Y>, Option<Panic>) {
        let mut panic = None;
        let ys = xs
            .into_iter()
            .filter_map(|x| {
                if panic.is_some() {
                    return None;
                }
                match catch_unwind(AssertUnwindSafe(|| self.call(|| f(x)))) {
                    Ok(y) => y,
                    Err(payload) => {
                        panic = Some(payload);
                        None
                    }
                }
            })
            .collect();
        (ys, panic)
    }

    /// Pushes the batch of outputs, then lets the panic that interrupted it (if any) go on
    /// (see [`call_each`](Self::call_each)).
    #[inline]
    pub(crate) fn push_batch_then(&self, (ys, panic): (Vec<T>, Option<Panic>), cx: &mut Cx)
    where
        T: Clone,
    {
        self.push_batch(ys, cx);
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
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

    /// Pushes several outputs built from held elements (a flush), each with its own tokens.
    /// A panic while one is pushed does not lose the others: every output is pushed, then the
    /// first panic goes on to the caller.
    pub(crate) fn push_each_acked(&self, outputs: impl IntoIterator<Item = (T, Acks)>, cx: &mut Cx)
    where
        T: Clone,
    {
        let mut panic = None;
        let saved = std::mem::take(&mut cx.acks);
        for (x, acks) in outputs {
            cx.acks = acks;
            let pushed = catch_unwind(AssertUnwindSafe(|| self.push(x, cx)));
            if let Err(payload) = pushed {
                // This output is lost: its tokens fail with the panic's own message.
                let node = panic_site().unwrap_or_else(|| "unknown".to_string());
                cx.acks.fail(&Error::panicked(&node, &*payload));
                panic.get_or_insert(payload);
            }
        }
        cx.acks = saved;
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
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
        self.pass(x, cx);
    }

    /// Pushes `x` on like [`push`](Self::push), without counting it in `emitted`: for nodes
    /// that pass on every element they receive (see `Operator::PASSES_EACH`), whose `emitted`
    /// is derived from `received`.
    #[inline(always)]
    pub(crate) fn pass(&self, x: T, cx: &mut Cx)
    where
        T: Clone,
    {
        // Fast path: a single edge, the shape of most of a graph, checked with one compare.
        // It needs no saved registers, so the push into the next node compiles to a tail call.
        if self.shape.load(Ordering::Acquire) == ONE_EDGE {
            self.single().deliver(x, cx);
        } else {
            self.push_fan_out(x, cx);
        }
    }

    /// The edge in slot 0, when `shape` (loaded with `Acquire`) said [`ONE_EDGE`].
    ///
    /// A hop costs about a dozen instructions, and checking the slot's `OnceLock` again would
    /// add a load, a test and a branch to every hop of a chain: measured with callgrind on
    /// `benchmarks/benches/hotpath.rs`, a chain of 10 maps costs 139 instructions per element
    /// without that check and 166 with it (see BENCHMARKS.md).
    #[inline(always)]
    fn single(&self) -> &Edge<T> {
        let slot = self.first.slots[0].get();
        debug_assert!(slot.is_some(), "ONE_EDGE with an empty slot 0");
        // SAFETY: `shape` becomes `ONE_EDGE` only in `reshape`, which runs (under the topology
        // lock) after slot 0 was filled and stores `shape` with `Release`; the caller loaded
        // it with `Acquire`, so it sees the filled slot. A slot, once filled, is never emptied
        // while `self` lives.
        unsafe { slot.unwrap_unchecked() }
    }

    /// No edge, or fan-out: every branch but the last gets a clone, the last gets `x`.
    #[inline(never)]
    fn push_fan_out(&self, x: T, cx: &mut Cx)
    where
        T: Clone,
    {
        if self.shape.load(Ordering::Acquire) == NO_EDGE {
            return;
        }
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

    /// Pushes a batch to every active edge, in creation order: one call per edge for the whole
    /// batch. Counts every element in `emitted`. An empty batch goes nowhere.
    #[inline]
    pub(crate) fn push_batch(&self, xs: Vec<T>, cx: &mut Cx)
    where
        T: Clone,
    {
        self.emitted.add(xs.len());
        self.pass_batch(xs, cx);
    }

    /// Pushes a batch on like [`push_batch`](Self::push_batch), without counting it in
    /// `emitted` (see [`pass`](Self::pass)).
    #[inline]
    pub(crate) fn pass_batch(&self, xs: Vec<T>, cx: &mut Cx)
    where
        T: Clone,
    {
        if xs.is_empty() {
            return;
        }
        match self.shape.load(Ordering::Acquire) {
            ONE_EDGE => self.single().deliver_batch(xs, cx),
            NO_EDGE => {}
            _ => self.push_fan_out_batch(xs, cx),
        }
    }

    /// Fan-out of a batch: every branch but the last gets a clone of the `Vec`.
    #[inline(never)]
    fn push_fan_out_batch(&self, xs: Vec<T>, cx: &mut Cx)
    where
        T: Clone,
    {
        let mut prev: Option<&Edge<T>> = None;
        for e in self.edges() {
            if !e.active.load(Ordering::Acquire) {
                continue;
            }
            if let Some(p) = prev.replace(e) {
                p.deliver_batch(xs.clone(), cx);
            }
        }
        if let Some(p) = prev {
            p.deliver_batch(xs, cx);
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
            if !e.active.load(Ordering::Acquire) || e.ended.swap(true, Ordering::AcqRel) {
                continue;
            }
            let ended = catch_unwind(AssertUnwindSafe(|| match &e.target.owner {
                Owner::Fixed { port, .. } => port.end(cx),
                Owner::Slot(slot) => slot.end(cx),
            }));
            if let Err(payload) = ended {
                panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
    }

    /// Tells the target at `addr` (on its active forward edge, if any) that this upstream
    /// has ended, as [`end`](Self::end) does for every target.
    pub(crate) fn end_to(&self, addr: *const (), cx: &mut Cx) {
        for e in self.edges() {
            if e.active.load(Ordering::Acquire)
                && e.leads_to(addr as usize)
                && !e.ended.swap(true, Ordering::AcqRel)
            {
                match &e.target.owner {
                    Owner::Fixed { port, .. } => port.end(cx),
                    Owner::Slot(slot) => slot.end(cx),
                }
            }
        }
    }

    /// Whether any active edge leads anywhere.
    pub(crate) fn has_active(&self) -> bool {
        self.edges().any(|e| e.active.load(Ordering::Acquire))
    }

    /// Adds an operator's edge. Must be called with the topology lock held.
    pub(crate) fn add(&self, target: Target<T>) {
        self.append(target);
        self.reshape();
    }

    fn append(&self, target: Target<T>) {
        let mut edge = Some(Edge {
            target,
            active: AtomicBool::new(true),
            ended: AtomicBool::new(false),
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
    }

    /// Whether an active edge leads to the target at `addr`: a `connect` edge, or an
    /// operator's edge into a multi-input node (a join's first inputs).
    pub(crate) fn is_connected(&self, addr: *const ()) -> bool {
        self.edges()
            .any(|e| e.active.load(Ordering::Acquire) && e.leads_to(addr as usize))
    }

    /// Adds a `connect` edge holding `conn`, in the first empty slot or a new one. The caller
    /// checks [`is_connected`](Self::is_connected) first. Must be called with the topology lock
    /// held.
    pub(crate) fn connect(&self, conn: Conn<T>) {
        let free = self
            .edges()
            .find(|e| !e.active.load(Ordering::Acquire) && e.slot().is_some());
        match free.and_then(Edge::slot) {
            Some(slot) => {
                *slot.conn.lock() = Some(conn);
                free.expect("a free slot")
                    .active
                    .store(true, Ordering::Release);
            }
            None => self.append(Target::slot(conn)),
        }
        self.reshape();
    }

    /// Recomputes `shape` after a change (topology lock held).
    fn reshape(&self) {
        let (mut active, mut first_active) = (0, false);
        for (i, e) in self.edges().enumerate() {
            if e.active.load(Ordering::Acquire) {
                active += 1;
                first_active |= i == 0;
            }
        }
        let shape = match active {
            0 => NO_EDGE,
            1 if first_active => ONE_EDGE,
            _ => FAN_OUT,
        };
        self.shape.store(shape, Ordering::Release);
    }

    /// Cuts the active edge to the target at `addr` and returns what it held, or `None` when
    /// there was no such edge. A `connect` edge is emptied (its slot is reused by the next
    /// `connect`); an operator's edge into a multi-input node is turned off for good (it keeps
    /// its few bytes until this node goes, and a later `connect` adds a new edge). Must be
    /// called with the topology lock held; the caller drops the result once it has released
    /// the lock (dropping it may free a graph).
    pub(crate) fn disconnect(&self, addr: *const ()) -> Option<Cut<T>> {
        let e = self
            .edges()
            .find(|e| e.active.load(Ordering::Acquire) && e.leads_to(addr as usize))?;
        e.active.store(false, Ordering::Release);
        self.reshape();
        let conn = e.slot().and_then(|s| s.conn.lock().take());
        Some(Cut {
            feedback: conn.as_ref().is_some_and(Conn::is_feedback),
            ended: e.ended.swap(false, Ordering::AcqRel),
            _conn: conn,
        })
    }

    /// How many edges the list holds, active or not (for tests).
    #[cfg(test)]
    pub(crate) fn edge_count(&self) -> usize {
        self.edges().count()
    }

    /// Every active edge, for graph walks.
    pub(crate) fn links(&self) -> Vec<DownLink> {
        self.edges()
            .filter(|e| e.active.load(Ordering::Acquire))
            .filter_map(|e| match &e.target.owner {
                Owner::Fixed { node, .. } => Some(DownLink {
                    node: Some(node.clone()),
                    feedback: false,
                }),
                Owner::Slot(slot) => slot.conn.lock().as_ref().map(|c| match &c.link {
                    ConnLink::Forward { node, .. } => DownLink {
                        node: Some(node.clone()),
                        feedback: false,
                    },
                    ConnLink::Feedback { node, .. } => DownLink {
                        node: node.upgrade(),
                        feedback: true,
                    },
                }),
            })
            .collect()
    }
}
