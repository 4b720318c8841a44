//! Hopping windows, aggregated per pane.
//!
//! A hopping window of `size` every `step` is made of panes of `gcd(size, step)` ms (the step
//! itself when it divides the size). An event updates one pane, whatever `size / step` is;
//! when a window closes its panes are [merged](crate::window::Aggregator::merge), and panes no
//! later window needs are dropped. So hopping windows cost about what tumbling ones do per
//! event, and every window an event falls in sees it (not only the latest, which is Faust's
//! bug).
//!
//! Aggregates that cannot merge fall back to one accumulator per window (see `tumbling.rs`).
//!
//! A pane is created only for an event that at least one open window accepts, so memory is
//! bounded by the open windows, and a huge gap between timestamps creates no empty panes:
//! closing jumps from one pane with data to the next.

use super::aggregate::Aggregator;
use super::assign::{Geometry, clamp};
use super::operator::{Admit, Event, Slot, Store, Timer};
use super::slots::Slots;
use crate::graph::Acks;

/// One accumulator per pane start.
pub(crate) struct PaneStore<Acc> {
    panes: Slots<Slot<Acc>>,
}

impl<Acc> PaneStore<Acc> {
    fn first_seq(&self, s: i64, end: i64) -> u64 {
        self.panes
            .range(s, end)
            .map(|(_, p)| p.first_seq)
            .min()
            .unwrap_or(u64::MAX)
    }
}

impl<T, A: Aggregator<T>> Store<T, A> for PaneStore<A::Acc> {
    fn new() -> Self {
        PaneStore {
            panes: Slots::new(),
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
        let (open, hi, mut admit) = Admit::for_event(g, ev.ts, wm);
        if admit.accepted == 0 {
            return admit;
        }
        // One pane, updated in place (`add` leaves it as it was if it panics); a new pane is
        // stored only once it took the event.
        // When panes are steps, the event's pane is its last window's start.
        let p = if g.pane == g.step {
            clamp(hi)
        } else {
            g.pane_of(ev.ts)
        };
        match self.panes.get_mut(p) {
            Some(pane) => {
                agg.add(&mut pane.acc, ev.item, ev.ts);
                pane.hold(ev.acks);
            }
            None => {
                let mut acc = agg.init();
                agg.add(&mut acc, ev.item, ev.ts);
                let mut pane = Slot::new(acc, ev.seq);
                pane.hold(ev.acks);
                admit.behind = self.panes.insert(p, pane) > 0;
                admit.opened = true;
            }
        }
        if let Some(u) = updated {
            u.extend(g.starts(open, hi).map(|s| (clamp(s), g.end(s))));
        }
        admit
    }

    fn current(&self, _g: &Geometry, agg: &A, start: i64, end: i64) -> A::Out {
        let mut acc = agg.init();
        for (_, p) in self.panes.range(start, end) {
            agg.merge(&mut acc, &p.acc);
        }
        agg.result(&acc)
    }

    fn next(&mut self, g: &Geometry, wm: i64, last_start: i64) -> Option<Timer> {
        loop {
            let (p0, _) = self.panes.first()?;
            let s = g
                .ceil_start(p0 as i128 + g.pane as i128 - g.size as i128)
                .max(if last_start == i64::MIN {
                    i128::MIN / 4
                } else {
                    last_start as i128 + g.step as i128
                })
                .max(g.first_open(wm))
                .max(g.min_start());
            if s <= p0 as i128 {
                let (start, end) = (clamp(s), g.end(s));
                return Some((end, start, self.first_seq(start, end)));
            }
            // No window that can still be emitted holds this pane.
            self.panes.pop_first();
        }
    }

    fn take(
        &mut self,
        g: &Geometry,
        agg: &A,
        start: i64,
        end: i64,
        emit: bool,
    ) -> Option<(A::Out, Acks)> {
        let out = emit.then(|| {
            let mut acc = agg.init();
            let mut acks = Vec::new();
            for (_, p) in self.panes.range(start, end) {
                agg.merge(&mut acc, &p.acc);
                acks.extend(p.acks.iter().cloned());
            }
            (agg.result(&acc), Acks::union(&acks))
        });
        // Panes before the next window's start are in no later window.
        let keep_from = clamp(start as i128 + g.step as i128);
        while self.panes.first().is_some_and(|(p, _)| p < keep_from) {
            self.panes.pop_first();
        }
        out
    }

    fn held(&self) -> usize {
        self.panes.len()
    }
}
