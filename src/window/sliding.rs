//! Sliding windows (the Kafka Streams and Quix definition).
//!
//! Each distinct record timestamp `u` of a key defines one window `[u - size, u]`, inclusive at
//! both ends, and its result reports `start = u - size`, `end = u` with `end_inclusive` set
//! (internally the operator works on the half-open `[u - size, u + 1)`). A new window is built from the key's buffered
//! records in its range; an event also updates every open window that contains it (those with
//! `ts <= u <= ts + size`). A window closes when `u + 1 <= watermark`. An event is late when
//! its own window is already closed (`ts + 1 <= watermark`), and fully late when
//! `ts + size + 1 <= watermark`: then no open or future window can hold it.
//!
//! Records are kept while a window that is open, or may still open, can contain them
//! (`ts + size >= watermark`), with their acknowledgement tokens. Once a key has no open
//! window, its records are dropped as soon as the watermark passes the last of them by more
//! than `size` (even if the key sends nothing more), and the key is then forgotten.

use std::collections::BTreeMap;

use super::aggregate::{Aggregator, add_all};
use super::assign::{Geometry, clamp};
use super::operator::{Admit, Event, Store, Timer, last_ms};
use crate::Item;
use crate::graph::Acks;

struct Win<Acc> {
    acc: Acc,
    first_seq: u64,
}

/// Buffered records and open windows of one key.
pub(crate) struct SlidingStore<Acc, T> {
    records: BTreeMap<(i64, u64), (T, Acks)>,
    windows: BTreeMap<i64, Win<Acc>>,
}

impl<Acc, T> SlidingStore<Acc, T> {
    fn prune_before(&mut self, ts: i64) {
        let rest = self.records.split_off(&(ts, 0));
        self.records = rest;
    }
}

impl<T: Item, A: Aggregator<T>> Store<T, A> for SlidingStore<A::Acc, T> {
    const END_INCLUSIVE: bool = true;

    fn new() -> Self {
        SlidingStore {
            records: BTreeMap::new(),
            windows: BTreeMap::new(),
        }
    }

    fn add(
        &mut self,
        g: &Geometry,
        agg: &A,
        ev: Event<'_, T>,
        wm: i64,
        updated: Option<&mut Vec<(i64, i64)>>,
    ) -> Admit {
        let (ts, size) = (ev.ts as i128, g.size as i128);
        let own_open = ts + 1 > wm as i128;
        let mut admit = Admit::default();
        if !own_open {
            admit.rejected = 1;
            admit.rejected_list.push((clamp(ts - size), ev.ts));
        }
        if ts + size < wm as i128 {
            return admit; // fully late
        }
        let hi = clamp(ts + size);
        // The event's own window is built aside from the records before it (it comes last in
        // `(timestamp, arrival)` order); then the event goes into every window or none, and
        // nothing is stored before all of them took it (see `aggregate::add_all`).
        let mut fresh = None;
        if own_open && !self.windows.contains_key(&ev.ts) {
            let mut acc = agg.init();
            let mut first_seq = ev.seq;
            let from = (clamp(ts - size), 0);
            for (&(rts, rseq), (r, _)) in self.records.range(from..=(ev.ts, u64::MAX)) {
                agg.add(&mut acc, r, rts);
                first_seq = first_seq.min(rseq);
            }
            fresh = Some(Win { acc, first_seq });
        }
        let mut touched: Vec<i64> = self.windows.range(ev.ts..=hi).map(|(&u, _)| u).collect();
        let accs = self
            .windows
            .range_mut(ev.ts..=hi)
            .map(|(_, w)| &mut w.acc)
            .chain(fresh.as_mut().map(|w| &mut w.acc));
        add_all(agg, accs, ev.item, ev.ts);
        self.prune_before(clamp(wm as i128 - size));
        self.records
            .insert((ev.ts, ev.seq), (ev.item.clone(), ev.acks.clone()));
        if let Some(w) = fresh {
            self.windows.insert(ev.ts, w);
            touched.push(ev.ts);
            admit.opened = true;
        }
        admit.accepted = touched.len() as u64;
        if let Some(u) = updated {
            touched.sort_unstable();
            u.extend(
                touched
                    .into_iter()
                    .map(|u| (clamp(u as i128 - size), clamp(u as i128 + 1))),
            );
        }
        admit
    }

    fn current(&self, g: &Geometry, agg: &A, start: i64, end: i64) -> A::Out {
        agg.result(&self.windows[&last_ms(g, start, end)].acc)
    }

    fn next(&mut self, g: &Geometry, _wm: i64, _last_start: i64) -> Option<Timer> {
        self.windows.first_key_value().map(|(&u, w)| {
            (
                clamp(u as i128 + 1),
                clamp(u as i128 - g.size as i128),
                w.first_seq,
            )
        })
    }

    fn take(
        &mut self,
        g: &Geometry,
        agg: &A,
        start: i64,
        end: i64,
        emit: bool,
    ) -> Option<(A::Out, Acks)> {
        // The key's timer always names its first window (see `next`): bounds near the ends
        // of the i64 range are clamped, so the window is found by position, not by `end`.
        let _ = end;
        let (u, w) = self.windows.pop_first()?;
        let out = emit.then(|| {
            let acks: Vec<Acks> = self
                .records
                .range((start, 0)..=(u, u64::MAX))
                .map(|(_, (_, a))| a.clone())
                .collect();
            (agg.result(&w.acc), Acks::union(&acks))
        });
        // Later windows end after `u`, so they start after `u - size`.
        self.prune_before(clamp(u as i128 + 1 - g.size as i128));
        out
    }

    fn held(&self) -> usize {
        self.windows.len() + self.records.len()
    }

    /// With no window open, the records wait only for windows still to open, which start at
    /// or after `watermark - size`: the last of them expires at `ts + size + 1`.
    fn expiry(&self, g: &Geometry) -> Option<i64> {
        if !self.windows.is_empty() {
            return None;
        }
        let (&(ts, _), _) = self.records.last_key_value()?;
        Some(clamp(ts as i128 + g.size as i128 + 1))
    }

    fn expire(&mut self, g: &Geometry, wm: i64) {
        self.prune_before(clamp(wm as i128 - g.size as i128));
    }
}
