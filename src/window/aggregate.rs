//! Aggregators: what a window computes over the events it holds.
//!
//! The builder methods ([`sum`](crate::window::WindowBuilder::sum),
//! [`count`](crate::window::WindowBuilder::count), ...) cover the common cases; several at once
//! is a tuple given to [`aggregate`](crate::window::WindowBuilder::aggregate), built from the
//! functions of this module; anything else is an implementation of [`Aggregator`].
//!
//! Order rules: `first` and `last` are by event time, ties by arrival; `collect` returns values
//! ordered by event time, then arrival. `min` keeps the first of equal values, `max` too.
//!
//! Values that do not compare (a float NaN): `min` and `max` ignore them, as [`f64::min`] and
//! [`f64::max`] do, so a window's result is what it would be without them, whatever the order of
//! arrival or the window kind; only a window that holds nothing but NaNs reports NaN. `mean` and
//! `sum` follow IEEE arithmetic: one NaN makes the window's mean (or sum) NaN.
//!
//! Panics: an event whose aggregate panics (a panicking extractor, a `reduce` closure, or your
//! own [`Aggregator`]) leaves every window exactly as it was before the event, as if the event
//! never arrived, and the panic reaches the caller of `emit`. An event added to several windows
//! at once (hopping, sliding and count windows) is added to all of them or to none: mergeable
//! aggregates add it to a fresh accumulator and [merge](Aggregator::merge) that into each
//! window; the others add it to a copy of each window's accumulator and keep the copies only
//! once every one of them succeeded.
//!
//! Hopping windows keep one accumulator per step-sized pane and [`merge`](Aggregator::merge)
//! the panes of a window when it closes, so an event costs the same whatever `size / step` is.
//! Aggregators that cannot merge (`reduce`, and yours unless you say otherwise) keep one
//! accumulator per window instead.
//!
//! ```
//! use brooklet::Source;
//! use brooklet::window::{aggregate::{count, max, mean}, Window};
//! # futures::executor::block_on(async {
//! let source = Source::new();
//! let stats = source
//!     .window(Window::tumbling(1_000))
//!     .timestamp(|r: &(i64, f64)| r.0)
//!     .aggregate((count(), mean(|r: &(i64, f64)| r.1), max(|r: &(i64, f64)| r.1)))
//!     .sink_to_vec();
//! for r in [(0, 1.0), (500, 3.0), (1_200, 9.0)] {
//!     source.emit(r).await?;
//! }
//! source.close().await?;
//! let values: Vec<_> = stats.snapshot().into_iter().map(|w| w.value).collect();
//! assert_eq!(values, vec![(2, 2.0, 3.0), (1, 9.0, 9.0)]);
//! # Ok::<(), brooklet::Error>(()) }).unwrap();
//! ```

use std::marker::PhantomData;
use std::ops::Add;

use crate::Item;

