//! Background tasks: what runtime-driven nodes (buffer, delay, windows, parallel map) share.
//!
//! Such a node accepts elements into a [`Mailbox`] on the caller's push, and a task spawned on
//! the ambient tokio runtime takes them out and pushes them downstream with [`forward`], one
//! at a time, awaiting each downstream emission: that is how backpressure crosses the task.
//! A task may take everything queued at once into its own [`Batch`] (one lock per batch, not
//! per element); the elements it holds there still count against the box's capacity.
//!
//! Invariants:
//! - A mailbox accepts every element it is given (so a dropped `Emit` loses nothing) and makes
//!   the push wait while it holds more than its capacity, unless the push comes from the task
//!   that drains it (a feedback loop back into the node): only that task makes room, so it
//!   must never wait for it. Its task and its waiting pushes are
//!   woken only when they said they wait (a flag set under the box's lock after their
//!   `Notified` was created), so no wake-up is lost and none is wasted.
//! - The box's level is what it queues plus what its task took into a [`Batch`] and has not
//!   started to forward. The task publishes the second part lazily: a push may see it too
//!   high (and wait longer), never too low, so the bound holds. A push that waits re-reads it
//!   behind a fence that pairs with the one the task passes before it looks for waiting pushes
//!   below the low-water mark, so either the push sees the room or the task sees the push.
//! - A failure on the task (a panic downstream, an error reported by a node further down) is
//!   recorded in the node's [`Task`] and reported once: on the next push into the node, or by
//!   the wait that `close()` registers. It is never lost, and never stops the elements after it.
//! - Such a node sets `Operator::DEFERS_END` (or answers `Operator::defers_end` per node):
//!   when it ends, its task drains the mailbox, then ends the targets, then marks itself
//!   finished; `close()` waits for that.
//! - The node is fed through an [`Inlet`]: when the last upstream edge to it is dropped (every
//!   source handle gone), the mailbox closes and the task drains and ends, so no task outlives
//!   its graph.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock, Weak};

use futures_util::FutureExt;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::Item;
use super::ack::{Acks, dropping_lost, take_panic_site};
use super::cx::Cx;
use super::edges::Outputs;
use super::emit::Emit;
use super::error::Error;
use super::node::{Input, Node, NodeDyn, Operator, Push};
use super::stream::Stream;
use super::sync::{Lock, until};

/// The ambient tokio runtime, or a panic that says what is missing.
pub(crate) fn runtime(kind: &str) -> Handle {
    Handle::try_current().unwrap_or_else(|_| {
        panic!(
            "`{kind}` runs on a tokio runtime, and there is none here: build the graph inside a \
             tokio runtime (in async code run by tokio, or after `Runtime::enter`)"
        )
    })
}

/// What a node does with what it holds when its task dies.
type DeathHook = Box<dyn FnOnce(&Error) + Send>;

#[derive(Default)]
struct TaskState {
    error: Option<Error>,
    /// Failures recorded while `error` was waiting to be reported (see [`Error::Several`]).
    more: usize,
    /// Set when the task was dropped before it finished (its runtime shut down): every later
    /// push into the node, and `close()`, fails with it.
    dead: Option<Error>,
    finished: bool,
    /// Run once when the task dies, to fail what the node still holds.
    on_death: Vec<DeathHook>,
}

/// Failure slot and completion signal of a node's background task.
pub(crate) struct Task {
    node: Lock<Option<Weak<dyn NodeDyn>>>,
    kind: &'static str,
    has_error: AtomicBool,
    state: Lock<TaskState>,
    done: Notify,
}

impl Task {
    pub(crate) fn new(kind: &'static str) -> Arc<Task> {
        Arc::new(Task {
            node: Lock::new(None),
            kind,
            has_error: AtomicBool::new(false),
            state: Lock::new(TaskState::default()),
            done: Notify::new(),
        })
    }

    /// Ties the task to its node, for the node's name in error messages.
    pub(crate) fn bind(&self, node: Arc<dyn NodeDyn>) {
        *self.node.lock() = Some(Arc::downgrade(&node));
    }

