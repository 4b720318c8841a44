//! `partition_timeout` and `partition_by_timeout`: batches of `n` (per key), with a partial
//! batch flushed `timeout` after its first element arrived.
//!
//! Why a task: a batch that stops growing must still leave on time, when nobody is pushing.
//! Why every batch goes through one outbox: full batches complete on the caller's push while
//! timed-out ones complete on the task; queueing both, under the batch lock, into one
//! [`Mailbox`] that the task drains keeps batches in the order they completed, whatever thread
//! pushes. Batch bookkeeping is `partition`'s own (`Batches`, `unzip_batch`).
//!
//! Invariants:
//! - A batch leaves when it has `n` elements, or `timeout` after its first element arrived,
//!   whichever comes first; batches leave in the order they completed.
//! - At most one completed batch waits in the outbox before `emit` pends (besides the one being
//!   pushed downstream and the open batches); dropping the `emit` future loses nothing.
//! - Tokens are held until the batch built from the element has been accepted downstream.
//! - `close()` flushes every open batch, oldest first, before resolving.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::select;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::graph::sync::Lock;
use crate::graph::task::{Detach, Mailbox, Task, end_targets, forward, runtime};
use crate::graph::{Acks, Cx, Input, Operator, Outputs};
use crate::ops::partition::{Batches, unzip_batch};
use crate::{Item, Stream};

struct State<K, T> {
    batches: Batches<K, T>,
    /// The number of the open batch of each key.
    open: HashMap<K, u64>,
    /// When each batch times out, in the order batches were started (so in time order).
    deadlines: VecDeque<(Instant, K, u64)>,
    next: u64,
}

struct Shared<K, T> {
    state: Lock<State<K, T>>,
    outbox: Arc<Mailbox<Vec<T>>>,
    /// Wakes the task when a batch starts (a new deadline) or the node ends.
    wake: Notify,
}

impl<K: Hash + Eq + Clone, T: Item> Shared<K, T> {
    /// Queues `batch` in the outbox, carrying its tokens; registers a wait on `cx` if the
    /// outbox is over capacity.
    fn send(&self, batch: Vec<(T, Acks)>, cx: &mut Cx) {
        let (items, acks) = unzip_batch(batch);
        let saved = std::mem::replace(&mut cx.acks, acks);
        self.outbox.put(items, cx);
        cx.acks = saved;
    }

    /// Moves every open batch, oldest first, into the outbox and closes it: nothing more will
    /// come in.
    fn flush_all(&self) {
        let mut s = self.state.lock();
        s.open.clear();
        s.deadlines.clear();
        s.batches.ended = true;
        for batch in s.batches.drain() {
            self.send(batch, &mut Cx::new());
        }
        self.outbox.close();
        drop(s);
        self.wake.notify_one();
    }

    /// Moves every batch whose deadline has passed into the outbox; returns the next deadline.
    fn flush_due(&self, now: Instant) -> Option<Instant> {
        let mut s = self.state.lock();
        while let Some((at, _, _)) = s.deadlines.front() {
            if *at > now {
                return Some(*at);
            }
            let (_, key, id) = s.deadlines.pop_front().expect("a deadline");
            if s.open.get(&key) == Some(&id) {
                s.open.remove(&key);
                if let Some(batch) = s.batches.take(&key) {
                    // The task never waits on its own outbox: the wait is dropped.
                    self.send(batch, &mut Cx::new());
                }
            }
        }
        None
    }
}

pub(crate) struct PartitionTimeout<F, K, T> {
    n: usize,
    timeout: Duration,
    key: F,
    shared: Arc<Shared<K, T>>,
    task: Arc<Task>,
}

impl<F, K, T> Operator for PartitionTimeout<F, K, T>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    T: Item,
{
    type Out = Vec<T>;
    const DEFERS_END: bool = true;

    fn on_end(&self, _out: &Outputs<Vec<T>>, cx: &mut Cx) {
        self.shared.flush_all();
        self.task.wait_finished(cx);
    }

    fn held(&self) -> usize {
        let open = self.shared.state.lock().batches.len();
        open + self.shared.outbox.len()
    }
}

impl<F, K, T> Input<0> for PartitionTimeout<F, K, T>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    T: Item,
{
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        self.task.report(cx);
        let key = out.call(|| (self.key)(&x));
        let started = {
            let mut s = self.shared.state.lock();
            if s.batches.ended {
                // A push that raced `close()`: the batches were flushed already. Or the task
                // died: the element is lost with the node, as the push reports.
                drop(s);
                return self.task.refuse(cx);
            }
            let started = !s.open.contains_key(&key);
            if started {
                s.next += 1;
                let id = s.next;
                s.open.insert(key.clone(), id);
                let at = super::after(Instant::now(), self.timeout);
                s.deadlines.push_back((at, key.clone(), id));
            }
            let acks = cx.acks.clone();
            if let Some(batch) = s.batches.add(key.clone(), x, acks, self.n) {
                s.open.remove(&key);
                self.shared.send(batch, cx);
            }
            started
        };
        if started {
            self.shared.wake.notify_one();
        }
    }
}

