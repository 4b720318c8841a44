//! `par_map` and friends: a function run on a pool of worker threads, with bounded in-flight
//! work, ordered (or unordered) output and at-least-once tokens.
//!
//! Data path: `emit` → [`ParMapOp::on_input`] counts the element in the [`Gate`] and sends it,
//! with its tokens, to the [`Pool`] → a worker runs the function → the worker puts the result
//! in the [`Turn`] and, unless another thread holds the turn, takes it and pushes every result
//! that is next in order downstream itself → the element leaves the gate and its tokens drop.
//! A push that must wait (a downstream node over its bound) is handed, with the turn, to the
//! node's task on the tokio runtime, which awaits it and goes on pushing.
//!
//! Why the workers push: handing each result to a task on another thread costs that thread's
//! wake-up, which on a virtual machine takes several microseconds of the worker's own time per
//! result, and a core for the forwarding thread that the workers then lack.
//!
//! Invariants:
//! - **One pusher.** At most one thread (a worker or the task) pushes downstream at a time:
//!   the one that set `Turn::pushing`. It pops and pushes until nothing is ready, and clears
//!   the flag under the same lock under which it found nothing, so a result put in the turn is
//!   always pushed, by the thread that put it or by the pusher it found there.
//! - **Order.** In ordered mode a result is ready only when every earlier one has left (the
//!   reorder buffer, keyed by the pool's dense sequence numbers); unordered, in arrival order.
//! - **Backpressure.** The pusher awaits (through the task) a push that pends before it pushes
//!   the next one, exactly as a producer awaits `emit`.

use std::sync::Arc;

use super::gate::{Gate, OpenOnDrop};
use super::options::ParMap;
use super::pool::{Done, Failable, Inbox, Pool, fills_every_core};
use super::reorder::Reorder;
use crate::graph::sync::Lock;
use crate::graph::task::{Detach, Task, end_targets, forward_finish, forward_start, runtime};
use crate::graph::{Cx, Input, Operator, Outputs, Room};
use crate::{Emit, Error};
use crate::{Fallible, Item, Stream};

pub(crate) struct ParMapOp<T, U> {
    pool: Pool<T>,
    gate: Arc<Gate>,
    task: Arc<Task>,
    _out: std::marker::PhantomData<fn() -> U>,
}

impl<T: Send + 'static, U: Item> Operator for ParMapOp<T, U> {
    type Out = U;
    const DEFERS_END: bool = true;

    fn on_end(&self, _out: &Outputs<U>, cx: &mut Cx) {
        self.pool.close();
        self.task.wait_finished(cx);
    }

    fn held(&self) -> usize {
        self.gate.len()
    }

    fn room(&self) -> Room {
        if self.gate.is_full() {
            Room::Full
        } else {
            Room::Free
        }
    }
}

impl<T: Send + 'static, U: Item> Input<0> for ParMapOp<T, U> {
    type In = T;

    #[inline]
    fn on_input(&self, x: T, _out: &Outputs<U>, cx: &mut Cx) {
        self.task.report(cx);
        // Counted before it is sent, so it never leaves before it entered.
        let full = self.gate.add();
        match self.pool.submit(x, cx.acks.clone()) {
            Ok(()) if full => self.gate.wait(cx),
            Ok(()) => {}
            Err(_late) => {
                // The node has ended (a push racing with close), or its task died: nothing
                // will run the element, and the caller must hear it.
                self.gate.leave();
                self.task.refuse(cx);
            }
        }
    }
}

impl<T: Send + 'static, U: Item> Detach for ParMapOp<T, U> {
    fn detach(&self) {
        self.pool.close();
    }
}

/// Finished results waiting for their turn downstream (see the module invariants).
struct Turn<U> {
    ready: Reorder<Done<U>>,
    /// A thread is pushing: it will push what is put here meanwhile.
    pushing: bool,
    /// Set when the node's task died: results are failed instead of pushed.
    fault: Option<Error>,
}

