//! Every window kind against a simple, obviously correct reference model, over 256 seeded
//! pseudo-random event sequences per property (out of order, several keys, duplicates,
//! negative timestamps, grace, per-key clocks). A failure prints the seed and the inputs.

// The reference model spells conditions exactly as the window rules in `brooklet::window` do (`u + 1 <= watermark`).
#![allow(clippy::int_plus_one, clippy::type_complexity)]

use std::collections::{BTreeMap, BTreeSet};

use brooklet::Source;
use brooklet::window::aggregate::{max, mean, min};
use brooklet::window::{Window, WindowResult};
use futures::executor::block_on;

/// (key, ts, value)
type Ev = (u8, i64, i64);
type Out = WindowResult<u8, Vec<i64>>;

fn run(window: Window, grace: i64, per_key: bool, events: &[Ev]) -> (Vec<Out>, u64) {
    block_on(async {
        let source = Source::<Ev>::new();
        let mut b = source.window(window).timestamp(|e| e.1).key_by(|e| e.0);
        if !matches!(window.kind(), brooklet::window::WindowKind::Count { .. }) {
            b = b.grace(grace);
        }
        if per_key {
            b = b.per_key_clock();
        }
        let w = b.collect(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        for e in events {
            source.emit(*e).await.unwrap();
        }
        source.close().await.unwrap();
        // Every window closed: every key is freed; a per-key clock keeps only the clocks.
        let st = w.stats();
        let keys: BTreeSet<u8> = events.iter().map(|e| e.0).collect();
        let retired = if per_key { keys.len() as u64 } else { 0 };
        assert_eq!((st.keys, st.held, st.retired_keys), (0, 0, retired));
        (out.snapshot(), late.snapshot().len() as u64)
    })
}

/// Count windows with no timestamp extractor: bounds are event indexes of the key.
fn run_untimed(n: usize, step: usize, events: &[Ev]) -> Vec<Out> {
    block_on(async {
        let source = Source::<Ev>::new();
        let w = source
            .window(Window::count_hopping(n, step))
            .key_by(|e| e.0)
            .collect(|e| e.2);
        let out = w.sink_to_vec();
        for e in events {
            source.emit(*e).await.unwrap();
        }
        source.close().await.unwrap();
        out.snapshot()
    })
}

/// Each event's timestamp replaced by its index among its key's events.
fn indexed(events: &[Ev]) -> Vec<Ev> {
    let mut next: BTreeMap<u8, i64> = BTreeMap::new();
    events
        .iter()
        .map(|&(k, _, v)| {
            let i = next.entry(k).or_default();
            *i += 1;
            (k, *i - 1, v)
        })
        .collect()
}

/// Values of `(ts, arrival, value)` records ordered by event time, then arrival.
fn ordered(mut recs: Vec<(i64, usize, i64)>) -> Vec<i64> {
    recs.sort();
    recs.into_iter().map(|r| r.2).collect()
}

/// Tumbling and hopping, straight from the definitions: every start that is a multiple of
/// `step` with `start <= ts < start + size`; closed when `end <= clock - grace`.
fn reference_hopping(
    size: i64,
    step: i64,
    grace: i64,
    per_key: bool,
    events: &[Ev],
) -> (Vec<Out>, u64) {
    // (key, start) -> (first arrival, records)
    let mut open: BTreeMap<(u8, i64), (usize, Vec<(i64, usize, i64)>)> = BTreeMap::new();
    let mut clocks: BTreeMap<u8, i64> = BTreeMap::new();
    let mut clock = i64::MIN;
    let mut out = vec![];
    let mut late = 0;
    let wm_of = |clock: i64| {
        if clock == i64::MIN {
            i64::MIN
        } else {
            clock - grace
        }
    };
    for (i, &(k, ts, v)) in events.iter().enumerate() {
        let wm = wm_of(if per_key {
            *clocks.get(&k).unwrap_or(&i64::MIN)
        } else {
            clock
        });
        let mut rejected = false;
        let mut s = ts.div_euclid(step) * step;
        while s > ts - size {
            if s + size <= wm {
                rejected = true;
            } else {
                open.entry((k, s)).or_insert((i, vec![])).1.push((ts, i, v));
            }
            s -= step;
        }
        late += rejected as u64;
        let c = if per_key {
            clocks.entry(k).or_insert(i64::MIN)
        } else {
            &mut clock
        };
        *c = (*c).max(ts);
        let wm = wm_of(*c);
        let mut due: Vec<_> = open
            .iter()
            .filter(|((key, s), _)| s + size <= wm && (!per_key || *key == k))
            .map(|(&(key, s), (first, _))| (s + size, s, *first, key))
            .collect();
        due.sort();
        for (e, s, _, key) in due {
            let (_, recs) = open.remove(&(key, s)).unwrap();
            out.push(WindowResult {
                key,
                start: s,
                end: e,
                end_inclusive: false,
                value: ordered(recs),
            });
        }
    }
    let mut rest: Vec<_> = open
        .into_iter()
        .map(|((key, s), (first, recs))| (s + size, s, first, key, recs))
        .collect();
    rest.sort_by_key(|r| (r.0, r.1, r.2));
    for (e, s, _, key, recs) in rest {
        out.push(WindowResult {
            key,
            start: s,
            end: e,
            end_inclusive: false,
            value: ordered(recs),
        });
    }
    (out, late)
}

/// Sliding windows: one window [u - size, u] per distinct timestamp u of a key, created when
/// its record arrives while it is open; it holds every record of the key in range that was
/// not fully late and arrived before the window closed.
fn reference_sliding(size: i64, grace: i64, per_key: bool, events: &[Ev]) -> (Vec<Out>, u64) {
    struct Win {
        key: u8,
        u: i64,
        closed_at: Option<usize>,
    }
    let mut wins: Vec<Win> = vec![];
    let mut kept: Vec<(u8, i64, usize, i64)> = vec![]; // accepted records
    let mut clocks: BTreeMap<u8, i64> = BTreeMap::new();
    let mut clock = i64::MIN;
    let mut late = 0;
    let mut order: Vec<usize> = vec![]; // windows in emission order
    let wm_of = |clock: i64| {
        if clock == i64::MIN {
            i64::MIN
        } else {
            clock - grace
        }
    };
    for (i, &(k, ts, v)) in events.iter().enumerate() {
        let wm = wm_of(if per_key {
            *clocks.get(&k).unwrap_or(&i64::MIN)
        } else {
            clock
        });
        if ts + 1 <= wm {
            late += 1;
        }
        if ts + size >= wm {
            kept.push((k, ts, i, v));
        }
        if ts + 1 > wm && !wins.iter().any(|w| w.key == k && w.u == ts) {
            wins.push(Win {
                key: k,
                u: ts,
                closed_at: None,
            });
        }
        let c = if per_key {
            clocks.entry(k).or_insert(i64::MIN)
        } else {
            &mut clock
        };
        *c = (*c).max(ts);
        let wm = wm_of(*c);
        let mut due: Vec<usize> = (0..wins.len())
            .filter(|&j| {
                wins[j].closed_at.is_none() && wins[j].u + 1 <= wm && (!per_key || wins[j].key == k)
            })
            .collect();
        due.sort_by_key(|&j| (wins[j].u, first_arrival(&kept, &wins[j], i + 1, size)));
        for j in due {
            wins[j].closed_at = Some(i + 1);
            order.push(j);
        }
    }
    let mut rest: Vec<usize> = (0..wins.len())
        .filter(|&j| wins[j].closed_at.is_none())
        .collect();
    rest.sort_by_key(|&j| {
        (
            wins[j].u,
            first_arrival(&kept, &wins[j], events.len(), size),
        )
    });
    for &j in &rest {
        wins[j].closed_at = Some(events.len());
    }
    order.extend(rest);
    let out = order
        .into_iter()
        .map(|j| {
            let w = &wins[j];
            let recs = kept
                .iter()
                .filter(|r| {
                    r.0 == w.key && w.u - size <= r.1 && r.1 <= w.u && r.2 < w.closed_at.unwrap()
                })
                .map(|r| (r.1, r.2, r.3))
                .collect();
            WindowResult {
                key: w.key,
                start: w.u - size,
                end: w.u,
                end_inclusive: true,
                value: ordered(recs),
            }
        })
        .collect();
    return (out, late);

    fn first_arrival(kept: &[(u8, i64, usize, i64)], w: &Win, before: usize, size: i64) -> usize {
        kept.iter()
            .filter(|r| r.0 == w.key && w.u - size <= r.1 && r.1 <= w.u && r.2 < before)
            .map(|r| r.2)
            .min()
            .unwrap_or(usize::MAX)
    }
}

/// Count windows: event i of a key is in windows k * step <= i < k * step + n; a full window
/// is emitted on its n-th event; at the end, partial windows holding an event no emitted
/// window held, oldest first, sorted by (max ts, min ts, first arrival).
fn reference_count(n: usize, step: usize, events: &[Ev]) -> Vec<Out> {
    let mut per_key: BTreeMap<u8, Vec<(i64, usize, i64)>> = BTreeMap::new();
    let mut out = vec![];
    let window = |key: u8, recs: &[(i64, usize, i64)]| WindowResult {
        key,
        start: recs.iter().map(|r| r.0).min().unwrap(),
        end: recs.iter().map(|r| r.0).max().unwrap(),
        end_inclusive: true,
        value: ordered(recs.to_vec()),
    };
    for (i, &(k, ts, v)) in events.iter().enumerate() {
        let recs = per_key.entry(k).or_default();
        recs.push((ts, i, v));
        let idx = recs.len() - 1;
        if idx + 1 >= n && (idx + 1 - n).is_multiple_of(step) {
            out.push(window(k, &recs[idx + 1 - n..]));
        }
    }
    let mut rest = vec![];
    for (k, recs) in &per_key {
        let len = recs.len();
        let full = if len >= n { (len - n) / step + 1 } else { 0 };
        let mut covered: Option<usize> = if full > 0 {
            Some((full - 1) * step + n - 1)
        } else {
            None
        };
        let mut start = full * step;
        while start < len {
            let last = len - 1;
            if covered.is_none_or(|c| last > c) {
                covered = Some(last);
                let w = window(*k, &recs[start..]);
                let first = recs[start..].iter().map(|r| r.1).min().unwrap();
                rest.push((w.end, w.start, first, w));
            }
            start += step;
        }
    }
    rest.sort_by_key(|r| (r.0, r.1, r.2));
    out.extend(rest.into_iter().map(|r| r.3));
    out
}

/// An event's value as a float: every fourth value is NaN.
fn float(v: i64) -> f64 {
    if v.rem_euclid(4) == 0 {
        f64::NAN
    } else {
        v as f64
    }
}

/// `(min, max, mean)` of a window, NaN written as `None`.
type Stats = (Option<f64>, Option<f64>, Option<f64>);

fn nan_as_none(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

/// The documented rule, from a window's values: min and max ignore NaN as `f64::min` and
/// `f64::max` do (NaN only when every value is NaN); the mean is IEEE arithmetic (NaN if any
/// value is NaN). The values are small integers, so sums are exact in any order.
fn float_stats(values: &[i64]) -> Stats {
    let xs: Vec<f64> = values.iter().map(|&v| float(v)).collect();
    let lo = xs.iter().fold(f64::NAN, |a, &b| a.min(b));
    let hi = xs.iter().fold(f64::NAN, |a, &b| a.max(b));
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (nan_as_none(lo), nan_as_none(hi), nan_as_none(mean))
}

/// The operator's min, max and mean of each window, over the events' float values.
fn run_floats(window: Window, grace: i64, events: &[Ev]) -> Vec<WindowResult<u8, Stats>> {
    block_on(async {
        let source = Source::<Ev>::new();
        let mut b = source.window(window).timestamp(|e| e.1).key_by(|e| e.0);
        if !matches!(window.kind(), brooklet::window::WindowKind::Count { .. }) {
            b = b.grace(grace);
        }
        let out = b
            .aggregate((
                min(|e: &Ev| float(e.2)),
                max(|e: &Ev| float(e.2)),
                mean(|e: &Ev| float(e.2)),
            ))
            .sink_to_vec();
        for e in events {
            source.emit(*e).await.unwrap();
        }
        source.close().await.unwrap();
        out.snapshot()
            .into_iter()
            .map(|w| WindowResult {
                key: w.key,
                start: w.start,
                end: w.end,
                end_inclusive: w.end_inclusive,
                value: (
                    nan_as_none(w.value.0),
                    nan_as_none(w.value.1),
                    nan_as_none(w.value.2),
                ),
            })
            .collect()
    })
}

/// A reference model's windows, with the float rule applied to their values.
fn expected_floats(reference: Vec<Out>) -> Vec<WindowResult<u8, Stats>> {
    reference
        .into_iter()
        .map(|w| WindowResult {
            key: w.key,
            start: w.start,
            end: w.end,
            end_inclusive: w.end_inclusive,
            value: float_stats(&w.value),
        })
        .collect()
}

/// A small, seeded pseudo-random generator (xorshift64*): every case is reproducible from its
/// seed, which a failure prints.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `lo..hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }

    fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }

    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }

    /// Up to 59 events: 3 keys, timestamps in -60..200 (out of order, duplicates), values in
    /// -5..50.
    fn events(&mut self) -> Vec<Ev> {
        let n = self.usize(0, 60);
        (0..n)
            .map(|_| {
                (
                    self.range(0, 3) as u8,
                    self.range(-60, 200),
                    self.range(-5, 50),
                )
            })
            .collect()
    }
}

