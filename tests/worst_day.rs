//! Fault paths on a bad day: runtimes that shut down with work in flight, feedback loops,
//! re-entrant calls from inside user functions, panics downstream of timer-driven flushes and
//! of error side outputs, topology changes from other threads, and time-driven nodes built
//! outside a runtime.
//!
//! The promise under test: whatever `emit` returned `Ok` for is delivered; whatever is lost
//! gets an `Err` promptly and a failed outcome on its token, naming the node that lost it; every
//! token gets exactly one outcome; no call hangs; no panic is swallowed (it unwinds into the
//! caller on a synchronous path, and comes out of a later `emit` or of `close()` as
//! `Error::Panicked` naming the node on an asynchronous one).
//!
//! Every wait is bounded: futures by a timeout, threads by `recv_timeout`. Time-driven nodes
//! run on tokio's paused clock; worker threads are held and released through channels.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use brooklet::ops::Keep;
use brooklet::window::{BatchOptions, FixedTimeWindow, ProcessingWindow, Window};
use brooklet::{Ack, Error, Outcome, Source, Stream};
use tokio::time::sleep;

mod support;
use support::{LIMIT, bounded, failed_in};

/// Outcomes reported so far, by element, and the elements given a token.
#[derive(Clone, Default)]
struct Outcomes(Arc<OutcomesInner>);

#[derive(Default)]
struct OutcomesInner {
    released: Mutex<Vec<(i64, Outcome)>>,
    changed: Condvar,
    issued: Mutex<Vec<i64>>,
}

impl Outcomes {
    fn ack(&self, x: i64) -> Ack {
        self.0.issued.lock().unwrap().push(x);
        let all = self.0.clone();
        Ack::new(move |o| {
            all.released.lock().unwrap().push((x, o));
            all.changed.notify_all();
        })
    }

    fn of(&self, x: i64) -> Option<Outcome> {
        let all = self.0.released.lock().unwrap();
        let mut found = all.iter().filter(|(y, _)| *y == x);
        let first = found.next().map(|(_, o)| o.clone());
        assert!(found.next().is_none(), "token of {x} released twice");
        first
    }

    fn count(&self) -> usize {
        self.0.released.lock().unwrap().len()
    }

    fn issued(&self) -> Vec<i64> {
        self.0.issued.lock().unwrap().clone()
    }

    /// Blocks until `n` tokens have been released; fails the test after `LIMIT`.
    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + LIMIT;
        let mut all = self.0.released.lock().unwrap();
        while all.len() < n {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("only {} of {n} tokens released", all.len()));
            all = self.0.changed.wait_timeout(all, left).unwrap().0;
        }
    }
}

/// Whether `r` is the report of a panic in `node` with `message`.
fn panicked_in(r: &Result<(), Error>, node: &str, message: &str) -> bool {
    match r {
        Err(e) => {
            matches!(e.first(), Error::Panicked { node: n, message: m } if n == node && m == message)
        }
        Ok(()) => false,
    }
}

/// The message of a caught panic.
fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        panic!("a panic without a message")
    }
}

/// What reached the end of a graph, in order, kept outside the graph.
type Seen = Arc<Mutex<Vec<i64>>>;

fn record(seen: &Seen) -> impl Fn(i64) + Send + Sync + 'static {
    let seen = seen.clone();
    move |x| seen.lock().unwrap().push(x)
}

