//! The event-time window operator shared by tumbling, hopping and sliding windows: keys,
//! clocks, closing, emission order, late events and the idle timer.
//!
//! Per event, under the state lock: the key's windows are checked against the watermark
//! *before* the event (a window closed before the event arrived rejects it); the event updates
//! every open window it falls in; in current mode each updated window is emitted (ascending
//! start); the clock moves; then every window whose end is at or below the new watermark
//! closes. An event never closes a window it has just updated, since those end after its
//! timestamp, which is at or after the watermark.
//!
//! Closing is driven by a timer queue ordered by `(end, start, first arrival of the key in the
//! window, key)`: each key has at most one entry, for its earliest window with data. Closing a
//! window schedules the key's next one, so several windows closing at once come out by
//! ascending `(end, start)`, and the keys of one window in the order they first appeared in
//! it. The lock is released before anything is pushed downstream.
//!
//! Keys are forgotten: once a key has no window with data left and its store holds nothing
//! (sliding records expire when the watermark passes `ts + size`, through a second queue
//! ordered by that watermark), its state is freed. Nothing about the key survives with the
//! operator clock (a key that comes back is a fresh key, which is exact: every window it had
//! is closed, and a fresh key's windows are bounded by the same watermark); with a per-key
//! clock its clock value survives in a compact `key -> clock` map, so its late events are
//! still recognised.
//!
//! The idle timer (a task, only with an idle timeout) closes windows by processing time and
//! pushes every result of a tick before it waits for room downstream. A window with a timer
//! leaves ending its targets to the timer: at the window's end the timer stops, finishes
//! pushing what it took, then ends the targets; `close()` waits for it. So no result the timer
//! took out of the windows can reach a target that already ended.

use std::any::Any;
use std::collections::BTreeSet;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::aggregate::Aggregator;
use super::assign::{Geometry, clamp};
use super::builder::EmitMode;
use super::clock::Clock;
use super::keyhash::KeyMap;
use super::late::LateOut;
use super::result::{LateEvent, WindowResult, WindowStats};
use super::slots::Slots;
use super::timers::{Entry, Timers};
use crate::Item;
use crate::graph::sync::Lock;
use crate::graph::task::{Task, end_targets, forward_finish, forward_start};
use crate::graph::{
    Acks, Cx, Emit, Error, Input, Node, Operator, Outputs, dropping_lost, panic_site,
};

/// `(end, start, first arrival)` of a key's earliest window with data.
pub(crate) type Timer = (i64, i64, u64);

pub(crate) type TsFn<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;
pub(crate) type KeyFn<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// What a window key may be: hashable, comparable, and clonable into results.
/// Blanket-implemented; you never implement it yourself.
///
/// ```
/// fn takes_key<K: brooklet::window::WindowKey>(_: K) {}
/// takes_key(("sensor", 7u32));
/// takes_key(None::<String>);
/// ```
pub trait WindowKey: Item + Hash + Eq {}
impl<K: Item + Hash + Eq> WindowKey for K {}

/// An event as a store sees it.
pub(crate) struct Event<'a, T> {
    pub(crate) item: &'a T,
    pub(crate) ts: i64,
    pub(crate) seq: u64,
    pub(crate) acks: &'a Acks,
}

/// What a store did with an event.
#[derive(Default)]
pub(crate) struct Admit {
    pub(crate) accepted: u64,
    pub(crate) rejected: u64,
    pub(crate) rejected_list: Vec<(i64, i64)>,
    /// A new pane or window was created: the key's timer may move earlier.
    pub(crate) opened: bool,
    /// The new slot opened behind the store's first one, whose window stays the earliest:
    /// the key's timer, when it has one, does not move.
    pub(crate) behind: bool,
}

const MAX_LISTED: u64 = 1024;

/// Spare stores kept beyond the number of live keys.
const SPARE_SLACK: usize = 64;

impl Admit {
    /// Which windows of a tumbling or hopping geometry take an event at `ts` under watermark
    /// `wm`: the first open window's start and the last window's start (both inclusive), with
    /// the closed ones counted as rejections.
    #[inline(always)]
    pub(crate) fn for_event(g: &Geometry, ts: i64, wm: i64) -> (i128, i128, Admit) {
        let (lo, hi) = g.containing(ts);
        if g.all_open(lo, wm) {
            let accepted = g.all_count(lo, hi);
            let admit = Admit {
                accepted,
                ..Admit::default()
            };
            return (lo, hi, admit);
        }
        Admit::for_late_event(g, lo, hi, wm)
    }

