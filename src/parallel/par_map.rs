//! `par_map` and friends: a function run on a pool of worker threads, with bounded in-flight
//! work, ordered (or unordered) output and at-least-once tokens.
//!
//! Data path: `emit` → [`ParMapOp::on_input`] counts the element in the [`Gate`] and sends it,
//! with its tokens, to the [`Pool`] → a worker runs the function → the result lands in the
//! pool's inbox → the node's task (on the ambient tokio runtime) puts it through the reorder
//! buffer and pushes it downstream, awaiting each push → only then does the element leave the
//! gate and its tokens drop.

use std::sync::Arc;

use super::gate::{Gate, OpenOnDrop};
use super::options::ParMap;
use super::pool::{Done, Pool};
use super::reorder::Reorder;
use crate::Error;
use crate::graph::task::{Detach, Task, end_targets, forward, runtime};
use crate::graph::{Cx, Input, Operator, Outputs, Room};
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
        // Counted before it is sent, so the task never sees it leave before it entered.
        let full = self.gate.add();
        match self.pool.submit(x, cx.acks.clone()) {
            Ok(()) if full => self.gate.wait(cx),
            Ok(()) => {}
            Err(_late) => {
                // The node has ended (a push racing with close), or its task died: nothing
                // will run the element, and the caller must hear it.
                self.gate.leave();
                let error = self.task.death().unwrap_or(Error::Closed);
                cx.acks.fail(&error);
                cx.fail(error);
            }
        }
    }
}

impl<T: Send + 'static, U: Item> Detach for ParMapOp<T, U> {
    fn detach(&self) {
        self.pool.close();
    }
}

/// Routes one finished element: its result downstream, its panic to the task's failure slot.
/// Then the element leaves the gate and its tokens drop.
async fn deliver<U: Item>(out: &Outputs<U>, task: &Task, gate: &Gate, d: Done<U>) {
    match d.out {
        Ok(y) => forward(out, task, y, d.acks).await,
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

/// What the task holds between the inbox and downstream. If the task is dropped before it
/// delivered it all (its runtime shut down), the elements' tokens fail.
struct Held<U> {
    batch: Vec<Done<U>>,
    reorder: Reorder<Done<U>>,
    task: Arc<Task>,
}

impl<U> Drop for Held<U> {
    fn drop(&mut self) {
        if self.batch.is_empty() && self.reorder.is_empty() {
            return;
        }
        let error = self.task.death().unwrap_or_else(|| Error::Failed {
            node: "par_map".to_string(),
            message: "the node's task stopped before it delivered the element".to_string(),
        });
        for d in self.batch.drain(..).chain(self.reorder.drain_all()) {
            d.acks.fail(&error);
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
    let (pool, inbox) = Pool::start(options.workers(), kind, f);
    let gate = Gate::new(options.in_flight());
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
    {
        // If the task dies (its runtime shut down), nothing will deliver what the pool holds:
        // close the pool, fail its results, and release the waiting pushes with the failure.
        let (inbox, gate, node) = (inbox.clone(), gate.clone(), Arc::downgrade(&node));
        task.on_death(move |e| {
            if let Some(node) = node.upgrade() {
                node.op.pool.close();
            }
            inbox.kill(e);
            gate.kill(e);
        });
    }
    let ordered = options.is_ordered();
    let worker = node.clone();
    let t = task.clone();
    task.spawn(&rt, async move {
        let _open = OpenOnDrop(gate.clone());
        let out = &worker.out;
        let mut held = Held {
            batch: Vec::new(),
            reorder: Reorder::new(),
            task: t.clone(),
        };
        let Held { batch, reorder, .. } = &mut held;
        while inbox.take(batch).await {
            for d in batch.drain(..) {
                if ordered {
                    reorder.insert(d.seq, d);
                    while let Some(d) = reorder.pop() {
                        deliver(out, &t, &gate, d).await;
                    }
                } else {
                    deliver(out, &t, &gate, d).await;
                }
            }
        }
        tracing::debug!(kind, "worker pool stopped");
        end_targets(out, &t).await;
    });
    Stream::from_node(node)
}

impl<T: Item> Stream<T> {
    /// Runs `f` on `workers` dedicated threads and emits the results in input order.
    ///
    /// For functions too heavy for the stream's own thread: a model scored on every window, an
    /// image decoded per message. The threads are the pool's own, not the tokio runtime's, so
    /// heavy work never delays timers. At most `2 × workers` elements are in flight (see
    /// [`ParMap`]); past that `emit` pends until half of them have been accepted downstream. Results
    /// are pushed downstream from a task on the ambient tokio runtime, one at a time, awaiting
    /// each push, so a slow consumer slows the producer down through the node.
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