    /// The span the node's task runs in: `node` with the node's name and kind, so a
    /// subscriber can tell which node logged.
    fn span(&self) -> tracing::Span {
        tracing::info_span!("node", name = %self.name(), kind = self.kind)
    }

    pub(crate) fn name(&self) -> String {
        self.node
            .lock()
            .as_ref()
            .and_then(Weak::upgrade)
            .map_or_else(|| self.kind.to_string(), |n| n.meta().name())
    }

    /// Builds the error for a panic caught on this node's task while it pushed downstream: it
    /// names the node whose function panicked, when one did.
    pub(crate) fn panicked(&self, payload: &(dyn Any + Send)) -> Error {
        let node = take_panic_site().unwrap_or_else(|| self.name());
        Error::panicked(&node, payload)
    }

    /// Builds the error for a panic in this node's own user function (called outside
    /// `Outputs::call`).
    pub(crate) fn panicked_here(&self, payload: &(dyn Any + Send)) -> Error {
        let _ = take_panic_site();
        Error::panicked(&self.name(), payload)
    }

    /// Records a failure to report. The first unreported one is reported; later ones are
    /// counted in it (see [`Error::Several`]).
    pub(crate) fn fail(&self, error: Error) {
        let mut s = self.state.lock();
        if s.error.is_none() {
            s.error = Some(error);
            self.has_error.store(true, Ordering::Release);
        } else {
            s.more += 1;
        }
    }

    /// Registers what to do if the task dies before it finishes (its runtime shut down): fail
    /// the elements the node still holds. Runs at once if the task is already dead.
    pub(crate) fn on_death(&self, hook: impl FnOnce(&Error) + Send + 'static) {
        let mut s = self.state.lock();
        match &s.dead {
            Some(e) => {
                let e = e.clone();
                drop(s);
                hook(&e);
            }
            None => s.on_death.push(Box::new(hook)),
        }
    }

    /// The task was dropped before it finished: from now on every push into the node and
    /// `close()` fail, and what the node holds is failed.
    #[cold]
    fn die(&self) -> Error {
        let error = Error::Failed {
            node: self.name(),
            message: "its tokio runtime shut down (or dropped its task) before the node \
                      finished; the elements it held are lost"
                .to_string(),
        };
        tracing::warn!(node = %self.name(), "node task dropped before it finished");
        self.die_with(error.clone());
        error
    }

    /// The task stopped for good with `error` before it finished its work.
    #[cold]
    fn die_with(&self, error: Error) {
        let hooks = {
            let mut s = self.state.lock();
            s.dead = Some(error.clone());
            self.has_error.store(true, Ordering::Release);
            std::mem::take(&mut s.on_death)
        };
        for hook in hooks {
            hook(&error);
        }
        self.finish();
    }

    /// Refuses a push into a node that has ended: the push and its tokens fail with the task's
    /// death if the task died, with [`Error::Closed`] otherwise (a push racing `close()`).
    #[cold]
    pub(crate) fn refuse(&self, cx: &mut Cx) {
        let error = self.death().unwrap_or(Error::Closed);
        cx.acks.fail(&error);
        cx.fail(error);
    }

    /// The error a dead task fails every push with, if it died.
    pub(crate) fn death(&self) -> Option<Error> {
        self.state.lock().dead.clone()
    }

    /// Reports a recorded failure on the push in progress (once).
    #[inline]
    pub(crate) fn report(&self, cx: &mut Cx) {
        if self.has_error.load(Ordering::Acquire)
            && let Some(e) = self.take_error()
        {
            cx.fail(e);
        }
    }

    fn take_error(&self) -> Option<Error> {
        // The flag is cleared under the lock, as `fail` sets it: a failure recorded right after
        // this take keeps its flag, and is reported on the next push rather than only at close.
        let mut s = self.state.lock();
        if let Some(dead) = s.dead.clone() {
            // A dead node fails every call, not just the next one.
            return Some(s.error.take().unwrap_or(dead));
        }
        self.has_error.store(false, Ordering::Release);
        let first = s.error.take()?;
        Some(match std::mem::take(&mut s.more) {
            0 => first,
            more => Error::Several {
                first: Box::new(first),
                more,
            },
        })
    }