    /// [`for_event`](Self::for_event) when the first window holding the event is closed.
    #[inline(never)]
    fn for_late_event(g: &Geometry, lo: i128, hi: i128, wm: i64) -> (i128, i128, Admit) {
        let open = g.first_open(wm).max(lo);
        let mut admit = Admit::rejected_between(g, lo, hi.min(open - g.step as i128));
        admit.accepted = g.count(open, hi);
        (open, hi, admit)
    }

    /// The windows starting from `lo` to `hi` (inclusive) rejected the event.
    pub(crate) fn rejected_between(g: &Geometry, lo: i128, hi: i128) -> Admit {
        let rejected = g.count(lo, hi);
        let rejected_list = if rejected > 0 {
            g.starts(lo, hi)
                .take(MAX_LISTED as usize)
                .map(|s| (clamp(s), g.end(s)))
                .collect()
        } else {
            Vec::new()
        };
        Admit {
            rejected,
            rejected_list,
            ..Admit::default()
        }
    }
}

/// The accumulator of a window or pane, the tokens of its events, and the arrival number of
/// its first event.
pub(crate) struct Slot<Acc> {
    pub(crate) acc: Acc,
    pub(crate) acks: Vec<Acks>,
    pub(crate) first_seq: u64,
}

impl<Acc> Slot<Acc> {
    pub(crate) fn new(acc: Acc, first_seq: u64) -> Self {
        Slot {
            acc,
            acks: Vec::new(),
            first_seq,
        }
    }

    #[inline]
    pub(crate) fn hold(&mut self, acks: &Acks) {
        if !acks.is_empty() {
            self.acks.push(acks.clone());
        }
    }
}

/// Adds an event to the window or pane starting at `start` in `slots`: updated in place
/// (`add` leaves it as it was if it panics), or created and stored only once it took the
/// event. Sets `opened` and `behind` in `admit`.
#[inline(always)]
pub(crate) fn add_to_slot<T, A: Aggregator<T>>(
    slots: &mut Slots<Slot<A::Acc>>,
    agg: &A,
    start: i64,
    ev: Event<'_, T>,
    mut admit: Admit,
) -> Admit {
    match slots.get_mut(start) {
        Some(slot) => {
            agg.add(&mut slot.acc, ev.item, ev.ts);
            slot.hold(ev.acks);
        }
        None => {
            let mut acc = agg.init();
            agg.add(&mut acc, ev.item, ev.ts);
            let mut slot = Slot::new(acc, ev.seq);
            slot.hold(ev.acks);
            admit.behind = slots.insert(start, slot) > 0;
            admit.opened = true;
        }
    }
    admit
}

/// How one key's windows are stored: per window (tumbling), per pane (hopping) or per record
/// (sliding).
pub(crate) trait Store<T, A: Aggregator<T>>: Send + 'static {
    /// Whether results report `end` as the window's last ms (sliding windows, `[u - size, u]`)
    /// rather than the first ms after it. The operator works on half-open bounds throughout and
    /// converts only when it builds a result.
    const END_INCLUSIVE: bool = false;
    /// An empty store. A store that [holds](Store::held) nothing, has no
    /// [expiry](Store::expiry) and no window to close must be as good as a new one: the
    /// operator reuses the stores of freed keys.
    fn new() -> Self;
    /// Applies an event under watermark `wm`; pushes the bounds of updated windows to
    /// `updated` (ascending start) when given.
    fn add(
        &mut self,
        g: &Geometry,
        agg: &A,
        ev: Event<'_, T>,
        wm: i64,
        updated: Option<&mut Vec<(i64, i64)>>,
    ) -> Admit;
    /// The current value of an open window (current mode).
    fn current(&self, g: &Geometry, agg: &A, start: i64, end: i64) -> A::Out;
    /// The earliest window with data that starts after `last_start` and is open under `wm`.
    fn next(&mut self, g: &Geometry, wm: i64, last_start: i64) -> Option<Timer>;
    /// Closes a window: its value and tokens when `emit`, and drops what no later window needs.
    fn take(
        &mut self,
        g: &Geometry,
        agg: &A,
        start: i64,
        end: i64,
        emit: bool,
    ) -> Option<(A::Out, Acks)>;
    fn held(&self) -> usize;
    /// With no window left to close, the watermark from which nothing the store still holds
    /// can be needed (see [`expire`](Store::expire)); `None` when there is no such data.
    fn expiry(&self, _g: &Geometry) -> Option<i64> {
        None
    }
    /// Drops what no window open or still to open under `wm` can need.
    fn expire(&mut self, _g: &Geometry, _wm: i64) {}
}

/// The `end` a result reports for the window `[start, end)`: its last ms for inclusive kinds
/// (see [`last_ms`]).
#[inline]
fn reported_end<T, A: Aggregator<T>, S: Store<T, A>>(g: &Geometry, start: i64, end: i64) -> i64 {
    if S::END_INCLUSIVE {
        last_ms(g, start, end)
    } else {
        end
    }
}

