//! `par_map` scaling and per-element overhead, against a hand-written loop and a
//! crossbeam-channel round trip, all in one run.
//!
//! * `heavy`: a CPU-bound function (a deterministic busy loop calibrated once to about 50 µs)
//!   over 10,000 elements: the hand-written sequential loop (the limit for one core), then
//!   `par_map` with 1 and 2 workers. On a 2-core machine, 2 workers should be ≥ 1.8× one.
//! * `overhead`: a cheap function (`x + 1`) over 10,000 elements, so what is timed is the
//!   pool's own cost per element. Peers, each with the same in-flight window `W`:
//!   - `par_map`: `Source` → `par_map_with(ParMap::new(1).max_in_flight(W))` → `sink`, the
//!     producer awaiting every `emit` on a `current_thread` runtime, ending with `close()`;
//!   - `crossbeam_round_trip`: the bench thread sends each element to one worker thread over a
//!     crossbeam channel and receives the result back over another, keeping at most `W`
//!     elements in flight.
//!
//!   `W = 2` is `par_map(1, f)`'s default bound; `W = 256` lets both peers batch.
//!
//! Both peers start their worker thread inside the timed iteration. Every peer's sum is checked
//! before timing. Reported per element (`Throughput::Elements`).
//!
//! Run: `cargo bench -p brooklet-benchmarks --bench parallel` (about a minute).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use brooklet::Source;
use brooklet::parallel::ParMap;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use tokio::runtime::{Builder, Runtime};

/// Elements per timed iteration.
const N: u64 = 10_000;
/// Target cost of one heavy call.
const HEAVY: Duration = Duration::from_micros(50);

/// A deterministic busy loop: `iters` rounds of an xorshift step.
fn spin(x: u64, iters: u64) -> u64 {
    let mut s = x | 1;
    for _ in 0..iters {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
    }
    black_box(s)
}

/// Iterations of `spin` that take about `HEAVY` on this machine (measured once).
fn calibrate() -> u64 {
    let probe = 200_000;
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        spin(black_box(7), black_box(probe));
        best = best.min(t.elapsed());
    }
    let iters = (probe as f64 * HEAVY.as_secs_f64() / best.as_secs_f64()) as u64;
    eprintln!("calibration: {iters} spin iterations ≈ {HEAVY:?}");
    iters.max(1)
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn par_map_sum(
    rt: &Runtime,
    options: ParMap,
    f: impl Fn(u64) -> u64 + Send + Sync + 'static,
) -> u64 {
    rt.block_on(async {
        let total = Arc::new(AtomicU64::new(0));
        let t = total.clone();
        let source = Source::new();
        source.par_map_with(options, f).sink(move |y| {
            t.store(t.load(Relaxed).wrapping_add(y), Relaxed);
        });
        for x in 0..N {
            source.emit(black_box(x)).await.unwrap();
        }
        source.close().await.unwrap();
        total.load(Relaxed)
    })
}

/// Sends every element to a worker thread and receives its result back, with at most
/// `window` elements in flight.
fn crossbeam_round_trip(window: usize, f: impl Fn(u64) -> u64 + Send + 'static) -> u64 {
    let (jobs, jobs_rx) = crossbeam_channel::unbounded::<u64>();
    let (results_tx, results) = crossbeam_channel::unbounded::<u64>();
    let worker = std::thread::spawn(move || {
        for x in jobs_rx {
            results_tx.send(f(x)).unwrap();
        }
    });
    let mut total = 0u64;
    let mut in_flight = 0;
    for x in 0..N {
        if in_flight == window {
            total = total.wrapping_add(results.recv().unwrap());
            in_flight -= 1;
        }
        jobs.send(black_box(x)).unwrap();
        in_flight += 1;
    }
    drop(jobs);
    for y in results.iter() {
        total = total.wrapping_add(y);
    }
    worker.join().unwrap();
    total
}

fn heavy(c: &mut Criterion) {
    let iters = calibrate();
    let rt = current_thread();
    let expected: u64 = (0..N).fold(0, |a, x| a.wrapping_add(spin(x, iters)));
    let mut g = c.benchmark_group("par_map_heavy");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));

    g.bench_function("hand_written_loop", |b| {
        b.iter(|| (0..N).fold(0u64, |a, x| a.wrapping_add(spin(black_box(x), iters))))
    });
    for workers in [1, 2] {
        let f = move |x| spin(x, iters);
        assert_eq!(par_map_sum(&rt, ParMap::new(workers), f), expected);
        g.bench_with_input(BenchmarkId::new("par_map", workers), &workers, |b, &w| {
            b.iter(|| par_map_sum(&rt, ParMap::new(w), f))
        });
    }
    g.finish();
}

fn overhead(c: &mut Criterion) {
    let rt = current_thread();
    let expected: u64 = (0..N).map(|x| x + 1).sum();
    let mut g = c.benchmark_group("par_map_overhead");
    g.throughput(Throughput::Elements(N));
    g.measurement_time(Duration::from_secs(5));
    for window in [2usize, 256] {
        let options = ParMap::new(1).max_in_flight(window);
        let f = |x: u64| x + 1;
        assert_eq!(par_map_sum(&rt, options, f), expected);
        assert_eq!(crossbeam_round_trip(window, f), expected);
        g.bench_with_input(BenchmarkId::new("par_map", window), &window, |b, _| {
            b.iter(|| par_map_sum(&rt, options, f))
        });
        g.bench_with_input(
            BenchmarkId::new("crossbeam_round_trip", window),
            &window,
            |b, &w| b.iter(|| crossbeam_round_trip(w, f)),
        );
    }
    g.finish();
}

criterion_group!(benches, heavy, overhead);
criterion_main!(benches);