/// A user-defined aggregate: an accumulator built by [`init`](Aggregator::init), fed by
/// [`add`](Aggregator::add), read by [`result`](Aggregator::result), and (when
/// [`MERGEABLE`](Aggregator::MERGEABLE)) combined by [`merge`](Aggregator::merge).
///
/// `add` is called in arrival order for tumbling and hopping windows; sliding windows built
/// from earlier records feed them in `(timestamp, arrival)` order. `result` is only called on
/// accumulators that received at least one event (empty windows are never emitted).
///
/// A panic in `add` must leave its accumulator as it was: compute the new value, then assign
/// it (every aggregate of this module does). The window then leaves all its state as it was
/// before the event (see the [module](self) documentation).
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::{Aggregator, Window};
///
/// /// The spread (max - min) of the values.
/// struct Spread;
/// impl Aggregator<i64> for Spread {
///     type Acc = Option<(i64, i64)>;
///     type Out = i64;
///     const MERGEABLE: bool = true;
///     fn init(&self) -> Self::Acc { None }
///     fn add(&self, acc: &mut Self::Acc, x: &i64, _ts: i64) {
///         *acc = Some(acc.map_or((*x, *x), |(lo, hi)| (lo.min(*x), hi.max(*x))));
///     }
///     fn result(&self, acc: &Self::Acc) -> i64 {
///         acc.map_or(0, |(lo, hi)| hi - lo)
///     }
///     fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
///         if let Some((lo, hi)) = *other {
///             *acc = Some(acc.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
///         }
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let spread = source.window(Window::hopping(10, 5)).timestamp(|x: &i64| *x).aggregate(Spread).sink_to_vec();
/// for x in [1, 4, 8, 12] {
///     source.emit(x).await?;
/// }
/// source.close().await?;
/// let got: Vec<_> = spread.snapshot().into_iter().map(|w| (w.start, w.value)).collect();
/// assert_eq!(got, vec![(-5, 3), (0, 7), (5, 4), (10, 0)]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub trait Aggregator<T>: Send + Sync + 'static {
    /// The running state of one window (or pane). Cloned only by aggregators that do not
    /// [merge](Aggregator::MERGEABLE), to add an event to several windows all or none.
    type Acc: Clone + Send + 'static;
    /// What a window reports.
    type Out: Item;
    /// Whether [`merge`](Aggregator::merge) is implemented; enables pane-based hopping windows.
    const MERGEABLE: bool = false;

    /// A fresh accumulator.
    ///
    /// ```
    /// use brooklet::window::{aggregate::count, Aggregator};
    /// assert_eq!(Aggregator::<()>::init(&count()), 0);
    /// ```
    fn init(&self) -> Self::Acc;

    /// Adds an event with timestamp `ts`. If it panics, `acc` must be left as it was.
    ///
    /// ```
    /// use brooklet::window::{aggregate::sum, Aggregator};
    /// let s = sum(|x: &i32| *x);
    /// let mut acc = s.init();
    /// s.add(&mut acc, &5, 0);
    /// assert_eq!(s.result(&acc), 5);
    /// ```
    fn add(&self, acc: &mut Self::Acc, item: &T, ts: i64);

    /// The window's value.
    ///
    /// ```
    /// use brooklet::window::{aggregate::mean, Aggregator};
    /// let m = mean(|x: &f64| *x);
    /// let mut acc = m.init();
    /// m.add(&mut acc, &1.0, 0);
    /// m.add(&mut acc, &2.0, 1);
    /// assert_eq!(m.result(&acc), 1.5);
    /// ```
    fn result(&self, acc: &Self::Acc) -> Self::Out;

    /// Folds `other` into `acc`, as if `other`'s events had been added after `acc`'s: `other`
    /// is the accumulator of a later pane, or of the one event being added to several windows
    /// at once. It should not panic. Only called when [`MERGEABLE`](Aggregator::MERGEABLE) is
    /// true; the default panics.
    ///
    /// ```
    /// use brooklet::window::{aggregate::first, Aggregator};
    /// let f = first(|x: &char| *x);
    /// let (mut a, mut b) = (f.init(), f.init());
    /// f.add(&mut a, &'x', 10);
    /// f.add(&mut b, &'y', 20);
    /// f.merge(&mut a, &b);
    /// assert_eq!(f.result(&a), 'x');
    /// ```
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        let _ = (acc, other);
        panic!("Aggregator::merge called on an aggregator whose MERGEABLE is false")
    }
}

macro_rules! doc_agg {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        pub struct $name<F, V> {
            f: F,
            _v: PhantomData<fn() -> V>,
        }
        impl<F, V> std::fmt::Debug for $name<F, V> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($name))
            }
        }
    };
}

doc_agg!(
    /// The sum of a value: see [`sum`].
    ///
    /// ```
    /// use brooklet::window::aggregate::{sum, Sum};
    /// let _s: Sum<_, u32> = sum(|x: &u32| *x);
    /// ```
    Sum
);
doc_agg!(
    /// The smallest value (the first of equal ones): see [`min`].
    ///
    /// ```
    /// use brooklet::window::aggregate::{min, Min};
    /// let _m: Min<_, i8> = min(|x: &i8| *x);
    /// ```
    Min
);
doc_agg!(
    /// The largest value (the first of equal ones): see [`max`].
    ///
    /// ```
    /// use brooklet::window::aggregate::{max, Max};
    /// let _m: Max<_, i8> = max(|x: &i8| *x);
    /// ```
    Max
);
doc_agg!(
    /// The value of the earliest event (ties: the first to arrive): see [`first`].
    ///
    /// ```
    /// use brooklet::window::aggregate::{first, First};
    /// let _f: First<_, u8> = first(|x: &u8| *x);
    /// ```
    First
);
doc_agg!(
    /// The value of the latest event (ties: the last to arrive): see [`last`].
    ///
    /// ```
    /// use brooklet::window::aggregate::{last, Last};
    /// let _l: Last<_, u8> = last(|x: &u8| *x);
    /// ```
    Last
);
doc_agg!(
    /// Every value, by event time then arrival: see [`collect`].
    ///
    /// ```
    /// use brooklet::window::aggregate::{collect, Collect};
    /// let _c: Collect<_, u8> = collect(|x: &u8| *x);
    /// ```
    Collect
);