/// The last ms `u` of the window `[start, end)` that `[u - size, u + 1)` clamps to: `end - 1`,
/// unless `end` is `i64::MAX`, where `u + 1` may have clamped (then `start` has not, since
/// `u - size` is far above `i64::MIN`).
#[inline]
pub(crate) fn last_ms(g: &Geometry, start: i64, end: i64) -> i64 {
    if end == i64::MAX {
        start.saturating_add(g.size)
    } else {
        end - 1
    }
}

/// Settings of a time window operator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) geo: Geometry,
    pub(crate) grace: i64,
    pub(crate) mode: EmitMode,
    pub(crate) explicit: bool,
    pub(crate) per_key: bool,
    pub(crate) skew: Option<i64>,
    pub(crate) idle: Option<std::time::Duration>,
}

struct KeyState<K, S> {
    key: K,
    store: S,
    timer: Option<Timer>,
    /// The watermark at which the store's leftover data expires (see `Store::expiry`).
    expiry: Option<i64>,
    last_start: i64,
    clock: Clock,
}

struct Idle {
    last_event: Option<Instant>,
    mark: Instant,
}

pub(crate) type Outs<K, V> = Vec<(WindowResult<K, V>, Option<Acks>)>;

/// A panic caught while pushing a result downstream, to resume once the others are delivered.
pub(crate) type Caught = Option<Box<dyn Any + Send>>;

/// Pushes results downstream, each on its own (with its window's tokens, or the push's own
/// when `None`): a panic downstream of one result does not keep the others, closed at the same
/// moment, from being delivered. Each panic is counted in the node's `errors`; the failed
/// result's tokens are not released as delivered. Returns the first panic, for the caller to
/// resume (with [`resume`]) once it has done the rest of its work.
#[inline]
pub(crate) fn push_results<K: Item, V: Item>(
    out: &Outputs<WindowResult<K, V>>,
    outs: Outs<K, V>,
    cx: &mut Cx,
) -> Caught {
    if outs.is_empty() {
        return None;
    }
    push_each(out, outs, cx)
}

#[inline(never)]
fn push_each<K: Item, V: Item>(
    out: &Outputs<WindowResult<K, V>>,
    outs: Outs<K, V>,
    cx: &mut Cx,
) -> Caught {
    let mut first: Caught = None;
    for (r, acks) in outs {
        let saved = acks.map(|acks| std::mem::replace(&mut cx.acks, acks));
        let pushed = catch_unwind(AssertUnwindSafe(|| out.push(r, cx)));
        let held = saved.map(|saved| std::mem::replace(&mut cx.acks, saved));
        if let Err(payload) = pushed {
            out.errors.inc_exact();
            // The result was not delivered: its events' tokens fail (the push's own tokens, for
            // a result without tokens of its own, fail as the panic unwinds to the caller).
            if let Some(held) = held {
                let node = panic_site().unwrap_or_else(|| out.name());
                held.fail(&Error::panicked(&node, &*payload));
            }
            first.get_or_insert(payload);
        }
    }
    first
}

/// Resumes the panic [`push_results`] caught, if any.
pub(crate) fn resume(caught: Caught) {
    if let Some(payload) = caught {
        resume_unwind(payload);
    }
}

/// A built window node, as the handle sees it: its results and its controls.
pub(crate) type Built<K, V> = (crate::Stream<WindowResult<K, V>>, Arc<dyn Control>);

struct State<K, S> {
    index: KeyMap<K, usize>,
    /// Keys with state; a freed key is swap-removed (see `sweep`).
    keys: Vec<KeyState<K, S>>,
    /// Each key's earliest window with data (see `timers.rs`).
    timers: Timers,
    /// `(watermark, key slot)` of keys whose store only holds data that expires.
    expiries: BTreeSet<(i64, usize)>,
    /// Per-key clock: the clocks of keys whose state was freed.
    retired: KeyMap<K, Clock>,
    /// Key slots that may have become freeable since the last sweep.
    emptied: Vec<usize>,
    /// Stores of freed keys, kept for new keys: most keys come back (a tumbling key is freed
    /// when its window closes and returns with its next event), and a store that holds
    /// nothing is as good as a new one, with its allocation. At most the live keys plus
    /// `SPARE_SLACK`.
    spare: Vec<S>,
    clock: Clock,
    seq: u64,
    stats: WindowStats,
    ended: bool,
    idle: Idle,
}

/// What the late output needs about a late event.
pub(crate) struct LateInfo<K> {
    key: K,
    ts: i64,
    watermark: i64,
    admit: Admit,
    count: u64,
}