impl<F, K, T> Detach for PartitionTimeout<F, K, T>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    T: Item,
{
    fn detach(&self) {
        // Every upstream edge is gone: flush now, so the task drains and ends.
        self.shared.flush_all();
    }
}

impl<T: Item> Stream<T> {
    /// Like [`partition`](Self::partition): batches of `n` elements in arrival order, but a
    /// partial batch is also emitted `timeout` after its first element arrived.
    /// See [`partition_by_timeout`](Self::partition_by_timeout).
    ///
    /// # Panics
    ///
    /// If `n` is 0 or `timeout` is zero, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use tokio::time::sleep;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let batches = source.partition_timeout(3, Duration::from_millis(100)).sink_to_vec();
    /// for x in 1..=4 {
    ///     source.emit(x).await?;
    /// }
    /// sleep(Duration::from_millis(150)).await; // [4] times out at 100 ms
    /// assert_eq!(batches.snapshot(), vec![vec![1, 2, 3], vec![4]]);
    /// # Ok(()) }
    /// ```
    pub fn partition_timeout(&self, n: usize, timeout: Duration) -> Stream<Vec<T>> {
        self.partition_by_timeout(n, timeout, |_| ())
    }

    /// Like [`partition_by`](Self::partition_by): batches of `n` elements sharing a key, but a
    /// partial batch is also emitted `timeout` after its first element arrived.
    ///
    /// Batches are pushed downstream by the node's task, in the order they completed (by
    /// count or by time), each push awaited. One completed batch may wait for the task
    /// without making `emit` pend; the `emit` that completes a second one pends until the
    /// task takes the first. Tokens are held until the batch is accepted downstream.
    /// `close()` emits the open batches, oldest first, and resolves once they are accepted. A
    /// panic downstream is reported on the next `emit` or by `close()`.
    ///
    /// # Panics
    ///
    /// If `n` is 0 or `timeout` is zero, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use tokio::time::sleep;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let ms = Duration::from_millis;
    /// let batches = source.partition_by_timeout(2, ms(100), |x: &u32| x % 2).sink_to_vec();
    /// source.emit(1).await?; // odd batch starts: times out at 100 ms
    /// sleep(ms(50)).await;
    /// source.emit(2).await?; // even batch starts: times out at 150 ms
    /// source.emit(4).await?; // even batch full
    /// sleep(ms(60)).await;
    /// source.emit(6).await?; // new even batch, times out at 210 ms
    /// source.close().await?; // flushes it
    /// assert_eq!(batches.snapshot(), vec![vec![2, 4], vec![1], vec![6]]);
    /// # Ok(()) }
    /// ```
    pub fn partition_by_timeout<K>(
        &self,
        n: usize,
        timeout: Duration,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> Stream<Vec<T>>
    where
        K: Hash + Eq + Clone + Send + 'static,
    {
        assert!(
            n > 0,
            "partition_timeout: the batch size must be at least 1"
        );
        assert!(
            !timeout.is_zero(),
            "partition_timeout: the timeout must be greater than zero"
        );
        let rt = runtime("partition_timeout");
        let shared = Arc::new(Shared {
            state: Lock::new(State {
                batches: Batches::new(),
                open: HashMap::new(),
                deadlines: VecDeque::new(),
                next: 0,
            }),
            outbox: Mailbox::new(1),
            wake: Notify::new(),
        });
        let task = Task::new("partition_timeout");
        shared.outbox.fail_with(&task);
        {
            // If the task dies, the open batches will never be sent: fail their tokens.
            let shared = Arc::downgrade(&shared);
            task.on_death(move |e| {
                if let Some(shared) = shared.upgrade() {
                    let lost = {
                        let mut s = shared.state.lock();
                        s.batches.ended = true;
                        s.batches.drain()
                    };
                    for (_, acks) in lost.iter().flatten() {
                        acks.fail(e);
                    }
                }
            });
        }
        let node = self.then_detachable(
            "partition_timeout",
            PartitionTimeout {
                n,
                timeout,
                key,
                shared: shared.clone(),
                task: task.clone(),
            },
        );
        task.bind(node.clone());
        let worker = node.clone();
        let t = task.clone();
        task.spawn(&rt, async move {
            loop {
                let next = shared.flush_due(Instant::now());
                while let Some(Some((batch, acks))) = shared.outbox.recv().now_or_never() {
                    forward(&worker.out, &t, batch, acks).await;
                }
                if shared.outbox.is_closed() && shared.outbox.len() == 0 {
                    break;
                }
                let woken = pin!(shared.wake.notified());
                let ready = pin!(shared.outbox.ready());
                let events = select(woken, ready);
                match next {
                    Some(at) => {
                        let timer = pin!(tokio::time::sleep_until(at));
                        let _ = select(events, timer).await;
                    }
                    None => {
                        let _ = events.await;
                    }
                }
            }
            end_targets(&worker.out, &t).await;
        });
        Stream::from_node(node)
    }
}