    /// Marks the task finished and wakes whoever waits for it.
    pub(crate) fn finish(&self) {
        self.state.lock().finished = true;
        self.done.notify_waiters();
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.lock().finished
    }

    /// Makes the push in progress (a `close()`, typically) wait until the task has finished,
    /// and report what it recorded.
    pub(crate) fn wait_finished(self: &Arc<Self>, cx: &mut Cx) {
        let task = self.clone();
        cx.wait(async move {
            until(&task.done, || task.is_finished()).await;
            task.take_error().map_or(Ok(()), Err)
        });
    }

    /// Spawns `body` on `rt`. A panic that escapes `body` is recorded; the task is marked
    /// finished when `body` returns or panics. If the task is dropped before that (its runtime
    /// shut down), the task dies: see [`on_death`](Self::on_death).
    pub(crate) fn spawn(
        self: &Arc<Self>,
        rt: &Handle,
        body: impl Future<Output = ()> + Send + 'static,
    ) {
        let task = self.clone();
        let body = async move {
            if let Err(payload) = AssertUnwindSafe(body).catch_unwind().await {
                // The loop itself failed: nothing will drain what the node holds.
                let error = task.panicked(&*payload);
                task.fail(error.clone());
                task.die_with(error);
            }
            task.finish();
        };
        rt.spawn(Guarded {
            body: Some(body),
            task: self.clone(),
            span: None,
        });
    }
}

pin_project_lite::pin_project! {
    /// A task's future, which tells the task when it is dropped before it completed, and
    /// runs inside a `tracing` span named after its node.
    struct Guarded<F> {
        // `None` once dropped early (see the drop below).
        #[pin]
        body: Option<F>,
        task: Arc<Task>,
        // Made at the first poll, not at spawn: a node is usually named right after it is
        // built (`.buffer(8).named("ingest")`), after its task was spawned.
        span: Option<tracing::Span>,
    }

    impl<F> PinnedDrop for Guarded<F> {
        fn drop(this: Pin<&mut Self>) {
            // The hooks fail what the node queues; then the body is dropped here, so that the
            // tokens of what it still holds (an element in hand, futures in flight, a batch)
            // fail with the node's death as they drop, instead of being released as done.
            let this = this.project();
            if !this.task.is_finished() {
                let error = this.task.die();
                let mut body = this.body;
                dropping_lost(error, || body.set(None));
            }
        }
    }
}

impl<F: Future<Output = ()>> Future for Guarded<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let this = self.project();
        let task = &**this.task;
        let span = this.span.get_or_insert_with(|| task.span());
        let _entered = span.enter();
        match this.body.as_pin_mut() {
            Some(body) => body.poll(cx),
            None => std::task::Poll::Ready(()),
        }
    }
}

/// Pushes `x` (carrying `acks`) into `out` from a background task and waits until downstream
/// accepted it. A panic downstream is caught, counted and recorded; an error reported by a
/// node downstream is recorded. Either way the task goes on with the next element.
pub(crate) async fn forward<T: Item>(out: &Outputs<T>, task: &Task, x: T, acks: Acks) {
    if let Some(emit) = forward_start(out, task, x, acks) {
        forward_finish(task, emit).await;
    }
}

/// The synchronous half of [`forward`]: pushes `x` and returns what is left to await, or
/// `None` when downstream accepted it already with nothing to report (the common case,
/// which then costs no future and no poll).
#[inline]
pub(crate) fn forward_start<T: Item>(
    out: &Outputs<T>,
    task: &Task,
    x: T,
    acks: Acks,
) -> Option<Emit> {
    let mut cx = Cx::with_acks(acks);
    match std::panic::catch_unwind(AssertUnwindSafe(|| out.push(x, &mut cx))) {
        Ok(()) => {
            if cx.is_trivial() {
                // Nothing to drop and nothing collected (see `Cx::into_emit`).
                std::mem::forget(cx);
                None
            } else {
                Some(cx.into_emit())
            }
        }
        Err(payload) => {
            out.errors.inc_exact();
            let error = task.panicked(&*payload);
            cx.acks.fail(&error);
            task.fail(error);
            None
        }
    }
}

