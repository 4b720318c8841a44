//! `map_async`: a function that returns a future, run on the runtime with bounded
//! concurrency, outputs in input order.
//!
//! Elements go into a [`Mailbox`]; the node's task starts up to `concurrency` futures at once,
//! each spawned as its own tokio task (so they run in parallel on a multi-thread runtime and a
//! panic in one is isolated), and awaits them in input order, pushing each result downstream
//! before the next. In flight (queued, running, or finished and waiting for its turn) is
//! bounded by `2 × concurrency`, through the same gate as `par_map`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use futures_util::future::{Either, select};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};

use super::gate::{Gate, OpenOnDrop};
use crate::graph::task::{Detach, Mailbox, Task, end_targets, forward, runtime};
use crate::graph::{Cx, Error, Input, Operator, Outputs, Room};
use crate::{Item, Stream};

pub(crate) struct MapAsyncOp<T, U> {
    mailbox: Arc<Mailbox<T>>,
    gate: Arc<Gate>,
    task: Arc<Task>,
    _out: std::marker::PhantomData<fn() -> U>,
}

impl<T: Send + 'static, U: Item> Operator for MapAsyncOp<T, U> {
    type Out = U;
    const DEFERS_END: bool = true;

    fn on_end(&self, _out: &Outputs<U>, cx: &mut Cx) {
        self.mailbox.close();
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

impl<T: Send + 'static, U: Item> Input<0> for MapAsyncOp<T, U> {
    type In = T;

    fn on_input(&self, x: T, _out: &Outputs<U>, cx: &mut Cx) {
        self.task.report(cx);
        let full = self.gate.add();
        // The mailbox's own capacity is unbounded: the gate is the bound.
        self.mailbox.put(x, cx);
        if full {
            self.gate.wait(cx);
        }
    }
}

impl<T: Send + 'static, U: Item> Detach for MapAsyncOp<T, U> {
    fn detach(&self) {
        self.mailbox.close();
    }
}

impl<T: Item> Stream<T> {
    /// Applies `f`, which returns a future, to every element; runs at most `concurrency` of
    /// those futures at once on the ambient tokio runtime and emits their outputs in input
    /// order.
    ///
    /// For I/O-bound work (a lookup per element, an HTTP call); use
    /// [`par_map`](Self::par_map) for CPU-bound work. Each future is spawned as its own tokio
    /// task. At most `2 × concurrency` elements are in flight; past that `emit` pends. A panic
    /// in `f` or in its future is reported on the next `emit` or by `close()`, and the other
    /// elements still flow. Tokens are held until the element's output has been accepted
    /// downstream, and `close()` waits for every future.
    ///
    /// # Panics
    ///
    /// If `concurrency` is 0, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let seen = source
    ///     .map_async(4, |ms: u64| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     })
    ///     .sink_to_vec();
    /// for ms in [30, 1, 20, 2] {
    ///     source.emit(ms).await?;
    /// }
    /// source.close().await?;
    /// assert_eq!(seen.snapshot(), vec![30, 1, 20, 2]); // input order
    /// # Ok(()) }
    /// ```
    pub fn map_async<U, Fut, F>(&self, concurrency: usize, f: F) -> Stream<U>
    where
        U: Item,
        Fut: Future<Output = U> + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
    {
        assert!(
            concurrency > 0,
            "map_async: `concurrency` must be at least 1 (got 0): no future would ever run"
        );
        let rt = runtime("map_async");
        let mailbox = Mailbox::new(usize::MAX);
        let gate = Gate::new(concurrency.saturating_mul(2));
        let task = Task::new("map_async");
        mailbox.fail_with(&task);
        let node = self.then_detachable(
            "map_async",
            MapAsyncOp {
                mailbox: mailbox.clone(),
                gate: gate.clone(),
                task: task.clone(),
                _out: std::marker::PhantomData,
            },
        );
        task.bind(node.clone());
        let worker = node.clone();
        let t = task.clone();
        let f = Arc::new(f);
        let spawner = rt.clone();
        task.spawn(&rt, async move {
            let _open = OpenOnDrop(gate.clone());
            let out = &worker.out;
            let mut running = FuturesOrdered::new();
            let mut input_open = true;
            loop {
                let can_start = input_open && running.len() < concurrency;
                let next = if can_start && running.is_empty() {
                    Either::Left(mailbox.recv().await)
                } else if can_start {
                    let recv = pin!(mailbox.recv());
                    match select(recv, running.next()).await {
                        Either::Left((x, _)) => Either::Left(x),
                        Either::Right((done, _)) => Either::Right(done),
                    }
                } else if !running.is_empty() {
                    Either::Right(running.next().await)
                } else {
                    break;
                };
                match next {
                    Either::Left(Some((x, acks))) => {
                        let f = f.clone();
                        let handle = spawner.spawn(async move { f(x).await });
                        running.push_back(handle.map(move |r| (r, acks)));
                    }
                    Either::Left(None) => input_open = false,
                    Either::Right(Some((result, acks))) => {
                        match result {
                            Ok(y) => forward(out, &t, y, acks).await,
                            Err(e) => {
                                out.errors.inc_exact();
                                let error = match e.try_into_panic() {
                                    Ok(payload) => t.panicked_here(&*payload),
                                    Err(e) => Error::Failed {
                                        node: worker.meta.name(),
                                        message: e.to_string(),
                                    },
                                };
                                acks.fail(&error);
                                t.fail(error);
                                drop(acks);
                            }
                        }
                        gate.leave();
                    }
                    Either::Right(None) => {}
                }
            }
            end_targets(out, &t).await;
        });
        Stream::from_node(node)
    }
}
