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
use super::operator::{Admit, Event, Slot, Store, Timer, add_to_slot};
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
        if g.pane == g.step
            && updated.is_none()
            && let Some(hi) = g.last_start_if_open(ev.ts, wm)
        {
            // In `i64`: every window holding the event is open, and its pane is its last
            // window's start.
            let admit = Admit {
                accepted: g.per_event,
                ..Admit::default()
            };
            return add_to_slot(&mut self.panes, agg, hi, ev, admit);
        }
        let (open, hi, admit) = Admit::for_event(g, ev.ts, wm);
        if admit.accepted == 0 {
            return admit;
        }
        // When panes are steps, the event's pane is its last window's start.
        let p = if g.pane == g.step {
            clamp(hi)
        } else {
            g.pane_of(ev.ts)
        };
        if let Some(u) = updated {
            u.extend(g.starts(open, hi).map(|s| (clamp(s), g.end(s))));
        }
        add_to_slot(&mut self.panes, agg, p, ev, admit)
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
            // The first window holding the pane, after the last one closed, open under `wm`
            // (`i64::MIN` when closing, where every window after `last_start` is due or open).
            let mut s = g.ceil_start(p0 as i128 + g.pane as i128 - g.size as i128);
            if last_start != i64::MIN {
                s = s.max(last_start as i128 + g.step as i128);
            }
            if wm != i64::MIN {
                s = s.max(g.first_open(wm));
            }
            if g.drop_negative {
                s = s.max(g.min_start());
            }
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
                if !p.acks.is_empty() {
                    acks.extend(p.acks.iter().cloned());
                }
            }
            let acks = if acks.is_empty() {
                Acks::default()
            } else {
                Acks::union(&acks)
            };
            (agg.result(&acc), acks)
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
