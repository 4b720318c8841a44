//! Runtime-driven nodes on tokio's paused clock: timings are exact to the millisecond.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brooklet::time::TimedWindowOptions;
use brooklet::{Ack, Error, Source, Stream};
use tokio::time::{Instant, sleep};

/// Polls `f` once from inside an async test: `Ready` with its output, or `Pending`.
async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
}

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

fn get<T: Clone>(log: &Log<T>) -> Vec<(T, u128)> {
    log.lock().unwrap().clone()
}

fn values<T: Clone>(log: &Log<T>) -> Vec<T> {
    get(log).into_iter().map(|(x, _)| x).collect()
}

/// A token and a flag telling whether it was released.
fn token() -> (Ack, Arc<AtomicBool>) {
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    (
        Ack::new(move |_| flag.store(true, Ordering::SeqCst)),
        released,
    )
}

fn released(flags: &[Arc<AtomicBool>]) -> Vec<bool> {
    flags.iter().map(|f| f.load(Ordering::SeqCst)).collect()
}

// ---------------------------------------------------------------- rate_limit

#[tokio::test(start_paused = true)]
async fn rate_limit_spaces_elements() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(&source.rate_limit(ms(100)), start);
    for x in 0..5 {
        source.emit(x).await.unwrap();
    }
    tokio::time::sleep_until(start + ms(1000)).await;
    // Already spaced wider than the limit: passes at once.
    source.emit(5).await.unwrap();
    source.emit(6).await.unwrap();
    source.close().await.unwrap();
    assert_eq!(
        get(&log),
        vec![
            (0, 0),
            (1, 100),
            (2, 200),
            (3, 300),
            (4, 400),
            (5, 1000),
            (6, 1100)
        ]
    );
    assert_eq!(
        start.elapsed(),
        ms(1100),
        "close waits for the last slot only"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_paces_a_producer_awaiting_emit() {
    let start = Instant::now();
    let source = Source::new();
    let _log = record(&source.rate_limit(ms(100)), start);
    let mut resolved = Vec::new();
    for x in 0..5 {
        source.emit(x).await.unwrap();
        resolved.push(start.elapsed().as_millis());
    }
    // Each emit resolves once its own element has passed.
    assert_eq!(resolved, vec![0, 100, 200, 300, 400]);
    source.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn rate_limit_waits_for_a_slow_downstream() {
    let start = Instant::now();
    let source = Source::new();
    let log = slow_record(&source.rate_limit(ms(100)), start, ms(150));
    for x in 0..3 {
        drop(source.emit(x));
    }
    source.close().await.unwrap();
    // Each write takes 150 ms: the spacing is the sink's, not the limit's.
    assert_eq!(get(&log), vec![(0, 150), (1, 300), (2, 450)]);
}

// ---------------------------------------------------------------- delay

#[tokio::test(start_paused = true)]
async fn delay_shifts_each_element_by_d() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(&source.delay(ms(50)), start);
    source.emit('a').await.unwrap();
    source.emit('b').await.unwrap();
    sleep(ms(30)).await;
    source.emit('c').await.unwrap();
    sleep(ms(100)).await;
    source.emit('d').await.unwrap();
    source.close().await.unwrap();
    assert_eq!(get(&log), vec![('a', 50), ('b', 50), ('c', 80), ('d', 180)]);
    assert_eq!(
        start.elapsed(),
        ms(180),
        "close resolves when the last element left"
    );
}

#[tokio::test(start_paused = true)]
async fn delay_does_not_pace_a_burst() {
    // Streamz's delay sleeps per element; here a burst leaves together.
    let start = Instant::now();
    let source = Source::new();
    let log = record(&source.delay(ms(100)), start);
    for x in 0..10 {
        source.emit(x).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(get(&log), (0..10).map(|x| (x, 100)).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn delay_bounded_makes_emit_pend_when_full() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(&source.delay_bounded(ms(100), 2), start);
    let mut resolved = Vec::new();
    for x in 0..6 {
        source.emit(x).await.unwrap();
        resolved.push(start.elapsed().as_millis());
    }
    source.close().await.unwrap();
    // One element waits in the task, two in the queue; the fourth is accepted at once (so it
    // arrived at 0 ms) but its emit pends until the first leaves.
    assert_eq!(resolved, vec![0, 0, 0, 100, 100, 100]);
    assert_eq!(
        get(&log),
        vec![(0, 100), (1, 100), (2, 100), (3, 100), (4, 200), (5, 200)]
    );
}

// ---------------------------------------------------------------- timed_window

#[tokio::test(start_paused = true)]
async fn timed_window_contents_and_tick_boundaries() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(&source.timed_window(ms(100)), start);
    source.emit(1).await.unwrap();
    source.emit(2).await.unwrap();
    sleep(ms(99)).await;
    source.emit(3).await.unwrap(); // at 99 ms: still the first window
    sleep(ms(2)).await;
    source.emit(4).await.unwrap(); // at 101 ms: the second
    sleep(ms(98)).await;
    source.emit(5).await.unwrap(); // at 199 ms
    sleep(ms(151)).await; // 350 ms: the tick at 300 ms was empty
    source.emit(6).await.unwrap();
    source.close().await.unwrap(); // flushes [6] at 350 ms
    assert_eq!(
        get(&log),
        vec![
            (vec![1, 2, 3], 100),
            (vec![4, 5], 200),
            (vec![], 300),
            (vec![6], 350)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn timed_window_can_skip_empty_ticks() {
    let start = Instant::now();
    let source = Source::new();
    let opts = TimedWindowOptions::default().skip_empty();
    let log = record(&source.timed_window_with(ms(10), opts), start);
    sleep(ms(35)).await;
    source.emit('x').await.unwrap();
    sleep(ms(50)).await;
    source.close().await.unwrap();
    assert_eq!(get(&log), vec![(vec!['x'], 40)]);
}

#[tokio::test(start_paused = true)]
async fn timed_window_close_with_nothing_held_emits_nothing() {
    let source = Source::<u8>::new();
    let windows = source.timed_window(ms(100)).sink_to_vec();
    sleep(ms(50)).await;
    source.close().await.unwrap();
    assert!(windows.is_empty());
}

#[tokio::test(start_paused = true)]
async fn timed_window_backpressure_is_the_previous_emission() {
    let start = Instant::now();
    let source = Source::new();
    let opts = TimedWindowOptions::default().bound(2).skip_empty();
    let log = slow_record(&source.timed_window_with(ms(100), opts), start, ms(250));
    source.emit(0).await.unwrap();
    sleep(ms(110)).await; // [0] was emitted at 100 ms; the sink writes it until 350 ms
    let mut resolved = Vec::new();
    for x in 1..=4 {
        source.emit(x).await.unwrap();
        resolved.push(start.elapsed().as_millis());
    }
    // Each emit made while a window is being written waits for that write: [0] until 350 ms;
    // then [1] is taken at once (the missed tick) and written until 600 ms, and so on.
    assert_eq!(resolved, vec![350, 600, 850, 1100]);
    source.close().await.unwrap();
    assert_eq!(
        values(&log),
        vec![vec![0], vec![1], vec![2], vec![3], vec![4]]
    );
}

#[tokio::test(start_paused = true)]
async fn timed_window_producer_filling_a_window_waits_for_the_tick() {
    let start = Instant::now();
    let source = Source::new();
    let opts = TimedWindowOptions::default().bound(2);
    let log = record(&source.timed_window_with(ms(100), opts), start);
    let mut resolved = Vec::new();
    for x in 0..6 {
        source.emit(x).await.unwrap();
        resolved.push(start.elapsed().as_millis());
    }
    assert_eq!(resolved, vec![0, 0, 100, 100, 100, 200]);
    source.close().await.unwrap();
    assert_eq!(get(&log), vec![(vec![0, 1, 2], 100), (vec![3, 4, 5], 200)]);
}

#[tokio::test(start_paused = true)]
async fn timed_window_default_bound_does_not_pend_at_ordinary_rates() {
    let source = Source::new();
    let windows = source.timed_window(ms(100)).sink_to_vec();
    for x in 0..10_000 {
        assert!(source.emit(x).is_complete());
    }
    source.close().await.unwrap();
    assert_eq!(windows.snapshot(), vec![(0..10_000).collect::<Vec<_>>()]);
}

// ---------------------------------------------------------------- partition_timeout

#[tokio::test(start_paused = true)]
async fn partition_timeout_flushes_a_partial_batch_after_its_first_element() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(&source.partition_timeout(3, ms(100)), start);
    source.emit(1).await.unwrap();
    sleep(ms(30)).await;
    source.emit(2).await.unwrap(); // the timeout counts from 1, not from 2
    sleep(ms(90)).await; // 120 ms
    for x in 3..=5 {
        source.emit(x).await.unwrap(); // full at once
    }
    sleep(ms(30)).await; // 150 ms
    source.emit(6).await.unwrap();
    sleep(ms(200)).await; // 350 ms
    source.emit(7).await.unwrap();
    source.close().await.unwrap();
    assert_eq!(
        get(&log),
        vec![
            (vec![1, 2], 100),
            (vec![3, 4, 5], 120),
            (vec![6], 250),
            (vec![7], 350)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn partition_by_timeout_times_each_key_separately() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(
        &source.partition_by_timeout(2, ms(100), |x: &u32| x % 2),
        start,
    );
    source.emit(1).await.unwrap(); // odd: times out at 100
    sleep(ms(50)).await;
    source.emit(2).await.unwrap(); // even: times out at 150
    sleep(ms(60)).await; // 110
    source.emit(3).await.unwrap(); // odd: times out at 210
    source.emit(4).await.unwrap(); // even full at 110
    sleep(ms(200)).await;
    source.close().await.unwrap();
    assert_eq!(
        get(&log),
        vec![(vec![1], 100), (vec![2, 4], 110), (vec![3], 210)]
    );
}

#[tokio::test(start_paused = true)]
async fn partition_timeout_close_flushes_open_batches_oldest_first() {
    let source = Source::new();
    let batches = source
        .partition_by_timeout(5, ms(1000), |x: &u32| x % 3)
        .sink_to_vec();
    for x in [2, 1, 5, 3] {
        source.emit(x).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(batches.snapshot(), vec![vec![2, 5], vec![1], vec![3]]);
}

// ---------------------------------------------------------------- buffer

#[tokio::test(start_paused = true)]
async fn buffer_releases_emit_only_when_there_is_room() {
    let start = Instant::now();
    let source = Source::new();
    let log = slow_record(&source.buffer(2), start, ms(100));
    let mut resolved = Vec::new();
    for x in 0..6 {
        source.emit(x).await.unwrap();
        resolved.push(start.elapsed().as_millis());
    }
    // 0 is written by the sink; 1 and 2 fill the buffer; 3 waits for the buffer to pass 1 on.
    assert_eq!(resolved, vec![0, 0, 0, 100, 200, 300]);
    source.close().await.unwrap();
    assert_eq!(
        get(&log),
        (0..6)
            .map(|x| (x, 100 * (x as u128 + 1)))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn pending_emit_of_a_full_buffer_is_not_complete() {
    let source = Source::new();
    let _log = slow_record(&source.buffer(1), Instant::now(), ms(100));
    assert!(source.emit(0).is_complete());
    let mut second = source.emit(1);
    assert!(poll_once(&mut second).await.is_pending());
    sleep(ms(1)).await;
    // The task took 0 and handed it to the sink: there is room again.
    assert!(poll_once(&mut second).await.is_ready());
}

// ---------------------------------------------------------------- latest

#[tokio::test(start_paused = true)]
async fn latest_keeps_the_newest_while_downstream_is_busy() {
    // Streamz test_latest.
    let start = Instant::now();
    let source = Source::new();
    let log = slow_record(&source.map(|x: i32| x + 1).latest(), start, ms(50));
    drop(source.emit(1));
    sleep(ms(10)).await;
    drop(source.emit(2));
    drop(source.emit(3));
    sleep(ms(200)).await;
    assert_eq!(get(&log), vec![(2, 50), (4, 100)]);
    source.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn latest_never_drops_the_final_value() {
    let source = Source::new();
    let log = slow_record(&source.latest(), Instant::now(), ms(10));
    for x in 0..100 {
        source.emit(x).await.unwrap(); // never pends
        if x % 10 == 0 {
            sleep(ms(5)).await;
        }
    }
    source.close().await.unwrap();
    let seen = values(&log);
    assert_eq!(seen.first(), Some(&0));
    assert_eq!(seen.last(), Some(&99));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

// ---------------------------------------------------------------- sink_async and from_periodic

#[tokio::test(start_paused = true)]
async fn sink_async_processes_one_at_a_time_and_emit_resolves_when_done() {
    let start = Instant::now();
    let source = Source::new();
    let log = slow_record(&source, start, ms(20));
    let mut resolved = Vec::new();
    for x in 0..3 {
        source.emit(x).await.unwrap();
        resolved.push(start.elapsed().as_millis());
    }
    assert_eq!(resolved, vec![20, 40, 60]);
    // Dropped futures: the elements are still processed, in order.
    for x in 3..6 {
        drop(source.emit(x));
    }
    source.close().await.unwrap();
    assert_eq!(
        get(&log),
        vec![(0, 20), (1, 40), (2, 60), (3, 80), (4, 100), (5, 120)]
    );
}

#[tokio::test(start_paused = true)]
async fn from_periodic_polls_every_d_and_ends_on_none() {
    let start = Instant::now();
    let mut n = 0;
    let source = Source::from_periodic(ms(10), move || {
        n += 1;
        (n <= 4).then_some(n)
    });
    let log = record(&source, start);
    source.run().await.unwrap();
    assert_eq!(get(&log), vec![(1, 0), (2, 10), (3, 20), (4, 30)]);
    assert!(source.is_closed());
}

#[tokio::test(start_paused = true)]
async fn from_periodic_is_slowed_by_a_slow_graph() {
    let start = Instant::now();
    let mut n = 0;
    let source = Source::from_periodic(ms(10), move || {
        n += 1;
        (n <= 3).then_some(n)
    });
    let log = slow_record(&source, start, ms(25));
    source.run().await.unwrap();
    // Each emission awaits the 25 ms write; missed ticks are delayed, not bunched.
    assert_eq!(get(&log), vec![(1, 25), (2, 50), (3, 75)]);
}

// ---------------------------------------------------------------- close drains everything

#[tokio::test(start_paused = true)]
async fn close_drains_a_chain_of_time_nodes() {
    let start = Instant::now();
    let source = Source::new();
    let log = record(
        &source
            .rate_limit(ms(10))
            .delay(ms(100))
            .buffer(4)
            .timed_window_with(ms(1000), TimedWindowOptions::default().skip_empty()),
        start,
    );
    for x in 0..5 {
        drop(source.emit(x));
    }
    source.close().await.unwrap();
    // The last element passes the rate limit at 40 ms and the delay at 140 ms; close then
    // flushes the window at once.
    assert_eq!(get(&log), vec![((0..5).collect(), 140)]);
    assert_eq!(start.elapsed(), ms(140));
}

// ---------------------------------------------------------------- failures on tasks

#[tokio::test(start_paused = true)]
async fn a_panic_after_buffer_is_reported_on_the_next_emit() {
    let source = Source::new();
    let seen = source
        .buffer(10)
        .map(|x: u32| {
            assert!(x != 2, "two is not allowed");
            x
        })
        .sink_to_vec();
    for x in 0..4 {
        source.emit(x).await.unwrap();
    }
    sleep(ms(1)).await; // the task runs into the panic
    match source.emit(4).await {
        Err(Error::Panicked { message, .. }) => assert!(message.contains("two is not allowed")),
        other => panic!("expected the panic to be reported, got {other:?}"),
    }
    // Reported once; the elements after it kept flowing.
    source.emit(5).await.unwrap();
    source.close().await.unwrap();
    assert_eq!(seen.snapshot(), vec![0, 1, 3, 4, 5]);
}

#[tokio::test(start_paused = true)]
async fn a_panic_after_buffer_is_reported_by_close() {
    let source = Source::new();
    let _s = source.buffer(10).sink(|x: u32| assert!(x != 9, "nine"));
    for x in 0..10 {
        drop(source.emit(x));
    }
    match source.close().await {
        Err(Error::Panicked { message, .. }) => assert_eq!(message, "nine"),
        other => panic!("expected close to report the panic, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_after_each_time_node_is_reported() {
    type Build = fn(&Source<u32>) -> Stream<u32>;
    let builds: [(&str, Build); 4] = [
        ("rate_limit", |s| s.rate_limit(ms(5))),
        ("delay", |s| s.delay(ms(5))),
        ("latest", |s| s.latest()),
        ("timed_window", |s| s.timed_window(ms(5)).flatten()),
    ];
    for (name, build) in builds {
        let source = Source::new();
        let _s = build(&source).sink(|x: u32| assert!(x != 1, "boom"));
        drop(source.emit(1));
        sleep(ms(20)).await;
        assert!(
            matches!(source.emit(2).await, Err(Error::Panicked { .. })),
            "{name}: the panic was lost"
        );
        source.close().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_sink_async_is_reported() {
    let source = Source::new();
    let sink = source.sink_async(|x: u32| async move {
        sleep(ms(1)).await;
        assert!(x != 0, "zero");
    });
    let _ = source.emit(0).await;
    assert!(matches!(source.emit(1).await, Err(Error::Panicked { .. })));
    source.emit(2).await.unwrap();
    source.close().await.unwrap();
    assert_eq!(sink.metrics().errors, 1);
}

// ---------------------------------------------------------------- tokens

#[tokio::test(start_paused = true)]
async fn buffer_ref_counts() {
    // Streamz test_buffer_ref_counts, with a sink that takes 10 ms per element.
    let source = Source::new();
    let _log = slow_record(&source.buffer(5), Instant::now(), ms(10));
    let mut flags = Vec::new();
    for x in 0..5 {
        let (ack, flag) = token();
        flags.push(flag);
        drop(source.emit_with_ack(x, ack));
    }
    assert_eq!(released(&flags), [false; 5]);
    // Each token is released once its element is written.
    sleep(ms(15)).await;
    assert_eq!(released(&flags), [true, false, false, false, false]);
    sleep(ms(20)).await;
    assert_eq!(released(&flags), [true, true, true, false, false]);
    source.close().await.unwrap();
    assert_eq!(released(&flags), [true; 5]);
}

#[tokio::test(start_paused = true)]
async fn delay_ref_counts() {
    let source = Source::new();
    let _s = source.delay(ms(100)).sink(|_| ());
    let mut flags = Vec::new();
    for x in 0..5 {
        let (ack, flag) = token();
        flags.push(flag);
        source.emit_with_ack(x, ack).await.unwrap();
    }
    sleep(ms(99)).await;
    assert_eq!(released(&flags), [false; 5]);
    sleep(ms(2)).await;
    assert_eq!(released(&flags), [true; 5]);
}

#[tokio::test(start_paused = true)]
async fn timed_window_ref_counts() {
    let source = Source::new();
    let _log = slow_record(&source.timed_window(ms(100)), Instant::now(), ms(50));
    let mut flags = Vec::new();
    for x in 0..3 {
        let (ack, flag) = token();
        flags.push(flag);
        source.emit_with_ack(x, ack).await.unwrap();
    }
    sleep(ms(120)).await; // the window left at 100 ms; the sink writes it until 150 ms
    assert_eq!(released(&flags), [false; 3]);
    sleep(ms(40)).await;
    assert_eq!(released(&flags), [true; 3]);
    source.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn latest_ref_counts() {
    // Streamz test_latest_ref_counts: a replaced element's token is released at once.
    let source = Source::new();
    let _log = slow_record(&source.latest(), Instant::now(), ms(10));
    let (a, a_flag) = token();
    drop(source.emit_with_ack(1, a));
    assert_eq!(released(std::slice::from_ref(&a_flag)), [false]);
    let (b, b_flag) = token();
    drop(source.emit_with_ack(2, b));
    assert_eq!(released(&[a_flag.clone(), b_flag.clone()]), [true, false]);
    sleep(ms(11)).await;
    assert_eq!(released(&[b_flag]), [true]);
    source.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn rate_limit_and_partition_timeout_ref_counts() {
    let source = Source::new();
    let _a = source.rate_limit(ms(100)).sink(|_| ());
    let _b = source.partition_timeout(10, ms(300)).sink(|_| ());
    let mut flags = Vec::new();
    for x in 0..3 {
        let (ack, flag) = token();
        flags.push(flag);
        drop(source.emit_with_ack(x, ack));
    }
    sleep(ms(250)).await; // rate_limit done with all three; the batch is still open
    assert_eq!(released(&flags), [false; 3]);
    sleep(ms(100)).await;
    assert_eq!(released(&flags), [true; 3]);
    source.close().await.unwrap();
}

// ---------------------------------------------------------------- huge durations

/// A duration past what `Instant` can represent from now: `Instant::now() + HUGE` overflows.
const HUGE: Duration = Duration::MAX;

#[tokio::test(start_paused = true)]
async fn rate_limit_with_a_huge_interval_holds_the_next_element_without_failing() {
    let source = Source::new();
    let seen = source.rate_limit(HUGE).sink_to_vec();
    source.emit(1).await.unwrap();
    let second = source.emit(2); // held for a slot that never comes
    sleep(Duration::from_secs(86_400)).await;
    assert!(!second.is_complete());
    drop(second);
    assert_eq!(seen.snapshot(), vec![1]);
    // The node still holds 2 and waits for its slot: close keeps waiting, it does not fail.
    let closing = tokio::time::timeout(Duration::from_secs(86_400), source.close()).await;
    assert!(closing.is_err(), "close resolved with {closing:?}");
    assert_eq!(seen.snapshot(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn delay_with_a_huge_delay_holds_elements_without_failing() {
    let source = Source::new();
    let seen = source.delay(HUGE).sink_to_vec();
    source.emit(1).await.unwrap();
    sleep(Duration::from_secs(86_400)).await;
    source.emit(2).await.unwrap();
    assert!(seen.is_empty());
}

#[tokio::test(start_paused = true)]
async fn timed_window_with_a_huge_interval_flushes_on_close_only() {
    let source = Source::new();
    let windows = source.timed_window(HUGE).sink_to_vec();
    source.emit(1).await.unwrap();
    sleep(Duration::from_secs(86_400)).await;
    source.emit(2).await.unwrap();
    assert!(windows.is_empty());
    source.close().await.unwrap();
    assert_eq!(windows.snapshot(), vec![vec![1, 2]]);
}

#[tokio::test(start_paused = true)]
async fn partition_timeout_with_a_huge_timeout_batches_by_count() {
    // `Duration::MAX` as "no timeout".
    let source = Source::new();
    let batches = source.partition_timeout(2, HUGE).sink_to_vec();
    for x in 1..=3 {
        source.emit(x).await.unwrap();
    }
    sleep(Duration::from_secs(86_400)).await;
    source.close().await.unwrap();
    assert_eq!(batches.snapshot(), vec![vec![1, 2], vec![3]]);
}

#[tokio::test(start_paused = true)]
async fn from_periodic_with_a_huge_interval_polls_once_then_waits() {
    let mut n = 0;
    let source = Source::from_periodic(HUGE, move || {
        n += 1;
        Some(n)
    });
    let seen = source.sink_to_vec();
    let run = tokio::spawn(source.run());
    sleep(Duration::from_secs(86_400)).await;
    assert_eq!(seen.snapshot(), vec![1]);
    assert!(!run.is_finished(), "run ended early: {:?}", run.await);
    run.abort();
}

// ---------------------------------------------------------------- lifetimes

/// Counts how many values are alive.
struct Tracked(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn time_node_tasks_end_when_every_source_handle_is_dropped() {
    type Build = fn(&Source<u32>) -> Stream<u32>;
    let all = vec![0, 1, 2];
    let builds: [(&str, Build, Vec<u32>); 7] = [
        ("buffer", |s| s.buffer(4), all.clone()),
        ("rate_limit", |s| s.rate_limit(ms(10)), all.clone()),
        ("delay", |s| s.delay(ms(10)), all.clone()),
        ("latest", |s| s.latest(), vec![2]), // the task had not started: 2 replaced 0 and 1
        (
            "timed_window",
            |s| s.timed_window(ms(10)).flatten(),
            all.clone(),
        ),
        (
            "partition_timeout",
            |s| s.partition_timeout(10, ms(10)).flatten(),
            all.clone(),
        ),
        (
            "timed_window_unique",
            |s| {
                s.timed_window_unique(ms(10), |x| *x, brooklet::ops::Keep::First)
                    .flatten()
            },
            all.clone(),
        ),
    ];
    for (name, build, expected) in builds {
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(2));
        let (a, b) = (Tracked(live.clone()), Tracked(live.clone()));
        let source = Source::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let node = build(&source);
        node.sink(move |x| {
            let _ = &a;
            s.lock().unwrap().push(x);
        });
        node.sink_async(move |_| {
            let _ = &b;
            async {}
        });
        drop(node);
        for x in 0..3 {
            drop(source.emit(x));
        }
        drop(source);
        sleep(ms(100)).await;
        // What was accepted still went through, then every task ended and freed the graph.
        assert_eq!(*seen.lock().unwrap(), expected, "{name}");
        assert_eq!(live.load(Ordering::SeqCst), 0, "{name}: the graph leaked");
    }
}

#[tokio::test(start_paused = true)]
async fn sink_async_emit_resolves_after_its_element_even_when_closing() {
    let start = Instant::now();
    let source = Source::new();
    let log = slow_record(&source, start, ms(100));
    let pending = source.emit(1);
    tokio::task::yield_now().await; // the sink's task takes 1 and starts writing it
    let closing = source.close();
    pending.await.unwrap();
    assert_eq!(
        get(&log),
        vec![(1, 100)],
        "emit resolved before its element was written"
    );
    closing.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn run_stops_as_soon_as_the_source_is_closed() {
    // An hourly periodic source: closing it must end `run` now, not at the next tick.
    let source = Source::from_periodic(Duration::from_secs(3600), || Some(1u8));
    let seen = source.sink_to_vec();
    let start = tokio::time::Instant::now();
    let runner = tokio::spawn(source.run());
    tokio::time::sleep(Duration::from_millis(10)).await;
    source.close().await.unwrap();
    runner.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(10));
    assert_eq!(seen.snapshot(), vec![1]);
}