/// Sums `f(event)`.
///
/// ```
/// use brooklet::window::{aggregate::sum, Aggregator};
/// let s = sum(|x: &(i64, u32)| x.1);
/// let mut acc = s.init();
/// s.add(&mut acc, &(0, 2), 0);
/// s.add(&mut acc, &(1, 3), 1);
/// assert_eq!(s.result(&acc), 5);
/// ```
pub fn sum<T, V, F: Fn(&T) -> V>(f: F) -> Sum<F, V> {
    Sum { f, _v: PhantomData }
}

/// The smallest `f(event)`. Values that do not compare with themselves (NaN) are ignored, as
/// [`f64::min`] ignores them: NaN only when every value is NaN.
///
/// ```
/// use brooklet::window::{aggregate::min, Aggregator};
/// let m = min(|x: &f64| *x);
/// let mut acc = m.init();
/// m.add(&mut acc, &3.0, 0);
/// m.add(&mut acc, &f64::NAN, 1);
/// m.add(&mut acc, &-1.0, 2);
/// assert_eq!(m.result(&acc), -1.0);
/// ```
pub fn min<T, V, F: Fn(&T) -> V>(f: F) -> Min<F, V> {
    Min { f, _v: PhantomData }
}

/// The largest `f(event)`. Values that do not compare with themselves (NaN) are ignored, as
/// [`f64::max`] ignores them: NaN only when every value is NaN.
///
/// ```
/// use brooklet::window::{aggregate::max, Aggregator};
/// let m = max(|x: &f64| *x);
/// let mut acc = m.init();
/// m.add(&mut acc, &f64::NAN, 0);
/// assert!(m.result(&acc).is_nan());
/// m.add(&mut acc, &0.5, 1);
/// assert_eq!(m.result(&acc), 0.5);
/// ```
pub fn max<T, V, F: Fn(&T) -> V>(f: F) -> Max<F, V> {
    Max { f, _v: PhantomData }
}

/// `f` of the earliest event; ties go to the first to arrive.
///
/// ```
/// use brooklet::window::{aggregate::first, Aggregator};
/// let f = first(|x: &&str| *x);
/// let mut acc = f.init();
/// f.add(&mut acc, &"late-arriving but earlier", 5);
/// f.add(&mut acc, &"tie", 5);
/// assert_eq!(f.result(&acc), "late-arriving but earlier");
/// ```
pub fn first<T, V, F: Fn(&T) -> V>(f: F) -> First<F, V> {
    First { f, _v: PhantomData }
}

/// `f` of the latest event; ties go to the last to arrive.
///
/// ```
/// use brooklet::window::{aggregate::last, Aggregator};
/// let l = last(|x: &u8| *x);
/// let mut acc = l.init();
/// l.add(&mut acc, &1, 9);
/// l.add(&mut acc, &2, 3);
/// assert_eq!(l.result(&acc), 1);
/// ```
pub fn last<T, V, F: Fn(&T) -> V>(f: F) -> Last<F, V> {
    Last { f, _v: PhantomData }
}

/// Every `f(event)`, ordered by event time, then arrival.
///
/// ```
/// use brooklet::window::{aggregate::collect, Aggregator};
/// let c = collect(|x: &char| *x);
/// let mut acc = c.init();
/// c.add(&mut acc, &'b', 2);
/// c.add(&mut acc, &'a', 1);
/// assert_eq!(c.result(&acc), vec!['a', 'b']);
/// ```
pub fn collect<T, V, F: Fn(&T) -> V>(f: F) -> Collect<F, V> {
    Collect { f, _v: PhantomData }
}

/// Counts events.
///
/// ```
/// use brooklet::window::{aggregate::count, Aggregator};
/// let c = count();
/// let mut acc = Aggregator::<&str>::init(&c);
/// c.add(&mut acc, &"x", 0);
/// assert_eq!(Aggregator::<&str>::result(&c, &acc), 1);
/// ```
pub fn count() -> Count {
    Count
}

