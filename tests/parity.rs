//! Streamz parity: operators and behaviours a Streamz user expects (`slice`, `partition_unique`,
//! `timed_window_unique`, `accumulate` seeded by the first element, `emit` that waits for
//! `rate_limit`, `timed_window` paced by its previous emission, processing-time windows).
//! Time-based tests run on tokio's paused clock, so timings are exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brooklet::ops::Keep;
use brooklet::{Source, Stream};
use futures::StreamExt;
use tokio::time::{Instant, sleep, timeout};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Log<T> = Arc<Mutex<Vec<(T, u128)>>>;

/// A sink that records each element with its arrival time, in ms since `start`.
fn record<T: brooklet::Item>(stream: &Stream<T>, start: Instant) -> Log<T> {
    let log: Log<T> = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    stream.sink(move |x| l.lock().unwrap().push((x, start.elapsed().as_millis())));
    log
}

fn get<T: Clone>(log: &Log<T>) -> Vec<(T, u128)> {
    log.lock().unwrap().clone()
}

/// Bounds a wait in a test: on a paused clock, an hour passes at once if nothing else is due.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    timeout(Duration::from_secs(3600), f)
        .await
        .expect("the wait did not end")
}

// ---------------------------------------------------------------- rate_limit and run

#[tokio::test(start_paused = true)]
async fn rate_limit_emit_resolves_once_the_element_has_passed() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(&source.rate_limit(ms(50)), start);
    let mut resolved = Vec::new();
    for x in 0..5 {
        bounded(source.emit(x)).await.unwrap();
        resolved.push((start.elapsed().as_millis(), get(&log).len()));
    }
    // Each emit resolves when its own element has arrived.
    assert_eq!(
        resolved,
        vec![(0, 1), (50, 2), (100, 3), (150, 4), (200, 5)]
    );
    assert!(start.elapsed() >= ms(200));
    assert_eq!(
        get(&log),
        vec![(0, 0), (1, 50), (2, 100), (3, 150), (4, 200)]
    );
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn rate_limit_emit_waits_for_downstream_to_accept_the_element() {
    let start = Instant::now();
    let source = Source::new();
    let written = Arc::new(Mutex::new(Vec::new()));
    let w = written.clone();
    source.rate_limit(ms(10)).sink_async(move |x: u32| {
        let w = w.clone();
        async move {
            sleep(ms(100)).await;
            w.lock().unwrap().push(x);
        }
    });
    bounded(source.emit(1)).await.unwrap();
    assert_eq!(start.elapsed(), ms(100));
    assert_eq!(*written.lock().unwrap(), vec![1]);
    bounded(source.close()).await.unwrap();
}

