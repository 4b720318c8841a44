//! Backpressure through runtime-driven nodes: a producer that awaits `emit` never runs further
//! ahead of a slow consumer than the nodes' bounds allow; dropped `emit` futures lose nothing;
//! bad arguments and a missing runtime fail loudly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brooklet::time::TimedWindowOptions;
use brooklet::{Source, Stream};
use tokio::time::sleep;

/// Polls `f` once from inside an async test: `Ready` with its output, or `Pending`.
async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A sink that takes `per` per element (awaiting a sleep), counting and keeping what it wrote.
fn slow_sink<T: brooklet::Item>(
    stream: &Stream<T>,
    per: Duration,
) -> (Arc<AtomicU64>, Arc<Mutex<Vec<T>>>) {
    let sunk = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, v) = (sunk.clone(), seen.clone());
    stream.sink_async(move |x| {
        let (s, v) = (s.clone(), v.clone());
        async move {
            sleep(per).await;
            v.lock().unwrap().push(x);
            s.fetch_add(1, Ordering::SeqCst);
        }
    });
    (sunk, seen)
}

const N: u64 = 1000;

#[tokio::test(start_paused = true)]
async fn in_flight_never_exceeds_the_buffer_bound() {
    let source = Source::new();
    let buffered = source.map(|x: u64| x * 2).buffer(100);
    let (sunk, seen) = slow_sink(&buffered, ms(1));
    let mut max_in_flight = 0;
    for x in 0..N {
        // `emit` accepts the element before it returns: count it first.
        let in_flight = x + 1 - sunk.load(Ordering::SeqCst);
        max_in_flight = max_in_flight.max(in_flight);
        source.emit(x).await.unwrap();
        assert!(
            buffered.metrics().held <= 100,
            "the buffer grew past its bound"
        );
    }
    source.close().await.unwrap();
    // The bound: the buffer's 100, plus the one its task hands to the sink (which the sink is
    // writing), plus the one being emitted. It is reached: the producer runs at the sink's pace.
    assert_eq!(max_in_flight, 100 + 1 + 1);
    let expected: Vec<u64> = (0..N).map(|x| x * 2).collect();
    assert_eq!(*seen.lock().unwrap(), expected, "lost or reordered");
}