/// Runs `property` on 256 generated cases; a failing case names its seed.
fn check(property: impl Fn(&mut Rng) -> Result<(), String>) {
    for seed in 0..256u64 {
        let mut rng = Rng::new(seed);
        if let Err(why) = property(&mut rng) {
            panic!("case with seed {seed} failed: {why}");
        }
    }
}

/// `Ok` when `got == want`, else both, with the inputs that gave them.
fn same<T: PartialEq + std::fmt::Debug>(
    got: T,
    want: T,
    inputs: impl std::fmt::Debug,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("inputs {inputs:?}\n got: {got:?}\nwant: {want:?}"))
    }
}

#[test]
fn tumbling_matches_reference() {
    check(|r| {
        let (size, grace, per_key, evs) = (r.range(1, 40), r.range(0, 30), r.bool(), r.events());
        same(
            run(Window::tumbling(size), grace, per_key, &evs),
            reference_hopping(size, size, grace, per_key, &evs),
            (size, grace, per_key, &evs),
        )
    });
}

#[test]
fn hopping_matches_reference() {
    check(|r| {
        let (size, div, grace, per_key) = (r.range(1, 50), r.range(1, 6), r.range(0, 30), r.bool());
        let evs = r.events();
        let step = (size / div).max(1);
        same(
            run(Window::hopping(size, step), grace, per_key, &evs),
            reference_hopping(size, step, grace, per_key, &evs),
            (size, step, grace, per_key, &evs),
        )
    });
}