/// The asynchronous half of [`forward`]: waits for `emit` and records its failure.
pub(crate) async fn forward_finish(task: &Task, emit: Emit) {
    if let Err(e) = emit.await {
        task.fail(e);
    }
}

/// Ends `out`'s targets from a background task and waits for them to drain.
pub(crate) async fn end_targets<T: Item>(out: &Outputs<T>, task: &Task) {
    let mut cx = Cx::new();
    match std::panic::catch_unwind(AssertUnwindSafe(|| out.end(&mut cx))) {
        Ok(()) => {
            if let Err(e) = cx.into_emit().await {
                task.fail(e);
            }
        }
        Err(payload) => task.fail(task.panicked(&*payload)),
    }
}

struct MailState<T> {
    queue: VecDeque<(T, Acks)>,
    closed: bool,
    /// Set when the node's task died: pushes fail with it (see [`Mailbox::kill`]).
    fault: Option<Error>,
    /// The task waits (or is about to wait) on `items`: the next put must wake it.
    task_waiting: bool,
}

/// A queue between the pushes into a node and the node's task (see the module invariants).
///
/// Wake-ups are what a hop costs, so the box only notifies a side that said it waits: a put
/// wakes the task only when it found nothing to take, and a take wakes waiting pushes only
/// when the queue has drained to its low-water mark (the capacity, unless built with
/// [`with_low_water`](Mailbox::with_low_water)), so that a producer and a task that keep each
/// other busy trade batches instead of single elements.
pub(crate) struct Mailbox<T> {
    capacity: usize,
    low_water: usize,
    /// The tokio task that drains the box, noted the first time it waits or takes. A push made
    /// by that task (through a feedback loop) never waits for room: it would wait for itself.
    consumer: OnceLock<tokio::task::Id>,
    state: Lock<MailState<T>>,
    /// Elements the task took into its [`Batch`] and has not started to forward, as last
    /// published by the task (the only writer); never lower than the truth.
    taken: AtomicUsize,
    /// A push waits (or is about to wait) on `room`: set under the lock, cleared by the take
    /// that wakes it (see the module invariants).
    room_waiting: AtomicBool,
    room: Notify,
    items: Notify,
}