impl<K: WindowKey, S> State<K, S> {
    fn wm(&self, cfg: &Config, k: usize) -> i64 {
        if cfg.per_key {
            self.keys[k].clock.watermark(cfg.grace)
        } else {
            self.clock.watermark(cfg.grace)
        }
    }

    /// Key slot `k`'s timer, `None` for a slot that no longer exists.
    #[inline]
    fn timer_of(keys: &[KeyState<K, S>], k: usize) -> Option<Timer> {
        keys.get(k).and_then(|ks| ks.timer)
    }

    fn set_timer(&mut self, k: usize, t: Option<Timer>) {
        let ks = &mut self.keys[k];
        if ks.timer == t {
            // Most new windows and panes open behind the key's earliest one.
            return;
        }
        // The queue's entry for the old timer goes stale by itself.
        ks.timer = t;
        if let Some(t) = t {
            self.schedule(t, k);
        }
    }

    /// Queues key slot `k`'s timer `t` (which the key's state already holds).
    fn schedule(&mut self, t: Timer, k: usize) {
        let keys = &self.keys;
        self.timers.push(t, k, keys.len(), || {
            keys.iter()
                .enumerate()
                .filter_map(|(k, ks)| ks.timer.map(|(e, s, f)| (e, s, f, k)))
                .collect()
        });
    }

    /// Removes and returns the earliest timer due at `wm`.
    #[inline]
    fn pop_due(&mut self, wm: i64) -> Option<Entry> {
        let keys = &self.keys;
        self.timers.pop_due(wm, |k| Self::timer_of(keys, k))
    }

    fn set_expiry(&mut self, k: usize, x: Option<i64>) {
        let ks = &mut self.keys[k];
        if ks.expiry == x {
            return;
        }
        if let Some(e) = ks.expiry.take() {
            self.expiries.remove(&(e, k));
        }
        if let Some(e) = x {
            self.expiries.insert((e, k));
        }
        ks.expiry = x;
    }

    /// Whether a window or an expiry may be due under the operator watermark `wm`.
    #[inline]
    fn may_be_due(&self, wm: i64) -> bool {
        self.timers.earliest_end().is_some_and(|e| e <= wm)
            || self.expiries.first().is_some_and(|&(e, _)| e <= wm)
    }

    /// After key `k` changed: drops its expired data, schedules the expiry of the rest, and
    /// marks it for freeing when nothing is left.
    #[inline]
    fn settle<T, A: Aggregator<T>>(&mut self, cfg: &Config, k: usize)
    where
        S: Store<T, A>,
    {
        let ks = &self.keys[k];
        if ks.timer.is_some() && ks.expiry.is_none() {
            // A key with a window to close has no expiry and is not freeable.
            return;
        }
        self.settle_slow::<T, A>(cfg, k);
    }

    #[inline(never)]
    fn settle_slow<T, A: Aggregator<T>>(&mut self, cfg: &Config, k: usize)
    where
        S: Store<T, A>,
    {
        let wm = self.wm(cfg, k);
        let ks = &mut self.keys[k];
        let expiry = if ks.timer.is_some() {
            None
        } else {
            match ks.store.expiry(&cfg.geo) {
                Some(e) if e <= wm => {
                    ks.store.expire(&cfg.geo, wm);
                    // Never due again under this watermark (possible only where bounds clamp
                    // at the i64 edges): nothing could drop it later anyway.
                    ks.store.expiry(&cfg.geo).filter(|&e| e > wm)
                }
                e => e,
            }
        };
        if ks.timer.is_none() && expiry.is_none() && ks.store.held() == 0 {
            self.emptied.push(k);
        }
        self.set_expiry(k, expiry);
    }

    /// Frees the keys marked by `settle` that still hold nothing. With a per-key clock, the
    /// key's clock is kept in `retired`.
    #[inline]
    fn sweep<T, A: Aggregator<T>>(&mut self, cfg: &Config)
    where
        S: Store<T, A>,
    {
        if !self.emptied.is_empty() {
            self.free_emptied::<T, A>(cfg);
        }
    }