fn seen(s: &Seen) -> Vec<i64> {
    s.lock().unwrap().clone()
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Drops `rt` on another thread, failing the test if that hangs.
fn drop_bounded(rt: tokio::runtime::Runtime) {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(LIMIT)
        .expect("dropping the runtime hung");
}

/// After the runtime of `node` has shut down, a new element and `close()` fail at once,
/// naming the node, and the new element's token fails.
fn later_calls_fail(node: &str, source: &Source<i64>, outcomes: &Outcomes) {
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    other.block_on(async {
        match bounded(source.emit_with_ack(1_000, outcomes.ack(1_000))).await {
            Err(Error::Failed { node: n, .. }) => assert_eq!(n, node),
            other => panic!("{node}: emit after the shutdown returned {other:?}"),
        }
        match bounded(source.close()).await {
            Err(e) => assert!(
                matches!(e.first(), Error::Failed { node: n, .. } if n == node),
                "{node}: close reported {e:?}"
            ),
            Ok(()) => panic!("{node}: close after the shutdown returned Ok"),
        }
    });
    assert!(
        failed_in(&outcomes.of(1_000), node),
        "{node}: the late element ended {:?}",
        outcomes.of(1_000)
    );
}

// ---------------------------------------------------------------------------------------
// 1. The runtime shuts down with elements in flight.
// ---------------------------------------------------------------------------------------

/// Builds a graph on a current-thread runtime with a paused clock, runs `script` (which
/// emits with tokens and lets time pass), then drops the runtime while `node` still holds
/// elements. Before the drop, exactly `delivered` has arrived and exactly the tokens in `done`
/// are released (as done); the others are held. After it, nothing more arrives, every other
/// token has failed naming `node`, and later calls fail.
fn shutdown_in_flight(
    node: &str,
    build: impl FnOnce(&Source<i64>, &Seen),
    script: impl AsyncFnOnce(&Source<i64>, &Outcomes),
    delivered: &[i64],
    done: &[i64],
) {
    shutdown_in_flight_across(node, build, script, delivered, done, &[]);
}

/// [`shutdown_in_flight`], for a graph of several runtime nodes: the elements in `elsewhere`
/// are held, and fail, in the node named beside them.
fn shutdown_in_flight_across(
    node: &str,
    build: impl FnOnce(&Source<i64>, &Seen),
    script: impl AsyncFnOnce(&Source<i64>, &Outcomes),
    delivered: &[i64],
    done: &[i64],
    elsewhere: &[(i64, &str)],
) {
    let rt = paused_runtime();
    let source = Source::new();
    let arrived = Seen::default();
    let outcomes = Outcomes::default();
    rt.block_on(async {
        build(&source, &arrived);
        script(&source, &outcomes).await;
    });
    assert_eq!(
        seen(&arrived),
        delivered,
        "{node}: delivered before the shutdown"
    );
    let issued = outcomes.issued();
    assert!(
        issued.len() > done.len(),
        "{node}: nothing is in flight when the runtime shuts down"
    );
    for &x in &issued {
        if done.contains(&x) {
            assert_eq!(outcomes.of(x), Some(Outcome::Done), "{node}: element {x}");
        } else {
            assert_eq!(outcomes.of(x), None, "{node}: element {x} should be held");
        }
    }
    drop_bounded(rt);
    assert_eq!(
        seen(&arrived),
        delivered,
        "{node}: delivered after the shutdown"
    );
    for &x in &issued {
        if done.contains(&x) {
            assert_eq!(outcomes.of(x), Some(Outcome::Done), "{node}: element {x}");
        } else {
            let holder = elsewhere.iter().find(|e| e.0 == x).map_or(node, |e| e.1);
            assert!(
                failed_in(&outcomes.of(x), holder),
                "{node}: element {x} ended {:?}",
                outcomes.of(x)
            );
        }
    }
    assert_eq!(outcomes.count(), issued.len(), "{node}: a token was lost");
    later_calls_fail(node, &source, &outcomes);
}

/// Completes at once for 1, never for anything larger: work that is in progress for ever.
async fn stuck_past_one(x: i64) {
    if x > 1 {
        std::future::pending::<()>().await;
    }
}

fn emit(source: &Source<i64>, outcomes: &Outcomes, x: i64) {
    // The future is dropped: the element is accepted all the same.
    drop(source.emit_with_ack(x, outcomes.ack(x)));
}

#[test]
fn map_async_futures_running_when_the_runtime_shuts_down_fail() {
    shutdown_in_flight(
        "map_async",
        |s, arrived| {
            s.map_async(2, |x: i64| async move {
                stuck_past_one(x).await;
                x
            })
            .sink(record(arrived));
        },
        async |s, o| {
            // 1 completes; 2 and 3 run (and never complete); 4 waits for a slot.
            for x in 1..=4 {
                emit(s, o, x);
            }
            sleep(Duration::from_millis(1)).await;
        },
        &[1],
        &[1],
    );
}

#[test]
fn sink_async_writes_in_progress_when_the_runtime_shuts_down_fail() {
    shutdown_in_flight(
        "sink_async",
        |s, arrived| {
            let arrived = arrived.clone();
            s.sink_async(move |x: i64| {
                let arrived = arrived.clone();
                async move {
                    stuck_past_one(x).await;
                    arrived.lock().unwrap().push(x);
                }
            });
        },
        async |s, o| {
            // 1 is written; 2 is being written (forever); 3 waits.
            for x in 1..=3 {
                emit(s, o, x);
            }
            sleep(Duration::from_millis(1)).await;
        },
        &[1],
        &[1],
    );
}

#[test]
fn delay_holding_elements_when_the_runtime_shuts_down_fails_them() {
    shutdown_in_flight(
        "delay",
        |s, arrived| {
            s.delay(Duration::from_millis(10)).sink(record(arrived));
        },
        async |s, o| {
            emit(s, o, 1);
            sleep(Duration::from_millis(15)).await; // 1 left at 10 ms
            emit(s, o, 2);
            sleep(Duration::from_millis(5)).await; // the task holds 2 until 25 ms
            emit(s, o, 3); // queued behind it
        },
        &[1],
        &[1],
    );
}

#[test]
fn latest_holding_an_element_when_the_runtime_shuts_down_fails_it() {
    shutdown_in_flight(
        "latest",
        |s, arrived| {
            s.latest().sink(record(arrived));
        },
        async |s, o| {
            emit(s, o, 1);
            sleep(Duration::from_millis(1)).await; // 1 passed
            emit(s, o, 2);
            emit(s, o, 3); // replaces 2, which is done (dropped on purpose)
        },
        &[1],
        &[1, 2],
    );
}

#[test]
fn partition_by_timeout_open_and_completed_batches_fail_when_the_runtime_shuts_down() {
    shutdown_in_flight(
        "partition_timeout",
        |s, arrived| {
            s.partition_by_timeout(2, Duration::from_millis(10), |x: &i64| x % 2)
                .flatten()
                .sink(record(arrived));
        },
        async |s, o| {
            emit(s, o, 1);
            emit(s, o, 3); // [1, 3] is full
            sleep(Duration::from_millis(1)).await; // and was sent
            emit(s, o, 2);
            emit(s, o, 5); // two open batches, due at 11 ms
            sleep(Duration::from_millis(1)).await;
            emit(s, o, 4); // [2, 4] completed, not yet taken by the task
        },
        &[1, 3],
        &[1, 3],
    );
}

#[test]
fn timed_window_unique_window_in_progress_fails_when_the_runtime_shuts_down() {
    shutdown_in_flight(
        "timed_window_unique",
        |s, arrived| {
            s.timed_window_unique(Duration::from_millis(10), |x: &i64| x / 10, Keep::First)
                .flatten()
                .sink(record(arrived));
        },
        async |s, o| {
            for x in [11, 12, 21] {
                emit(s, o, x); // 12 is a duplicate of 11: released with the window
            }
            sleep(Duration::from_millis(15)).await; // the tick at 10 ms sent [11, 21]
            for x in [31, 32, 41] {
                emit(s, o, x);
            }
            sleep(Duration::from_millis(1)).await;
        },
        &[11, 21],
        &[11, 12, 21],
    );
}

#[test]
fn timed_batch_in_hand_fails_when_the_runtime_shuts_down() {
    shutdown_in_flight(
        "batch",
        |s, arrived| {
            s.batch_with(
                FixedTimeWindow::new(Duration::from_millis(10)).skip_empty(),
                BatchOptions::new().clock_starting_at(0),
            )
            .flatten()
            .sink(record(arrived));
        },
        async |s, o| {
            emit(s, o, 1);
            emit(s, o, 2);
            sleep(Duration::from_millis(15)).await; // the slice [0, 10) went out
            emit(s, o, 3);
            sleep(Duration::from_millis(1)).await; // the task buffered 3
            emit(s, o, 4); // still in its input queue
        },
        &[1, 2],
        &[1, 2],
    );
}

#[test]
fn rate_limit_holding_an_element_when_the_runtime_shuts_down_fails_it() {
    shutdown_in_flight(
        "rate_limit",
        |s, arrived| {
            s.rate_limit(Duration::from_millis(10))
                .sink(record(arrived));
        },
        async |s, o| {
            for x in 1..=3 {
                emit(s, o, x); // 1 passes; 2 waits for its slot at 10 ms; 3 is queued
            }
            sleep(Duration::from_millis(1)).await;
        },
        &[1],
        &[1],
    );
}

#[test]
fn buffer_pushing_into_a_slow_consumer_when_the_runtime_shuts_down_fails_what_it_holds() {
    shutdown_in_flight_across(
        "buffer",
        |s, arrived| {
            s.buffer(4)
                .delay_bounded(Duration::from_millis(10), 1)
                .sink(record(arrived));
        },
        async |s, o| {
            // 1 is in the delay's hands and 2 in its queue; 3 went over the delay's bound (taken,
            // with the buffer's push waiting for room), and the buffer's task still holds 4.
            for x in 1..=4 {
                emit(s, o, x);
            }
            sleep(Duration::from_millis(1)).await;
        },
        &[],
        &[],
        &[(1, "delay"), (2, "delay"), (3, "delay")],
    );
}

#[test]
fn processing_window_open_when_the_runtime_shuts_down_fails_what_it_holds() {
    shutdown_in_flight(
        "processing_window",
        |s, arrived| {
            s.processing_window(ProcessingWindow::tumbling(Duration::from_millis(10)))
                .clock_starting_at(0)
                .count()
                .map(|r| r.value as i64)
                .sink(record(arrived));
        },
        async |s, o| {
            emit(s, o, 1);
            sleep(Duration::from_millis(15)).await; // [0, 10) closed with a count of 1
            emit(s, o, 2);
            emit(s, o, 3); // [10, 20) is open
            sleep(Duration::from_millis(1)).await;
        },
        &[1],
        &[1],
    );
}

/// A window whose idle timer's runtime shut down is lost with it, as any node whose task died:
/// what it held fails, later emits are refused with the node's failure and their tokens fail
/// with it (nothing is delivered that an `Err` called lost), and `close()` reports it.
#[test]
fn a_window_whose_idle_timer_died_fails_what_it_held_and_refuses_later_elements() {
    let rt = paused_runtime();
    let source = Source::new();
    let outcomes = Outcomes::default();
    let counts = rt.block_on(async {
        let counts = source
            .window(Window::tumbling(1_000))
            .timestamp(|x: &i64| *x)
            .idle_timeout(Duration::from_secs(1))
            .count()
            .map(|r| (r.start, r.value))
            .sink_to_vec();
        bounded(source.emit_with_ack(1, outcomes.ack(1)))
            .await
            .unwrap();
        counts
    });
    assert_eq!(outcomes.count(), 0, "the open window holds element 1");
    drop_bounded(rt);
    assert!(
        failed_in(&outcomes.of(1), "tumbling_window"),
        "{:?}",
        outcomes.of(1)
    );
    let other = paused_runtime();
    other.block_on(async {
        for x in [2, 5_000] {
            let result = bounded(source.emit_with_ack(x, outcomes.ack(x))).await;
            assert!(
                matches!(&result, Err(Error::Failed { node, .. }) if node == "tumbling_window"),
                "emit of {x} returned {result:?}"
            );
            assert!(
                failed_in(&outcomes.of(x), "tumbling_window"),
                "{:?}",
                outcomes.of(x)
            );
        }
        let closed = bounded(source.close()).await;
        assert!(closed.is_err(), "close returned {closed:?}");
    });
    assert_eq!(
        counts.snapshot(),
        Vec::<(i64, u64)>::new(),
        "nothing delivered"
    );
}

#[test]
fn par_map_work_running_on_workers_when_the_runtime_shuts_down_fails() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel::<i64>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
    let arrived = Seen::default();
    let outcomes = Outcomes::default();
    let source = Source::new();
    {
        let _guard = rt.enter();
        source
            .par_map(2, move |x: i64| {
                if x > 0 {
                    started_tx.lock().unwrap().send(x).unwrap();
                    // Held until the sender is dropped.
                    let _ = release_rx.lock().unwrap().recv();
                }
                x
            })
            .sink(record(&arrived));
    }
    emit(&source, &outcomes, 0);
    outcomes.wait_for(1);
    assert_eq!(outcomes.of(0), Some(Outcome::Done));
    assert_eq!(seen(&arrived), vec![0]);
    for x in 1..=4 {
        emit(&source, &outcomes, x);
    }
    // Both workers are inside the function (with 1 and 2); 3 and 4 are queued.
    let mut running = [
        started_rx
            .recv_timeout(LIMIT)
            .expect("a worker did not start"),
        started_rx
            .recv_timeout(LIMIT)
            .expect("a worker did not start"),
    ];
    running.sort();
    assert_eq!(running, [1, 2]);
    assert_eq!(outcomes.count(), 1, "tokens released while the work runs");

    drop_bounded(rt);
    drop(release_tx);
    outcomes.wait_for(5);
    assert_eq!(
        seen(&arrived),
        vec![0],
        "delivered after the runtime shut down"
    );
    for x in 1..=4 {
        assert!(
            failed_in(&outcomes.of(x), "par_map"),
            "element {x} ended {:?}",
            outcomes.of(x)
        );
    }
    assert_eq!(outcomes.count(), 5);
    later_calls_fail("par_map", &source, &outcomes);
}

