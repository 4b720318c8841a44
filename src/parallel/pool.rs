//! The worker pool: dedicated OS threads that run the user's function, and the inbox their
//! results come back through.
//!
//! Heavy functions run on their own threads, not on the tokio runtime, so a model that takes
//! a second per window never delays a timer or another task. Jobs travel to the workers over a
//! crossbeam channel; results come back through an [`Inbox`] that the node's task drains in
//! batches, so a burst of finished results costs one task wake-up, not one per result.
//!
//! Invariants:
//! - Every job submitted produces exactly one result in the inbox, even when the function
//!   panics (the panic is caught and travels as the result), so a worker never dies of a panic
//!   and the pool never shrinks.
//! - Sequence numbers are handed out under the same lock as the send, densely from 0, so the
//!   reorder buffer never waits for a number that was not sent.
//! - Closing the pool drops the only job sender: workers finish what is queued, then exit, and
//!   the last one to exit tells the inbox, which then reports the end once it is empty.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::Notify;

use crate::graph::Acks;
use crate::graph::sync::Lock;

/// One unit of work: the element, its sequence number and its tokens.
struct Job<T> {
    seq: u64,
    x: T,
    acks: Acks,
}

/// What a worker hands back: the function's result, or the panic it raised.
pub(crate) struct Done<R> {
    pub(crate) seq: u64,
    pub(crate) out: thread::Result<R>,
    pub(crate) acks: Acks,
}

struct Jobs<T> {
    tx: Option<Sender<Job<T>>>,
    next: u64,
}

/// The submitting end of a running pool.
pub(crate) struct Pool<T> {
    jobs: Lock<Jobs<T>>,
}

impl<T: Send + 'static> Pool<T> {
    /// Starts `workers` threads named after `kind`, each running `f` on the jobs it takes.
    pub(crate) fn start<R, F>(workers: usize, kind: &str, f: F) -> (Pool<T>, Arc<Inbox<Done<R>>>)
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::unbounded();
        let inbox = Inbox::new(workers);
        let f = Arc::new(f);
        for i in 0..workers {
            let (rx, f, inbox) = (rx.clone(), f.clone(), inbox.clone());
            thread::Builder::new()
                .name(format!("{kind}-{i}"))
                .spawn(move || work(rx, f, inbox))
                .unwrap_or_else(|e| panic!("`{kind}`: could not start a worker thread: {e}"));
        }
        tracing::debug!(kind, workers, "worker pool started");
        let pool = Pool {
            jobs: Lock::new(Jobs {
                tx: Some(tx),
                next: 0,
            }),
        };
        (pool, inbox)
    }

    /// Hands `x` to the workers. Returns it back when the pool is closed.
    #[inline]
    pub(crate) fn submit(&self, x: T, acks: Acks) -> Result<(), T> {
        let mut jobs = self.jobs.lock();
        let seq = jobs.next;
        match &jobs.tx {
            Some(tx) => {
                // The receivers live as long as the workers, which live until `tx` is dropped.
                if let Err(e) = tx.send(Job { seq, x, acks }) {
                    return Err(e.into_inner().x);
                }
                jobs.next += 1;
                Ok(())
            }
            None => Err(x),
        }
    }

    /// No more jobs: the workers drain the queue and exit.
    pub(crate) fn close(&self) {
        let tx = self.jobs.lock().tx.take();
        drop(tx);
    }
}

/// Tells the inbox that a worker has gone, however it goes.
struct Live<D>(Arc<Inbox<D>>);

impl<D> Drop for Live<D> {
    fn drop(&mut self) {
        self.0.exited();
    }
}

fn work<T, R, F>(rx: Receiver<Job<T>>, f: Arc<F>, inbox: Arc<Inbox<Done<R>>>)
where
    F: Fn(T) -> R,
{
    let live = Live(inbox.clone());
    for Job { seq, x, acks } in rx.iter() {
        let out = catch_unwind(AssertUnwindSafe(|| f(x)));
        inbox.put(Done { seq, out, acks });
    }
    // The function (and whatever it captured) goes before the worker counts as gone, so once
    // the node's task has seen every worker leave, the function has been dropped.
    drop(f);
    drop(rx);
    drop(live);
}

struct InboxState<D> {
    items: Vec<D>,
    live: usize,
}

/// Results on their way from the workers to the node's task.
pub(crate) struct Inbox<D> {
    state: Lock<InboxState<D>>,
    ready: Notify,
}

impl<D> Inbox<D> {
    pub(crate) fn new(live: usize) -> Arc<Inbox<D>> {
        Arc::new(Inbox {
            state: Lock::new(InboxState {
                items: Vec::new(),
                live,
            }),
            ready: Notify::new(),
        })
    }

    /// Adds a result. Only the first result of a batch wakes the task; it takes them all.
    #[inline]
    pub(crate) fn put(&self, d: D) {
        let first = {
            let mut s = self.state.lock();
            s.items.push(d);
            s.items.len() == 1
        };
        if first {
            self.ready.notify_one();
        }
    }

    fn exited(&self) {
        self.state.lock().live -= 1;
        self.ready.notify_one();
    }

    /// Waits for results and moves them all into `buf` (which must be empty; its capacity is
    /// recycled). Returns false once every producer has gone and nothing is left.
    pub(crate) async fn take(&self, buf: &mut Vec<D>) -> bool {
        debug_assert!(buf.is_empty());
        loop {
            {
                let mut s = self.state.lock();
                if !s.items.is_empty() {
                    std::mem::swap(&mut s.items, buf);
                    return true;
                }
                if s.live == 0 {
                    return false;
                }
            }
            // `notify_one` leaves a permit when nobody waits yet, so a result put between the
            // check above and this await is not missed.
            self.ready.notified().await;
        }
    }
}