    #[inline(never)]
    fn free_emptied<T, A: Aggregator<T>>(&mut self, cfg: &Config)
    where
        S: Store<T, A>,
    {
        let mut emptied = std::mem::take(&mut self.emptied);
        // Descending: a swap-remove moves the last slot, never one still to be looked at.
        emptied.sort_unstable_by(|a, b| b.cmp(a));
        emptied.dedup();
        for &k in &emptied {
            let ks = &self.keys[k];
            if ks.timer.is_some() || ks.expiry.is_some() || ks.store.held() > 0 {
                continue;
            }
            let last = self.keys.len() - 1;
            let KeyState {
                key, store, clock, ..
            } = self.keys.swap_remove(k);
            self.index.remove(&key);
            if cfg.per_key {
                self.retired.insert(key, clock);
            }
            if self.spare.len() < self.keys.len() + SPARE_SLACK {
                self.spare.push(store);
            }
            if k != last {
                let moved = &self.keys[k];
                if let Some(i) = self.index.get_mut(&moved.key) {
                    *i = k;
                }
                let (timer, expiry) = (moved.timer, moved.expiry);
                if let Some(t) = timer {
                    // The entry under the old slot goes stale.
                    self.schedule(t, k);
                }
                if let Some(x) = expiry {
                    self.expiries.remove(&(x, last));
                    self.expiries.insert((x, k));
                }
            }
        }
        emptied.clear();
        self.emptied = emptied; // keeps the allocation
    }

    fn fire_one<T, A: Aggregator<T>>(
        &mut self,
        cfg: &Config,
        agg: &A,
        t: (i64, i64, u64, usize),
        out: &mut Outs<K, A::Out>,
    ) where
        S: Store<T, A>,
    {
        // The caller took `t` out of `timers`; clearing the key's timer stales any copy.
        let (end, start, _, k) = t;
        let ks = &mut self.keys[k];
        ks.timer = None;
        let emit = cfg.mode == EmitMode::Final;
        if let Some((value, acks)) = ks.store.take(&cfg.geo, agg, start, end, emit) {
            self.stats.results += 1;
            out.push((
                WindowResult {
                    key: ks.key.clone(),
                    start,
                    end: reported_end::<T, A, S>(&cfg.geo, start, end),
                    end_inclusive: S::END_INCLUSIVE,
                    value,
                },
                Some(acks),
            ));
        }
        ks.last_start = start;
        let next = ks
            .store
            .next(&cfg.geo, i64::MIN, start)
            // Never the same window twice (possible only where bounds clamp at the i64 edges).
            .filter(|n| (n.0, n.1) != (end, start));
        self.set_timer(k, next);
        self.settle::<T, A>(cfg, k);
    }

    /// Closes every window with data ending at or below each key's watermark, in order.
    fn fire<T, A: Aggregator<T>>(&mut self, cfg: &Config, agg: &A, out: &mut Outs<K, A::Out>)
    where
        S: Store<T, A>,
    {
        // Per-key clocks close each key at its own watermark; at end of stream every
        // watermark is +infinity and the ordered walk below serves both modes.
        if cfg.per_key && !self.clock.is_infinite() {
            // In queue order, skipping keys whose own watermark is behind: closing a window
            // changes no clock, and the key's next window joins the queue in its place.
            let mut waiting = Vec::new();
            loop {
                let keys = &self.keys;
                let Some(t) = self.timers.pop_valid(|k| Self::timer_of(keys, k)) else {
                    break;
                };
                if t.0 <= self.keys[t.3].clock.watermark(cfg.grace) {
                    self.fire_one(cfg, agg, t, out);
                } else {
                    waiting.push(t);
                }
            }
            for t in waiting {
                self.timers.restore(t);
            }
            let due: Vec<usize> = self
                .expiries
                .iter()
                .filter(|&&(e, k)| e <= self.keys[k].clock.watermark(cfg.grace))
                .map(|&(_, k)| k)
                .collect();
            for k in due {
                self.settle::<T, A>(cfg, k);
            }
        } else {
            let wm = self.clock.watermark(cfg.grace);
            while let Some(t) = self.pop_due(wm) {
                self.fire_one(cfg, agg, t, out);
            }
            // `settle` never schedules an expiry at or below the watermark: this ends.
            while let Some(&(e, k)) = self.expiries.first() {
                if e > wm {
                    break;
                }
                self.settle::<T, A>(cfg, k);
            }
        }
        self.sweep::<T, A>(cfg);
    }

    /// Closes the due windows of key `k` only (per-key clock, after an event of `k`).
    fn fire_key<T, A: Aggregator<T>>(
        &mut self,
        cfg: &Config,
        agg: &A,
        k: usize,
        out: &mut Outs<K, A::Out>,
    ) where
        S: Store<T, A>,
    {
        let wm = self.wm(cfg, k);
        while let Some((e, s, f)) = self.keys[k].timer {
            if e > wm {
                break;
            }
            self.fire_one(cfg, agg, (e, s, f, k), out);
        }
        self.settle::<T, A>(cfg, k);
        self.sweep::<T, A>(cfg);
    }

    fn each_clock(&mut self, cfg: &Config, mut f: impl FnMut(&mut Clock)) {
        if cfg.per_key {
            self.keys.iter_mut().for_each(|k| f(&mut k.clock));
            self.retired.values_mut().for_each(f);
        } else {
            f(&mut self.clock);
        }
    }