/// A push that pends, handed with the turn from a worker to the node's task.
struct Handoff(Emit);

impl Failable for Handoff {
    fn fail(&self, _error: &Error) {
        // Its element was accepted downstream and its tokens went with it; the gate, failed
        // at the same time, releases the waiting producers.
    }
}

/// What the workers and the task share to push results downstream (the gate and the task
/// are the node's own).
struct Pusher<T: Send + 'static, U: Item> {
    turn: Lock<Turn<U>>,
    node: Arc<crate::graph::Node<ParMapOp<T, U>>>,
    inbox: Arc<Inbox<Handoff>>,
    ordered: bool,
}

impl<T: Send + 'static, U: Item> Pusher<T, U> {
    /// A worker's result: into the turn, and pushed now if no other thread is pushing.
    fn finish(&self, d: Done<U>) {
        let first = {
            let mut t = self.turn.lock();
            if let Some(error) = &t.fault {
                // Nobody will deliver it.
                d.acks.fail(error);
                drop(t);
                self.node.op.gate.leave();
                return;
            }
            // Unordered, a result is ready on arrival: it goes right after the last one.
            let key = if self.ordered { d.seq } else { t.ready.end() };
            if t.pushing {
                t.ready.insert(key, d);
                return;
            }
            t.pushing = true;
            // Taken under the same lock: a worker that finds the turn free pays one lock
            // to take its result and one to give the turn back.
            t.ready.take_next(key, d)
        };
        if let Some(emit) = self.push_ready(first) {
            self.inbox.put(Handoff(emit));
        }
    }

    /// Pushes `first` (already taken from the turn), then results downstream while the next
    /// one is ready, holding the turn. Returns with the turn given up once none is ready, or,
    /// still holding it, with the wait of a push that pends: the caller awaits it, lets its
    /// element leave the gate, and calls again.
    fn push_ready(&self, mut first: Option<Done<U>>) -> Option<Emit> {
        let (out, ParMapOp { task, gate, .. }) = (&self.node.out, &self.node.op);
        loop {
            let d = match first.take() {
                Some(d) => d,
                None => {
                    let mut t = self.turn.lock();
                    match t.ready.pop() {
                        Some(d) => d,
                        None => {
                            t.pushing = false;
                            return None;
                        }
                    }
                }
            };
            match d.out {
                Ok(y) => {
                    if let Some(emit) = forward_start(out, task, y, d.acks) {
                        return Some(emit);
                    }
                }
                Err(payload) => {
                    out.errors.inc_exact();
                    let error = task.panicked_here(&*payload);
                    d.acks.fail(&error);
                    task.fail(error);
                    drop(d.acks);
                }
            }
            gate.leave();
        }
    }

    /// The node's task died: what waits in the turn, and every result after, fails.
    fn kill(&self, error: &Error) {
        let lost: Vec<Done<U>> = {
            let mut t = self.turn.lock();
            t.fault = Some(error.clone());
            t.ready.drain_all().collect()
        };
        for d in lost {
            d.acks.fail(error);
            self.node.op.gate.leave();
        }
    }
}