#[test]
fn rate_limit_emit_fails_when_the_runtime_drops_the_held_element() {
    // The node's runtime shuts down while an element waits for its slot: that element's emit
    // must fail, not report the element as passed.
    let paused = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    let rt = paused();
    let source = Source::new();
    let seen = {
        let _g = rt.enter();
        source.rate_limit(Duration::from_secs(3600)).sink_to_vec()
    };
    rt.block_on(async { source.emit(1).await.unwrap() });
    let second = source.emit(2);
    drop(rt);
    let result = paused().block_on(bounded(second));
    assert!(result.is_err(), "{result:?}");
    assert_eq!(seen.snapshot(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn run_pulls_the_next_item_only_once_the_previous_one_was_accepted() {
    let start = Instant::now();
    let arrived: Log<u32> = Arc::new(Mutex::new(Vec::new()));
    let pulls = Arc::new(Mutex::new(Vec::new()));
    let (a, p) = (arrived.clone(), pulls.clone());
    let source = Source::from_iter((0..4).inspect(move |x| {
        // How many elements had arrived downstream when this one was pulled.
        p.lock().unwrap().push((*x, a.lock().unwrap().len()));
    }));
    let a = arrived.clone();
    source
        .rate_limit(ms(50))
        .sink(move |x| a.lock().unwrap().push((x, start.elapsed().as_millis())));
    bounded(source.run()).await.unwrap();
    assert_eq!(*pulls.lock().unwrap(), vec![(0, 0), (1, 1), (2, 2), (3, 3)]);
    assert_eq!(get(&arrived), vec![(0, 0), (1, 50), (2, 100), (3, 150)]);
}

#[tokio::test(start_paused = true)]
async fn from_stream_run_pulls_only_after_the_previous_item_passed() {
    let start = Instant::now();
    let arrived: Log<u32> = Arc::new(Mutex::new(Vec::new()));
    let pulls = Arc::new(Mutex::new(Vec::new()));
    let (a, p) = (arrived.clone(), pulls.clone());
    let input = futures::stream::iter(0..3u32).inspect(move |x| {
        p.lock().unwrap().push((*x, a.lock().unwrap().len()));
    });
    let source = Source::from_stream(input);
    let a = arrived.clone();
    source
        .rate_limit(ms(50))
        .sink(move |x| a.lock().unwrap().push((x, start.elapsed().as_millis())));
    bounded(source.run()).await.unwrap();
    assert_eq!(*pulls.lock().unwrap(), vec![(0, 0), (1, 1), (2, 2)]);
    assert_eq!(start.elapsed(), ms(100));
}

// ---------------------------------------------------------------- slice

#[test]
fn slice_follows_python_list_slicing() {
    futures::executor::block_on(async {
        let input: Vec<u32> = (0..12).collect();
        for start in 0..6 {
            for end in [None, Some(0), Some(3), Some(7), Some(12), Some(20)] {
                for step in 1..5 {
                    let source = Source::new();
                    let seen = source.slice(start, end, step).sink_to_vec();
                    for &x in &input {
                        source.emit(x).await.unwrap();
                    }
                    source.close().await.unwrap();
                    let stop = end.unwrap_or(usize::MAX).min(input.len());
                    let want: Vec<u32> = if start < stop {
                        input[start..stop].iter().step_by(step).copied().collect()
                    } else {
                        Vec::new()
                    };
                    assert_eq!(seen.snapshot(), want, "[{start}:{end:?}:{step}]");
                }
            }
        }
    });
}

#[tokio::test(start_paused = true)]
async fn slice_ends_its_branch_after_its_last_element() {
    let source = Source::new();
    let batches = source.slice(1, Some(5), 2).partition(10).sink_to_vec();
    let mut pulled = source.slice(0, Some(2), 1).to_stream();
    let downstream = Source::new();
    source.slice(0, Some(3), 1).connect(&downstream);
    for x in 0..4 {
        source.emit(x).await.unwrap();
    }
    // [1:5:2] = positions 1 and 3: the branch ended after 3, so the partition flushed.
    assert_eq!(batches.snapshot(), vec![vec![1, 3]]);
    assert!(
        downstream.is_closed(),
        "the target of an ended slice is ended"
    );
    assert_eq!(bounded(pulled.next()).await, Some(0));
    assert_eq!(bounded(pulled.next()).await, Some(1));
    assert_eq!(bounded(pulled.next()).await, None);
    // Later elements are dropped; closing still works and ends nothing twice.
    for x in 4..100 {
        assert!(source.emit(x).is_complete());
    }
    bounded(source.close()).await.unwrap();
    assert_eq!(batches.snapshot(), vec![vec![1, 3]]);
}

#[tokio::test(start_paused = true)]
async fn an_empty_slice_ends_at_once_and_ends_later_targets() {
    let source = Source::<u32>::new();
    let empty = source.slice(4, Some(4), 1);
    let mut pulled = empty.to_stream();
    assert_eq!(bounded(pulled.next()).await, None);
    source.emit(1).await.unwrap();
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn slice_releases_the_tokens_of_dropped_elements() {
    let source = Source::new();
    let seen = source.slice(0, Some(1), 1).sink_to_vec();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    for x in 0..3 {
        let o = outcomes.clone();
        let ack = brooklet::Ack::new(move |outcome| o.lock().unwrap().push((x, outcome.is_done())));
        source.emit_with_ack(x, ack).await.unwrap();
    }
    assert_eq!(seen.snapshot(), vec![0]);
    assert_eq!(
        *outcomes.lock().unwrap(),
        vec![(0, true), (1, true), (2, true)]
    );
}

#[test]
#[should_panic(expected = "slice: the step must be at least 1")]
fn slice_with_a_zero_step_panics() {
    let _ = Source::<u8>::new().slice(0, None, 0);
}

// ---------------------------------------------------------------- accumulate_from_first

#[test]
fn accumulate_from_first_emits_the_first_element_as_it_is() {
    futures::executor::block_on(async {
        // Streamz's docstring: a running total without start over range(5).
        let source = Source::new();
        let totals = source
            .accumulate_from_first(|a, x: u64| a + x)
            .sink_to_vec();
        let strings = source
            .map(|x| x.to_string())
            .accumulate_from_first(|a, x| format!("{a}-{x}"))
            .sink_to_vec();
        for x in 0..5 {
            source.emit(x).await.unwrap();
        }
        assert_eq!(totals.snapshot(), vec![0, 1, 3, 6, 10]);
        assert_eq!(strings.snapshot().last().unwrap(), "0-1-2-3-4");
    });
}

#[test]
fn accumulate_from_first_panic_leaves_the_state_as_it_was() {
    futures::executor::block_on(async {
        let source = Source::new();
        let totals = source
            .accumulate_from_first(|a, x: i32| {
                assert!(x >= 0, "negative");
                a + x
            })
            .sink_to_vec();
        source.emit(10).await.unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source.emit(-1)));
        assert!(panicked.is_err(), "the panic reaches the caller of emit");
        source.emit(5).await.unwrap();
        assert_eq!(totals.snapshot(), vec![10, 15]);
    });
}

// ---------------------------------------------------------------- partition_unique

/// A token that records its element's outcome into `log` as `(x, done)`.
fn logged_ack<T: Send + 'static>(log: &Arc<Mutex<Vec<(T, bool)>>>, x: T) -> brooklet::Ack {
    let log = log.clone();
    let mut x = Some(x);
    brooklet::Ack::new(move |outcome| {
        log.lock()
            .unwrap()
            .push((x.take().unwrap(), outcome.is_done()))
    })
}

#[test]
fn partition_unique_matches_streamz_examples() {
    futures::executor::block_on(async {
        let source = Source::new();
        let first = source
            .partition_unique(3, |s: &&str| s.len(), Keep::First)
            .sink_to_vec();
        let last = source
            .partition_unique(3, |s: &&str| s.len(), Keep::Last)
            .sink_to_vec();
        for s in ["f", "fo", "f", "foo", "f", "foo", "foo", "fo"] {
            source.emit(s).await.unwrap();
        }
        assert_eq!(
            first.snapshot(),
            vec![vec!["f", "fo", "foo"], vec!["f", "foo", "fo"]]
        );
        assert_eq!(
            last.snapshot(),
            vec![vec!["fo", "f", "foo"], vec!["f", "foo", "fo"]]
        );
    });
}

#[test]
fn partition_unique_flushes_a_partial_batch_at_close_and_refuses_later_emits() {
    futures::executor::block_on(async {
        let source = Source::new();
        let batches = source
            .partition_unique(3, |x: &u32| *x, Keep::First)
            .sink_to_vec();
        for x in [7, 7, 8] {
            source.emit(x).await.unwrap();
        }
        source.close().await.unwrap();
        assert_eq!(batches.snapshot(), vec![vec![7, 8]]);
        assert!(source.emit(9).await.is_err());
    });
}

#[test]
fn partition_unique_releases_absorbed_tokens_with_their_batch() {
    futures::executor::block_on(async {
        for keep in [Keep::First, Keep::Last] {
            let source = Source::new();
            let batches = source
                .partition_unique(2, |x: &(u8, u8)| x.0, keep)
                .sink_to_vec();
            let log = Arc::new(Mutex::new(Vec::new()));
            source
                .emit_with_ack((1, 0), logged_ack(&log, 0))
                .await
                .unwrap();
            source
                .emit_with_ack((1, 1), logged_ack(&log, 1))
                .await
                .unwrap();
            assert!(
                log.lock().unwrap().is_empty(),
                "{keep:?}: absorbed tokens are held"
            );
            source
                .emit_with_ack((2, 2), logged_ack(&log, 2))
                .await
                .unwrap();
            let mut released = log.lock().unwrap().clone();
            released.sort();
            assert_eq!(released, vec![(0, true), (1, true), (2, true)], "{keep:?}");
            let kept = if keep == Keep::First { (1, 0) } else { (1, 1) };
            assert_eq!(batches.snapshot(), vec![vec![kept, (2, 2)]]);
        }
    });
}

#[test]
fn partition_unique_key_panic_unwinds_and_leaves_the_batch_as_it_was() {
    futures::executor::block_on(async {
        let source = Source::new();
        let partition = source.partition_unique(
            2,
            |x: &i32| {
                assert!(*x >= 0, "negative key");
                *x
            },
            Keep::Last,
        );
        let batches = partition.sink_to_vec();
        source.emit(1).await.unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            source.emit_with_ack(-1, logged_ack(&log, -1))
        }));
        assert!(panicked.is_err());
        assert_eq!(*log.lock().unwrap(), vec![(-1, false)], "the token failed");
        assert_eq!(partition.metrics().errors, 1);
        assert_eq!(partition.metrics().held, 1);
        source.emit(2).await.unwrap();
        assert_eq!(batches.snapshot(), vec![vec![1, 2]]);
    });
}