#[test]
fn hopping_with_unaligned_step_matches_reference() {
    check(|r| {
        let (size, step, grace, evs) = (r.range(2, 50), r.range(1, 50), r.range(0, 30), r.events());
        let step = step.min(size);
        same(
            run(Window::hopping(size, step), grace, false, &evs),
            reference_hopping(size, step, grace, false, &evs),
            (size, step, grace, &evs),
        )
    });
}

#[test]
fn sliding_matches_reference() {
    check(|r| {
        let (size, grace, per_key, evs) = (r.range(1, 40), r.range(0, 30), r.bool(), r.events());
        same(
            run(Window::sliding(size), grace, per_key, &evs),
            reference_sliding(size, grace, per_key, &evs),
            (size, grace, per_key, &evs),
        )
    });
}

#[test]
fn count_matches_reference() {
    check(|r| {
        let (n, div, evs) = (r.usize(1, 6), r.usize(1, 4), r.events());
        let step = (n / div).max(1);
        let (got, late) = run(Window::count_hopping(n, step), 0, false, &evs);
        same(late, 0, (n, step, &evs))?;
        same(got, reference_count(n, step, &evs), (n, step, &evs))
    });
}

#[test]
fn nan_rule_holds_in_tumbling_windows() {
    check(|r| {
        let (size, grace, evs) = (r.range(1, 40), r.range(0, 30), r.events());
        same(
            run_floats(Window::tumbling(size), grace, &evs),
            expected_floats(reference_hopping(size, size, grace, false, &evs).0),
            (size, grace, &evs),
        )
    });
}

