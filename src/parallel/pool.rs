//! The worker pool: dedicated OS threads that run the user's function and hand each result
//! on, and the inbox through which they reach the node's task.
//!
//! Heavy functions run on their own threads, not on the tokio runtime, so a model that takes
//! a second per window never delays a timer or another task. Jobs travel to the workers over a
//! crossbeam channel; a worker hands each result to the node's `finish` callback on its own
//! thread (inside the runtime's context), which pushes it downstream when it can, so a result
//! costs no wake-up of another thread. What must wait goes through an [`Inbox`] that the node's
//! task drains in batches.
//!
//! Invariants:
//! - Every job submitted produces exactly one call of `finish`, even when the function panics
//!   (the panic is caught and travels as the result), so a worker never dies of a panic and
//!   the pool never shrinks.
//! - Sequence numbers are handed out under the same lock as the send, densely from 0, so the
//!   reorder buffer never waits for a number that was not sent.
//! - Closing the pool drops the only job sender: workers finish what is queued (each `finish`
//!   returns before its worker takes the next job), then exit, and the last one to exit tells
//!   the inbox, which then reports the end once it is empty.
//! - Waiting costs no wake-up when the other side answers fast: a worker polls the job queue
//!   briefly before it blocks (by yielding its core when the pool fills every core, so the thread
//!   it waits for can run), the task yields to the runtime a few times before it parks, and a
//!   put wakes the task only when it said it parks. Either side stops polling after a few
//!   polls in a row came up empty (then tries again only now and then), so a slow pool does not
//!   burn a core. Polling is bounded; it never changes what is delivered, only when.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use tokio::sync::Notify;

use crate::Error;
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

/// The submitting end of a pool.
pub(crate) struct Pool<T> {
    jobs: Lock<Jobs<T>>,
}

/// The receiving end of a pool, until [`Workers::start`] hands it to the threads.
pub(crate) struct Workers<T>(Receiver<Job<T>>);

impl<T: Send + 'static> Pool<T> {
    /// A pool with no threads yet: jobs submitted queue until [`Workers::start`].
    pub(crate) fn new() -> (Pool<T>, Workers<T>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let pool = Pool {
            jobs: Lock::new(Jobs {
                tx: Some(tx),
                next: 0,
            }),
        };
        (pool, Workers(rx))
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

impl<T: Send + 'static> Workers<T> {
    /// Starts `workers` threads named after `kind`, each running `f` on the jobs it takes and
    /// handing every result to `finish`, inside the context of the runtime `rt`. `inbox`
    /// learns when the last one has gone.
    pub(crate) fn start<R, F, D, H>(
        self,
        workers: usize,
        kind: &str,
        rt: &tokio::runtime::Handle,
        f: F,
        finish: D,
        inbox: &Arc<Inbox<H>>,
    ) where
        F: Fn(T) -> R + Send + Sync + 'static,
        D: Fn(Done<R>) + Send + Sync + 'static,
        R: Send + 'static,
        H: Failable + Send + 'static,
    {
        let f = Arc::new(f);
        let finish = Arc::new(finish);
        // Workers that fill every core must not poll by spinning: the thread they wait for
        // (the producer) would then have no core to run on.
        let polite = fills_every_core(workers);
        for i in 0..workers {
            let (rx, f, finish, inbox) = (self.0.clone(), f.clone(), finish.clone(), inbox.clone());
            let rt = rt.clone();
            thread::Builder::new()
                .name(format!("{kind}-{i}"))
                .spawn({
                    let span = tracing::info_span!("node", kind, worker = i);
                    move || {
                        // Downstream nodes run here when a worker pushes a result: they may
                        // start timers or tasks, as they would on the runtime.
                        let _rt = rt.enter();
                        span.in_scope(|| work(rx, f, finish, inbox, polite))
                    }
                })
                .unwrap_or_else(|e| panic!("`{kind}`: could not start a worker thread: {e}"));
        }
        tracing::debug!(kind, workers, "worker pool started");
    }
}

/// Whether `workers` threads leave no core of this machine free.
pub(crate) fn fills_every_core(workers: usize) -> bool {
    workers >= thread::available_parallelism().map_or(1, |n| n.get())
}

/// Tells the inbox that a worker has gone, however it goes.
struct Live<D: Failable>(Arc<Inbox<D>>);

impl<D: Failable> Drop for Live<D> {
    fn drop(&mut self) {
        self.0.exited();
    }
}

/// Runs jobs until the pool closes, handing every result to `finish`.
fn work<T, R, F, D, H>(
    rx: Receiver<Job<T>>,
    f: Arc<F>,
    finish: Arc<D>,
    inbox: Arc<Inbox<H>>,
    polite: bool,
) where
    F: Fn(T) -> R,
    D: Fn(Done<R>),
    H: Failable,
{
    let live = Live(inbox);
    let mut misses = 0u32;
    while let Some(Job { seq, x, acks }) = next_job(&rx, &mut misses, polite) {
        let out = catch_unwind(AssertUnwindSafe(|| f(x)));
        finish(Done { seq, out, acks });
    }
    // The function (and whatever it captured) goes before the worker counts as gone, so once
    // the node's task has seen every worker leave, the function has been dropped.
    drop(f);
    drop(finish);
    drop(rx);
    drop(live);
}