impl<T: Send + 'static> Mailbox<T> {
    pub(crate) fn new(capacity: usize) -> Arc<Mailbox<T>> {
        Mailbox::with_low_water(capacity, capacity)
    }

    /// A box whose waiting pushes are woken only once it holds `low_water` elements or fewer
    /// (`low_water <= capacity`). Pushes still pend only while it holds more than `capacity`.
    pub(crate) fn with_low_water(capacity: usize, low_water: usize) -> Arc<Mailbox<T>> {
        Arc::new(Mailbox {
            capacity,
            low_water: low_water.min(capacity),
            consumer: OnceLock::new(),
            state: Lock::new(MailState {
                queue: VecDeque::new(),
                closed: false,
                fault: None,
                task_waiting: false,
            }),
            taken: AtomicUsize::new(0),
            room_waiting: AtomicBool::new(false),
            room: Notify::new(),
            items: Notify::new(),
        })
    }

    /// Accepts `x` with the push's tokens; makes the push wait while the box is over capacity.
    ///
    /// A box that is closed (its node ended) or whose task died takes nothing: the push fails
    /// with [`Error::Closed`] (or the task's failure) and the element's tokens fail with it,
    /// so an `emit` racing `close()` either delivers its element or says it did not.
    #[inline]
    pub(crate) fn put(self: &Arc<Self>, x: T, cx: &mut Cx) {
        let (over, wake) = {
            let mut s = self.state.lock();
            if s.closed {
                let error = s.fault.clone().unwrap_or(Error::Closed);
                drop(s);
                reject(x, error, cx);
                return;
            }
            s.queue.push_back((x, cx.acks.clone()));
            (
                s.queue.len() + self.taken.load(Ordering::Relaxed) > self.capacity,
                std::mem::take(&mut s.task_waiting),
            )
        };
        if wake {
            self.items.notify_one();
        }
        if over && !self.called_by_consumer() {
            self.wait_for_room(cx);
        }
    }

    /// Notes the calling tokio task as the one that drains the box (the first time only).
    #[inline]
    fn note_consumer(&self) {
        if self.consumer.get().is_none()
            && let Some(id) = tokio::task::try_id()
        {
            let _ = self.consumer.set(id);
        }
    }

    /// Whether the caller is the task that drains the box.
    #[cold]
    fn called_by_consumer(&self) -> bool {
        self.consumer
            .get()
            .is_some_and(|c| tokio::task::try_id() == Some(*c))
    }

    /// Replaces everything queued with `x` (the `latest` policy). Never waits. A closed box
    /// rejects `x` as [`put`](Self::put) does.
    pub(crate) fn replace(&self, x: T, cx: &mut Cx) {
        let (dropped, wake) = {
            let mut s = self.state.lock();
            if s.closed {
                let error = s.fault.clone().unwrap_or(Error::Closed);
                drop(s);
                reject(x, error, cx);
                return;
            }
            let dropped = std::mem::replace(&mut s.queue, VecDeque::from([(x, cx.acks.clone())]));
            (dropped, std::mem::take(&mut s.task_waiting))
        };
        drop(dropped);
        if wake {
            self.items.notify_one();
        }
    }

    fn wait_for_room(self: &Arc<Self>, cx: &mut Cx) {
        let mb = self.clone();
        cx.wait(async move {
            until(&mb.room, || {
                let s = mb.state.lock();
                if s.closed {
                    return true;
                }
                // Say it waits before reading the task's count: pairs with `Batch::publish`.
                mb.room_waiting.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                s.queue.len() + mb.taken.load(Ordering::Relaxed) <= mb.capacity
            })
            .await;
            // A task that died lost what it held: the element this push waited behind may be
            // among it, so the wait reports the failure.
            mb.state.lock().fault.clone().map_or(Ok(()), Err)
        });
    }

    /// Whether a take that left `s` as it is must wake waiting pushes (and forgets they wait).
    #[inline]
    fn room_made(&self, s: &mut MailState<T>) -> bool {
        if s.queue.len() + self.taken.load(Ordering::Relaxed) <= self.low_water
            && self.room_waiting.load(Ordering::Relaxed)
        {
            self.room_waiting.store(false, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// The next element, or `None` once the box is closed and empty. Only the node's task
    /// calls this (and `take_all`, `ready`, `closed`).
    pub(crate) async fn recv(&self) -> Option<(T, Acks)> {
        self.note_consumer();
        loop {
            let notified = self.items.notified();
            {
                let mut s = self.state.lock();
                if let Some(item) = s.queue.pop_front() {
                    let wake = self.room_made(&mut s);
                    drop(s);
                    if wake {
                        self.room.notify_waiters();
                    }
                    return Some(item);
                }
                if s.closed {
                    return None;
                }
                s.task_waiting = true;
            }
            notified.await;
        }
    }

    /// Takes everything queued now (for nodes that emit batches).
    pub(crate) fn take_all(&self) -> Vec<(T, Acks)> {
        self.note_consumer();
        let (all, wake) = {
            let mut s = self.state.lock();
            let all: Vec<_> = s.queue.drain(..).collect();
            let wake = self.room_made(&mut s);
            (all, wake)
        };
        if wake {
            self.room.notify_waiters();
        }
        all
    }

    /// Whether the box is closed and empty: nothing will ever come out again.
    pub(crate) fn is_drained(&self) -> bool {
        let s = self.state.lock();
        s.closed && s.queue.is_empty() && self.taken.load(Ordering::Relaxed) == 0
    }

    /// Whether the box has been closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// The node's task died: fails what is queued with `error`, and every later put.
    pub(crate) fn kill(&self, error: &Error) {
        let lost = {
            let mut s = self.state.lock();
            s.closed = true;
            s.fault = Some(error.clone());
            std::mem::take(&mut s.queue)
        };
        for (_, acks) in &lost {
            acks.fail(error);
        }
        drop(lost);
        self.items.notify_one();
        self.room.notify_waiters();
    }

    /// Fails what the box holds when `task` dies (see [`Task::on_death`]).
    pub(crate) fn fail_with(self: &Arc<Self>, task: &Task) {
        let mb = Arc::downgrade(self);
        task.on_death(move |e| {
            if let Some(mb) = mb.upgrade() {
                mb.kill(e);
            }
        });
    }

    /// No more input: `recv` returns what is queued, then `None`.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.items.notify_one();
        self.room.notify_waiters();
    }

    /// Waits until an element arrives or the box closes (without taking anything).
    pub(crate) async fn ready(&self) {
        self.note_consumer();
        loop {
            let notified = self.items.notified();
            {
                let mut s = self.state.lock();
                if !s.queue.is_empty() || s.closed {
                    return;
                }
                s.task_waiting = true;
            }
            notified.await;
        }
    }

    /// Waits until the box has been closed (whatever it still holds).
    ///
    /// It does not say it waits for items (`task_waiting`): `close` always notifies, and a put
    /// must not wake a task that only waits for the end.
    pub(crate) async fn closed(&self) {
        self.note_consumer();
        loop {
            let notified = self.items.notified();
            if self.state.lock().closed {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().queue.len() + self.taken.load(Ordering::Relaxed)
    }

    /// A batch for the node's task to drain this box through (see [`Batch`]).
    pub(crate) fn batch(self: &Arc<Self>) -> Batch<T> {
        Batch {
            mailbox: self.clone(),
            items: VecDeque::new(),
            published: 0,
            queued_floor: 0,
        }
    }

    /// Moves everything queued into `batch` (empty), waiting until there is something, or
    /// returns `false` once the box is closed and empty.
    async fn refill(&self, batch: &mut Batch<T>) -> bool {
        self.note_consumer();
        loop {
            let notified = self.items.notified();
            {
                let mut s = self.state.lock();
                if !s.queue.is_empty() {
                    // The level does not change: what leaves the queue is counted as taken.
                    std::mem::swap(&mut s.queue, &mut batch.items);
                    batch.published = batch.items.len();
                    batch.queued_floor = 0;
                    self.taken.store(batch.published, Ordering::Relaxed);
                    let wake = self.room_made(&mut s);
                    drop(s);
                    if wake {
                        self.room.notify_waiters();
                    }
                    return true;
                }
                // The batch is empty and published as such (see `Batch::next`).
                let wake = self.room_made(&mut s);
                if s.closed {
                    drop(s);
                    if wake {
                        self.room.notify_waiters();
                    }
                    return false;
                }
                s.task_waiting = true;
                drop(s);
                if wake {
                    self.room.notify_waiters();
                }
            }
            notified.await;
        }
    }
}

/// Refuses `x`: the push fails with `error`, and so do the element's tokens.
#[cold]
fn reject<T>(x: T, error: Error, cx: &mut Cx) {
    cx.acks.fail(&error);
    drop(x);
    cx.fail(error);
}

impl<T> Drop for Mailbox<T> {
    fn drop(&mut self) {
        let s = self.state.get_mut();
        if !s.queue.is_empty() {
            let error = s.fault.clone().unwrap_or_else(|| Error::Failed {
                node: "unknown".to_string(),
                message: "the node was dropped before it delivered the element".to_string(),
            });
            for (_, acks) in &s.queue {
                acks.fail(&error);
            }
        }
    }
}

impl<T> Drop for Batch<T> {
    fn drop(&mut self) {
        if !self.items.is_empty() {
            let error = self
                .mailbox
                .state
                .lock()
                .fault
                .clone()
                .unwrap_or_else(|| Error::Failed {
                    node: "unknown".to_string(),
                    message: "the node's task stopped before it delivered the element".to_string(),
                });
            for (_, acks) in &self.items {
                acks.fail(&error);
            }
        }
    }
}

/// How often (in elements) a task publishes how much of its batch is left, when its forwards
/// do not wait. A forward that waits publishes first.
const PUBLISH_EVERY: usize = 16;

/// The elements a node's task took out of its [`Mailbox`] in one go, handed out one at a time.
///
/// They still count against the box's capacity until the task starts forwarding them; the
/// task tells the box with [`publish`](Batch::publish) (every few elements, and before any
/// wait), so producers see the room it makes. Dropping the batch drops what it holds (and
/// their tokens), as dropping the box would.
pub(crate) struct Batch<T> {
    mailbox: Arc<Mailbox<T>>,
    items: VecDeque<(T, Acks)>,
    /// What the box was last told is left in `items`.
    published: usize,
    /// The queue length last seen behind the lock during this batch (the queue only grows
    /// until the next refill), so that no lock is taken while it alone keeps the level high.
    queued_floor: usize,
}

impl<T: Send + 'static> Batch<T> {
    /// The next element of the batch, without waiting: `None` when the batch is used up (then
    /// [`refill`](Batch::refill) it).
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(T, Acks)> {
        let item = self.items.pop_front()?;
        if self.items.len().is_multiple_of(PUBLISH_EVERY) {
            self.publish();
        }
        Some(item)
    }

    /// Waits until the box holds something and takes all of it into the (used up) batch;
    /// `false` once the box is closed and empty.
    pub(crate) async fn refill(&mut self) -> bool {
        debug_assert!(self.items.is_empty());
        self.publish();
        self.mailbox.clone().refill(self).await
    }

    /// Tells the box how many taken elements are left, and wakes waiting pushes if that made
    /// enough room.
    #[inline]
    pub(crate) fn publish(&mut self) {
        let left = self.items.len();
        if left == self.published {
            return;
        }
        self.published = left;
        let mb = &*self.mailbox;
        mb.taken.store(left, Ordering::Relaxed);
        if left + self.queued_floor <= mb.low_water {
            // Pairs with the fence in `wait_for_room`: either that push sees the new count, or
            // this sees that it waits.
            fence(Ordering::SeqCst);
            if mb.room_waiting.load(Ordering::Relaxed) {
                self.wake_room();
            }
        }
    }

    #[cold]
    fn wake_room(&mut self) {
        let mb = &*self.mailbox;
        let wake = {
            let mut s = mb.state.lock();
            self.queued_floor = s.queue.len();
            mb.room_made(&mut s)
        };
        if wake {
            mb.room.notify_waiters();
        }
    }
}

/// An operator whose node must hear when its last upstream edge is dropped.
pub(crate) trait Detach {
    /// Called when the last upstream edge to the node is dropped: close the mailbox.
    fn detach(&self);
}

/// The input port of a node with a background task: tells the node when it is dropped.
pub(crate) struct Inlet<Op: Operator + Detach>(Arc<Node<Op>>);

impl<Op: Input<0> + Detach> Push<<Op as Input<0>>::In> for Inlet<Op> {
    #[inline]
    fn push(&self, x: <Op as Input<0>>::In, cx: &mut Cx) {
        self.0.push(x, cx);
    }

    #[inline]
    fn push_batch(&self, xs: Vec<<Op as Input<0>>::In>, cx: &mut Cx) {
        self.0.push_batch(xs, cx);
    }

    fn end(&self, cx: &mut Cx) {
        Push::<<Op as Input<0>>::In>::end(&*self.0, cx);
    }
}

impl<Op: Operator + Detach> Drop for Inlet<Op> {
    fn drop(&mut self) {
        self.0.op.detach();
    }
}

impl<T: Item> Stream<T> {
    /// Adds a node with a background task downstream of this one, fed through an [`Inlet`].
    pub(crate) fn then_detachable<Op>(&self, kind: &'static str, op: Op) -> Arc<Node<Op>>
    where
        Op: Input<0, In = T> + Detach,
    {
        let node = Arc::new(Node::new(kind, op));
        self.link(Arc::new(Inlet(node.clone())), node.clone());
        node
    }
}