#[test]
fn nan_rule_holds_in_hopping_windows() {
    check(|r| {
        let (size, step, grace, evs) = (r.range(2, 50), r.range(1, 50), r.range(0, 30), r.events());
        let step = step.min(size);
        same(
            run_floats(Window::hopping(size, step), grace, &evs),
            expected_floats(reference_hopping(size, step, grace, false, &evs).0),
            (size, step, grace, &evs),
        )
    });
}

#[test]
fn nan_rule_holds_in_sliding_windows() {
    check(|r| {
        let (size, grace, evs) = (r.range(1, 40), r.range(0, 30), r.events());
        same(
            run_floats(Window::sliding(size), grace, &evs),
            expected_floats(reference_sliding(size, grace, false, &evs).0),
            (size, grace, &evs),
        )
    });
}

#[test]
fn nan_rule_holds_in_count_windows() {
    check(|r| {
        let (n, div, evs) = (r.usize(1, 6), r.usize(1, 4), r.events());
        let step = (n / div).max(1);
        same(
            run_floats(Window::count_hopping(n, step), 0, &evs),
            expected_floats(reference_count(n, step, &evs)),
            (n, step, &evs),
        )
    });
}

#[test]
fn untimed_count_numbers_each_keys_events() {
    check(|r| {
        let (n, div, evs) = (r.usize(1, 6), r.usize(1, 4), r.events());
        let step = (n / div).max(1);
        same(
            run_untimed(n, step, &evs),
            reference_count(n, step, &indexed(&evs)),
            (n, step, &evs),
        )
    });
}