#[test]
#[should_panic(expected = "partition_unique: the batch size must be at least 1")]
fn partition_unique_of_zero_panics() {
    let _ = Source::<u8>::new().partition_unique(0, |x| *x, Keep::First);
}

// ---------------------------------------------------------------- timed_window backpressure

/// An async sink that takes `per` to write each element, recording when it finished.
fn slow_record<T: brooklet::Item>(stream: &Stream<T>, start: Instant, per: Duration) -> Log<T> {
    let log: Log<T> = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    stream.sink_async(move |x| {
        let l = l.clone();
        async move {
            sleep(per).await;
            l.lock().unwrap().push((x, start.elapsed().as_millis()));
        }
    });
    log
}

#[tokio::test(start_paused = true)]
async fn timed_window_emit_pends_while_the_previous_window_is_pending_downstream() {
    let start = Instant::now();
    let source = Source::new();
    let log = slow_record(&source.timed_window(ms(100)), start, ms(250));
    bounded(source.emit(1)).await.unwrap(); // nothing in flight: at once
    sleep(ms(150)).await; // [1] went out at 100 ms and is written until 350 ms
    let pending = source.emit(2);
    assert!(!pending.is_complete());
    bounded(pending).await.unwrap();
    assert_eq!(
        start.elapsed(),
        ms(350),
        "resolves when [1] has been written"
    );
    assert_eq!(get(&log), vec![(vec![1], 350)]);
    bounded(source.close()).await.unwrap();
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .map(|(w, _)| w.clone())
            .collect::<Vec<_>>(),
        vec![vec![1], vec![2]]
    );
}

