//! Parallel map: order, the in-flight bound, panics, acknowledgements, shutdown, `map_async`
//! and the fallible variant.
//!
//! No test sleeps to wait for something: workers block on channels the test controls, and the
//! test waits on channels or on `close()`. Short sleeps inside worker functions only simulate
//! work of random length.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brooklet::parallel::ParMap;
use brooklet::{Ack, Error, Source};

/// A deterministic pseudo-random number for `x` (splitmix64).
fn rand(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Simulates work of a random length, up to `max_us` microseconds.
fn work(x: u64, max_us: u64) {
    std::thread::sleep(Duration::from_micros(rand(x) % max_us));
}

/// Tracks how many are inside a section at once, and the most ever seen.
#[derive(Default)]
struct Peak {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Peak {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_output_under_random_work_durations() {
    let source = Source::new();
    let out = source
        .par_map(4, |x: u64| {
            work(x, 400);
            x * 2
        })
        .sink_to_vec();
    for x in 0..400 {
        source.emit(x).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(out.snapshot(), (0..400).map(|x| x * 2).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_pends_exactly_when_the_bound_is_reached() {
    let (started_tx, started) = crossbeam_channel::unbounded();
    // One release channel per element, so the test decides which element finishes.
    let (release, gates): (Vec<_>, Vec<_>) =
        (0..5).map(|_| crossbeam_channel::bounded::<()>(1)).unzip();
    let source = Source::new();
    let node = source.par_map_with(ParMap::new(2).max_in_flight(5), move |x: u32| {
        started_tx.send(x).unwrap();
        gates[x as usize].recv().unwrap();
        x
    });
    let (done_tx, done) = crossbeam_channel::unbounded();
    let out = node
        .map(move |x| done_tx.send(x).map(|_| x).unwrap())
        .sink_to_vec();

    for x in 0..4 {
        assert!(
            source.emit(x).is_complete(),
            "element {x} is under the bound"
        );
    }
    let fifth = source.emit(4);
    assert!(!fifth.is_complete(), "the fifth element fills the node");
    // Exactly two functions run at once: two workers.
    let mut running = vec![started.recv().unwrap(), started.recv().unwrap()];
    running.sort();
    assert_eq!(running, vec![0, 1]);
    assert!(started.try_recv().is_err());
    assert_eq!(node.metrics().held, 5);

    // The wait resolves at the low-water mark: half the bound (2) in flight.
    for x in 0..3 {
        release[x as usize].send(()).unwrap();
        assert_eq!(done.recv().unwrap(), x);
    }
    fifth.await.unwrap();
    for gate in &release[3..] {
        gate.send(()).unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(out.snapshot(), vec![0, 1, 2, 3, 4]);
    assert_eq!(node.metrics().held, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_and_running_never_exceed_their_bounds() {
    let running = Arc::new(Peak::default());
    let in_flight = Arc::new(Peak::default());
    let source = Source::new();
    let r = running.clone();
    let seen = in_flight.clone();
    let out = source
        .par_map_with(
            ParMap::new(3).max_in_flight(7).unordered(),
            move |x: u64| {
                r.enter();
                work(x, 300);
                r.leave();
                x
            },
        )
        .map(move |x| {
            seen.leave();
            x
        })
        .sink_to_vec();
    for x in 0..300 {
        in_flight.enter();
        source.emit(x).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(out.snapshot().len(), 300);
    assert_eq!(running.max(), 3, "every worker busy, never more");
    assert_eq!(
        in_flight.max(),
        7,
        "the bound is reached and never exceeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_bound_is_twice_the_workers_and_at_least_32() {
    for (workers, bound) in [(2, 32), (20, 40)] {
        let in_flight = Arc::new(Peak::default());
        let seen = in_flight.clone();
        let source = Source::new();
        let _out = source
            .par_map(workers, |x: u64| {
                work(x, 200);
                x
            })
            .sink(move |_| seen.leave());
        for x in 0..200 {
            in_flight.enter();
            source.emit(x).await.unwrap();
        }
        source.close().await.unwrap();
        assert_eq!(in_flight.max(), bound, "{workers} workers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_push_results_downstream_inside_the_runtime() {
    // The synchronous nodes behind the pool run on the worker that finished the element, and
    // a node that needs the runtime there (a delay starts a timer) finds it.
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let names = threads.clone();
    let source = Source::new();
    let out = source
        .par_map(2, |x: u64| x + 1)
        .map(move |x| {
            let name = std::thread::current().name().map(str::to_string);
            names.lock().unwrap().insert(name.unwrap_or_default());
            x
        })
        .delay(Duration::from_millis(1))
        .sink_to_vec();
    for x in 0..100 {
        source.emit(x).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(out.snapshot(), (1..=100).collect::<Vec<_>>());
    let threads = threads.lock().unwrap();
    assert!(
        threads.iter().all(|n| n.starts_with("par_map-")),
        "pushed from {threads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_reported_and_later_elements_flow() {
    let source = Source::new();
    // One worker: if a panic killed it, nothing after the panic would run.
    let node = source.par_map(1, |x: u32| {
        if x % 10 == 3 {
            panic!("bad element {x}");
        }
        x
    });
    let out = node.sink_to_vec();
    let mut errors = Vec::new();
    for x in 0..50 {
        if let Err(e) = source.emit(x).await {
            errors.push(e);
        }
    }
    if let Err(e) = source.close().await {
        errors.push(e);
    }
    let expected: Vec<u32> = (0..50).filter(|x| x % 10 != 3).collect();
    assert_eq!(out.snapshot(), expected);
    assert_eq!(node.metrics().errors, 5);
    assert!(!errors.is_empty(), "a panic on a worker is never lost");
    // Panics that come before the producer's next `emit` are reported together.
    let reported: usize = errors
        .iter()
        .map(|e| match e {
            Error::Several { more, .. } => 1 + more,
            _ => 1,
        })
        .sum();
    assert_eq!(reported, 5, "{errors:?}");
    for e in &errors {
        match e.first() {
            Error::Panicked { node, message } => {
                assert_eq!(node, "par_map");
                assert!(message.starts_with("bad element"), "{message}");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_reported_by_close() {
    let source = Source::new();
    let node = source.par_map(2, |x: u32| {
        assert!(x != 1, "one is not allowed");
        x
    });
    let out = node.named("checked").sink_to_vec();
    source.emit(0).await.unwrap();
    source.emit(1).await.unwrap();
    source.emit(2).await.unwrap();
    let err = source.close().await.unwrap_err();
    assert_eq!(
        err,
        Error::Panicked {
            node: "checked".into(),
            message: "one is not allowed".into()
        }
    );
    assert_eq!(out.snapshot(), vec![0, 2]);
}

/// Workers push while earlier pushes pend behind a full buffer and the node's task holds the
/// turn: the order holds, every element arrives once, and every token is done, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_output_holds_while_pushes_pend_behind_a_slow_consumer() {
    const N: u64 = 600;
    let released = Arc::new(AtomicUsize::new(0));
    let source = Source::new();
    let out = source
        .par_map_with(ParMap::new(4).max_in_flight(9), |x: u64| {
            work(x, 300);
            x
        })
        .buffer(2)
        .map(|x| {
            // A consumer slower than the pool now and then: the buffer fills, pushes pend.
            if x % 7 == 0 {
                std::thread::sleep(Duration::from_micros(300));
            }
            x
        })
        .sink_to_vec();
    for x in 0..N {
        let released = released.clone();
        let ack = Ack::new(move |o| {
            assert!(o.is_done(), "{o:?}");
            released.fetch_add(1, Ordering::SeqCst);
        });
        source.emit_with_ack(x, ack).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(out.snapshot(), (0..N).collect::<Vec<_>>());
    assert_eq!(released.load(Ordering::SeqCst), N as usize);
}

/// Every token must be released only once its element's result is in the sink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unordered_delivers_everything_once_and_acks_after_the_sink() {
    const N: u64 = 400;
    let sunk = Arc::new(Mutex::new(Vec::new()));
    let early = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let source = Source::new();
    let store = sunk.clone();
    let _sink = source
        .par_map_unordered(4, |x: u64| {
            work(x, 500);
            x
        })
        .sink(move |x| store.lock().unwrap().push(x));
    for x in 0..N {
        let (sunk, early, released) = (sunk.clone(), early.clone(), released.clone());
        let ack = Ack::new(move |_| {
            if !sunk.lock().unwrap().contains(&x) {
                early.fetch_add(1, Ordering::SeqCst);
            }
            released.fetch_add(1, Ordering::SeqCst);
        });
        source.emit_with_ack(x, ack).await.unwrap();
    }
    source.close().await.unwrap();
    let mut all = sunk.lock().unwrap().clone();
    let arrival = all.clone();
    all.sort();
    assert_eq!(all, (0..N).collect::<Vec<_>>(), "each element exactly once");
    assert_ne!(arrival, all, "random work durations reorder the output");
    assert_eq!(released.load(Ordering::SeqCst), N as usize);
    assert_eq!(
        early.load(Ordering::SeqCst),
        0,
        "no token before its result"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_mode_holds_tokens_until_downstream_accepted() {
    let (release, release_rx) = crossbeam_channel::unbounded::<()>();
    let source = Source::new();
    let out = source
        .par_map(2, move |x: u32| {
            if x == 0 {
                release_rx.recv().unwrap(); // the first element is slow
            }
            x
        })
        .sink_to_vec();
    let flags: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    for (x, flag) in flags.iter().enumerate() {
        let f = flag.clone();
        let ack = Ack::new(move |_| {
            f.store(1, Ordering::SeqCst);
        });
        source.emit_with_ack(x as u32, ack).await.unwrap();
    }
    // Elements 1 and 2 may be finished, but wait behind 0: nothing is acknowledged.
    assert!(flags.iter().all(|f| f.load(Ordering::SeqCst) == 0));
    release.send(()).unwrap();
    source.close().await.unwrap();
    assert_eq!(out.snapshot(), vec![0, 1, 2]);
    assert!(flags.iter().all(|f| f.load(Ordering::SeqCst) == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_work_in_flight() {
    let source = Source::new();
    let out = source
        .par_map_with(ParMap::new(2).max_in_flight(3), |x: u64| {
            work(x, 2_000);
            x + 1
        })
        .sink_to_vec();
    for x in 0..20 {
        // Not awaited: the node accepts everything, beyond its bound too.
        drop(source.emit(x));
    }
    source.close().await.unwrap();
    assert_eq!(out.snapshot(), (1..=20).collect::<Vec<_>>());
}

/// Counts live worker threads: a thread-local guard created on a worker's first call, dropped
/// when the thread exits.
struct ThreadGuard(crossbeam_channel::Sender<()>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static GUARD: std::cell::RefCell<Option<ThreadGuard>> = const { std::cell::RefCell::new(None) };
}

/// A value whose drop says that the function (and so every worker's clone of it) is gone.
struct DropFlag(crossbeam_channel::Sender<()>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_workers() {
    let (exited_tx, exited) = crossbeam_channel::unbounded();
    let (dropped_tx, dropped) = crossbeam_channel::unbounded();
    let started = Arc::new(Mutex::new(HashSet::new()));
    let flag = DropFlag(dropped_tx);
    let seen = started.clone();
    let (done_tx, done) = crossbeam_channel::unbounded();
    let source = Source::new();
    source
        .par_map(3, move |x: u64| {
            let _keep = &flag;
            GUARD.with(|g| {
                g.borrow_mut()
                    .get_or_insert_with(|| ThreadGuard(exited_tx.clone()));
            });
            seen.lock()
                .unwrap()
                .insert(std::thread::current().name().map(String::from));
            work(x, 1_000);
            x
        })
        .sink(move |x| done_tx.send(x).unwrap());
    for x in 0..60 {
        source.emit(x).await.unwrap();
    }
    let workers = started.lock().unwrap().len();
    assert!(workers >= 1);
    assert!(
        started
            .lock()
            .unwrap()
            .iter()
            .all(|n| n.as_deref().is_some_and(|n| n.starts_with("par_map-")))
    );
    drop(source);
    // Waiting on channels the worker threads signal as they go; the timeout only turns a
    // leak into a failure instead of a hang.
    tokio::task::spawn_blocking(move || {
        let limit = Duration::from_secs(30);
        dropped
            .recv_timeout(limit)
            .expect("the function was dropped");
        for _ in 0..workers {
            exited.recv_timeout(limit).expect("a worker thread exited");
        }
        // The queued work was done and delivered: the task outlives the source handles.
        let all: Vec<u64> = (0..60).map(|_| done.recv_timeout(limit).unwrap()).collect();
        assert_eq!(all, (0..60).collect::<Vec<_>>());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_drops_the_function() {
    let (dropped_tx, dropped) = crossbeam_channel::unbounded();
    let flag = DropFlag(dropped_tx);
    let source = Source::new();
    let _out = source
        .par_map(2, move |x: u8| {
            let _keep = &flag;
            x
        })
        .sink(|_| ());
    source.emit(1).await.unwrap();
    source.close().await.unwrap();
    // Deterministic: the task ends only after every worker has dropped its clone.
    assert!(dropped.try_recv().is_ok());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn map_async_keeps_order_and_bounds_concurrency() {
    let running = Arc::new(Peak::default());
    let source = Source::new();
    let r = running.clone();
    let out = source
        .map_async(3, move |x: u64| {
            let r = r.clone();
            async move {
                r.enter();
                tokio::time::sleep(Duration::from_millis(rand(x) % 50)).await;
                r.leave();
                x * 10
            }
        })
        .sink_to_vec();
    for x in 0..100 {
        source.emit(x).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(out.snapshot(), (0..100).map(|x| x * 10).collect::<Vec<_>>());
    assert_eq!(running.max(), 3);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn map_async_bounds_in_flight_and_reports_panics() {
    let in_flight = Arc::new(Peak::default());
    let seen = in_flight.clone();
    let source = Source::new();
    let node = source.map_async(2, |x: u64| async move {
        tokio::time::sleep(Duration::from_millis(rand(x) % 20)).await;
        assert!(x != 7, "seven");
        x
    });
    let out = node
        .map(move |x| {
            seen.leave();
            x
        })
        .sink_to_vec();
    let mut errors = Vec::new();
    for x in 0..30 {
        in_flight.enter();
        if x == 8 {
            // Element 7 never reaches the sink.
            in_flight.leave();
        }
        if let Err(e) = source.emit(x).await {
            errors.push(e);
        }
    }
    if let Err(e) = source.close().await {
        errors.push(e);
    }
    assert_eq!(
        out.snapshot(),
        (0..30).filter(|x| *x != 7).collect::<Vec<_>>()
    );
    assert!(in_flight.max() <= 4);
    assert_eq!(node.metrics().errors, 1);
    assert_eq!(errors.len(), 1);
    assert!(matches!(&errors[0], Error::Panicked { message, .. } if message == "seven"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_par_map_routes_errors_and_acks_after_the_error_sink() {
    let good_seen = Arc::new(Mutex::new(Vec::new()));
    let bad_seen = Arc::new(Mutex::new(Vec::new()));
    let early = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let source = Source::new();
    let parsed = source.try_par_map(2, |x: u32| {
        work(u64::from(x), 300);
        if x.is_multiple_of(3) {
            Err(format!("{x}"))
        } else {
            Ok(x)
        }
    });
    let g = good_seen.clone();
    let _good = parsed.sink(move |x| g.lock().unwrap().push(x));
    let b = bad_seen.clone();
    let _bad = parsed.errors().sink(move |e| b.lock().unwrap().push(e));
    for x in 0..60u32 {
        let (g, b, early, released) = (
            good_seen.clone(),
            bad_seen.clone(),
            early.clone(),
            released.clone(),
        );
        let ack = Ack::new(move |_| {
            let there = if x % 3 == 0 {
                b.lock().unwrap().contains(&format!("{x}"))
            } else {
                g.lock().unwrap().contains(&x)
            };
            if !there {
                early.fetch_add(1, Ordering::SeqCst);
            }
            released.fetch_add(1, Ordering::SeqCst);
        });
        source.emit_with_ack(x, ack).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(
        *good_seen.lock().unwrap(),
        (0..60).filter(|x| x % 3 != 0).collect::<Vec<_>>()
    );
    assert_eq!(
        *bad_seen.lock().unwrap(),
        (0..60)
            .filter(|x| x % 3 == 0)
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(parsed.metrics().errors, 20);
    assert_eq!(released.load(Ordering::SeqCst), 60);
    assert_eq!(early.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_downstream_slows_the_producer() {
    // A buffer of one behind the pool, drained by a sink that waits for the test: results pile
    // up in the pool only up to its bound, and then `emit` pends.
    let (release, release_rx) = crossbeam_channel::unbounded::<()>();
    let source = Source::new();
    let node = source.par_map_with(ParMap::new(2).max_in_flight(2), |x: u32| x);
    let out = node
        .buffer(1)
        .map(move |x| {
            release_rx.recv().unwrap();
            x
        })
        .sink_to_vec();
    let mut pending = 0;
    for x in 0..10 {
        if !source.emit(x).is_complete() {
            pending += 1;
        }
    }
    assert!(pending > 0, "a blocked consumer makes emit pend");
    for _ in 0..10 {
        release.send(()).unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(out.snapshot(), (0..10).collect::<Vec<_>>());
}

#[test]
#[should_panic(expected = "`workers` must be at least 1")]
fn zero_workers_is_rejected() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let source = Source::<u8>::new();
    let _ = source.par_map(0, |x| x);
}

#[test]
#[should_panic(expected = "`concurrency` must be at least 1")]
fn zero_concurrency_is_rejected() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _g = rt.enter();
    let source = Source::<u8>::new();
    let _ = source.map_async(0, |x| async move { x });
}

#[test]
#[should_panic(expected = "`par_map` runs on a tokio runtime, and there is none here")]
fn par_map_outside_a_runtime_is_a_clear_error() {
    let source = Source::<u8>::new();
    let _ = source.par_map(1, |x| x);
}

#[test]
#[should_panic(expected = "`map_async` runs on a tokio runtime, and there is none here")]
fn map_async_outside_a_runtime_is_a_clear_error() {
    let source = Source::<u8>::new();
    let _ = source.map_async(1, |x| async move { x });
}
