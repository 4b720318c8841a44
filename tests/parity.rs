//! Streamz parity: operators and behaviours a Streamz user expects (`slice`, `partition_unique`,
//! `timed_window_unique`, `accumulate` seeded by the first element, `emit` that waits for
//! `rate_limit`, `timed_window` paced by its previous emission, processing-time windows).
//! Time-based tests run on tokio's paused clock, so timings are exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let source = Source::from_iter((0..4).map(move |x| {
        // How many elements had arrived downstream when this one was pulled.
        p.lock().unwrap().push((x, a.lock().unwrap().len()));
        x
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
    let input = futures::stream::iter(0..3u32).map(move |x| {
        p.lock().unwrap().push((x, a.lock().unwrap().len()));
        x
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