#[tokio::test(start_paused = true)]
async fn timed_window_emit_does_not_pend_while_downstream_keeps_up() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(&source.timed_window(ms(100)), start);
    for x in 0..3 {
        assert!(source.emit(x).is_complete());
        sleep(ms(60)).await;
    }
    bounded(source.close()).await.unwrap();
    assert_eq!(get(&log), vec![(vec![0, 1], 100), (vec![2], 180)]);
}

#[tokio::test(start_paused = true)]
async fn timed_window_closes_even_when_downstream_is_slower_than_its_ticks() {
    let start = Instant::now();
    let source = Source::new();
    let log = slow_record(&source.timed_window(ms(100)), start, ms(250));
    drop(source.emit(1));
    sleep(ms(1000)).await;
    bounded(source.close()).await.unwrap();
    let windows: Vec<Vec<u32>> = get(&log).into_iter().map(|(w, _)| w).collect();
    assert_eq!(windows[0], vec![1]);
    assert!(windows[1..].iter().all(Vec::is_empty), "{windows:?}");
}

#[test]
fn timed_window_emit_waiting_for_a_window_fails_when_the_runtime_shuts_down() {
    let paused = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    let rt = paused();
    let source = Source::new();
    {
        let _g = rt.enter();
        source
            .timed_window(ms(100))
            .sink_async(|_: Vec<u32>| sleep(Duration::from_secs(3600)));
    }
    rt.block_on(async {
        source.emit(1).await.unwrap();
        sleep(ms(150)).await; // [1] is being written for an hour
    });
    let second = source.emit(2);
    assert!(!second.is_complete());
    drop(rt);
    let result = paused().block_on(bounded(second));
    assert!(result.is_err(), "{result:?}");
}