    fn watermark(&self, cfg: &Config) -> Option<i64> {
        if cfg.per_key {
            self.keys
                .iter()
                .map(|k| &k.clock)
                .chain(self.retired.values())
                .filter(|c| c.is_set())
                .map(|c| c.watermark(cfg.grace))
                .max()
        } else {
            self.clock.is_set().then(|| self.clock.watermark(cfg.grace))
        }
    }
}

/// The tumbling / hopping / sliding window node.
pub(crate) struct TimeWindowOp<T: Item, K: WindowKey, A: Aggregator<T>, S> {
    pub(crate) cfg: Config,
    pub(crate) ts: TsFn<T>,
    pub(crate) key: KeyFn<T, K>,
    pub(crate) agg: A,
    state: Lock<State<K, S>>,
    pub(crate) late: LateOut<K, T>,
    pub(crate) task: Arc<Task>,
    pub(crate) stop: Arc<Notify>,
}

impl<T: Item, K: WindowKey, A: Aggregator<T>, S: Store<T, A>> TimeWindowOp<T, K, A, S> {
    pub(crate) fn new(
        cfg: Config,
        ts: TsFn<T>,
        key: KeyFn<T, K>,
        agg: A,
        late: LateOut<K, T>,
    ) -> Self {
        TimeWindowOp {
            cfg,
            ts,
            key,
            agg,
            state: Lock::new(State {
                index: KeyMap::default(),
                keys: Vec::new(),
                timers: Timers::default(),
                expiries: BTreeSet::new(),
                retired: KeyMap::default(),
                emptied: Vec::new(),
                spare: Vec::new(),
                clock: Clock::new(),
                seq: 0,
                stats: WindowStats::default(),
                ended: false,
                idle: Idle {
                    last_event: None,
                    mark: Instant::now(),
                },
            }),
            late,
            task: Task::new("window"),
            stop: Arc::new(Notify::new()),
        }
    }

    fn apply(
        &self,
        st: &mut State<K, S>,
        x: &T,
        ts: i64,
        key: K,
        acks: &Acks,
        out: &mut Outs<K, A::Out>,
    ) -> Option<LateInfo<K>> {
        let cfg = &self.cfg;
        let seq = st.seq;
        let current = cfg.mode == EmitMode::Current;
        let mut updated = Vec::new();
        let ev = Event {
            item: x,
            ts,
            seq,
            acks,
        };
        // The store takes the event whole or not at all (a panic in the aggregate leaves it
        // as it was); the operator's own state changes only once it did. A new key's state is
        // built aside and kept only then.
        let (k, wm, admit) = match st.index.get(&key) {
            Some(&k) => {
                let wm = st.wm(cfg, k);
                let admit = st.keys[k].store.add(
                    &cfg.geo,
                    &self.agg,
                    ev,
                    wm,
                    current.then_some(&mut updated),
                );
                (k, wm, admit)
            }
            None => {
                // A freed key is a fresh key, but for its clock.
                let (clock, wm) = if cfg.per_key {
                    let clock = st.retired.get(&key).copied().unwrap_or_else(Clock::new);
                    (clock, clock.watermark(cfg.grace))
                } else {
                    (Clock::new(), st.clock.watermark(cfg.grace))
                };
                let mut store = st.spare.pop().unwrap_or_else(S::new);
                let admit = store.add(&cfg.geo, &self.agg, ev, wm, current.then_some(&mut updated));
                if cfg.per_key {
                    st.retired.remove(&key);
                }
                let k = st.keys.len();
                st.index.insert(key.clone(), k);
                st.keys.push(KeyState {
                    key,
                    store,
                    timer: None,
                    expiry: None,
                    last_start: i64::MIN,
                    clock,
                });
                (k, wm, admit)
            }
        };
        st.seq += 1;
        st.stats.events += 1;
        if cfg.idle.is_some() {
            let now = Instant::now();
            st.idle.last_event = Some(now);
            st.idle.mark = now;
        }
        if admit.opened && !(admit.behind && st.keys[k].timer.is_some()) {
            let ks = &mut st.keys[k];
            let next = ks.store.next(&cfg.geo, wm, ks.last_start);
            st.set_timer(k, next);
        }
        let ks = &st.keys[k];
        for (start, end) in updated {
            let value = ks.store.current(&cfg.geo, &self.agg, start, end);
            st.stats.results += 1;
            out.push((
                WindowResult {
                    key: ks.key.clone(),
                    start,
                    end: reported_end::<T, A, S>(&cfg.geo, start, end),
                    end_inclusive: S::END_INCLUSIVE,
                    value,
                },
                None,
            ));
        }
        let late = (admit.rejected > 0).then(|| {
            st.stats.late_events += 1;
            st.stats.rejected_windows += admit.rejected;
            LateInfo {
                key: st.keys[k].key.clone(),
                ts,
                watermark: wm,
                admit,
                count: st.stats.late_events,
            }
        });
        if cfg.per_key {
            st.keys[k].clock.observe(ts, cfg.explicit, cfg.skew);
            st.fire_key(cfg, &self.agg, k, out);
        } else {
            st.clock.observe(ts, cfg.explicit, cfg.skew);
            st.settle::<T, A>(cfg, k);
            let now = st.clock.watermark(cfg.grace);
            if now != wm && st.may_be_due(now) {
                st.fire(cfg, &self.agg, out);
            } else {
                // Nothing can be due: every window or expiry due at `wm` was closed before this
                // event, and what it scheduled lies beyond `wm`; or nothing is queued at or
                // below the new watermark.
                st.sweep::<T, A>(cfg);
            }
        }
        late
    }

