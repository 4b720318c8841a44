//! `unique` and friends: drop elements whose key was seen before.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::marker::PhantomData;

use crate::graph::sync::Lock;
use crate::graph::{Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

/// Keys seen so far; with a capacity, the least recently seen key is forgotten first.
struct Seen<K> {
    last_seen: HashMap<K, u64>,
    by_age: BTreeMap<u64, K>,
    tick: u64,
}

impl<K: Hash + Eq + Clone> Seen<K> {
    /// Records `key`; true when it was not remembered.
    fn insert(&mut self, key: K, capacity: Option<usize>) -> bool {
        self.tick += 1;
        let tick = self.tick;
        if let Some(old) = self.last_seen.get_mut(&key) {
            if capacity.is_some() {
                // A hit refreshes recency, as an LRU cache does.
                let key = self.by_age.remove(old).expect("age index in sync");
                *old = tick;
                self.by_age.insert(tick, key);
            }
            return false;
        }
        if let Some(cap) = capacity {
            self.by_age.insert(tick, key.clone());
            if self.last_seen.len() == cap {
                let (_, oldest) = self.by_age.pop_first().expect("non-empty when full");
                self.last_seen.remove(&oldest);
            }
        }
        self.last_seen.insert(key, tick);
        true
    }
}

pub(crate) struct Unique<F, T, K> {
    key: F,
    capacity: Option<usize>,
    seen: Lock<Seen<K>>,
    _t: PhantomData<fn(T)>,
}

impl<F, T, K> Operator for Unique<F, T, K>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    T: Item,
    K: Hash + Eq + Clone + Send + 'static,
{
    type Out = T;

    /// Nothing more will be compared with the keys seen: they are freed.
    fn on_end(&self, _out: &Outputs<T>, _cx: &mut Cx) {
        let mut seen = self.seen.lock();
        let forgotten = (
            std::mem::take(&mut seen.last_seen),
            std::mem::take(&mut seen.by_age),
        );
        drop(seen);
        drop(forgotten);
    }

    fn held(&self) -> usize {
        self.seen.lock().last_seen.len()
    }
}

impl<F, T, K> Input<0> for Unique<F, T, K>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    T: Item,
    K: Hash + Eq + Clone + Send + 'static,
{
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<T>, cx: &mut Cx) {
        let key = out.call(|| (self.key)(&x));
        let fresh = self.seen.lock().insert(key, self.capacity);
        if fresh {
            out.push(x, cx);
        }
    }
}

impl<T: Item> Stream<T> {
    fn unique_node<K>(
        &self,
        capacity: Option<usize>,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> Stream<T>
    where
        K: Hash + Eq + Clone + Send + 'static,
    {
        if capacity == Some(0) {
            panic!("unique: the LRU capacity must be at least 1");
        }
        self.then(
            "unique",
            Unique {
                key,
                capacity,
                seen: Lock::new(Seen {
                    last_seen: HashMap::new(),
                    by_age: BTreeMap::new(),
                    tick: 0,
                }),
                _t: PhantomData,
            },
        )
    }

    /// Passes on each distinct element the first time it is seen, ever. Memory grows with the
    /// number of distinct elements; see [`unique_lru`](Self::unique_lru) for a bounded variant.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let firsts = source.unique().sink_to_vec();
    /// for x in [1, 2, 1, 3, 2] {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(firsts.snapshot(), vec![1, 2, 3]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn unique(&self) -> Stream<T>
    where
        T: Hash + Eq,
    {
        self.unique_node(None, T::clone)
    }

    /// Passes on an element unless one of the `capacity` most recently seen elements equals
    /// it. Seeing an element again refreshes it (LRU, as Streamz's `unique(maxsize=n)`);
    /// `unique_lru(1)` drops consecutive duplicates.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let changes = source.unique_lru(1).sink_to_vec();
    /// for x in [1, 1, 2, 2, 2, 1, 3] {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(changes.snapshot(), vec![1, 2, 1, 3]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn unique_lru(&self, capacity: usize) -> Stream<T>
    where
        T: Hash + Eq,
    {
        self.unique_node(Some(capacity), T::clone)
    }

    /// Passes on an element the first time its key is seen, ever.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let first_per_user = source.unique_by(|(user, _): &(u32, &str)| *user).sink_to_vec();
    /// for event in [(1, "login"), (2, "login"), (1, "click")] {
    ///     source.emit(event).await?;
    /// }
    /// assert_eq!(first_per_user.snapshot(), vec![(1, "login"), (2, "login")]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn unique_by<K>(&self, key: impl Fn(&T) -> K + Send + Sync + 'static) -> Stream<T>
    where
        K: Hash + Eq + Clone + Send + 'static,
    {
        self.unique_node(None, key)
    }

    /// Passes on an element unless its key is among the `capacity` most recently seen keys
    /// (LRU: a repeated key is refreshed).
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let parity_changes = source.unique_by_lru(1, |x: &i32| x % 2).sink_to_vec();
    /// for x in [1, 2, 4, 6, 3] {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(parity_changes.snapshot(), vec![1, 2, 3]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn unique_by_lru<K>(
        &self,
        capacity: usize,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> Stream<T>
    where
        K: Hash + Eq + Clone + Send + 'static,
    {
        self.unique_node(Some(capacity), key)
    }
}