// ---------------------------------------------------------------- timed_window_unique

#[tokio::test(start_paused = true)]
async fn timed_window_unique_keeps_one_element_per_key_per_window() {
    let start = Instant::now();
    let source = Source::new();
    let first = record(
        &source.timed_window_unique(ms(100), |x: &(u8, u32)| x.0, Keep::First),
        start,
    );
    let last = record(
        &source.timed_window_unique(ms(100), |x: &(u8, u32)| x.0, Keep::Last),
        start,
    );
    for x in [(1, 0), (2, 1), (1, 2), (3, 3)] {
        source.emit(x).await.unwrap();
    }
    sleep(ms(150)).await;
    for x in [(1, 4), (1, 5)] {
        source.emit(x).await.unwrap();
    }
    sleep(ms(100)).await;
    bounded(source.close()).await.unwrap();
    assert_eq!(
        get(&first),
        vec![(vec![(1, 0), (2, 1), (3, 3)], 100), (vec![(1, 4)], 200)]
    );
    assert_eq!(
        get(&last),
        vec![(vec![(2, 1), (1, 2), (3, 3)], 100), (vec![(1, 5)], 200)]
    );
}

#[tokio::test(start_paused = true)]
async fn timed_window_unique_releases_dropped_tokens_with_the_window() {
    let source = Source::new();
    let windows = source
        .timed_window_unique(ms(100), |x: &(u8, u8)| x.0, Keep::Last)
        .sink_to_vec();
    let log = Arc::new(Mutex::new(Vec::new()));
    source
        .emit_with_ack((1, 0), logged_ack(&log, 0))
        .await
        .unwrap();
    source
        .emit_with_ack((1, 1), logged_ack(&log, 1))
        .await
        .unwrap();
    sleep(ms(50)).await;
    assert!(
        log.lock().unwrap().is_empty(),
        "held until the window is out"
    );
    sleep(ms(100)).await;
    let mut released = log.lock().unwrap().clone();
    released.sort();
    assert_eq!(released, vec![(0, true), (1, true)]);
    assert_eq!(windows.snapshot()[0], vec![(1, 1)]);
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn timed_window_unique_key_panic_unwinds_and_adds_nothing() {
    let source = Source::new();
    let node = source.timed_window_unique(
        ms(100),
        |x: &i32| {
            assert!(*x >= 0, "negative key");
            *x
        },
        Keep::First,
    );
    let windows = node.sink_to_vec();
    let log = Arc::new(Mutex::new(Vec::new()));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        source.emit_with_ack(-1, logged_ack(&log, -1))
    }));
    assert!(panicked.is_err());
    assert_eq!(*log.lock().unwrap(), vec![(-1, false)]);
    assert_eq!(node.metrics().errors, 1);
    source.emit(1).await.unwrap();
    bounded(source.close()).await.unwrap();
    assert_eq!(windows.snapshot(), vec![vec![1]]);
}

#[tokio::test(start_paused = true)]
async fn timed_window_unique_emit_pends_while_a_window_is_pending_downstream() {
    let start = Instant::now();
    let source = Source::new();
    let _log = slow_record(
        &source.timed_window_unique(ms(100), |x: &u32| *x, Keep::First),
        start,
        ms(250),
    );
    source.emit(1).await.unwrap();
    sleep(ms(150)).await;
    bounded(source.emit(1)).await.unwrap();
    assert_eq!(start.elapsed(), ms(350));
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "timed_window_unique: the interval must be greater than zero")]
async fn timed_window_unique_of_zero_panics() {
    let _ = Source::<u8>::new().timed_window_unique(Duration::ZERO, |x| *x, Keep::First);
}

