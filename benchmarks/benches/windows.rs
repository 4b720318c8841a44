//! Event-time window throughput: tumbling(1 s) and hopping(10 s, 1 s) sums over 1M events with
//! 100 keys, in one run, against a hand-written loop (the limit); then the same over 1,000 keys
//! with events out of order inside a 1 s grace period, against a hand loop doing the same
//! work (per key, same sum, same watermark). Then mini-batches: the cost
//! per item of `batch(CountWindow::new(n))` for growing `n`, and of an hour-long
//! `FixedTimeWindow`, when the node polls after every arrival (a producer that yields after
//! each emit): it must not grow with `n` or with the number of items waiting.
//!
//! Events arrive in timestamp order, one per ms, keys round-robin: each key sees 10 events per
//! second. Hopping windows aggregate per 1 s pane, so the per-event work matches tumbling and
//! only the per-window merge (10 panes) differs.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brooklet::Source;
use brooklet::window::{CountWindow, Emitter, FixedTimeWindow, Window};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const EVENTS: u64 = 1_000_000;
const KEYS: u64 = 100;

#[derive(Clone, Copy)]
struct Reading {
    key: u64,
    ts: i64,
    value: u64,
}

fn events() -> Vec<Reading> {
    (0..EVENTS)
        .map(|i| Reading {
            key: i % KEYS,
            ts: i as i64,
            value: i % 7,
        })
        .collect()
}

/// 1M events over 1,000 keys, ten per ms, each up to 499 ms behind the clock (a fixed
/// pseudo-random delay): out of order, but never later than the 1 s grace period.
fn shuffled_events() -> Vec<Reading> {
    (0..EVENTS)
        .map(|i| {
            let delay = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 500;
            Reading {
                key: i % SHUFFLED_KEYS,
                ts: (i / 10) as i64 - delay as i64,
                value: i % 7,
            }
        })
        .collect()
}

const SHUFFLED_KEYS: u64 = 1_000;
const GRACE: i64 = 1_000;

fn run(window: Window, events: &[Reading]) -> u64 {
    run_with_grace(window, 0, events)
}

fn run_with_grace(window: Window, grace: i64, events: &[Reading]) -> u64 {
    let source = Source::new();
    let results = Arc::new(AtomicU64::new(0));
    let r = results.clone();
    source
        .window(window)
        .timestamp(|e: &Reading| e.ts)
        .grace(grace)
        .key_by(|e| e.key)
        .sum(|e| e.value)
        .sink(move |w| {
            black_box(w);
            r.fetch_add(1, Ordering::Relaxed);
        });
    for e in events {
        drop(source.emit(*e));
    }
    drop(source.close());
    results.load(Ordering::Relaxed)
}

/// The limit: a hash map of running tumbling sums, closed in order by hand.
fn hand_tumbling(events: &[Reading]) -> u64 {
    let mut open: HashMap<(u64, i64), u64> = HashMap::new();
    let mut closed = 0;
    let mut current = i64::MIN;
    for e in events {
        let start = e.ts.div_euclid(1_000) * 1_000;
        if start > current {
            let before = open.len();
            open.retain(|&(_, s), v| {
                if s + 1_000 <= e.ts {
                    black_box(*v);
                    false
                } else {
                    true
                }
            });
            closed += (before - open.len()) as u64;
            current = start;
        }
        *open.entry((e.key, start)).or_insert(0) += e.value;
    }
    closed + open.len() as u64
}

/// The same work as `tumbling(1 s).grace(1 s)`, by hand: per-key running sums in a hash map,
/// a clock (the largest timestamp seen), and every window ending at or below clock − grace
/// closed when the watermark crosses a window boundary.
fn hand_tumbling_grace(events: &[Reading]) -> u64 {
    let mut open: HashMap<(u64, i64), u64> = HashMap::new();
    let mut closed = 0;
    let mut clock = i64::MIN;
    let mut closed_to = i64::MIN;
    for e in events {
        let start = e.ts.div_euclid(1_000) * 1_000;
        *open.entry((e.key, start)).or_insert(0) += e.value;
        clock = clock.max(e.ts);
        let wm = clock.saturating_sub(GRACE);
        let boundary = wm.div_euclid(1_000) * 1_000;
        if boundary > closed_to {
            let before = open.len();
            open.retain(|&(_, s), v| {
                if s + 1_000 <= wm {
                    black_box(*v);
                    false
                } else {
                    true
                }
            });
            closed += (before - open.len()) as u64;
            closed_to = boundary;
        }
    }
    closed + open.len() as u64
}

fn bench(c: &mut Criterion) {
    let events = events();
    let mut g = c.benchmark_group("windows_1M_events_100_keys");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("hand_written_tumbling_1s", |b| {
        b.iter(|| hand_tumbling(black_box(&events)))
    });
    g.bench_function("tumbling_1s_sum", |b| {
        b.iter(|| run(Window::tumbling(1_000), black_box(&events)))
    });
    g.bench_function("hopping_10s_1s_sum", |b| {
        b.iter(|| run(Window::hopping(10_000, 1_000), black_box(&events)))
    });
    g.finish();

    let events = shuffled_events();
    let mut g = c.benchmark_group("windows_1M_events_1000_keys_out_of_order");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("hand_written_tumbling_1s_grace_1s", |b| {
        b.iter(|| hand_tumbling_grace(black_box(&events)))
    });
    g.bench_function("tumbling_1s_grace_1s_sum", |b| {
        b.iter(|| run_with_grace(Window::tumbling(1_000), GRACE, black_box(&events)))
    });
    g.bench_function("hopping_10s_1s_grace_1s_sum", |b| {
        b.iter(|| run_with_grace(Window::hopping(10_000, 1_000), GRACE, black_box(&events)))
    });
    g.finish();
}

const BATCH_ITEMS: u64 = 65_536;

/// Feeds `BATCH_ITEMS` items into `batch(emitter)`, yielding after each emit so that the node
/// polls its emitter once per arrival; returns how many batches came out. Runs on a paused
/// clock, so time-based emitters fire as soon as the producer waits.
fn run_batch(emitter: impl Emitter<u64>) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let source = Source::new();
        let batches = Arc::new(AtomicU64::new(0));
        let b = batches.clone();
        source.batch(emitter).sink(move |v: Vec<u64>| {
            black_box(v);
            b.fetch_add(1, Ordering::Relaxed);
        });
        for x in 0..BATCH_ITEMS {
            source.emit(x).await.expect("emit");
            tokio::task::yield_now().await;
        }
        source.close().await.expect("close");
        batches.load(Ordering::Relaxed)
    })
}

fn bench_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_64k_items_one_poll_per_item");
    g.throughput(Throughput::Elements(BATCH_ITEMS));
    g.sample_size(10);
    for n in [2_048, 8_192, 32_768] {
        g.bench_function(format!("count_window_{n}"), |b| {
            b.iter(|| run_batch(CountWindow::new(n)))
        });
    }
    g.bench_function("fixed_time_window_1h", |b| {
        b.iter(|| run_batch(FixedTimeWindow::new(std::time::Duration::from_secs(3_600))))
    });
    g.finish();
}

criterion_group!(benches, bench, bench_batch);
criterion_main!(benches);
