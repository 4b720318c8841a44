//! The node behind `buffer`, `rate_limit`, `delay`, `latest` and `timed_window`: a mailbox filled by the
//! caller's push and drained by a task whose loop is the whole operator.
//!
//! These differ only in how an element enters the mailbox (queued, stamped with its
//! arrival time, or replacing what is there) and in when (and as what) the task lets it out. Everything
//! else, the backpressure, failure reporting, `close()` draining and teardown when the graph
//! is dropped, is the same and lives here once.
//!
//! Invariants:
//! - The caller's push reports a failure recorded by the task (once), then admits the element;
//!   only the mailbox decides whether the push waits.
//! - When the node ends (or its last upstream edge is dropped) the mailbox closes; the task's
//!   loop sees the end of its input, then the node's targets are ended and `close()` resolves.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::graph::Emit;
use crate::graph::task::{
    Detach, Mailbox, Task, end_targets, forward, forward_finish, forward_start, runtime,
};
use crate::graph::{Acks, Cx, Input, Node, Operator, Outputs, Room};
use crate::{Item, Stream};

/// How the caller's push enters the mailbox.
pub(crate) enum Admit<T, M, O> {
    /// Queued behind what is there, after `stamp` (for `delay`: the arrival time).
    Queue(fn(T) -> M),
    /// Replaces whatever waits (the `latest` policy); never makes the push wait.
    Replace(fn(T) -> M),
    /// The node's own admission, run on the caller's push: it puts the element into the
    /// mailbox and may make the push wait for more than room (`rate_limit`: until the element
    /// has passed; `timed_window`: until the previous window has been accepted). User functions
    /// it calls go through `Outputs::call`, so a panic unwinds to the caller with nothing queued.
    Hook(AdmitHook<T, M, O>),
    /// Like `Hook`, for a node whose pushes also wait while `busy()` says so (`timed_window`:
    /// while a window is pending downstream): `try_emit` then finds the node full.
    HookWhileBusy(AdmitHook<T, M, O>, Busy),
}

/// See [`Admit::HookWhileBusy`].
pub(crate) type Busy = Box<dyn Fn() -> bool + Send + Sync>;

/// See [`Admit::Hook`].
pub(crate) type AdmitHook<T, M, O> =
    Box<dyn Fn(T, &Arc<Mailbox<M>>, &Outputs<O>, &mut Cx) + Send + Sync>;

pub(crate) struct Queued<T, M, O> {
    mailbox: Arc<Mailbox<M>>,
    /// The mailbox's capacity: a push that finds this many elements held waits.
    bound: usize,
    task: Arc<Task>,
    admit: Admit<T, M, O>,
    _out: PhantomData<fn() -> O>,
}

impl<T: Item, M: Send + 'static, O: Item> Operator for Queued<T, M, O> {
    type Out = O;
    const DEFERS_END: bool = true;

    fn on_end(&self, _out: &Outputs<O>, cx: &mut Cx) {
        self.mailbox.close();
        self.task.wait_finished(cx);
    }

    fn held(&self) -> usize {
        self.mailbox.len()
    }

    fn room(&self) -> Room {
        match &self.admit {
            _ if self.mailbox.is_closed() => Room::Free,
            Admit::Queue(_) | Admit::Hook(_) | Admit::HookWhileBusy(..)
                if self.mailbox.len() >= self.bound =>
            {
                Room::Full
            }
            Admit::HookWhileBusy(_, busy) if busy() => Room::Full,
            _ => Room::Free,
        }
    }
}

impl<T: Item, M: Send + 'static, O: Item> Input<0> for Queued<T, M, O> {
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<O>, cx: &mut Cx) {
        self.task.report(cx);
        match &self.admit {
            Admit::Queue(stamp) => self.mailbox.put(stamp(x), cx),
            Admit::Replace(stamp) => self.mailbox.replace(stamp(x), cx),
            Admit::Hook(admit) | Admit::HookWhileBusy(admit, _) => admit(x, &self.mailbox, out, cx),
        }
    }
}

impl<T: Item, M: Send + 'static, O: Item> Detach for Queued<T, M, O> {
    fn detach(&self) {
        self.mailbox.close();
    }
}

/// What a queued node's task loop works with.
/// `T` is what enters the node, `O` what leaves it.
pub(crate) struct Drain<T: Item, M: Send + 'static, O: Item> {
    pub(crate) mailbox: Arc<Mailbox<M>>,
    task: Arc<Task>,
    node: Arc<Node<Queued<T, M, O>>>,
}

impl<T: Item, M: Send + 'static, O: Item> Drain<T, M, O> {
    /// Pushes `x` downstream and waits until it has been accepted (see `task::forward`).
    pub(crate) async fn forward(&self, x: O, acks: Acks) {
        forward(&self.node.out, &self.task, x, acks).await;
    }

    /// The synchronous half of [`forward`](Self::forward): what is left to await, if anything.
    #[inline]
    pub(crate) fn forward_start(&self, x: O, acks: Acks) -> Option<Emit> {
        forward_start(&self.node.out, &self.task, x, acks)
    }

    /// The asynchronous half of [`forward`](Self::forward).
    pub(crate) async fn forward_finish(&self, emit: Emit) {
        forward_finish(&self.task, emit).await;
    }
}

impl<T: Item> Stream<T> {
    /// Adds a queued node: `admit` says how pushes enter `mailbox` (whose capacity is
    /// `bound`), and `drain` is the task's loop; when it returns, the node's targets are ended.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub(crate) fn queued<M, O, Fut>(
        &self,
        kind: &'static str,
        mailbox: Arc<Mailbox<M>>,
        bound: usize,
        admit: Admit<T, M, O>,
        drain: impl FnOnce(Drain<T, M, O>) -> Fut,
    ) -> Stream<O>
    where
        M: Send + 'static,
        O: Item,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rt = runtime(kind);
        let task = Task::new(kind);
        mailbox.fail_with(&task);
        let node = self.then_detachable(
            kind,
            Queued {
                mailbox: mailbox.clone(),
                bound,
                task: task.clone(),
                admit,
                _out: PhantomData,
            },
        );
        task.bind(node.clone());
        let body = drain(Drain {
            mailbox,
            task: task.clone(),
            node: node.clone(),
        });
        let (out, t) = (node.clone(), task.clone());
        task.spawn(&rt, async move {
            body.await;
            end_targets(&out.out, &t).await;
        });
        Stream::from_node(node)
    }
}