// ---------------------------------------------------------------- processing-time windows

use brooklet::window::{ProcessingWindow, WindowResult};

fn bounds<K: Clone, V: Clone>(log: &Log<WindowResult<K, V>>) -> Vec<(K, i64, i64, V, u128)> {
    get(log)
        .into_iter()
        .map(|(r, at)| (r.key, r.start, r.end, r.value, at))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn processing_tumbling_windows_close_on_the_timer_without_new_events() {
    let start = Instant::now();
    let source = Source::new();
    let w = source
        .processing_window(ProcessingWindow::tumbling(ms(100)))
        .clock_starting_at(0)
        .key_by(|x: &(char, u32)| x.0)
        .sum(|x| x.1);
    let log = record(&w, start);
    sleep(ms(10)).await;
    source.emit(('a', 1)).await.unwrap();
    source.emit(('b', 2)).await.unwrap();
    sleep(ms(89)).await;
    source.emit(('a', 3)).await.unwrap(); // at 99 ms: still [0, 100)
    sleep(ms(1)).await;
    source.emit(('a', 4)).await.unwrap(); // at 100 ms: [100, 200)
    sleep(ms(1000)).await; // no more events: the timer closes [100, 200) at 200 ms
    assert_eq!(
        bounds(&log),
        vec![
            ('a', 0, 100, 4, 100),
            ('b', 0, 100, 2, 100),
            ('a', 100, 200, 4, 200)
        ]
    );
    assert_eq!(w.stats().timer_wakeups, 2);
    bounded(source.close()).await.unwrap();
    assert_eq!(get(&log).len(), 3, "nothing left open to flush");
}

#[tokio::test(start_paused = true)]
async fn processing_hopping_windows_hold_each_event_in_every_window() {
    let start = Instant::now();
    let source = Source::new();
    let w = source
        .processing_window(ProcessingWindow::hopping(ms(100), ms(50)))
        .clock_starting_at(0)
        .collect(|x: &u32| *x);
    let log = record(&w, start);
    source.emit(1).await.unwrap(); // at 0: [-50, 50) and [0, 100)
    sleep(ms(60)).await;
    source.emit(2).await.unwrap(); // at 60: [0, 100) and [50, 150)
    sleep(ms(500)).await;
    assert_eq!(
        bounds(&log),
        vec![
            ((), -50, 50, vec![1], 50),
            ((), 0, 100, vec![1, 2], 100),
            ((), 50, 150, vec![2], 150)
        ]
    );
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn processing_window_timer_sleeps_while_no_window_is_open() {
    let source = Source::new();
    let w = source
        .processing_window(ProcessingWindow::tumbling(ms(10)))
        .clock_starting_at(0)
        .count();
    let results = w.sink_to_vec();
    // An hour with no event: no timer ever fires (with one, the paused clock would stop at
    // each of its deadlines and the count would show it).
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(w.stats().timer_wakeups, 0);
    source.emit(1u8).await.unwrap();
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(w.stats().timer_wakeups, 1, "one window, one wake-up");
    assert_eq!(w.stats().open_windows, 0);
    assert_eq!(results.snapshot().len(), 1);
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn processing_window_close_flushes_open_windows_in_order() {
    let source = Source::new();
    let w = source
        .processing_window(ProcessingWindow::hopping(ms(100), ms(50)))
        .clock_starting_at(0)
        .key_by(|x: &u8| *x)
        .count();
    let results = w.sink_to_vec();
    source.emit(2).await.unwrap();
    source.emit(1).await.unwrap();
    source.emit(2).await.unwrap();
    bounded(source.close()).await.unwrap();
    let got: Vec<_> = results
        .snapshot()
        .into_iter()
        .map(|r| (r.start, r.key, r.value))
        .collect();
    assert_eq!(got, vec![(-50, 2, 2), (-50, 1, 1), (0, 2, 2), (0, 1, 1)]);
    assert!(
        source.emit(3).await.is_err(),
        "a closed window operator refuses events"
    );
}

#[tokio::test(start_paused = true)]
async fn processing_window_emit_pends_while_results_are_pending_downstream() {
    let start = Instant::now();
    let source = Source::new();
    let w = source
        .processing_window(ProcessingWindow::tumbling(ms(100)))
        .clock_starting_at(0)
        .count();
    let log = slow_record(&w, start, ms(250));
    source.emit(1u8).await.unwrap();
    sleep(ms(150)).await; // [0, 100) closed at 100 ms; written until 350 ms
    bounded(source.emit(2)).await.unwrap();
    assert_eq!(start.elapsed(), ms(350));
    bounded(source.close()).await.unwrap();
    let ends: Vec<_> = get(&log).into_iter().map(|(r, _)| r.end).collect();
    assert_eq!(ends, vec![100, 200]);
}

#[tokio::test(start_paused = true)]
async fn processing_window_releases_tokens_once_results_are_accepted() {
    let source = Source::new();
    let w = source
        .processing_window(ProcessingWindow::hopping(ms(100), ms(50)))
        .clock_starting_at(0)
        .count();
    let _results = w.sink_to_vec();
    let log = Arc::new(Mutex::new(Vec::new()));
    source
        .emit_with_ack(1u8, logged_ack(&log, 1))
        .await
        .unwrap();
    sleep(ms(60)).await; // [-50, 50) closed; [0, 100) still holds the event
    assert!(log.lock().unwrap().is_empty());
    sleep(ms(50)).await;
    assert_eq!(*log.lock().unwrap(), vec![(1, true)]);
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn processing_window_add_panic_unwinds_and_leaves_windows_as_they_were() {
    let source = Source::new();
    let w = source
        .processing_window(ProcessingWindow::hopping(ms(100), ms(50)))
        .clock_starting_at(0)
        .sum(|x: &i64| {
            assert!(*x >= 0, "negative");
            *x
        });
    let results = w.sink_to_vec();
    source.emit(5).await.unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        source.emit_with_ack(-1, logged_ack(&log, -1))
    }));
    assert!(panicked.is_err());
    assert_eq!(*log.lock().unwrap(), vec![(-1, false)]);
    assert_eq!(w.metrics().errors, 1);
    assert_eq!(w.stats().events, 1);
    bounded(source.close()).await.unwrap();
    let values: Vec<_> = results.snapshot().into_iter().map(|r| r.value).collect();
    assert_eq!(values, vec![5, 5]);
}

#[tokio::test(start_paused = true)]
async fn a_panic_downstream_of_a_processing_window_is_reported_and_fails_only_its_result() {
    let source = Source::new();
    let w = source
        .processing_window(ProcessingWindow::tumbling(ms(100)))
        .clock_starting_at(0)
        .key_by(|x: &i64| *x)
        .reduce(0i64, |acc, x| acc + x);
    let results = w.map(|r| {
        assert!(r.key != 13, "unlucky");
        r.value
    });
    let values = results.sink_to_vec();
    let log = Arc::new(Mutex::new(Vec::new()));
    source
        .emit_with_ack(13, logged_ack(&log, 13))
        .await
        .unwrap();
    source.emit_with_ack(2, logged_ack(&log, 2)).await.unwrap();
    sleep(ms(150)).await;
    assert_eq!(values.snapshot(), vec![2]);
    let mut released = log.lock().unwrap().clone();
    released.sort();
    assert_eq!(released, vec![(2, true), (13, false)]);
    let next = bounded(source.emit(3)).await;
    assert!(
        next.is_err(),
        "the panic is reported on the next emit: {next:?}"
    );
    bounded(source.close()).await.unwrap();
}

#[test]
fn processing_window_fails_held_tokens_when_its_runtime_shuts_down() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let source = Source::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let _ = source
            .processing_window(ProcessingWindow::tumbling(Duration::from_secs(3600)))
            .count()
            .sink_to_vec();
        source
            .emit_with_ack(1u8, logged_ack(&log, 1))
            .await
            .unwrap();
    });
    drop(rt);
    assert_eq!(*log.lock().unwrap(), vec![(1, false)]);
    let refused = futures::executor::block_on(source.emit(2));
    assert!(refused.is_err());
}

