//! `combine_latest_all`: the latest element of every input, whenever one arrives, with inputs
//! that can come and go while the graph runs.
//!
//! Invariants:
//! - A row holds the latest element of every current input, in the order the inputs were
//!   added, and carries their tokens; each latest element holds its token until replaced.
//! - Nothing is emitted while some current input has sent nothing yet.
//! - Cutting an input drops its latest element (releasing its token) and emits nothing by
//!   itself: the next arrival emits a row of the inputs that are left.

use std::any::Any;
use std::sync::Arc;

use crate::graph::sync::Lock;
use crate::graph::{Acks, Cx, Inputs, Operator, Outputs};
use crate::{Item, Join, Stream};

struct In<T> {
    id: u64,
    upstream: usize,
    /// Keeps the input's port alive (a feedback edge holds it only weakly).
    _port: Arc<dyn Any + Send + Sync>,
    latest: Option<(T, Acks)>,
    /// The input's upstream has ended: later elements (pushes that raced `close()`) are
    /// refused.
    ended: bool,
}

pub(crate) struct CombineLatestAll<T> {
    inputs: Lock<Vec<In<T>>>,
}

impl<T: Item> Operator for CombineLatestAll<T> {
    type Out = Vec<T>;

    /// No row can be emitted any more: the latest values go, and their tokens with them.
    /// Every input counts as ended, feedback ones included (their ends are not delivered).
    fn on_end(&self, _out: &Outputs<Vec<T>>, _cx: &mut Cx) {
        let left: Vec<_> = self
            .inputs
            .lock()
            .iter_mut()
            .map(|i| {
                i.ended = true;
                i.latest.take()
            })
            .collect();
        drop(left);
    }

    fn held(&self) -> usize {
        self.inputs
            .lock()
            .iter()
            .filter(|i| i.latest.is_some())
            .count()
    }
}

impl<T: Item> Inputs for CombineLatestAll<T> {
    type In = T;

    fn added(&self, id: u64, upstream: usize, port: Arc<dyn Any + Send + Sync>) {
        self.inputs.lock().push(In {
            id,
            upstream,
            _port: port,
            latest: None,
            ended: false,
        });
    }

    fn on_input_from(&self, id: u64, x: T, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let (row, _replaced) = {
            let mut inputs = self.inputs.lock();
            let Some(me) = inputs.iter_mut().find(|i| i.id == id) else {
                return; // cut while the push was under way
            };
            if me.ended {
                drop(inputs);
                return cx.reject_closed();
            }
            let replaced = me.latest.replace((x, cx.acks.clone()));
            let row = inputs
                .iter()
                .map(|i| i.latest.as_ref())
                .collect::<Option<Vec<_>>>()
                .map(|latest| {
                    let acks = Acks::union(latest.iter().map(|(_, a)| a));
                    (latest.into_iter().map(|(x, _)| x.clone()).collect(), acks)
                });
            (row, replaced)
        };
        if let Some((row, acks)) = row {
            out.push_acked(row, acks, cx);
        }
    }

    fn ended(&self, id: u64, _out: &Outputs<Vec<T>>, _cx: &mut Cx) {
        if let Some(me) = self.inputs.lock().iter_mut().find(|i| i.id == id) {
            me.ended = true;
        }
    }

    fn cut(&self, id: u64, _out: &Outputs<Vec<T>>, _cx: &mut Cx) {
        let gone = {
            let mut inputs = self.inputs.lock();
            inputs
                .iter()
                .position(|i| i.id == id)
                .map(|at| inputs.remove(at))
        };
        drop(gone);
    }

    fn input_of(&self, upstream: *const ()) -> Option<u64> {
        self.inputs
            .lock()
            .iter()
            .find(|i| i.upstream == upstream as usize)
            .map(|i| i.id)
    }
}

impl<T: Item> Stream<T> {
    /// Emits the latest element of every input (this stream, then each of `others`) whenever
    /// any of them emits, once each has emitted at least once (Streamz's `combine_latest`
    /// over any number of streams of one type). Each latest element holds its token until it
    /// is replaced.
    ///
    /// The result is a [`Join`]: a stream [`connect`](Stream::connect)ed to it becomes one more
    /// input (rows wait until it has emitted once), and a
    /// [`disconnect`](Stream::disconnect)ed input leaves, its latest element dropped. For two
    /// streams of different types, use [`combine_latest`](Self::combine_latest).
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let a = Source::new();
    /// let b = Source::new();
    /// let latest = a.combine_latest_all([&*b]);
    /// let seen = latest.sink_to_vec();
    /// a.emit(1).await?;
    /// b.emit(10).await?;
    /// a.emit(2).await?;
    /// let c = Source::new();
    /// c.connect(&latest);
    /// a.emit(3).await?; // c has sent nothing yet: no row
    /// c.emit(100).await?;
    /// b.disconnect(&latest);
    /// a.emit(4).await?;
    /// assert_eq!(
    ///     seen.snapshot(),
    ///     vec![vec![1, 10], vec![2, 10], vec![3, 10, 100], vec![4, 100]]
    /// );
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn combine_latest_all<'a>(
        &self,
        others: impl IntoIterator<Item = &'a Stream<T>>,
    ) -> Join<T, Vec<T>> {
        let op = CombineLatestAll {
            inputs: Lock::new(Vec::new()),
        };
        self.join_per_input("combine_latest_all", op, others)
    }
}