    /// Moves the clock to `t` (explicit watermark) and closes what is due.
    pub(crate) fn advance(&self, t: i64, out: &Outputs<WindowResult<K, A::Out>>, cx: &mut Cx) {
        let mut outs = Vec::new();
        {
            let mut st = self.state.lock();
            if st.ended {
                // No element is lost: a watermark after the end has nothing left to close.
                return;
            }
            st.each_clock(&self.cfg, |c| c.advance(t));
            out.call(|| st.fire(&self.cfg, &self.agg, &mut outs));
        }
        resume(push_results(out, outs, cx));
    }

    /// The idle timer's task died (its runtime shut down): the window is lost with it, as any
    /// node whose task died. What it holds fails with `error`, and later pushes are refused
    /// with it; otherwise an `emit` would report the death while its element was delivered.
    fn die(&self, error: &Error) {
        let held = {
            let mut st = self.state.lock();
            st.ended = true;
            st.timers = Timers::default();
            st.expiries.clear();
            st.emptied.clear();
            std::mem::take(&mut st.keys)
        };
        // Dropping the stores drops the tokens of their elements: they fail with `error`.
        dropping_lost(error.clone(), || drop(held));
    }

    /// When the idle timer should look next; `None` once the operator has ended.
    fn idle_deadline(&self, timeout: std::time::Duration) -> Option<Instant> {
        let st = self.state.lock();
        (!st.ended).then(|| {
            st.idle
                .last_event
                .map_or(st.idle.mark, |l| l.max(st.idle.mark))
                + timeout
        })
    }

    /// The idle timer fired: if no event came for `timeout`, move the clock with processing time.
    fn idle_tick(&self, timeout: std::time::Duration) -> Outs<K, A::Out> {
        let mut outs = Vec::new();
        let mut st = self.state.lock();
        let now = Instant::now();
        let Some(last) = st.idle.last_event else {
            st.idle.mark = now;
            return outs;
        };
        if st.ended || now.duration_since(last) < timeout {
            return outs;
        }
        let delta = i64::try_from(now.duration_since(st.idle.mark).as_millis()).unwrap_or(i64::MAX);
        st.idle.mark = now;
        st.each_clock(&self.cfg, |c| c.add(delta));
        st.fire(&self.cfg, &self.agg, &mut outs);
        outs
    }

    pub(crate) fn stats(&self) -> WindowStats {
        let st = self.state.lock();
        WindowStats {
            held: st.keys.iter().map(|k| k.store.held() as u64).sum(),
            keys: st.keys.len() as u64,
            retired_keys: st.retired.len() as u64,
            watermark: st.watermark(&self.cfg),
            ..st.stats
        }
    }
}

impl<T: Item, K: WindowKey, A: Aggregator<T>, S: Store<T, A>> Operator
    for TimeWindowOp<T, K, A, S>
{
    type Out = WindowResult<K, A::Out>;

    fn on_end(&self, out: &Outputs<Self::Out>, cx: &mut Cx) {
        let mut outs = Vec::new();
        {
            let mut st = self.state.lock();
            st.clock.end();
            st.keys.iter_mut().for_each(|k| k.clock.end());
            st.retired.values_mut().for_each(Clock::end);
            out.call(|| st.fire(&self.cfg, &self.agg, &mut outs));
            st.ended = true;
        }
        self.stop.notify_one();
        let caught = push_results(out, outs, cx);
        self.late.finish(cx);
        if self.cfg.idle.is_some() {
            // The idle timer ends the targets once it has pushed what it took (see
            // `spawn_idle`); `close()` waits for it, and reports what it recorded (a panic
            // downstream of a flush, its death).
            self.task.wait_finished(cx);
        }
        resume(caught);
    }

    /// With an idle timer, the timer's task ends the targets: it may be pushing results it took
    /// from the windows when the window ends, and those must reach the targets first.
    fn defers_end(&self) -> bool {
        self.cfg.idle.is_some()
    }

    fn held(&self) -> usize {
        self.state.lock().keys.iter().map(|k| k.store.held()).sum()
    }

    fn sides(&self) -> Vec<Arc<dyn crate::graph::NodeDyn>> {
        vec![self.late.node()]
    }
}