/// The mean of `f(event)`, by IEEE arithmetic: one NaN value makes the mean NaN.
///
/// ```
/// use brooklet::window::{aggregate::mean, Aggregator};
/// let m = mean(|x: &u32| *x as f64);
/// let mut acc = m.init();
/// m.add(&mut acc, &1, 0);
/// m.add(&mut acc, &4, 0);
/// assert_eq!(m.result(&acc), 2.5);
/// ```
pub fn mean<T, F: Fn(&T) -> f64>(f: F) -> Mean<F> {
    Mean { f }
}

/// Folds events into `init` with `f`, in arrival order. Cannot merge, so hopping windows keep
/// one accumulator per window.
///
/// ```
/// use brooklet::window::{aggregate::reduce, Aggregator};
/// let r = reduce(String::new(), |s: String, x: &char| s + &x.to_string());
/// let mut acc = r.init();
/// r.add(&mut acc, &'h', 0);
/// r.add(&mut acc, &'i', 1);
/// assert_eq!(r.result(&acc), "hi");
/// ```
pub fn reduce<T, R, F: Fn(R, &T) -> R>(init: R, f: F) -> Reduce<R, F> {
    Reduce { init, f }
}

/// Counts events: see [`count`].
///
/// ```
/// let _c: brooklet::window::aggregate::Count = brooklet::window::aggregate::count();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

/// The mean: see [`mean`].
///
/// ```
/// let _m = brooklet::window::aggregate::mean(|x: &f32| *x as f64);
/// ```
pub struct Mean<F> {
    f: F,
}

/// A fold: see [`reduce`].
///
/// ```
/// let _r = brooklet::window::aggregate::reduce(0u64, |n, _x: &()| n + 1);
/// ```
pub struct Reduce<R, F> {
    init: R,
    f: F,
}

impl<F> std::fmt::Debug for Mean<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mean")
    }
}

impl<R, F> std::fmt::Debug for Reduce<R, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reduce")
    }
}

/// What an extractor may be: a closure over the event, usable from any thread.
/// Blanket-implemented for every such closure.
///
/// ```
/// use brooklet::window::aggregate::Extract;
/// fn takes<T, V>(_: impl Extract<T, V>) {}
/// takes(|r: &(i64, f64)| r.1);
/// ```
pub trait Extract<T, V>: Fn(&T) -> V + Send + Sync + 'static {}
impl<T, V, F: Fn(&T) -> V + Send + Sync + 'static> Extract<T, V> for F {}

impl<T, V, F> Aggregator<T> for Sum<F, V>
where
    F: Extract<T, V>,
    V: Item + Default + Add<Output = V> + Copy,
{
    type Acc = V;
    type Out = V;
    const MERGEABLE: bool = true;
    fn init(&self) -> V {
        V::default()
    }
    #[inline]
    fn add(&self, acc: &mut V, item: &T, _ts: i64) {
        *acc = *acc + (self.f)(item);
    }
    fn result(&self, acc: &V) -> V {
        *acc
    }
    fn merge(&self, acc: &mut V, other: &V) {
        *acc = *acc + *other;
    }
}

impl<T> Aggregator<T> for Count {
    type Acc = u64;
    type Out = u64;
    const MERGEABLE: bool = true;
    fn init(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, acc: &mut u64, _item: &T, _ts: i64) {
        *acc += 1;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += *other;
    }
}