#[test]
#[should_panic(expected = "processing_window: the size must be at least 1 ms")]
fn processing_window_of_zero_panics() {
    let _ = ProcessingWindow::tumbling(Duration::ZERO);
}

#[test]
#[should_panic(
    expected = "processing_window: the hopping step (20 ms) must not exceed the size (10 ms)"
)]
fn processing_window_step_over_size_panics() {
    let _ = ProcessingWindow::hopping(10, 20);
}

#[tokio::test(start_paused = true)]
async fn processing_window_task_ends_and_frees_the_graph_when_every_source_handle_is_dropped() {
    struct Tracked(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let tracked = Tracked(live.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let source = Source::new();
    source
        .processing_window(ProcessingWindow::tumbling(Duration::from_secs(3600)))
        .count()
        .sink(move |r| {
            let _ = &tracked;
            s.lock().unwrap().push(r.value);
        });
    source.emit(1u8).await.unwrap();
    drop(source);
    sleep(ms(10)).await;
    // The open window was flushed when the graph went away, then the task freed it.
    assert_eq!(*seen.lock().unwrap(), vec![1]);
    assert_eq!(live.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn slice_ends_its_branch_even_when_its_last_element_panics_downstream() {
    futures::executor::block_on(async {
        let source = Source::new();
        let sliced = source.slice(0, Some(2), 1);
        let batches = sliced.partition(10).sink_to_vec();
        let _boom = sliced.sink(|x: i32| assert!(x != 1, "boom"));
        source.emit(0).await.unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source.emit(1)));
        assert!(panicked.is_err());
        // Element 1 reached the partition (first edge) before the sink panicked, and the
        // branch ended anyway: the partition flushed.
        assert_eq!(batches.snapshot(), vec![vec![0, 1]]);
    });
}

#[test]
fn slice_ends_its_branch_only_once_every_position_is_through_across_threads() {
    // Thread A takes position 0 and is held inside the first branch; thread B takes position 1
    // (the last) and gets through. The branch must not end before A's element is through.
    let source = Source::new();
    let sliced = source.slice(0, Some(2), 1);
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    sliced.sink(move |x: u32| {
        if x == 0 {
            held_tx.send(()).unwrap();
            go_rx.lock().unwrap().recv().unwrap();
        }
    });
    let batches = sliced.partition(10).sink_to_vec();
    let a = {
        let source = source.clone();
        std::thread::spawn(move || futures::executor::block_on(source.emit(0)))
    };
    held_rx.recv().unwrap();
    futures::executor::block_on(source.emit(1)).unwrap();
    assert!(
        batches.snapshot().is_empty(),
        "position 0 is not through yet"
    );
    go_tx.send(()).unwrap();
    a.join().unwrap().unwrap();
    assert_eq!(batches.snapshot(), vec![vec![1, 0]]);
}

#[tokio::test(start_paused = true)]
async fn try_emit_finds_a_timed_window_or_processing_window_full_while_results_are_pending() {
    let source = Source::new();
    let opts = brooklet::time::TimedWindowOptions::default().skip_empty();
    let _tw = slow_record(
        &source.timed_window_with(ms(100), opts),
        Instant::now(),
        ms(250),
    );
    let other = Source::new();
    let pw = other
        .processing_window(ProcessingWindow::tumbling(ms(100)))
        .count();
    let _pw = slow_record(&pw, Instant::now(), ms(250));
    assert!(source.try_emit(1u32).is_ok());
    assert!(other.try_emit(1u32).is_ok());
    sleep(ms(150)).await; // both emitted at 100 ms; written until 350 ms
    assert!(matches!(
        source.try_emit(2),
        Err(brooklet::TryEmitError::Full(2))
    ));
    assert!(matches!(
        other.try_emit(2),
        Err(brooklet::TryEmitError::Full(2))
    ));
    sleep(ms(250)).await;
    assert!(source.try_emit(2).is_ok());
    assert!(other.try_emit(2).is_ok());
    bounded(source.close()).await.unwrap();
    bounded(other.close()).await.unwrap();
}