/// Builds the node.
fn build<T, U, F>(up: &Stream<T>, kind: &'static str, options: ParMap, f: F) -> Stream<U>
where
    T: Item,
    U: Item,
    F: Fn(T) -> U + Send + Sync + 'static,
{
    let rt = runtime(kind);
    let (pool, workers) = Pool::new();
    let inbox = Inbox::new(options.workers());
    // The producer may poll for room while the workers drain, unless they fill every core.
    let gate = if fills_every_core(options.workers()) {
        Gate::new(options.in_flight())
    } else {
        Gate::polling(options.in_flight())
    };
    let task = Task::new(kind);
    let node = up.then_detachable(
        kind,
        ParMapOp {
            pool,
            gate: gate.clone(),
            task: task.clone(),
            _out: std::marker::PhantomData,
        },
    );
    task.bind(node.clone());
    let pusher = Arc::new(Pusher {
        turn: Lock::new(Turn {
            ready: Reorder::new(),
            pushing: false,
            fault: None,
        }),
        node: node.clone(),
        inbox: inbox.clone(),
        ordered: options.is_ordered(),
    });
    {
        // If the task dies (its runtime shut down), nothing will await a pending push: close
        // the pool, fail what waits and what comes, and release the waiting pushes with the
        // failure.
        let (inbox, gate, node) = (inbox.clone(), gate.clone(), Arc::downgrade(&node));
        let pusher = Arc::downgrade(&pusher);
        task.on_death(move |e| {
            if let Some(node) = node.upgrade() {
                node.op.pool.close();
            }
            if let Some(pusher) = pusher.upgrade() {
                pusher.kill(e);
            }
            inbox.kill(e);
            gate.kill(e);
        });
    }
    let finishing = pusher.clone();
    workers.start(
        options.workers(),
        kind,
        &rt,
        f,
        move |d| finishing.finish(d),
        &inbox,
    );
    let t = task.clone();
    task.spawn(&rt, async move {
        let gate = &pusher.node.op.gate;
        let _open = OpenOnDrop(gate.clone());
        let mut batch = Vec::new();
        while inbox.take(&mut batch).await {
            for Handoff(emit) in batch.drain(..) {
                // This task holds the turn now: await the push, then go on pushing.
                let mut emit = emit;
                loop {
                    forward_finish(&t, emit).await;
                    gate.leave();
                    match pusher.push_ready(None) {
                        Some(next) => emit = next,
                        None => break,
                    }
                }
            }
        }
        tracing::debug!(kind, "worker pool stopped");
        end_targets(&pusher.node.out, &t).await;
    });
    Stream::from_node(node)
}

impl<T: Item> Stream<T> {
    /// Runs `f` on `workers` dedicated threads and emits the results in input order.
    ///
    /// For functions too heavy for the stream's own thread: a model scored on every window, an
    /// image decoded per message. The threads are the pool's own, not the tokio runtime's, so
    /// heavy work never delays timers. At most `2 × workers` elements, and at least 32, are in
    /// flight (see [`ParMap`]); past that `emit` pends until half of them have been accepted
    /// downstream. Each result is pushed downstream, in order and one at a time, by the worker
    /// that finished it (so synchronous nodes downstream run on that thread, inside the
    /// runtime's context); a push that must wait is awaited by a task on the ambient tokio
    /// runtime before the next one, so a slow consumer slows the producer down through the node.
    ///
    /// A panic in `f` is caught on the worker (which lives on), counted in the node's `errors`,
    /// and reported on the next `emit` or by `close()`; the other elements still flow.
    /// Acknowledgement tokens are held until the element's result has been accepted
    /// downstream. `close()` waits for all work in flight; dropping every source handle stops
    /// the worker threads once the queued work is done.
    ///
    /// # Panics
    ///
    /// If `workers` is 0, or when called outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let squares = source.par_map(2, |x: u64| x * x).sink_to_vec();
    /// for x in 1..=5 {
    ///     source.emit(x).await?;
    /// }
    /// source.close().await?; // waits for the workers
    /// assert_eq!(squares.snapshot(), vec![1, 4, 9, 16, 25]);
    /// # Ok(()) }
    /// ```
    pub fn par_map<U: Item>(
        &self,
        workers: usize,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Stream<U> {
        self.par_map_with(ParMap::new(workers), f)
    }

    /// Like [`par_map`](Self::par_map), but emits each result as soon as it is ready, so one
    /// slow element does not hold back the ones after it.
    ///
    /// # Panics
    ///
    /// If `workers` is 0, or when called outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let seen = source.par_map_unordered(2, |x: u32| x + 1).sink_to_vec();
    /// for x in 0..4 {
    ///     source.emit(x).await?;
    /// }
    /// source.close().await?;
    /// let mut all = seen.snapshot();
    /// all.sort();
    /// assert_eq!(all, vec![1, 2, 3, 4]);
    /// # Ok(()) }
    /// ```
    pub fn par_map_unordered<U: Item>(
        &self,
        workers: usize,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Stream<U> {
        self.par_map_with(ParMap::new(workers).unordered(), f)
    }

    /// [`par_map`](Self::par_map) with explicit [`ParMap`] options: workers, in-flight bound,
    /// order.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::parallel::ParMap;
    /// use brooklet::Source;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let lengths = source
    ///     .par_map_with(ParMap::new(2).max_in_flight(8), |s: String| s.len())
    ///     .sink_to_vec();
    /// source.emit("hello".to_string()).await?;
    /// source.emit("hi".to_string()).await?;
    /// source.close().await?;
    /// assert_eq!(lengths.snapshot(), vec![5, 2]);
    /// # Ok(()) }
    /// ```
    pub fn par_map_with<U: Item>(
        &self,
        options: ParMap,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Stream<U> {
        let kind = if options.is_ordered() {
            "par_map"
        } else {
            "par_map_unordered"
        };
        build(self, kind, options, f)
    }

    /// A fallible [`par_map`](Self::par_map): `Ok` results are emitted in input order; `Err`
    /// values go to the [`errors`](Fallible::errors) side output (a dead-letter stream),
    /// counted in the `errors` metric of the returned node. An element's tokens are released
    /// once its result, or its error record, has been accepted by the stream it went to.
    ///
    /// # Panics
    ///
    /// If `workers` is 0, or when called outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let numbers = source.try_par_map(2, |s: &'static str| s.parse::<i32>().map_err(|_| s));
    /// let good = numbers.sink_to_vec();
    /// let bad = numbers.errors().sink_to_vec();
    /// for s in ["1", "x", "3"] {
    ///     source.emit(s).await?;
    /// }
    /// source.close().await?;
    /// assert_eq!(good.snapshot(), vec![1, 3]);
    /// assert_eq!(bad.snapshot(), vec!["x"]);
    /// # Ok(()) }
    /// ```
    pub fn try_par_map<U: Item, E: Item>(
        &self,
        workers: usize,
        f: impl Fn(T) -> Result<U, E> + Send + Sync + 'static,
    ) -> Fallible<U, E> {
        self.try_par_map_with(ParMap::new(workers), f)
    }

    /// [`try_par_map`](Self::try_par_map) with explicit [`ParMap`] options.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::parallel::ParMap;
    /// use brooklet::Source;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let checked = source.try_par_map_with(ParMap::new(1).unordered(), |x: i32| {
    ///     if x >= 0 { Ok(x) } else { Err(format!("{x} is negative")) }
    /// });
    /// let (ok, err) = (checked.sink_to_vec(), checked.errors().sink_to_vec());
    /// source.emit(-1).await?;
    /// source.emit(2).await?;
    /// source.close().await?;
    /// assert_eq!(ok.snapshot(), vec![2]);
    /// assert_eq!(err.snapshot(), vec!["-1 is negative".to_string()]);
    /// # Ok(()) }
    /// ```
    pub fn try_par_map_with<U: Item, E: Item>(
        &self,
        options: ParMap,
        f: impl Fn(T) -> Result<U, E> + Send + Sync + 'static,
    ) -> Fallible<U, E> {
        // The workers return the `Result` itself; a synchronous `try_map` right behind the pool
        // splits it, on the task's push. So an error record is pushed into the side output
        // carrying its element's tokens, which drop once the side output has accepted it.
        let kind = if options.is_ordered() {
            "try_par_map"
        } else {
            "try_par_map_unordered"
        };
        build(self, kind, options, f).try_map(|r| r)
    }
}
