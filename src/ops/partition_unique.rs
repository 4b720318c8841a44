//! `partition_unique`: batches of `n` elements with distinct keys, keeping the first or the
//! last element of each key (Streamz's `partition_unique`).
//!
//! Why a batch holds the tokens of the elements it dropped: an element replaced by a later one
//! with the same key (or ignored because its key was already there) is absorbed into the batch,
//! so its token is released with the batch's, once the batch has been accepted downstream. A
//! source that commits offsets never commits past an absorbed element before the batch that
//! stands for it is through.
//!
//! Invariants:
//! - A batch is emitted when it holds `n` distinct keys; its elements are in arrival order of
//!   the elements kept (with [`Keep::Last`], a key moves to where its latest element arrived).
//! - The key function runs on the caller's push before any state changes: a panic in it
//!   unwinds to the caller of `emit` and leaves the open batch as it was.
//! - At the end of the stream, a partial batch is emitted (as `partition` does).

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::graph::sync::Lock;
use crate::graph::{Acks, Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

/// Which element of a key a deduplicating operator keeps:
/// [`partition_unique`](crate::Stream::partition_unique) and
/// [`timed_window_unique`](crate::Stream::timed_window_unique), as Streamz's `keep="first"`
/// and `keep="last"`.
///
/// ```
/// use brooklet::Source;
/// use brooklet::ops::Keep;
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let first = source.partition_unique(2, |x: &(char, u32)| x.0, Keep::First).sink_to_vec();
/// let last = source.partition_unique(2, |x: &(char, u32)| x.0, Keep::Last).sink_to_vec();
/// for x in [('a', 1), ('a', 2), ('b', 3)] {
///     source.emit(x).await?;
/// }
/// assert_eq!(first.snapshot(), vec![vec![('a', 1), ('b', 3)]]);
/// assert_eq!(last.snapshot(), vec![vec![('a', 2), ('b', 3)]]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keep {
    /// Keep the first element of each key; later ones are dropped.
    First,
    /// Keep the most recent element of each key; it takes the place where it arrived.
    Last,
}

/// Elements with distinct keys, in arrival order of the ones kept, each with the tokens of
/// every element it absorbed.
pub(crate) struct Distinct<K, T> {
    index: HashMap<K, usize>,
    /// `None`: an element replaced under [`Keep::Last`].
    slots: Vec<Option<(T, Vec<Acks>)>>,
}

impl<K: Hash + Eq, T> Distinct<K, T> {
    pub(crate) fn new() -> Self {
        Distinct {
            index: HashMap::new(),
            slots: Vec::new(),
        }
    }

    /// Adds `x` under `key`, keeping the first or the last element of the key.
    pub(crate) fn add(&mut self, key: K, x: T, acks: Acks, keep: Keep) {
        let acks = if acks.is_empty() {
            Vec::new()
        } else {
            vec![acks]
        };
        match self.index.get(&key).copied() {
            None => {
                self.index.insert(key, self.slots.len());
                self.slots.push(Some((x, acks)));
            }
            Some(i) => {
                let slot = &mut self.slots[i];
                let (_, held) = slot.as_mut().expect("an indexed slot holds its element");
                held.extend(acks);
                if keep == Keep::Last {
                    let (_, held) = slot.take().expect("an indexed slot holds its element");
                    self.index.insert(key, self.slots.len());
                    self.slots.push(Some((x, held)));
                }
            }
        }
    }

    /// How many distinct keys are held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Takes every element held, in order, with the union of the tokens each absorbed.
    pub(crate) fn take(&mut self) -> Vec<(T, Acks)> {
        self.index.clear();
        self.slots
            .drain(..)
            .flatten()
            .map(|(x, acks)| (x, Acks::union(&acks)))
            .collect()
    }
}

struct State<K, T> {
    open: Distinct<K, T>,
    /// The node has ended: later elements (pushes that raced `close()`) are refused.
    ended: bool,
}

pub(crate) struct PartitionUnique<F, T, K> {
    n: usize,
    key: F,
    keep: Keep,
    state: Lock<State<K, T>>,
    _t: PhantomData<fn(T)>,
}

impl<F, T, K> Operator for PartitionUnique<F, T, K>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    T: Item,
    K: Hash + Eq + Send + 'static,
{
    type Out = Vec<T>;

    fn on_end(&self, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let rest = {
            let mut s = self.state.lock();
            s.ended = true;
            s.open.take()
        };
        if !rest.is_empty() {
            let (items, acks) = crate::ops::partition::unzip_batch(rest);
            out.push_acked(items, acks, cx);
        }
    }

    fn held(&self) -> usize {
        self.state.lock().open.len()
    }
}

impl<F, T, K> Input<0> for PartitionUnique<F, T, K>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    T: Item,
    K: Hash + Eq + Send + 'static,
{
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let key = out.call(|| (self.key)(&x));
        let full = {
            let mut s = self.state.lock();
            if s.ended {
                drop(s);
                return cx.reject_closed();
            }
            s.open.add(key, x, cx.acks.clone(), self.keep);
            (s.open.len() >= self.n).then(|| s.open.take())
        };
        if let Some(batch) = full {
            let (items, acks) = crate::ops::partition::unzip_batch(batch);
            out.push_acked(items, acks, cx);
        }
    }
}

impl<T: Item> Stream<T> {
    /// Groups elements into batches of `n` distinct keys, keeping one element per key: the
    /// first one seen ([`Keep::First`]) or the latest ([`Keep::Last`]), as Streamz's
    /// `partition_unique`. Elements keep their relative arrival order (with `Keep::Last`, a
    /// repeated key moves to where its latest element arrived). Use `|x| x.clone()` as the key
    /// to deduplicate whole elements, as Streamz does by default.
    ///
    /// A partial batch is emitted when the stream ends. A dropped duplicate's token is released
    /// with its batch's tokens, once the batch has been accepted downstream. A panic in `key`
    /// unwinds to the caller of `emit` and leaves the open batch as it was.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::ops::Keep;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let first = source.partition_unique(3, |x: &u32| *x, Keep::First).sink_to_vec();
    /// let last = source.partition_unique(3, |x: &u32| *x, Keep::Last).sink_to_vec();
    /// for x in [1, 2, 1, 3, 1, 3, 3, 2] {
    ///     source.emit(x).await?;
    /// }
    /// // Streamz's own examples.
    /// assert_eq!(first.snapshot(), vec![vec![1, 2, 3], vec![1, 3, 2]]);
    /// assert_eq!(last.snapshot(), vec![vec![2, 1, 3], vec![1, 3, 2]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn partition_unique<K>(
        &self,
        n: usize,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
        keep: Keep,
    ) -> Stream<Vec<T>>
    where
        K: Hash + Eq + Send + 'static,
    {
        assert!(n > 0, "partition_unique: the batch size must be at least 1");
        self.then(
            "partition_unique",
            PartitionUnique {
                n,
                key,
                keep,
                state: Lock::new(State {
                    open: Distinct::new(),
                    ended: false,
                }),
                _t: PhantomData,
            },
        )
    }
}