#[tokio::test(start_paused = true)]
async fn fan_out_runs_at_the_pace_of_the_slow_branch() {
    let source = Source::new();
    let fast_count = Arc::new(AtomicU64::new(0));
    let f = fast_count.clone();
    source.buffer(10).sink(move |_: u64| {
        f.fetch_add(1, Ordering::SeqCst);
    });
    let (slow_sunk, slow_seen) = slow_sink(&source.buffer(10), ms(1));
    let mut max_lead = 0;
    for x in 0..N {
        source.emit(x).await.unwrap();
        let lead = fast_count.load(Ordering::SeqCst) - slow_sunk.load(Ordering::SeqCst);
        max_lead = max_lead.max(lead);
    }
    source.close().await.unwrap();
    // The fast branch is at most as far ahead as the slow branch holds: its buffer's 10, the
    // one being written and the one just emitted.
    assert!(max_lead <= 10 + 1 + 1, "fast branch ran {max_lead} ahead");
    assert_eq!(fast_count.load(Ordering::SeqCst), N);
    assert_eq!(*slow_seen.lock().unwrap(), (0..N).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn every_time_node_bounds_a_producer_awaiting_emit() {
    // Each node in front of a slow sink: a producer awaiting `emit` stays within the node's
    // bound of the sink (one being written, one being emitted, plus what the node holds).
    type Build = fn(&Source<u64>) -> Stream<u64>;
    let nodes: [(&str, Build, u64); 4] = [
        ("rate_limit", |s| s.rate_limit(ms(1)), 1 + 1),
        ("delay_bounded", |s| s.delay_bounded(ms(1), 8), 8 + 1),
        ("buffer", |s| s.buffer(8), 8),
        (
            "timed_window",
            |s| {
                let opts = TimedWindowOptions::default().bound(8).skip_empty();
                s.timed_window_with(ms(1), opts).flatten()
            },
            // The window being written (at most bound + 1) and the window filling (bound + 1).
            2 * (8 + 1),
        ),
    ];
    for (name, build, held) in nodes {
        let source = Source::new();
        let (sunk, seen) = slow_sink(&build(&source), ms(3));
        let mut max_in_flight = 0;
        for x in 0..300 {
            max_in_flight = max_in_flight.max(x + 1 - sunk.load(Ordering::SeqCst));
            source.emit(x).await.unwrap();
        }
        source.close().await.unwrap();
        assert!(
            max_in_flight <= held + 2,
            "{name}: {max_in_flight} in flight, bound {}",
            held + 2
        );
        assert_eq!(
            *seen.lock().unwrap(),
            (0..300).collect::<Vec<_>>(),
            "{name}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn partition_timeout_bounds_a_producer_awaiting_emit() {
    let source = Source::new();
    let (sunk, seen) = slow_sink(&source.partition_timeout(4, ms(50)), ms(10));
    let mut max_batches_ahead = 0;
    for x in 0..200u64 {
        source.emit(x).await.unwrap();
        let done_batches = x / 4 + 1; // batches completed, counting the open one
        max_batches_ahead = max_batches_ahead.max(done_batches - sunk.load(Ordering::SeqCst));
    }
    source.close().await.unwrap();
    // One batch being written, one waiting in the outbox, one just completed or open.
    assert!(max_batches_ahead <= 3, "{max_batches_ahead} batches ahead");
    let flat: Vec<u64> = seen.lock().unwrap().iter().flatten().copied().collect();
    assert_eq!(flat, (0..200).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn dropped_emit_futures_lose_nothing_and_never_wedge() {
    type Build = fn(&Source<u64>) -> Stream<u64>;
    let nodes: [(&str, Build); 6] = [
        ("buffer", |s| s.buffer(2)),
        ("rate_limit", |s| s.rate_limit(ms(1))),
        ("delay", |s| s.delay_bounded(ms(5), 2)),
        ("timed_window", |s| {
            let opts = TimedWindowOptions::default().bound(2);
            s.timed_window_with(ms(2), opts).flatten()
        }),
        ("partition_timeout", |s| {
            s.partition_timeout(3, ms(4)).flatten()
        }),
        ("chain", |s| {
            s.buffer(1).delay(ms(1)).rate_limit(ms(1)).buffer(1)
        }),
    ];
    for (name, build) in nodes {
        let source = Source::new();
        let (_, seen) = slow_sink(&build(&source), ms(1));
        for x in 0..50 {
            // Some dropped before being polled, some after registering a waker.
            let mut f = source.emit(x);
            if x % 2 == 0 {
                let _ = poll_once(&mut f).await;
            }
            drop(f);
        }
        // Not wedged: awaited emits still resolve.
        for x in 50..60 {
            source.emit(x).await.unwrap();
        }
        source.close().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..60).collect::<Vec<_>>(), "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn dropped_emit_futures_into_latest_keep_the_final_value() {
    let source = Source::new();
    let (_, seen) = slow_sink(&source.latest(), ms(1));
    for x in 0..50u64 {
        drop(source.emit(x));
    }
    source.close().await.unwrap();
    assert_eq!(seen.lock().unwrap().last(), Some(&49));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_on_another_thread_is_bounded_too() {
    // No clock here: the sink yields instead of sleeping, and the bound is checked the same way.
    let source = Source::new();
    let buffered = source.buffer(16);
    let sunk = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, v) = (sunk.clone(), seen.clone());
    buffered.sink_async(move |x: u64| {
        let (s, v) = (s.clone(), v.clone());
        async move {
            tokio::task::yield_now().await;
            v.lock().unwrap().push(x);
            s.fetch_add(1, Ordering::SeqCst);
        }
    });
    let producer = tokio::spawn({
        let source = source.clone();
        async move {
            let mut max_in_flight = 0;
            for x in 0..5000u64 {
                max_in_flight = max_in_flight.max(x + 1 - sunk.load(Ordering::SeqCst));
                source.emit(x).await.unwrap();
            }
            max_in_flight
        }
    });
    let max_in_flight = producer.await.unwrap();
    source.close().await.unwrap();
    assert!(max_in_flight <= 16 + 2, "{max_in_flight} in flight");
    assert_eq!(*seen.lock().unwrap(), (0..5000).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_feedback_loop_through_a_time_node_does_not_wedge_itself() {
    // Each element comes back twice through the loop, so the node's own task pushes more
    // into the node than it holds. Only that task makes room: it must not wait for it.
    type Build = fn(&Source<u64>) -> Stream<u64>;
    let nodes: [(&str, Build); 4] = [
        ("buffer", |s| s.buffer(1)),
        ("rate_limit", |s| s.rate_limit(ms(1))),
        ("delay", |s| s.delay_bounded(ms(1), 1)),
        ("timed_window", |s| {
            let opts = TimedWindowOptions::default().bound(1).skip_empty();
            s.timed_window_with(ms(1), opts).flatten()
        }),
    ];
    for (name, build) in nodes {
        let source = Source::new();
        let looped = build(&source);
        let seen = looped.sink_to_vec();
        looped
            .flat_map(|x: u64| [x + 1, x + 1])
            .filter(|x| *x < 6)
            .connect(&source);
        source.emit(0).await.unwrap();
        sleep(ms(1000)).await;
        // 1 + 2 + 4 + ... + 32 elements, with no help from close().
        assert_eq!(seen.len(), 63, "{name}: the loop wedged");
        source.close().await.unwrap();
    }
}

// ---------------------------------------------------------------- bad arguments

#[tokio::test]
#[should_panic(expected = "buffer: the capacity must be at least 1")]
async fn zero_buffer_capacity_panics() {
    let _ = Source::<u8>::new().buffer(0);
}

#[tokio::test]
#[should_panic(expected = "rate_limit: the interval must be greater than zero")]
async fn zero_rate_limit_panics() {
    let _ = Source::<u8>::new().rate_limit(Duration::ZERO);
}

#[tokio::test]
#[should_panic(expected = "delay: the delay must be greater than zero")]
async fn zero_delay_panics() {
    let _ = Source::<u8>::new().delay(Duration::ZERO);
}

#[tokio::test]
#[should_panic(expected = "delay: the capacity must be at least 1")]
async fn zero_delay_capacity_panics() {
    let _ = Source::<u8>::new().delay_bounded(ms(1), 0);
}

#[tokio::test]
#[should_panic(expected = "timed_window: the interval must be greater than zero")]
async fn zero_timed_window_panics() {
    let _ = Source::<u8>::new().timed_window(Duration::ZERO);
}

#[test]
#[should_panic(expected = "timed_window: the bound must be at least 1")]
fn zero_timed_window_bound_panics() {
    let _ = TimedWindowOptions::default().bound(0);
}

#[tokio::test]
#[should_panic(expected = "partition_timeout: the batch size must be at least 1")]
async fn zero_partition_timeout_size_panics() {
    let _ = Source::<u8>::new().partition_timeout(0, ms(1));
}

#[tokio::test]
#[should_panic(expected = "partition_timeout: the timeout must be greater than zero")]
async fn zero_partition_timeout_panics() {
    let _ = Source::<u8>::new().partition_by_timeout(2, Duration::ZERO, |x| *x);
}

#[tokio::test]
#[should_panic(expected = "from_periodic: the interval must be greater than zero")]
async fn zero_periodic_interval_panics() {
    let _ = Source::from_periodic(Duration::ZERO, || Some(1));
}

// ---------------------------------------------------------------- no runtime

const NO_RUNTIME: &str = "runs on a tokio runtime, and there is none here";

#[test]
#[should_panic(expected = "`buffer` runs on a tokio runtime, and there is none here")]
fn buffer_outside_a_runtime_panics() {
    let _ = Source::<u8>::new().buffer(1);
}

#[test]
#[should_panic(expected = "`rate_limit` runs on a tokio runtime")]
fn rate_limit_outside_a_runtime_panics() {
    let _ = Source::<u8>::new().rate_limit(ms(1));
}

#[test]
#[should_panic(expected = "`delay` runs on a tokio runtime")]
fn delay_outside_a_runtime_panics() {
    let _ = Source::<u8>::new().delay(ms(1));
}

#[test]
#[should_panic(expected = "`timed_window` runs on a tokio runtime")]
fn timed_window_outside_a_runtime_panics() {
    let _ = Source::<u8>::new().timed_window(ms(1));
}

#[test]
#[should_panic(expected = "`latest` runs on a tokio runtime")]
fn latest_outside_a_runtime_panics() {
    let _ = Source::<u8>::new().latest();
}

#[test]
#[should_panic(expected = "`partition_timeout` runs on a tokio runtime")]
fn partition_timeout_outside_a_runtime_panics() {
    let _ = Source::<u8>::new().partition_timeout(2, ms(1));
}

#[test]
#[should_panic(expected = "`sink_async` runs on a tokio runtime")]
fn sink_async_outside_a_runtime_panics() {
    let _ = Source::<u8>::new().sink_async(|_| async {});
}

#[test]
#[should_panic(expected = "`from_periodic` runs on a tokio runtime")]
fn from_periodic_outside_a_runtime_panics() {
    let _ = Source::from_periodic(ms(1), || Some(1u8));
}

#[test]
fn a_graph_built_after_entering_a_runtime_works() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = rt.enter();
    let source = Source::new();
    let seen = source.delay(ms(10)).buffer(2).sink_to_vec();
    rt.block_on(async {
        source.emit(1).await.unwrap();
        source.close().await.unwrap();
    });
    assert_eq!(seen.snapshot(), vec![1]);
    assert!(NO_RUNTIME.contains("none here"));
}

#[tokio::test(start_paused = true)]
async fn forward_into_a_source_pulls_only_what_the_graph_accepts() {
    use futures::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let source = Source::new();
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    source.buffer(2).sink_async(move |_: u32| {
        let w = w.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            w.fetch_add(1, Ordering::SeqCst);
        }
    });
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let input = futures::stream::iter(0..20u32).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let forwarding = tokio::spawn(input.map(Ok).forward(source.clone()));
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Two written, one being written, two in the buffer, one emit waiting: never all twenty.
    let ahead = pulled.load(Ordering::SeqCst) - written.load(Ordering::SeqCst);
    assert!(
        ahead <= 5,
        "the stream ran {ahead} elements ahead of the slow sink"
    );
    tokio::time::timeout(Duration::from_secs(60), forwarding)
        .await
        .expect("forward finished")
        .unwrap()
        .unwrap();
    assert!(source.is_closed(), "forward closes the sink at the end");
    assert_eq!(written.load(Ordering::SeqCst), 20);
}
