//! `partition` and `partition_by`: batches of `n` elements (per key).

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::graph::sync::Lock;
use crate::graph::{Acks, Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

/// Open batches, by key, with the order in which each batch was started.
pub(crate) struct Batches<K, T> {
    open: HashMap<K, (u64, Vec<(T, Acks)>)>,
    started: u64,
    /// The node has ended: later elements (pushes that raced `close()`) are refused.
    pub(crate) ended: bool,
}

impl<K: Hash + Eq, T: Clone> Batches<K, T> {
    pub(crate) fn new() -> Self {
        Batches {
            open: HashMap::new(),
            started: 0,
            ended: false,
        }
    }

    /// Adds an element; returns the batch it completes, if any.
    pub(crate) fn add(&mut self, key: K, x: T, acks: Acks, n: usize) -> Option<Vec<(T, Acks)>> {
        let started = &mut self.started;
        let (_, batch) = self.open.entry(key).or_insert_with(|| {
            *started += 1;
            (*started, Vec::new())
        });
        batch.push((x, acks));
        if batch.len() < n {
            return None;
        }
        let batch = std::mem::take(batch);
        self.open.retain(|_, (_, b)| !b.is_empty());
        Some(batch)
    }

    /// Removes the batch of `key`, if one is open.
    pub(crate) fn take(&mut self, key: &K) -> Option<Vec<(T, Acks)>> {
        self.open.remove(key).map(|(_, b)| b)
    }

    /// Removes every open batch, oldest first.
    pub(crate) fn drain(&mut self) -> Vec<Vec<(T, Acks)>> {
        let mut all: Vec<_> = self.open.drain().map(|(_, v)| v).collect();
        all.sort_by_key(|(started, _)| *started);
        all.into_iter().map(|(_, b)| b).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.open.values().map(|(_, b)| b.len()).sum()
    }
}

/// Splits a batch into its elements and the union of their tokens.
pub(crate) fn unzip_batch<T>(batch: Vec<(T, Acks)>) -> (Vec<T>, Acks) {
    let acks = Acks::union(batch.iter().map(|(_, a)| a));
    (batch.into_iter().map(|(x, _)| x).collect(), acks)
}

pub(crate) struct Partition<F, T, K> {
    n: usize,
    key: F,
    batches: Lock<Batches<K, T>>,
    _t: PhantomData<fn(T)>,
}

impl<F, T, K> Operator for Partition<F, T, K>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    T: Item,
    K: Hash + Eq + Send + 'static,
{
    type Out = Vec<T>;

    fn on_end(&self, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let rest = {
            let mut b = self.batches.lock();
            b.ended = true;
            b.drain()
        };
        out.push_each_acked(rest.into_iter().map(unzip_batch), cx);
    }

    fn held(&self) -> usize {
        self.batches.lock().len()
    }
}

impl<F, T, K> Input<0> for Partition<F, T, K>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    T: Item,
    K: Hash + Eq + Send + 'static,
{
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let key = out.call(|| (self.key)(&x));
        let full = {
            let mut b = self.batches.lock();
            if b.ended {
                drop(b);
                return cx.reject_closed();
            }
            b.add(key, x, cx.acks.clone(), self.n)
        };
        if let Some(batch) = full {
            let (items, acks) = unzip_batch(batch);
            out.push_acked(items, acks, cx);
        }
    }
}

impl<T: Item> Stream<T> {
    /// Groups elements into batches of `n`, in arrival order. A partial batch is emitted when
    /// the stream ends ([`Source::close`](crate::Source::close)). Tokens are held until the
    /// batch is emitted.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let batches = source.partition(2).sink_to_vec();
    /// for x in 0..5 {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(batches.snapshot(), vec![vec![0, 1], vec![2, 3]]);
    /// source.close().await?;
    /// assert_eq!(batches.snapshot(), vec![vec![0, 1], vec![2, 3], vec![4]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn partition(&self, n: usize) -> Stream<Vec<T>> {
        self.partition_by(n, |_| ())
    }

    /// Groups elements into batches of `n` elements sharing a key; each key fills its own
    /// batch. At the end of the stream, partial batches are emitted in the order they were
    /// started.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let by_parity = source.partition_by(2, |x: &i32| x % 2).sink_to_vec();
    /// for x in 0..6 {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(by_parity.snapshot(), vec![vec![0, 2], vec![1, 3]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn partition_by<K>(
        &self,
        n: usize,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> Stream<Vec<T>>
    where
        K: Hash + Eq + Send + 'static,
    {
        assert!(n > 0, "partition: the batch size must be at least 1");
        self.then(
            "partition",
            Partition {
                n,
                key,
                batches: Lock::new(Batches::new()),
                _t: PhantomData,
            },
        )
    }
}