// ---------------------------------------------------------------------------------------
// 2. Feedback loops.
// ---------------------------------------------------------------------------------------

/// An element that counts its live copies, so a test can tell the graph freed them.
struct Counted {
    v: i64,
    live: Arc<AtomicUsize>,
}

impl Counted {
    fn new(v: i64, live: &Arc<AtomicUsize>) -> Counted {
        live.fetch_add(1, Ordering::SeqCst);
        Counted {
            v,
            live: live.clone(),
        }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Counted {
        Counted::new(self.v, &self.live)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `source → node → +1 → (seen, and back into source while < 10)`. The `+1` node holds a
/// counted value of its own, so the count also shows whether the nodes were freed.
fn counted_loop(
    source: &Source<Counted>,
    node: impl FnOnce(&Stream<Counted>) -> Stream<Counted>,
    live: &Arc<AtomicUsize>,
    arrived: &Seen,
) {
    let held_by_the_graph = Counted::new(-1, live);
    let stepped = node(source).map(move |c: Counted| {
        let _ = &held_by_the_graph;
        Counted::new(c.v + 1, &c.live)
    });
    let arrived = arrived.clone();
    stepped.sink(move |c| arrived.lock().unwrap().push(c.v));
    stepped.filter(|c| c.v < 10).connect(source);
}

/// Waits on the paused clock until every counted value is gone.
async fn all_freed(live: &Arc<AtomicUsize>) {
    for _ in 0..1_000 {
        if live.load(Ordering::SeqCst) == 0 {
            return;
        }
        sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "the loop leaked: {} values alive",
        live.load(Ordering::SeqCst)
    );
}

async fn loop_freed_after_close(
    name: &str,
    node: impl FnOnce(&Stream<Counted>) -> Stream<Counted>,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let arrived = Seen::default();
    let outcomes = Outcomes::default();
    let source = Source::new();
    counted_loop(&source, node, &live, &arrived);
    bounded(source.emit_with_ack(Counted::new(0, &live), outcomes.ack(0)))
        .await
        .unwrap();
    sleep(Duration::from_millis(100)).await; // ten turns, at most one per ms
    assert_eq!(seen(&arrived), (1..=10).collect::<Vec<_>>(), "{name}");
    assert_eq!(
        outcomes.of(0),
        Some(Outcome::Done),
        "{name}: the loop ran out"
    );
    bounded(source.close()).await.unwrap();
    drop(source);
    all_freed(&live).await;
}

/// Runs the loop for `run_for`, by which `before` has arrived, then drops every handle:
/// the nodes drain what they hold (so `after` arrives in all), what goes back into the source
/// that is gone is dropped, the seed's token fails, and the whole graph is freed.
async fn loop_freed_when_dropped_mid_loop(
    name: &str,
    node: impl FnOnce(&Stream<Counted>) -> Stream<Counted>,
    run_for: Duration,
    before: &[i64],
    after: &[i64],
) {
    let live = Arc::new(AtomicUsize::new(0));
    let arrived = Seen::default();
    let outcomes = Outcomes::default();
    let source = Source::new();
    counted_loop(&source, node, &live, &arrived);
    drop(source.emit_with_ack(Counted::new(0, &live), outcomes.ack(0)));
    if !run_for.is_zero() {
        sleep(run_for).await;
    }
    assert_eq!(seen(&arrived), before, "{name}");
    assert_eq!(outcomes.of(0), None, "{name}: the loop is still running");
    drop(source);
    all_freed(&live).await;
    assert_eq!(seen(&arrived), after, "{name}");
    // The loop was cut short: the seed's work was not all done.
    assert_eq!(
        outcomes.of(0),
        Some(Outcome::Failed(Error::Closed)),
        "{name}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_loop_through_rate_limit_is_freed_after_close() {
    loop_freed_after_close("rate_limit", |s| s.rate_limit(Duration::from_millis(1))).await;
}

#[tokio::test(start_paused = true)]
async fn a_loop_through_buffer_is_freed_after_close() {
    loop_freed_after_close("buffer", |s| s.buffer(2)).await;
}

#[tokio::test(start_paused = true)]
async fn a_loop_through_rate_limit_closed_mid_loop_fails_the_seed_and_is_freed() {
    let live = Arc::new(AtomicUsize::new(0));
    let arrived = Seen::default();
    let outcomes = Outcomes::default();
    let source = Source::new();
    counted_loop(
        &source,
        |s| s.rate_limit(Duration::from_millis(1)),
        &live,
        &arrived,
    );
    drop(source.emit_with_ack(Counted::new(0, &live), outcomes.ack(0)));
    sleep(Duration::from_micros(3_500)).await; // 0 to 3 passed (seen as 1 to 4), 4 waits for its slot
    assert_eq!(seen(&arrived), vec![1, 2, 3, 4]);
    // The rate limit lets 4 pass; 5 goes back into the closed source and is dropped there.
    bounded(source.close()).await.unwrap();
    assert_eq!(seen(&arrived), vec![1, 2, 3, 4, 5]);
    assert_eq!(outcomes.of(0), Some(Outcome::Failed(Error::Closed)));
    drop(source);
    all_freed(&live).await;
}

#[tokio::test(start_paused = true)]
async fn a_loop_through_rate_limit_is_freed_when_its_handles_are_dropped_mid_loop() {
    loop_freed_when_dropped_mid_loop(
        "rate_limit",
        |s| s.rate_limit(Duration::from_millis(1)),
        Duration::from_micros(3_500), // 0 to 3 passed (seen as 1 to 4), 4 waits for its slot
        &[1, 2, 3, 4],
        &[1, 2, 3, 4, 5],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_loop_through_buffer_is_freed_when_its_handles_are_dropped_mid_loop() {
    // Dropped before the buffer's task took the seed: it drains it, and 1 goes nowhere.
    loop_freed_when_dropped_mid_loop("buffer", |s| s.buffer(2), Duration::ZERO, &[], &[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_through_par_map_that_doubles_past_its_bound_does_not_wedge() {
    let source = Source::new();
    let stepped = source.par_map(2, |x: i64| x + 1);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    stepped.sink(move |x| tx.lock().unwrap().send(x).unwrap());
    // Each result under 7 goes back twice: 64 elements at the last turn, past the node's
    // bound of 32 in flight; a feedback edge never waits, so nothing may wedge.
    stepped
        .flat_map(|x| if x < 7 { vec![x, x] } else { vec![] })
        .connect(&source);
    let outcomes = Outcomes::default();
    bounded(source.emit_with_ack(0, outcomes.ack(0)))
        .await
        .unwrap();
    let mut counts = [0usize; 8];
    for _ in 0..127 {
        let x = rx.recv_timeout(LIMIT).expect("the loop wedged");
        counts[x as usize] += 1;
    }
    assert_eq!(counts, [0, 1, 2, 4, 8, 16, 32, 64]);
    outcomes.wait_for(1);
    assert_eq!(outcomes.of(0), Some(Outcome::Done));
    bounded(source.close()).await.unwrap();
    assert!(rx.try_recv().is_err(), "more results than the loop makes");
    assert_eq!(source.metrics().received, 127);
}

#[tokio::test(start_paused = true)]
async fn a_loop_through_zip_and_a_buffer_does_not_wedge() {
    let (a, b) = (Source::new(), Source::new());
    let sums = a.zip_bounded(&b, 1).map(|(x, y): (i64, i64)| x + y);
    let out = sums.sink_to_vec();
    // The sum goes back into `a` through a buffer: `b` can run ahead of `a` by its bound, and
    // its `emit` then waits for the loop, which must go on.
    sums.buffer(4).connect(&a);
    let outcomes = Outcomes::default();
    bounded(a.emit_with_ack(0, outcomes.ack(0))).await.unwrap();
    for y in 1..=6 {
        bounded(b.emit_with_ack(y, outcomes.ack(y))).await.unwrap();
    }
    sleep(Duration::from_millis(1)).await;
    assert_eq!(out.snapshot(), vec![1, 3, 6, 10, 15, 21]);
    bounded(b.close()).await.unwrap();
    bounded(a.close()).await.unwrap();
    for y in 1..=6 {
        assert_eq!(outcomes.of(y), Some(Outcome::Done), "element {y}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_loop_through_a_timed_window_feeds_back_during_its_own_emission() {
    let start = tokio::time::Instant::now();
    let source = Source::new();
    let windows = source.timed_window(Duration::from_millis(10));
    let out = windows
        .filter(|w: &Vec<i64>| !w.is_empty())
        .map(move |w| (start.elapsed().as_millis(), w))
        .sink_to_vec();
    // Pushed into the window's own input while the window's emission is in progress.
    windows
        .flat_map(|w| {
            w.into_iter()
                .map(|x| x + 1)
                .filter(|x| *x <= 4)
                .collect::<Vec<_>>()
        })
        .connect(&source);
    bounded(source.emit(1)).await.unwrap();
    sleep(Duration::from_millis(15)).await;
    bounded(source.emit(100)).await.unwrap(); // at 15 ms, beside the fed-back 2
    sleep(Duration::from_millis(40)).await;
    assert_eq!(
        out.snapshot(),
        vec![
            (10, vec![1]),
            (20, vec![2, 100]),
            (30, vec![3]),
            (40, vec![4])
        ]
    );
    bounded(source.close()).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// 3. Re-entrant calls from inside a sink.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_sink_that_emits_into_another_source_delivers_everything_in_order() {
    let (a, b) = (Source::new(), Source::new());
    let direct = b.sink_to_vec();
    let buffered = b.buffer(1).sink_to_vec();
    let b2 = b.clone();
    // The inner emit's future is dropped: `b` took the element, and its buffer may be full.
    a.map(|x: i64| x * 10).sink(move |x| drop(b2.emit(x)));
    let outcomes = Outcomes::default();
    for x in 1..=5 {
        bounded(a.emit_with_ack(x, outcomes.ack(x))).await.unwrap();
        assert_eq!(outcomes.of(x), Some(Outcome::Done));
    }
    assert_eq!(direct.snapshot(), vec![10, 20, 30, 40, 50]);
    bounded(a.close()).await.unwrap();
    bounded(b.close()).await.unwrap();
    assert_eq!(buffered.snapshot(), vec![10, 20, 30, 40, 50]);
}

#[tokio::test]
async fn two_sinks_that_emit_into_each_others_sources_do_not_deadlock() {
    let (a, b) = (Source::new(), Source::new());
    let (seen_a, seen_b) = (a.sink_to_vec(), b.sink_to_vec());
    let (a2, b2) = (a.clone(), b.clone());
    a.sink(move |x: i64| drop(b2.emit(x + 1)));
    b.sink(move |x: i64| {
        if x < 9 {
            drop(a2.emit(x + 1));
        }
    });
    bounded(a.emit(0)).await.unwrap();
    assert_eq!(seen_a.snapshot(), vec![0, 2, 4, 6, 8]);
    assert_eq!(seen_b.snapshot(), vec![1, 3, 5, 7, 9]);
}

#[tokio::test]
async fn a_sink_that_emits_into_its_own_source_does_not_deadlock() {
    let source = Source::new();
    let seen = source.sink_to_vec();
    let again = source.clone();
    source.sink(move |x: i64| {
        if x < 5 {
            drop(again.emit(x + 1));
        }
    });
    let outcomes = Outcomes::default();
    bounded(source.emit_with_ack(0, outcomes.ack(0)))
        .await
        .unwrap();
    assert_eq!(seen.snapshot(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(outcomes.of(0), Some(Outcome::Done));
}

/// A sink closes its own source when it sees 3; `partition(10)` is the other branch, before
/// or after the closing sink in fan-out order.
async fn close_from_inside_a_sink(
    partition_first: bool,
) -> (Vec<Result<(), Error>>, Vec<Vec<i64>>, Outcomes) {
    let source = Source::new();
    let closer = source.clone();
    let close_at_3 = move |x: i64| {
        if x == 3 {
            // Not awaited inside the sink: the flush has happened when `close` returns.
            drop(closer.close());
        }
    };
    let batches = if partition_first {
        let batches = source.partition(10).sink_to_vec();
        source.sink(close_at_3);
        batches
    } else {
        source.sink(close_at_3);
        source.partition(10).sink_to_vec()
    };
    let outcomes = Outcomes::default();
    let mut results = Vec::new();
    for x in 0..5 {
        results.push(bounded(source.emit_with_ack(x, outcomes.ack(x))).await);
    }
    assert!(source.is_closed());
    bounded(source.close()).await.unwrap();
    (results, batches.snapshot(), outcomes)
}

#[tokio::test]
async fn close_from_inside_a_sink_after_the_other_branch_flushes_what_it_had() {
    let (results, batches, outcomes) = close_from_inside_a_sink(true).await;
    assert_eq!(
        results,
        vec![Ok(()), Ok(()), Ok(()), Ok(()), Err(Error::Closed)]
    );
    assert_eq!(batches, vec![vec![0, 1, 2, 3]]);
    for x in 0..4 {
        assert_eq!(outcomes.of(x), Some(Outcome::Done), "element {x}");
    }
    assert_eq!(outcomes.of(4), Some(Outcome::Failed(Error::Closed)));
}

#[tokio::test]
async fn close_from_inside_a_sink_before_the_other_branch_refuses_the_element_it_closed_on() {
    let (results, batches, outcomes) = close_from_inside_a_sink(false).await;
    // 3 reached the closing sink, then the partition, which had flushed and ended: refused
    // there, so its emit fails and its token too, and nothing that returned `Ok` is lost.
    assert_eq!(
        results,
        vec![
            Ok(()),
            Ok(()),
            Ok(()),
            Err(Error::Closed),
            Err(Error::Closed)
        ]
    );
    assert_eq!(batches, vec![vec![0, 1, 2]]);
    for x in 0..3 {
        assert_eq!(outcomes.of(x), Some(Outcome::Done), "element {x}");
    }
    for x in 3..5 {
        assert_eq!(
            outcomes.of(x),
            Some(Outcome::Failed(Error::Closed)),
            "element {x}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. Panics downstream of timer-driven flushes.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_panic_in_one_of_several_batches_timed_out_together_is_reported_and_the_others_arrive() {
    let source = Source::new();
    let batches = source
        .partition_by_timeout(10, Duration::from_millis(5), |x: &i64| x % 10)
        .map(|b: Vec<i64>| {
            assert!(b[0] % 10 != 1, "batch of key 1");
            b
        })
        .named("picky")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    // Three keys, all due at 5 ms.
    for x in [0, 1, 2, 11] {
        bounded(source.emit_with_ack(x, outcomes.ack(x)))
            .await
            .unwrap();
    }
    sleep(Duration::from_millis(20)).await;
    assert_eq!(batches.snapshot(), vec![vec![0], vec![2]]);
    assert_eq!(outcomes.of(0), Some(Outcome::Done));
    assert_eq!(outcomes.of(2), Some(Outcome::Done));
    for x in [1, 11] {
        assert!(
            failed_in(&outcomes.of(x), "picky"),
            "element {x}: {:?}",
            outcomes.of(x)
        );
    }
    // The next emit reports the panic; its own element is taken all the same.
    let next = bounded(source.emit_with_ack(30, outcomes.ack(30))).await;
    assert!(panicked_in(&next, "picky", "batch of key 1"), "{next:?}");
    bounded(source.close()).await.unwrap();
    assert_eq!(batches.snapshot(), vec![vec![0], vec![2], vec![30]]);
    assert_eq!(outcomes.of(30), Some(Outcome::Done));
}

#[tokio::test(start_paused = true)]
async fn a_panic_downstream_of_a_timed_window_unique_tick_is_reported_and_later_ticks_arrive() {
    let source = Source::new();
    let windows = source
        .timed_window_unique(Duration::from_millis(10), |x: &i64| x / 10, Keep::First)
        .filter(|w: &Vec<i64>| !w.is_empty())
        .map(|w| {
            assert!(!w.contains(&11), "window with 11");
            w
        })
        .named("picky")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for x in [11, 12, 21] {
        bounded(source.emit_with_ack(x, outcomes.ack(x)))
            .await
            .unwrap();
    }
    sleep(Duration::from_millis(15)).await; // the tick at 10 ms panicked downstream
    for x in [11, 12, 21] {
        // 12, dropped as a duplicate, shares the window's fate.
        assert!(
            failed_in(&outcomes.of(x), "picky"),
            "element {x}: {:?}",
            outcomes.of(x)
        );
    }
    let next = bounded(source.emit_with_ack(31, outcomes.ack(31))).await;
    assert!(panicked_in(&next, "picky", "window with 11"), "{next:?}");
    bounded(source.emit_with_ack(41, outcomes.ack(41)))
        .await
        .unwrap();
    sleep(Duration::from_millis(10)).await; // the tick at 20 ms
    assert_eq!(windows.snapshot(), vec![vec![31, 41]]);
    assert_eq!(outcomes.of(31), Some(Outcome::Done));
    assert_eq!(outcomes.of(41), Some(Outcome::Done));
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panic_downstream_of_a_timed_batch_is_reported_and_later_slices_arrive() {
    let source = Source::new();
    let batches = source
        .batch_with(
            FixedTimeWindow::new(Duration::from_millis(10)).skip_empty(),
            BatchOptions::new().clock_starting_at(0),
        )
        .map(|b: Vec<i64>| {
            assert!(!b.contains(&1), "batch with 1");
            b
        })
        .named("picky")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for x in [1, 2] {
        bounded(source.emit_with_ack(x, outcomes.ack(x)))
            .await
            .unwrap();
    }
    sleep(Duration::from_millis(15)).await; // the slice [0, 10) panicked downstream
    for x in [1, 2] {
        assert!(
            failed_in(&outcomes.of(x), "picky"),
            "element {x}: {:?}",
            outcomes.of(x)
        );
    }
    let next = bounded(source.emit_with_ack(3, outcomes.ack(3))).await;
    assert!(panicked_in(&next, "picky", "batch with 1"), "{next:?}");
    sleep(Duration::from_millis(10)).await; // the slice [10, 20)
    assert_eq!(batches.snapshot(), vec![vec![3]]);
    assert_eq!(outcomes.of(3), Some(Outcome::Done));
    bounded(source.close()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_one_of_several_windows_closed_by_the_idle_timer_is_reported_and_the_others_arrive()
 {
    // Events are (key, event time, id).
    let source = Source::<(i64, i64, i64)>::new();
    let counts = source
        .window(Window::tumbling(1_000))
        .timestamp(|e| e.1)
        .key_by(|e| e.0)
        .idle_timeout(Duration::from_secs(2))
        .count()
        .map(|r| {
            assert!(r.key != 1, "window of key 1");
            (r.key, r.start, r.value)
        })
        .named("picky")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for e in [(0, 100, 0), (1, 100, 1), (1, 200, 11), (2, 100, 2)] {
        bounded(source.emit_with_ack(e, outcomes.ack(e.2)))
            .await
            .unwrap();
    }
    assert_eq!(outcomes.count(), 0, "the windows hold their events");
    sleep(Duration::from_secs(5)).await; // the idle timer closed all three windows
    let mut closed = counts.snapshot();
    closed.sort();
    assert_eq!(closed, vec![(0, 0, 1), (2, 0, 1)]);
    assert_eq!(outcomes.of(0), Some(Outcome::Done));
    assert_eq!(outcomes.of(2), Some(Outcome::Done));
    for x in [1, 11] {
        assert!(
            failed_in(&outcomes.of(x), "picky"),
            "element {x}: {:?}",
            outcomes.of(x)
        );
    }
    let next = bounded(source.emit_with_ack((0, 100_000, 30), outcomes.ack(30))).await;
    assert!(panicked_in(&next, "picky", "window of key 1"), "{next:?}");
    bounded(source.close()).await.unwrap();
    assert_eq!(counts.snapshot().len(), 3);
    assert!(counts.snapshot().contains(&(0, 100_000, 1)));
    assert_eq!(outcomes.of(30), Some(Outcome::Done));
}

/// The same panic with no emit after it: `close()` reports it rather than dropping it.
#[tokio::test(start_paused = true)]
async fn a_panic_downstream_of_an_idle_flush_right_before_close_is_reported_by_close() {
    let source = Source::<i64>::new();
    let counts = source
        .window(Window::tumbling(1_000))
        .timestamp(|t| *t)
        .idle_timeout(Duration::from_secs(2))
        .count()
        .map(|r| {
            assert!(r.start != 0, "first window");
            r.value
        })
        .named("picky")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    bounded(source.emit_with_ack(100, outcomes.ack(100)))
        .await
        .unwrap();
    sleep(Duration::from_secs(5)).await; // the idle timer closed [0, 1000)
    assert!(
        failed_in(&outcomes.of(100), "picky"),
        "{:?}",
        outcomes.of(100)
    );
    let closed = bounded(source.close()).await;
    assert!(panicked_in(&closed, "picky", "first window"), "{closed:?}");
    assert!(counts.snapshot().is_empty());
}

/// The idle timer closes several windows at once into a slow downstream, and `close()` comes
/// while the timer still waits for room: every window's result is delivered before `close()`
/// returns, none is pushed into a downstream that already ended.
#[tokio::test(start_paused = true)]
async fn close_while_the_idle_timer_waits_for_room_loses_none_of_its_results() {
    let source = Source::<(i64, i64)>::new();
    let got = source
        .window(Window::tumbling(1_000))
        .timestamp(|e| e.1)
        .key_by(|e| e.0)
        .idle_timeout(Duration::from_secs(2))
        .count()
        .map(|r| r.key)
        .buffer(1)
        .rate_limit(Duration::from_millis(100))
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for k in 0..5 {
        bounded(source.emit_with_ack((k, 100), outcomes.ack(k)))
            .await
            .unwrap();
    }
    // The timer fires at 2 s and pushes five results into a queue of one, drained every 100 ms.
    sleep(Duration::from_millis(2_050)).await;
    assert!(got.snapshot().len() < 5, "the timer is still pushing");
    bounded(source.close()).await.unwrap();
    let mut keys = got.snapshot();
    keys.sort();
    assert_eq!(keys, vec![0, 1, 2, 3, 4]);
    for k in 0..5 {
        assert_eq!(outcomes.of(k), Some(Outcome::Done), "element {k}");
    }
}

/// `close()` from another thread while the idle timer pushes a tick's results through a slow
/// synchronous stage into a buffer: the window's end reaches the buffer only after the timer
/// has pushed every result it took, so none is refused and lost.
#[test]
fn close_from_another_thread_while_the_idle_timer_pushes_loses_none_of_its_results() {
    let rt = paused_runtime();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (entered_tx, go_rx) = (Mutex::new(entered_tx), Mutex::new(go_rx));
    let source = Source::<(i64, i64)>::new();
    let outcomes = Outcomes::default();
    let got = rt.block_on(async {
        let got = source
            .window(Window::tumbling(1_000))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .idle_timeout(Duration::from_secs(2))
            .count()
            .map(move |r| {
                if r.key == 0 {
                    // The first result of the tick: hold the timer here while `close()` runs.
                    entered_tx.lock().unwrap().send(()).unwrap();
                    go_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(LIMIT)
                        .expect("never released");
                }
                r.key
            })
            .buffer(4)
            .sink_to_vec();
        for k in 0..3 {
            bounded(source.emit_with_ack((k, 100), outcomes.ack(k)))
                .await
                .unwrap();
        }
        let closer = std::thread::spawn({
            let source = source.clone();
            move || {
                entered_rx
                    .recv_timeout(LIMIT)
                    .expect("the idle timer never pushed");
                // The window ends here, on this thread, while the timer is inside the map.
                let closing = source.close();
                go_tx.send(()).unwrap();
                closing
            }
        });
        sleep(Duration::from_secs(3)).await; // the timer fires at 2 s
        let closing = closer.join().unwrap();
        bounded(closing).await.unwrap();
        got
    });
    let mut keys = got.snapshot();
    keys.sort();
    assert_eq!(keys, vec![0, 1, 2]);
    for k in 0..3 {
        assert_eq!(outcomes.of(k), Some(Outcome::Done), "element {k}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. A panicking consumer of an error side output.
// ---------------------------------------------------------------------------------------

fn even_or_err(x: i64) -> Result<i64, String> {
    if x % 2 == 0 {
        Ok(x)
    } else {
        Err(format!("{x} is odd"))
    }
}

#[tokio::test]
async fn a_panicking_dead_letter_sink_of_try_map_unwinds_and_fails_the_token() {
    let source = Source::new();
    let checked = source.try_map(even_or_err);
    let good = checked.sink_to_vec();
    let _dead_letters = checked
        .errors()
        .sink(|e: String| panic!("dead letters down: {e}"))
        .named("dead_letters");
    let outcomes = Outcomes::default();
    bounded(source.emit_with_ack(2, outcomes.ack(2)))
        .await
        .unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        drop(source.emit_with_ack(3, outcomes.ack(3)))
    }));
    assert_eq!(message(caught.unwrap_err()), "dead letters down: 3 is odd");
    match outcomes.of(3) {
        Some(Outcome::Failed(Error::Panicked { node, .. })) => assert_eq!(node, "dead_letters"),
        other => panic!("element 3 ended {other:?}"),
    }
    bounded(source.emit_with_ack(4, outcomes.ack(4)))
        .await
        .unwrap();
    bounded(source.close()).await.unwrap();
    assert_eq!(good.snapshot(), vec![2, 4]);
    assert_eq!(outcomes.of(2), Some(Outcome::Done));
    assert_eq!(outcomes.of(4), Some(Outcome::Done));
}

/// Emits 2, 3, 4 into `source` (3 goes to the panicking dead-letter sink), closes it, and
/// checks that the panic came out exactly once, naming the sink.
async fn dead_letter_panic_reported_once(source: &Source<i64>, good: &brooklet::VecSink<i64>) {
    let outcomes = Outcomes::default();
    let mut reports = Vec::new();
    for x in 2..=4 {
        if let Err(e) = bounded(source.emit_with_ack(x, outcomes.ack(x))).await {
            reports.push(e);
        }
    }
    if let Err(e) = bounded(source.close()).await {
        reports.push(e);
    }
    assert_eq!(
        reports,
        vec![Error::Panicked {
            node: "dead_letters".to_string(),
            message: "dead letters down: 3 is odd".to_string()
        }]
    );
    assert_eq!(good.snapshot(), vec![2, 4]);
    outcomes.wait_for(3);
    assert_eq!(outcomes.of(2), Some(Outcome::Done));
    assert!(
        failed_in(&outcomes.of(3), "dead_letters"),
        "{:?}",
        outcomes.of(3)
    );
    assert_eq!(outcomes.of(4), Some(Outcome::Done));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_dead_letter_sink_of_try_par_map_is_reported_and_fails_the_token() {
    let source = Source::new();
    let checked = source.try_par_map(2, even_or_err);
    let good = checked.sink_to_vec();
    let _dead_letters = checked
        .errors()
        .sink(|e: String| panic!("dead letters down: {e}"))
        .named("dead_letters");
    dead_letter_panic_reported_once(&source, &good).await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_dead_letter_sink_behind_a_buffer_is_reported_and_fails_the_token() {
    let source = Source::new();
    let checked = source.buffer(4).try_map(even_or_err);
    let good = checked.sink_to_vec();
    let _dead_letters = checked
        .errors()
        .sink(|e: String| panic!("dead letters down: {e}"))
        .named("dead_letters");
    dead_letter_panic_reported_once(&source, &good).await;
}

// ---------------------------------------------------------------------------------------
// 6. A panic downstream of zip fails both zipped elements.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_panic_downstream_of_zip_fails_the_tokens_of_both_elements() {
    let (a, b) = (Source::new(), Source::new());
    let pairs = a
        .zip(&b)
        .map(|(x, y): (i64, i64)| {
            assert!(x != 1, "pair with 1");
            (x, y)
        })
        .named("picky")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    bounded(a.emit_with_ack(1, outcomes.ack(1))).await.unwrap();
    assert_eq!(outcomes.of(1), None, "held by zip");
    let caught = catch_unwind(AssertUnwindSafe(|| {
        drop(b.emit_with_ack(2, outcomes.ack(2)))
    }));
    assert_eq!(message(caught.unwrap_err()), "pair with 1");
    for x in [1, 2] {
        assert!(
            failed_in(&outcomes.of(x), "picky"),
            "element {x}: {:?}",
            outcomes.of(x)
        );
    }
    bounded(a.emit_with_ack(3, outcomes.ack(3))).await.unwrap();
    bounded(b.emit_with_ack(4, outcomes.ack(4))).await.unwrap();
    assert_eq!(pairs.snapshot(), vec![(3, 4)]);
    assert_eq!(outcomes.of(3), Some(Outcome::Done));
    assert_eq!(outcomes.of(4), Some(Outcome::Done));
}

#[tokio::test(start_paused = true)]
async fn a_panic_downstream_of_zip_on_a_task_fails_both_tokens_and_is_reported() {
    let (a, b) = (Source::new(), Source::new());
    let pairs = a
        .buffer(4)
        .zip(&b.delay(Duration::from_millis(5)))
        .map(|(x, y): (i64, i64)| {
            assert!(x != 1, "pair with 1");
            (x, y)
        })
        .named("picky")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for (x, y) in [(1, 2), (3, 4)] {
        bounded(a.emit_with_ack(x, outcomes.ack(x))).await.unwrap();
        bounded(b.emit_with_ack(y, outcomes.ack(y))).await.unwrap();
    }
    sleep(Duration::from_millis(10)).await; // the delay's task made both pairs
    assert_eq!(pairs.snapshot(), vec![(3, 4)]);
    for x in [1, 2] {
        assert!(
            failed_in(&outcomes.of(x), "picky"),
            "element {x}: {:?}",
            outcomes.of(x)
        );
    }
    assert_eq!(outcomes.of(3), Some(Outcome::Done));
    assert_eq!(outcomes.of(4), Some(Outcome::Done));
    // The pair was made on the delay's task: `b` reports the panic, `a` has nothing to report.
    let closed_b = bounded(b.close()).await;
    assert!(
        panicked_in(&closed_b, "picky", "pair with 1"),
        "{closed_b:?}"
    );
    bounded(a.close()).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// 7. Branches attached from other threads while tasks emit.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_attached_from_other_threads_get_every_element_emitted_after_the_attach() {
    const EMITTERS: usize = 2;
    const ATTACHERS: usize = 3;
    const PER_ATTACHER: usize = 4;
    const BRANCHES: usize = ATTACHERS * PER_ATTACHER;
    let source = Source::<(usize, u64)>::new();
    let stream = source.map(|e| e).named("trunk");
    let _base = stream.sink(|_| ());
    let attached: Arc<Vec<AtomicBool>> =
        Arc::new((0..BRANCHES).map(|_| AtomicBool::new(false)).collect());
    // What each branch received: (emitter, element).
    type Received = Arc<Vec<Mutex<Vec<(usize, u64)>>>>;
    let received: Received = Arc::new((0..BRANCHES).map(|_| Mutex::new(Vec::new())).collect());

    let (go_tx, go_rx): (Vec<_>, Vec<_>) = (0..ATTACHERS).map(|_| mpsc::channel::<()>()).unzip();
    let (joined_tx, joined_rx) = mpsc::channel::<()>();
    let handle = tokio::runtime::Handle::current();
    for (t, go) in go_rx.into_iter().enumerate() {
        let (stream, attached, received) = (stream.clone(), attached.clone(), received.clone());
        let (handle, joined) = (handle.clone(), joined_tx.clone());
        std::thread::spawn(move || {
            go.recv_timeout(LIMIT).expect("the emitters did not start");
            let _rt = handle.enter(); // for the buffer branches
            for k in t * PER_ATTACHER..(t + 1) * PER_ATTACHER {
                let received = received.clone();
                let into = move |e: (usize, u64)| received[k].lock().unwrap().push(e);
                match k % 3 {
                    0 => drop(stream.sink(into)),
                    1 => drop(stream.map(|e| e).filter(|_| true).sink(into)),
                    _ => drop(stream.buffer(16).sink(into)),
                }
                attached[k].store(true, Ordering::SeqCst);
            }
            joined.send(()).unwrap();
        });
    }
    drop(joined_tx);

    // Each emitter notes, for each branch, the first element it emitted after seeing the
    // branch attached; it stops 200 elements after it has seen all of them.
    let mut emitters = Vec::new();
    for e in 0..EMITTERS {
        let (source, attached) = (source.clone(), attached.clone());
        let go = if e == 0 { go_tx.clone() } else { Vec::new() };
        emitters.push(tokio::spawn(async move {
            let mut first_after = vec![None; BRANCHES];
            let mut all_seen_at = None;
            let started = Instant::now();
            let mut i = 0u64;
            loop {
                for (k, flag) in attached.iter().enumerate() {
                    if first_after[k].is_none() && flag.load(Ordering::SeqCst) {
                        first_after[k] = Some(i);
                    }
                }
                if all_seen_at.is_none() && first_after.iter().all(Option::is_some) {
                    all_seen_at = Some(i);
                }
                if all_seen_at.is_some_and(|at| i >= at + 200) {
                    return (i, first_after);
                }
                assert!(
                    started.elapsed() < LIMIT,
                    "the branches were never attached"
                );
                bounded(source.emit((e, i))).await.unwrap();
                i += 1;
                if i == 100 {
                    for g in &go {
                        g.send(()).unwrap();
                    }
                }
                if i.is_multiple_of(16) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    drop(go_tx);
    let mut plans = Vec::new();
    for e in emitters {
        plans.push(bounded(e).await.unwrap());
    }
    for _ in 0..ATTACHERS {
        tokio::task::spawn_blocking({
            let joined_rx = joined_rx.recv_timeout(LIMIT);
            move || joined_rx
        })
        .await
        .unwrap()
        .expect("an attaching thread did not finish");
    }
    bounded(source.close()).await.unwrap();

    for (k, got) in received.iter().enumerate() {
        let got = got.lock().unwrap();
        for (e, (emitted, first_after)) in plans.iter().enumerate() {
            let mine: Vec<u64> = got.iter().filter(|x| x.0 == e).map(|x| x.1).collect();
            let from = first_after[k].expect("seen attached");
            // From some element on, every one, in order: nothing skipped after the attach.
            let start = mine.first().copied().unwrap_or(*emitted);
            assert!(
                start <= from,
                "branch {k}, emitter {e}: starts at {start}, attached before {from}"
            );
            assert_eq!(
                mine,
                (start..*emitted).collect::<Vec<_>>(),
                "branch {k}, emitter {e}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 8. Time-driven nodes built outside a runtime.
// ---------------------------------------------------------------------------------------

/// Builds a node outside any runtime: it must panic with the message the crate documents,
/// and leave the graph as it was (the source still works, nothing holds an element).
fn built_outside_a_runtime(kind: &str, build: impl FnOnce(&Source<i64>)) {
    let source = Source::new();
    let seen = source.sink_to_vec();
    let dot = source.to_dot();
    let caught = catch_unwind(AssertUnwindSafe(|| build(&source)));
    let text = message(caught.expect_err("built outside a runtime without a panic"));
    assert_eq!(
        text,
        format!(
            "`{kind}` runs on a tokio runtime, and there is none here: build the graph inside a \
             tokio runtime (in async code run by tokio, or after `Runtime::enter`)"
        )
    );
    let outcomes = Outcomes::default();
    let emitted = source.emit_with_ack(1, outcomes.ack(1));
    assert!(emitted.is_complete(), "{kind}: emit pends");
    assert_eq!(
        outcomes.of(1),
        Some(Outcome::Done),
        "{kind}: something holds the element"
    );
    assert_eq!(
        source.to_dot(),
        dot,
        "{kind}: the failed build changed the graph"
    );
    assert!(source.close().is_complete(), "{kind}: close pends");
    assert_eq!(seen.snapshot(), vec![1]);
}

#[test]
fn timed_window_unique_built_outside_a_runtime_says_so() {
    built_outside_a_runtime("timed_window_unique", |s| {
        s.timed_window_unique(Duration::from_millis(10), |x: &i64| *x, Keep::First);
    });
}

#[test]
fn processing_window_built_outside_a_runtime_says_so() {
    built_outside_a_runtime("processing_window", |s| {
        let builder = s.processing_window(ProcessingWindow::tumbling(Duration::from_millis(10)));
        // Choosing the aggregate builds the node: that is where it panics.
        builder.count();
    });
}

#[test]
fn timed_batch_built_outside_a_runtime_says_so() {
    built_outside_a_runtime("batch", |s| {
        s.batch(FixedTimeWindow::new(Duration::from_millis(10)));
    });
}

#[test]
fn window_idle_timeout_built_outside_a_runtime_says_so() {
    built_outside_a_runtime("window idle_timeout", |s| {
        let builder = s
            .window(Window::tumbling(1_000))
            .timestamp(|x: &i64| *x)
            .idle_timeout(Duration::from_secs(1));
        // Choosing the aggregate builds the node: that is where it panics.
        builder.count();
    });
}