impl<T: Item, K: WindowKey, A: Aggregator<T>, S: Store<T, A>> Input<0>
    for TimeWindowOp<T, K, A, S>
{
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<Self::Out>, cx: &mut Cx) {
        self.task.report(cx);
        let ts = out.call(|| (self.ts)(&x));
        let key = out.call(|| (self.key)(&x));
        let mut outs = Vec::new();
        let late = {
            let mut st = self.state.lock();
            if st.ended {
                // A push that raced `close()`: the windows were flushed already. Or the idle
                // timer's task died: the window was lost with it, as the push reports.
                drop(st);
                return self.task.refuse(cx);
            }
            out.call(|| self.apply(&mut st, &x, ts, key, &cx.acks, &mut outs))
        };
        let caught = push_results(out, outs, cx);
        if let Some(info) = late {
            self.late.report(info.count, cx, || LateEvent {
                key: info.key,
                ts: info.ts,
                value: x,
                watermark: info.watermark,
                lateness: info.watermark.saturating_sub(info.ts),
                rejected: info.admit.rejected_list,
                rejected_windows: info.admit.rejected,
                accepted: info.admit.accepted,
            });
        }
        resume(caught);
    }
}

/// Watermarks from an upstream stream (port 1).
impl<T: Item, K: WindowKey, A: Aggregator<T>, S: Store<T, A>> Input<1>
    for TimeWindowOp<T, K, A, S>
{
    type In = i64;

    fn on_input(&self, t: i64, out: &Outputs<Self::Out>, cx: &mut Cx) {
        self.advance(t, out, cx);
    }
}

/// What a [`Windowed`](super::Windowed) handle can do with its operator.
pub(crate) trait Control: Send + Sync {
    fn advance(&self, t: i64) -> Emit;
    fn stats(&self) -> WindowStats;
}

impl<T: Item, K: WindowKey, A: Aggregator<T>, S: Store<T, A>> Control
    for Node<TimeWindowOp<T, K, A, S>>
{
    fn advance(&self, t: i64) -> Emit {
        let mut cx = Cx::new();
        self.op.advance(t, &self.out, &mut cx);
        cx.into_emit()
    }

    fn stats(&self) -> WindowStats {
        self.op.stats()
    }
}

/// Starts the idle timer of a window node on the ambient runtime (see
/// [`idle_timeout`](super::WindowBuilder::idle_timeout)).
pub(crate) fn spawn_idle<T: Item, K: WindowKey, A: Aggregator<T>, S: Store<T, A>>(
    node: &Arc<Node<TimeWindowOp<T, K, A, S>>>,
    timeout: std::time::Duration,
) {
    let rt = crate::graph::task::runtime("window idle_timeout");
    let task = node.op.task.clone();
    task.bind(node.clone());
    let weak: Weak<Node<TimeWindowOp<T, K, A, S>>> = Arc::downgrade(node);
    let stop = node.op.stop.clone();
    let t = task.clone();
    let dying = weak.clone();
    task.on_death(move |e| {
        if let Some(node) = dying.upgrade() {
            node.op.die(e);
        }
    });
    task.spawn(&rt, async move {
        while let Some(deadline) = weak.upgrade().and_then(|n| n.op.idle_deadline(timeout)) {
            let sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
            let stopped = std::pin::pin!(stop.notified());
            if let futures_util::future::Either::Right(_) =
                futures_util::future::select(sleep, stopped).await
            {
                break;
            }
            let Some(node) = weak.upgrade() else { break };
            // Every result is pushed before any wait for room: a `close()` during the wait
            // then finds none of them still in this task's hands, where the window's end
            // would overtake them into a downstream that already ended.
            let waits: Vec<Emit> = node
                .op
                .idle_tick(timeout)
                .into_iter()
                .filter_map(|(r, acks)| forward_start(&node.out, &t, r, acks.unwrap_or_default()))
                .collect();
            for emit in waits {
                forward_finish(&t, emit).await;
            }
        }
        // The window ended (the timer stops only then, or when the node is gone): every result
        // this task took is pushed, so the targets may end now.
        if let Some(node) = weak.upgrade() {
            end_targets(&node.out, &t).await;
        }
    });
}