impl<T, F: Extract<T, f64>> Aggregator<T> for Mean<F> {
    type Acc = (f64, u64);
    type Out = f64;
    const MERGEABLE: bool = true;
    fn init(&self) -> (f64, u64) {
        (0.0, 0)
    }
    fn add(&self, acc: &mut (f64, u64), item: &T, _ts: i64) {
        acc.0 += (self.f)(item);
        acc.1 += 1;
    }
    fn result(&self, acc: &(f64, u64)) -> f64 {
        acc.0 / acc.1.max(1) as f64
    }
    fn merge(&self, acc: &mut (f64, u64), other: &(f64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
}

fn present<V: Clone>(v: &Option<V>) -> V {
    v.clone()
        .expect("aggregate of an empty window: windows without events are never emitted")
}

/// Whether `v` does not compare with itself (a NaN).
#[inline]
fn incomparable<V: PartialOrd>(v: &V) -> bool {
    v.partial_cmp(v).is_none()
}

/// Whether `v` replaces `cur` in a min (`less`) or max fold that ignores NaN: a NaN never
/// replaces a value, and any value replaces a NaN.
#[inline]
fn replaces<V: PartialOrd>(v: &V, cur: &V, less: bool) -> bool {
    let better = if less { v < cur } else { v > cur };
    better || (incomparable(cur) && !incomparable(v))
}

impl<T, V, F> Aggregator<T> for Min<F, V>
where
    F: Extract<T, V>,
    V: Item + PartialOrd,
{
    type Acc = Option<V>;
    type Out = V;
    const MERGEABLE: bool = true;
    fn init(&self) -> Option<V> {
        None
    }
    fn add(&self, acc: &mut Option<V>, item: &T, _ts: i64) {
        let v = (self.f)(item);
        if acc.as_ref().is_none_or(|cur| replaces(&v, cur, true)) {
            *acc = Some(v);
        }
    }
    fn result(&self, acc: &Option<V>) -> V {
        present(acc)
    }
    fn merge(&self, acc: &mut Option<V>, other: &Option<V>) {
        if let Some(v) = other
            && acc.as_ref().is_none_or(|cur| replaces(v, cur, true))
        {
            *acc = Some(v.clone());
        }
    }
}

impl<T, V, F> Aggregator<T> for Max<F, V>
where
    F: Extract<T, V>,
    V: Item + PartialOrd,
{
    type Acc = Option<V>;
    type Out = V;
    const MERGEABLE: bool = true;
    fn init(&self) -> Option<V> {
        None
    }
    fn add(&self, acc: &mut Option<V>, item: &T, _ts: i64) {
        let v = (self.f)(item);
        if acc.as_ref().is_none_or(|cur| replaces(&v, cur, false)) {
            *acc = Some(v);
        }
    }
    fn result(&self, acc: &Option<V>) -> V {
        present(acc)
    }
    fn merge(&self, acc: &mut Option<V>, other: &Option<V>) {
        if let Some(v) = other
            && acc.as_ref().is_none_or(|cur| replaces(v, cur, false))
        {
            *acc = Some(v.clone());
        }
    }
}

impl<T, V, F> Aggregator<T> for First<F, V>
where
    F: Extract<T, V>,
    V: Item,
{
    type Acc = Option<(i64, V)>;
    type Out = V;
    const MERGEABLE: bool = true;
    fn init(&self) -> Self::Acc {
        None
    }
    fn add(&self, acc: &mut Self::Acc, item: &T, ts: i64) {
        if acc.as_ref().is_none_or(|(t, _)| ts < *t) {
            *acc = Some((ts, (self.f)(item)));
        }
    }
    fn result(&self, acc: &Self::Acc) -> V {
        present(acc).1
    }
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        if let Some((ts, v)) = other
            && acc.as_ref().is_none_or(|(t, _)| ts < t)
        {
            *acc = Some((*ts, v.clone()));
        }
    }
}

impl<T, V, F> Aggregator<T> for Last<F, V>
where
    F: Extract<T, V>,
    V: Item,
{
    type Acc = Option<(i64, V)>;
    type Out = V;
    const MERGEABLE: bool = true;
    fn init(&self) -> Self::Acc {
        None
    }
    fn add(&self, acc: &mut Self::Acc, item: &T, ts: i64) {
        if acc.as_ref().is_none_or(|(t, _)| ts >= *t) {
            *acc = Some((ts, (self.f)(item)));
        }
    }
    fn result(&self, acc: &Self::Acc) -> V {
        present(acc).1
    }
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        if let Some((ts, v)) = other
            && acc.as_ref().is_none_or(|(t, _)| ts >= t)
        {
            *acc = Some((*ts, v.clone()));
        }
    }
}

impl<T, V, F> Aggregator<T> for Collect<F, V>
where
    F: Extract<T, V>,
    V: Item,
{
    type Acc = Vec<(i64, V)>;
    type Out = Vec<V>;
    const MERGEABLE: bool = true;
    fn init(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, item: &T, ts: i64) {
        acc.push((ts, (self.f)(item)));
    }
    fn result(&self, acc: &Self::Acc) -> Vec<V> {
        let mut all = acc.clone();
        all.sort_by_key(|(ts, _)| *ts); // stable: ties keep arrival order
        all.into_iter().map(|(_, v)| v).collect()
    }
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        acc.extend(other.iter().cloned());
    }
}