/// Rounds of `spin_loop` a worker spends polling for the next job before it blocks.
const WORKER_SPINS: u32 = 2_000;

/// Rounds of `yield_now` a polite worker (one of a pool that fills every core) spends polling
/// for the next job before it blocks: a yield lets the thread that will send it run here.
const WORKER_YIELDS: u32 = 16;

/// Polls in a row that may come up empty before a waiter stops polling.
pub(crate) const MAX_MISSES: u32 = 4;

/// Once polling stopped paying, only every this many waits polls again (the others block at
/// once), so that a pool whose jobs or results come slowly does not burn a core polling.
const RETRY_EVERY: u32 = 16;

/// Whether the wait after `misses` polls that came up empty in a row should poll first.
#[inline]
pub(crate) fn should_poll(misses: u32) -> bool {
    misses < MAX_MISSES || misses.is_multiple_of(RETRY_EVERY)
}

/// The next job, or `None` once the pool is closed and drained. A worker that finds the queue
/// empty polls it for a little while (a few microseconds) before it blocks: the producer
/// usually answers a result with the next job at once, and parking, then being woken, costs far
/// more than that on a machine whose idle cores halt. `misses` counts the polls in a row that
/// found nothing (see [`should_poll`]). A `polite` worker yields its core between polls
/// instead of spinning on it.
fn next_job<T>(rx: &Receiver<Job<T>>, misses: &mut u32, polite: bool) -> Option<Job<T>> {
    match rx.try_recv() {
        Ok(job) => return Some(job),
        Err(TryRecvError::Disconnected) => return None,
        Err(TryRecvError::Empty) => {}
    }
    if should_poll(*misses) {
        let (rounds, pause): (u32, fn()) = if polite {
            (WORKER_YIELDS, thread::yield_now)
        } else {
            (WORKER_SPINS, std::hint::spin_loop)
        };
        for _ in 0..rounds {
            pause();
            match rx.try_recv() {
                Ok(job) => {
                    *misses = 0;
                    return Some(job);
                }
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
        }
    }
    *misses = misses.wrapping_add(1);
    rx.recv().ok()
}

struct InboxState<D> {
    items: Vec<D>,
    /// Set when the node's task died: results are failed instead of queued.
    fault: Option<Error>,
    live: usize,
    /// Yield rounds in a row that found nothing (see [`should_poll`]); only the task uses it.
    misses: u32,
    /// The task waits (or is about to wait) on `ready`: the next put must wake it.
    task_waiting: bool,
}

/// Times the task yields to the runtime, looking for results, before it parks on `ready`.
const TASK_YIELDS: u32 = 8;

/// Results on their way from the workers to the node's task.
///
/// A put wakes the task only when the task said it waits (a flag set under the lock before it
/// awaits its `Notified`, which keeps a permit, so no wake-up is lost). Before it says so, the
/// task yields to the runtime a few times and looks again: a result that comes back within a
/// few microseconds then costs no wake-up on either side.
pub(crate) struct Inbox<D> {
    state: Lock<InboxState<D>>,
    ready: Notify,
}

/// What the inbox carries: something whose tokens can be failed.
pub(crate) trait Failable {
    fn fail(&self, error: &Error);
}

impl<D: Failable> Inbox<D> {
    pub(crate) fn new(live: usize) -> Arc<Inbox<D>> {
        Arc::new(Inbox {
            state: Lock::new(InboxState {
                items: Vec::new(),
                fault: None,
                live,
                misses: 0,
                task_waiting: false,
            }),
            ready: Notify::new(),
        })
    }

    /// Adds a result; wakes the task only if it waits.
    #[inline]
    pub(crate) fn put(&self, d: D) {
        let wake = {
            let mut s = self.state.lock();
            if let Some(error) = &s.fault {
                // Nobody will deliver it.
                d.fail(error);
                return;
            }
            s.items.push(d);
            std::mem::take(&mut s.task_waiting)
        };
        if wake {
            self.ready.notify_one();
        }
    }

    /// The node's task died: results queued now or later are failed with `error`.
    pub(crate) fn kill(&self, error: &Error) {
        let lost = {
            let mut s = self.state.lock();
            s.fault = Some(error.clone());
            std::mem::take(&mut s.items)
        };
        for d in &lost {
            d.fail(error);
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
        let mut yields = None;
        loop {
            {
                let mut s = self.state.lock();
                if !s.items.is_empty() {
                    std::mem::swap(&mut s.items, buf);
                    if yields.is_some_and(|y| y > 0) {
                        s.misses = 0;
                    }
                    return true;
                }
                if s.live == 0 {
                    return false;
                }
                let budget = *yields.get_or_insert(if should_poll(s.misses) {
                    TASK_YIELDS
                } else {
                    0
                });
                if budget == 0 {
                    s.task_waiting = true;
                    s.misses = s.misses.wrapping_add(1);
                }
            }
            if let Some(y) = yields.as_mut().filter(|y| **y > 0) {
                *y -= 1;
                tokio::task::yield_now().await;
                continue;
            }
            // `notify_one` leaves a permit when nobody waits yet, so a result put between the
            // flag set above and this await is not missed.
            self.ready.notified().await;
        }
    }
}
