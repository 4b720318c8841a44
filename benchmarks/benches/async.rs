//! The cost of one `buffer` hop against the channels it competes with, all in one run.
//!
//! Each peer moves N u64 elements from a producer to a consumer that sums them, through a
//! bounded queue of 1024, the producer awaiting (or blocking on) every send:
//!
//! * `brooklet_buffer`  — `Source` → `buffer(1024)` → `sink`, the producer awaiting `emit`
//!   inside a tokio runtime; the iteration ends when `close()` has drained the buffer.
//! * `tokio_mpsc`       — `tokio::sync::mpsc::channel(1024)`, the producer awaiting `send`,
//!   the consumer a spawned task; the iteration ends when the consumer has seen every element.
//! * `crossbeam_channel` — `crossbeam_channel::bounded(1024)`, producer thread → consumer
//!   thread (the bench thread produces, a spawned thread consumes).
//!
//! The tokio peers run on both runtime flavours (`current_thread`: producer and consumer take
//! turns on one thread; `multi_thread` with 2 workers: they may run in parallel). Every peer's
//! sum is checked against the expected one before timing. Reported per element
//! (`Throughput::Elements(N)`).
//!
//! Run: `cargo bench -p brooklet-benchmarks --bench async` (about a minute).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use brooklet::Source;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use tokio::runtime::{Builder, Runtime};

/// Elements per timed iteration.
const N: u64 = 100_000;
/// Queue capacity of every peer.
const CAP: usize = 1024;
const EXPECTED: u64 = N * (N - 1) / 2;

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn brooklet_buffer(rt: &Runtime) -> u64 {
    rt.block_on(async {
        let total = Arc::new(AtomicU64::new(0));
        let source = Source::new();
        let t = total.clone();
        source.buffer(CAP).sink(move |x: u64| {
            t.store(t.load(Relaxed) + x, Relaxed);
        });
        for x in 0..N {
            source.emit(black_box(x)).await.unwrap();
        }
        source.close().await.unwrap();
        total.load(Relaxed)
    })
}

fn tokio_mpsc(rt: &Runtime) -> u64 {
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAP);
        let consumer = tokio::spawn(async move {
            let mut total = 0;
            while let Some(x) = rx.recv().await {
                total += x;
            }
            total
        });
        for x in 0..N {
            tx.send(black_box(x)).await.unwrap();
        }
        drop(tx);
        consumer.await.unwrap()
    })
}

fn crossbeam_channel() -> u64 {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
    let consumer = std::thread::spawn(move || rx.iter().sum::<u64>());
    for x in 0..N {
        tx.send(black_box(x)).unwrap();
    }
    drop(tx);
    consumer.join().unwrap()
}

fn buffer_hop(c: &mut Criterion) {
    let ct = current_thread();
    let mt = multi_thread();
    assert_eq!(brooklet_buffer(&ct), EXPECTED);
    assert_eq!(brooklet_buffer(&mt), EXPECTED);
    assert_eq!(tokio_mpsc(&ct), EXPECTED);
    assert_eq!(tokio_mpsc(&mt), EXPECTED);
    assert_eq!(crossbeam_channel(), EXPECTED);

    let mut g = c.benchmark_group("buffer_hop");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("brooklet_buffer/current_thread", |b| {
        b.iter(|| black_box(brooklet_buffer(&ct)))
    });
    g.bench_function("tokio_mpsc/current_thread", |b| {
        b.iter(|| black_box(tokio_mpsc(&ct)))
    });
    g.bench_function("brooklet_buffer/multi_thread", |b| {
        b.iter(|| black_box(brooklet_buffer(&mt)))
    });
    g.bench_function("tokio_mpsc/multi_thread", |b| {
        b.iter(|| black_box(tokio_mpsc(&mt)))
    });
    g.bench_function("crossbeam_channel/threads", |b| {
        b.iter(|| black_box(crossbeam_channel()))
    });
    g.finish();
}

criterion_group!(benches, buffer_hop);
criterion_main!(benches);