impl<T, R, F> Aggregator<T> for Reduce<R, F>
where
    R: Item + Sync,
    F: Fn(R, &T) -> R + Send + Sync + 'static,
{
    type Acc = Option<R>;
    type Out = R;
    fn init(&self) -> Option<R> {
        Some(self.init.clone())
    }
    fn add(&self, acc: &mut Option<R>, item: &T, _ts: i64) {
        // `f` takes the accumulator by value: it gets a copy, and the accumulator is replaced
        // only once `f` returned, so a panic leaves it as it was.
        let cur = acc.clone().unwrap_or_else(|| self.init.clone());
        *acc = Some((self.f)(cur, item));
    }
    fn result(&self, acc: &Option<R>) -> R {
        acc.clone().unwrap_or_else(|| self.init.clone())
    }
}

/// The event added to one part of a tuple, before any part changes.
enum Staged<Acc> {
    /// A fresh accumulator holding the event, to merge.
    Delta(Acc),
    /// A copy of the part's accumulator with the event added, to keep.
    Whole(Acc),
}

fn stage<T, A: Aggregator<T>>(agg: &A, acc: &A::Acc, item: &T, ts: i64) -> Staged<A::Acc> {
    if A::MERGEABLE {
        let mut delta = agg.init();
        agg.add(&mut delta, item, ts);
        Staged::Delta(delta)
    } else {
        let mut whole = acc.clone();
        agg.add(&mut whole, item, ts);
        Staged::Whole(whole)
    }
}

impl<Acc> Staged<Acc> {
    fn commit<T, A: Aggregator<T, Acc = Acc>>(self, agg: &A, acc: &mut Acc) {
        match self {
            Staged::Delta(delta) => agg.merge(acc, &delta),
            Staged::Whole(whole) => *acc = whole,
        }
    }
}

/// Adds one event to every accumulator of `accs`, all or none: if `agg` panics, every one is
/// left as it was. One accumulator: in place (`add` leaves it as it was when it panics), with
/// no allocation. Several: a mergeable aggregate adds the event to a fresh accumulator once and
/// merges it into each; another adds it to a copy of each and keeps the copies once all
/// succeeded.
pub(crate) fn add_all<'a, T, A: Aggregator<T>>(
    agg: &A,
    accs: impl IntoIterator<Item = &'a mut A::Acc>,
    item: &T,
    ts: i64,
) {
    let mut accs = accs.into_iter();
    let Some(first) = accs.next() else { return };
    let Some(second) = accs.next() else {
        agg.add(first, item, ts);
        return;
    };
    let mut all: Vec<&mut A::Acc> = vec![first, second];
    all.extend(accs);
    if A::MERGEABLE {
        let mut delta = agg.init();
        agg.add(&mut delta, item, ts);
        for acc in all {
            agg.merge(acc, &delta);
        }
    } else {
        let staged: Vec<A::Acc> = all
            .iter()
            .map(|acc| {
                let mut copy = (**acc).clone();
                agg.add(&mut copy, item, ts);
                copy
            })
            .collect();
        for (acc, new) in all.into_iter().zip(staged) {
            *acc = new;
        }
    }
}

macro_rules! tuple_agg {
    ($($a:ident $i:tt),+) => {
        /// Several aggregates at once; the result is the tuple of their results.
        impl<T, $($a: Aggregator<T>),+> Aggregator<T> for ($($a,)+) {
            type Acc = ($($a::Acc,)+);
            type Out = ($($a::Out,)+);
            const MERGEABLE: bool = true $(&& $a::MERGEABLE)+;
            fn init(&self) -> Self::Acc {
                ($(self.$i.init(),)+)
            }
            fn add(&self, acc: &mut Self::Acc, item: &T, ts: i64) {
                // Every part runs its code before any part changes: all or none.
                let staged = ($(stage(&self.$i, &acc.$i, item, ts),)+);
                $(staged.$i.commit(&self.$i, &mut acc.$i);)+
            }
            fn result(&self, acc: &Self::Acc) -> Self::Out {
                ($(self.$i.result(&acc.$i),)+)
            }
            fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
                $(self.$i.merge(&mut acc.$i, &other.$i);)+
            }
        }
    };
}

tuple_agg!(A 0, B 1);
tuple_agg!(A 0, B 1, C 2);
tuple_agg!(A 0, B 1, C 2, D 3);
tuple_agg!(A 0, B 1, C 2, D 3, E 4);
tuple_agg!(A 0, B 1, C 2, D 3, E 4, F 5);
