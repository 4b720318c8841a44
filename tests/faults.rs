//! Fault paths: what happens to elements, acknowledgements and calls when something goes
//! wrong (a panic, a runtime that shuts down, `close()` racing emitters). The promise under
//! test: whatever returned `Ok` is delivered, whatever is lost gets an `Err` promptly and a
//! failed outcome on its token, and no call hangs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brooklet::{Ack, Error, Outcome, Source, Stream};

mod support;
use support::{bounded, failed_in};

/// Outcomes reported so far, by element.
#[derive(Clone, Default)]
struct Outcomes(Arc<Mutex<Vec<(i64, Outcome)>>>);

impl Outcomes {
    fn ack(&self, x: i64) -> Ack {
        let all = self.0.clone();
        Ack::new(move |o| all.lock().unwrap().push((x, o)))
    }

    fn of(&self, x: i64) -> Option<Outcome> {
        let all = self.0.lock().unwrap();
        let mut found = all.iter().filter(|(y, _)| *y == x);
        let first = found.next().map(|(_, o)| o.clone());
        assert!(found.next().is_none(), "token of {x} released twice");
        first
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[tokio::test]
async fn a_panic_on_the_synchronous_path_fails_the_token_and_names_the_node() {
    let source = Source::new();
    let _out = source
        .map(|x: i64| if x == 2 { panic!("two") } else { x })
        .named("picky")
        .sink(|_| ());
    let outcomes = Outcomes::default();
    for x in 1..=3 {
        let emit = catch_unwind(AssertUnwindSafe(|| {
            source.emit_with_ack(x, outcomes.ack(x))
        }));
        assert_eq!(emit.is_err(), x == 2);
    }
    assert_eq!(outcomes.of(1), Some(Outcome::Done));
    match outcomes.of(2) {
        Some(Outcome::Failed(Error::Panicked { node, message })) => {
            assert_eq!(node, "picky");
            assert_eq!(message, "two");
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    assert_eq!(outcomes.of(3), Some(Outcome::Done));
}

#[tokio::test]
async fn a_panic_in_one_branch_fails_the_token_even_if_another_branch_holds_it() {
    let source = Source::new();
    let held = source.sliding_window(2).sink_to_vec();
    let _bad = source.map(|_: i64| -> i64 { panic!("boom") }).sink(|_| ());
    let outcomes = Outcomes::default();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        source.emit_with_ack(1, outcomes.ack(1))
    }));
    assert_eq!(outcomes.of(1), None, "still held by the window");
    drop(source);
    drop(held);
    assert!(failed_in(&outcomes.of(1), "map"));
}

#[tokio::test]
async fn emit_with_ack_after_close_fails_the_token() {
    let source = Source::<i64>::new();
    let _out = source.sink(|_| ());
    source.close().await.unwrap();
    let outcomes = Outcomes::default();
    assert_eq!(
        source.emit_with_ack(1, outcomes.ack(1)).await,
        Err(Error::Closed)
    );
    assert_eq!(outcomes.of(1), Some(Outcome::Failed(Error::Closed)));
}

#[tokio::test]
async fn try_map_errors_count_as_handled_only_when_consumed() {
    let source = Source::new();
    let parsed = source.try_map(|s: &'static str| s.parse::<i64>());
    let _ok = parsed.sink(|_| ());
    let outcomes = Outcomes::default();
    source.emit_with_ack("x", outcomes.ack(1)).await.unwrap();
    assert!(
        failed_in(&outcomes.of(1), "try_map"),
        "nobody took the error"
    );

    let dead_letters = parsed.errors().sink_to_vec();
    source.emit_with_ack("y", outcomes.ack(2)).await.unwrap();
    source.emit_with_ack("3", outcomes.ack(3)).await.unwrap();
    assert_eq!(outcomes.of(2), Some(Outcome::Done));
    assert_eq!(outcomes.of(3), Some(Outcome::Done));
    assert_eq!(dead_letters.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panic_behind_a_buffer_fails_only_its_own_token() {
    let source = Source::new();
    let seen = source
        .buffer(4)
        .map(|x: i64| if x % 2 == 0 { panic!("even {x}") } else { x })
        .named("odd_only")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for x in 1..=5 {
        let _ = source.emit_with_ack(x, outcomes.ack(x)).await;
    }
    let closed = bounded(source.close()).await;
    // Two panics: the first is reported, with the node that panicked and the count of the rest.
    let reported = match closed {
        Err(e) => e,
        Ok(()) => {
            panic!("two panics and no error")
        }
    };
    match reported.first() {
        Error::Panicked { node, .. } => assert_eq!(node, "odd_only"),
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(seen.snapshot(), vec![1, 3, 5]);
    for x in [1, 3, 5] {
        assert_eq!(outcomes.of(x), Some(Outcome::Done), "element {x}");
    }
    for x in [2, 4] {
        assert!(failed_in(&outcomes.of(x), "odd_only"), "element {x}");
    }
}

#[tokio::test(start_paused = true)]
async fn several_failures_are_counted_not_folded_away() {
    let source = Source::new();
    let _out = source
        .buffer(8)
        .map(|x: i64| -> i64 { panic!("bad {x}") })
        .sink(|_| ());
    for x in 0..3 {
        source.emit(x).await.unwrap();
    }
    match bounded(source.close()).await {
        Err(Error::Several { first, more }) => {
            assert!(matches!(*first, Error::Panicked { ref message, .. } if message == "bad 0"));
            assert_eq!(more, 2);
        }
        other => panic!("unexpected result {other:?}"),
    }
}

#[tokio::test]
async fn par_map_panic_fails_its_token_and_the_rest_are_done() {
    let source = Source::new();
    let seen = source
        .par_map(2, |x: i64| if x == 3 { panic!("three") } else { x * 10 })
        .sink_to_vec();
    let outcomes = Outcomes::default();
    let mut errors = 0;
    for x in 1..=5 {
        errors += usize::from(source.emit_with_ack(x, outcomes.ack(x)).await.is_err());
    }
    errors += usize::from(bounded(source.close()).await.is_err());
    assert_eq!(errors, 1, "the panic is reported once");
    assert_eq!(seen.snapshot(), vec![10, 20, 40, 50]);
    assert!(failed_in(&outcomes.of(3), "par_map"));
    for x in [1, 2, 4, 5] {
        assert_eq!(outcomes.of(x), Some(Outcome::Done));
    }
}

#[tokio::test(start_paused = true)]
async fn sink_async_panic_fails_its_token() {
    let source = Source::new();
    source.sink_async(|x: i64| async move {
        if x == 2 {
            panic!("cannot write 2");
        }
    });
    let outcomes = Outcomes::default();
    let mut errors = 0;
    for x in 1..=3 {
        errors += usize::from(source.emit_with_ack(x, outcomes.ack(x)).await.is_err());
    }
    errors += usize::from(bounded(source.close()).await.is_err());
    assert_eq!(errors, 1, "the panic is reported once");
    assert_eq!(outcomes.of(1), Some(Outcome::Done));
    assert!(failed_in(&outcomes.of(2), "sink_async"));
    assert_eq!(outcomes.of(3), Some(Outcome::Done));
}

#[tokio::test(start_paused = true)]
async fn map_async_panic_fails_its_token() {
    let source = Source::new();
    let seen = source
        .map_async(2, |x: i64| async move {
            if x == 2 {
                panic!("no");
            }
            x
        })
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for x in 1..=3 {
        let _ = source.emit_with_ack(x, outcomes.ack(x)).await;
    }
    assert!(bounded(source.close()).await.is_err());
    assert_eq!(seen.snapshot(), vec![1, 3]);
    assert!(failed_in(&outcomes.of(2), "map_async"));
}

#[tokio::test]
async fn a_panic_during_close_still_flushes_the_other_branches_and_is_reported_again() {
    let source = Source::new();
    let _bad = source
        .partition(3)
        .map(|_: Vec<i64>| -> i64 { panic!("flush") })
        .sink(|_| ());
    let good = source.partition(3).sink_to_vec();
    let mut pulled = source.map(|x| x).to_stream();
    source.emit(1).await.unwrap();
    let closing = catch_unwind(AssertUnwindSafe(|| drop(source.close())));
    assert!(closing.is_err(), "the flush panic reaches the caller");
    assert_eq!(good.snapshot(), vec![vec![1]], "the other branch flushed");
    use futures::StreamExt;
    assert_eq!(bounded(pulled.next()).await, Some(1));
    assert_eq!(bounded(pulled.next()).await, None, "the pull side ended");
    match source.close().await {
        Err(Error::Panicked { message, .. }) => assert_eq!(message, "flush"),
        other => panic!("second close returned {other:?}"),
    }
}

/// Builds `graph` on a runtime of its own, drops that runtime, then checks on another one
/// that `emit` and `close` fail promptly and that tokens held by the node fail.
fn runtime_gone(name: &str, graph: impl FnOnce(&Source<i64>) -> Stream<i64>) {
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime_gone_on(built, name, graph);
}

/// As [`runtime_gone`], on a runtime that never runs: the node's task is dropped before its
/// first poll (what a multi-threaded runtime does now and then, when it shuts down before
/// its worker got to the task).
fn runtime_gone_unpolled(name: &str, graph: impl FnOnce(&Source<i64>) -> Stream<i64>) {
    let built = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime_gone_on(built, name, graph);
}

fn runtime_gone_on(
    built: tokio::runtime::Runtime,
    name: &str,
    graph: impl FnOnce(&Source<i64>) -> Stream<i64>,
) {
    let outcomes = Outcomes::default();
    let source = Source::new();
    let _guard = built.enter();
    let out = graph(&source);
    let _seen = out.sink(|_| ());
    drop(_guard);
    drop(built);

    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    other.block_on(async {
        let first = bounded(source.emit_with_ack(1, outcomes.ack(1))).await;
        assert!(
            matches!(first, Err(Error::Failed { .. })),
            "{name}: emit after the runtime shut down returned {first:?}"
        );
        let again = bounded(source.emit_with_ack(2, outcomes.ack(2))).await;
        assert!(again.is_err(), "{name}: a second emit returned {again:?}");
        let closed = bounded(source.close()).await;
        assert!(closed.is_err(), "{name}: close returned {closed:?}");
    });
    for x in [1, 2] {
        assert!(
            matches!(outcomes.of(x), Some(Outcome::Failed(_))),
            "{name}: element {x} ended {:?}",
            outcomes.of(x)
        );
    }
}

#[test]
fn buffer_on_a_runtime_that_shut_down_fails_loudly() {
    runtime_gone("buffer", |s| s.buffer(4));
}

#[test]
fn timed_window_on_a_runtime_that_shut_down_fails_loudly() {
    runtime_gone("timed_window", |s| {
        s.timed_window(Duration::from_millis(5))
            .map(|w| w.len() as i64)
    });
}

#[test]
fn par_map_on_a_runtime_that_shut_down_fails_loudly() {
    runtime_gone("par_map", |s| s.par_map(2, |x| x + 1));
}

#[test]
fn map_async_on_a_runtime_that_shut_down_fails_loudly() {
    runtime_gone("map_async", |s| s.map_async(2, |x| async move { x }));
}

#[test]
fn sink_async_on_a_runtime_that_shut_down_fails_loudly() {
    runtime_gone("sink_async", |s| {
        s.sink_async(|_| async {});
        s.map(|x| x)
    });
}

#[test]
fn nodes_whose_task_never_ran_fail_loudly() {
    runtime_gone_unpolled("buffer", |s| s.buffer(4));
    runtime_gone_unpolled("timed_window", |s| {
        s.timed_window(Duration::from_millis(5))
            .map(|w| w.len() as i64)
    });
    runtime_gone_unpolled("par_map", |s| s.par_map(2, |x| x + 1));
    runtime_gone_unpolled("map_async", |s| s.map_async(2, |x| async move { x }));
    runtime_gone_unpolled("sink_async", |s| {
        s.sink_async(|_| async {});
        s.map(|x| x)
    });
    runtime_gone_unpolled("delay", |s| s.delay(Duration::from_millis(5)));
    runtime_gone_unpolled("rate_limit", |s| s.rate_limit(Duration::from_millis(5)));
    runtime_gone_unpolled("latest", |s| s.latest());
    runtime_gone_unpolled("partition_timeout", |s| {
        s.partition_timeout(3, Duration::from_millis(5)).flatten()
    });
    runtime_gone_unpolled("timed_window_unique", |s| {
        s.timed_window_unique(
            Duration::from_millis(5),
            |x: &i64| *x,
            brooklet::ops::Keep::First,
        )
        .flatten()
    });
    runtime_gone_unpolled("processing_window", |s| {
        s.processing_window(brooklet::window::ProcessingWindow::tumbling(
            Duration::from_millis(5),
        ))
        .count()
        .map(|w| w.value as i64)
    });
    runtime_gone_unpolled("window with an idle timer", |s| {
        s.window(brooklet::window::Window::tumbling(1_000))
            .timestamp(|x: &i64| *x)
            .idle_timeout(Duration::from_secs(1))
            .count()
            .map(|w| w.value as i64)
    });
}

#[test]
fn elements_held_when_the_runtime_shuts_down_fail() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcomes = Outcomes::default();
    let source = Source::new();
    rt.block_on(async {
        // The task never gets to run: everything stays queued in the buffer.
        let _out = source.buffer(16).sink(|_: i64| ());
        for x in 0..5 {
            drop(source.emit_with_ack(x, outcomes.ack(x)));
        }
    });
    assert_eq!(outcomes.count(), 0);
    drop(rt);
    for x in 0..5 {
        assert!(failed_in(&outcomes.of(x), "buffer"), "element {x}");
    }
}

/// Emitters race `close()`: every `emit` that returned `Ok` must have been delivered.
async fn close_race(name: &str, graph: impl Fn(&Source<i64>) -> Stream<i64>) {
    for round in 0..40 {
        let source = Source::new();
        let seen = graph(&source).sink_to_vec();
        let ok = Arc::new(AtomicUsize::new(0));
        let mut emitters = Vec::new();
        for e in 0..4i64 {
            let (source, ok) = (source.clone(), ok.clone());
            emitters.push(tokio::spawn(async move {
                for i in 0..50 {
                    match source.emit(e * 1_000 + i).await {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(Error::Closed) => break,
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        tokio::task::yield_now().await;
        bounded(source.close()).await.unwrap();
        for e in emitters {
            bounded(e).await.unwrap();
        }
        let delivered = seen.len();
        assert!(
            delivered >= ok.load(Ordering::SeqCst),
            "{name}, round {round}: {} emits returned Ok, {delivered} delivered",
            ok.load(Ordering::SeqCst)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_window_racing_close_loses_nothing_that_returned_ok() {
    close_race("timed_window", |s| {
        s.timed_window(Duration::from_secs(3_600)).flatten()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn par_map_racing_close_loses_nothing_that_returned_ok() {
    close_race("par_map", |s| s.par_map(2, |x| x)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_racing_close_loses_nothing_that_returned_ok() {
    close_race("buffer", |s| s.buffer(8)).await;
}

#[tokio::test]
async fn a_panic_in_one_flushed_batch_does_not_lose_the_others() {
    let source = Source::new();
    let seen = source
        .partition_by(3, |x: &i64| x % 3)
        .map(|b: Vec<i64>| if b[0] == 1 { panic!("batch of 1") } else { b })
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for x in 0..3 {
        source.emit_with_ack(x, outcomes.ack(x)).await.unwrap();
    }
    assert!(catch_unwind(AssertUnwindSafe(|| drop(source.close()))).is_err());
    assert_eq!(seen.snapshot(), vec![vec![0], vec![2]]);
    assert_eq!(outcomes.of(0), Some(Outcome::Done));
    assert!(matches!(outcomes.of(1), Some(Outcome::Failed(_))));
    assert_eq!(outcomes.of(2), Some(Outcome::Done));
}

#[tokio::test]
async fn a_panic_on_one_pair_zip_latest_releases_does_not_lose_the_others() {
    let (a, b) = (Source::new(), Source::new());
    let seen = a
        .zip_latest(&b)
        .map(|(x, y): (i64, i64)| if x == 1 { panic!("pair of 1") } else { x + y })
        .named("pairs")
        .sink_to_vec();
    let outcomes = Outcomes::default();
    for x in 1..=3 {
        // `b` has no value yet: all three wait, and their emits return `Ok`.
        a.emit_with_ack(x, outcomes.ack(x)).await.unwrap();
    }
    assert!(catch_unwind(AssertUnwindSafe(|| drop(b.emit(100)))).is_err());
    assert_eq!(seen.snapshot(), vec![102, 103]);
    assert!(failed_in(&outcomes.of(1), "pairs"));
    assert_eq!(outcomes.of(2), Some(Outcome::Done));
    assert_eq!(outcomes.of(3), Some(Outcome::Done));
}

/// A `reduce` cannot merge, so a processing window adds the event to every window it falls in,
/// one by one: a panic in the second must leave the first as it was, count the error and name
/// the node.
#[tokio::test(start_paused = true)]
async fn a_reduce_panicking_in_one_processing_window_of_several_updates_none() {
    use brooklet::window::ProcessingWindow;
    let ms = Duration::from_millis;
    let source = Source::new();
    let windows = source
        .processing_window(ProcessingWindow::hopping(ms(100), ms(50)))
        .clock_starting_at(0)
        .reduce(0i64, |acc, x: &i64| {
            assert!(!(acc == 10 && *x == 1), "reduce refuses 10 + 1");
            acc + x
        })
        .named("windows");
    let results = windows.sink_to_vec();
    source.emit(3).await.unwrap(); // at 0 ms: in [-50, 50) and [0, 100)
    tokio::time::sleep(ms(55)).await;
    source.emit(10).await.unwrap(); // at 55 ms: in [0, 100) (now 13) and [50, 150) (10)
    tokio::time::sleep(ms(5)).await;
    let outcomes = Outcomes::default();
    let emitted = catch_unwind(AssertUnwindSafe(|| {
        drop(source.emit_with_ack(1, outcomes.ack(1)))
    }));
    assert!(emitted.is_err(), "the panic reaches the caller");
    assert!(
        failed_in(&outcomes.of(1), "windows"),
        "{:?}",
        outcomes.of(1)
    );
    assert_eq!(windows.metrics().errors, 1);
    bounded(source.close()).await.unwrap();
    let got: Vec<(i64, i64)> = results
        .snapshot()
        .into_iter()
        .map(|r| (r.start, r.value))
        .collect();
    assert_eq!(got, vec![(-50, 3), (0, 13), (50, 10)]);
}

/// A reader that goes away (a consumer task cancelled) leaves elements unread: their tokens
/// must fail, or an upstream Kafka source would commit past them.
#[tokio::test]
async fn a_dropped_to_stream_reader_fails_what_it_never_read() {
    use futures::StreamExt;
    let source = Source::new();
    let mut reader = source.to_stream_bounded(4);
    let outcomes = Outcomes::default();
    for x in 1..=3 {
        source.emit_with_ack(x, outcomes.ack(x)).await.unwrap();
    }
    assert_eq!(reader.next().await, Some(1));
    assert_eq!(outcomes.of(1), Some(Outcome::Done));
    drop(reader);
    assert!(
        failed_in(&outcomes.of(2), "to_stream"),
        "{:?}",
        outcomes.of(2)
    );
    assert!(failed_in(&outcomes.of(3), "to_stream"));
    // An element that reaches it later cannot be read either: refused, with a reason.
    let later = source.emit_with_ack(4, outcomes.ack(4)).await;
    assert!(
        matches!(&later, Err(Error::Failed { node, message })
            if node == "to_stream" && message.contains("dropped")),
        "{later:?}"
    );
    assert!(failed_in(&outcomes.of(4), "to_stream"));
}

/// `run` is the caller of every emit it makes: a panic on the way stops it with an error
/// naming the node, after closing the source, so what the graph holds is still flushed.
#[tokio::test]
async fn a_panic_under_run_stops_it_with_the_error_and_flushes_the_graph() {
    let source = Source::from_iter(1..=5i64);
    let batches = source
        .map(|x| {
            assert!(x != 3, "no 3");
            x
        })
        .named("checked")
        .partition(10)
        .sink_to_vec();
    let ran = bounded(source.run()).await;
    assert!(
        matches!(&ran, Err(Error::Panicked { node, message })
            if node == "checked" && message.contains("no 3")),
        "{ran:?}"
    );
    assert!(source.is_closed());
    assert_eq!(batches.snapshot(), vec![vec![1, 2]], "flushed at close");
}

/// And for a panic while the graph flushes at the end of the input.
#[tokio::test]
async fn a_panic_in_the_final_flush_under_run_is_its_error() {
    let source = Source::from_iter(1..=5i64);
    source
        .partition(10)
        .map(|batch: Vec<i64>| assert!(batch.len() > 5, "short batch"))
        .named("flush");
    let ran = bounded(source.run()).await;
    assert!(
        matches!(&ran, Err(Error::Panicked { node, message })
            if node == "flush" && message.contains("short batch")),
        "{ran:?}"
    );
}

/// The same for a panic in the input stream itself.
#[tokio::test]
async fn a_panicking_input_stream_stops_run_with_the_error_and_flushes_the_graph() {
    use futures::StreamExt;
    let input = futures::stream::iter(1..=5i64).map(|x| {
        assert!(x != 3, "the input broke");
        x
    });
    let source = Source::from_stream(input).named("input");
    let batches = source.partition(10).sink_to_vec();
    let ran = bounded(source.run()).await;
    assert!(
        matches!(&ran, Err(Error::Panicked { node, message })
            if node == "input" && message.contains("the input broke")),
        "{ran:?}"
    );
    assert_eq!(batches.snapshot(), vec![vec![1, 2]]);
}

/// An `emit` that passed the source's closed check is held just in front of `graph` until
/// `close()` has finished; then it goes on. It must either be refused with `Closed` or be
/// delivered: never `Ok` and lost. Deterministic, unlike a free-running race.
async fn emit_held_across_close(name: &str, graph: impl Fn(&Stream<i64>) -> Stream<i64>) {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let source = Source::new();
    let gated = source.map(move |x: i64| {
        entered_tx.send(()).unwrap();
        go_rx.lock().unwrap().recv().unwrap();
        x
    });
    let seen = graph(&gated).sink_to_vec();
    let outcomes = Outcomes::default();
    let (emitter, ack) = (source.clone(), outcomes.ack(1));
    let emitted = tokio::task::spawn_blocking(move || {
        futures::executor::block_on(emitter.emit_with_ack(1, ack))
    });
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    bounded(source.close()).await.unwrap();
    go_tx.send(()).unwrap();
    let result = bounded(emitted).await.unwrap();
    match result {
        Ok(()) => assert_eq!(seen.snapshot(), vec![1], "{name}: Ok but not delivered"),
        Err(Error::Closed) => {
            assert!(seen.snapshot().is_empty());
            assert_eq!(
                outcomes.of(1),
                Some(Outcome::Failed(Error::Closed)),
                "{name}"
            );
        }
        Err(e) => panic!("{name}: unexpected error {e:?}"),
    }
}

/// A source whose one element, 10, was emitted and which was then closed: the partner of a
/// join whose other input is under test.
fn ended_partner() -> Source<i64> {
    let other = Source::new();
    drop(other.emit(10));
    drop(other.close());
    other
}

/// A join whose output comes back to it through a `connect` loop that holds elements
/// (`partition`): at `close()` the join ends first, then the loop's flush pushes what it held
/// into it through the feedback edge (whose end is never delivered). That element cannot be
/// joined any more: its token must fail, not wait for ever or come out done.
async fn feedback_into_an_ended_join(
    name: &str,
    join: impl FnOnce(&Source<i64>) -> brooklet::Join<i64, Vec<i64>>,
) {
    let outcomes = Outcomes::default();
    {
        let source = Source::new();
        let joined = join(&source);
        let seen = joined.sink_to_vec();
        let back = joined
            .partition(10)
            .flatten()
            .map(|row: Vec<i64>| row[0] + 100)
            .filter(|x| *x < 150);
        source.emit_with_ack(1, outcomes.ack(1)).await.unwrap();
        // Connected after the first row, so that the row did not wait for this input.
        back.connect(&joined);
        let _ = bounded(source.close()).await;
        assert_eq!(seen.snapshot(), vec![vec![1]], "{name}");
    }
    assert!(
        matches!(outcomes.of(1), Some(Outcome::Failed(Error::Closed))),
        "{name}: {:?}",
        outcomes.of(1)
    );
}

#[tokio::test]
async fn feedback_into_a_join_that_ended_is_refused() {
    let none = std::iter::empty::<&Stream<i64>>;
    feedback_into_an_ended_join("zip_all", |s| s.zip_all(none())).await;
    feedback_into_an_ended_join("combine_latest_all", |s| s.combine_latest_all(none())).await;
}

/// The joins, with their other input ended first: the held element arrives after the join
/// has ended and dropped what it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_held_across_close_into_a_join_is_refused_or_delivered() {
    emit_held_across_close("zip", |s| {
        s.zip(&ended_partner()).map(|(x, _): (i64, i64)| x)
    })
    .await;
    emit_held_across_close("zip_latest", |s| {
        s.zip_latest(&ended_partner()).map(|(x, _): (i64, i64)| x)
    })
    .await;
    emit_held_across_close("combine_latest", |s| {
        s.combine_latest(&ended_partner())
            .map(|(x, _): (i64, i64)| x)
    })
    .await;
    emit_held_across_close("zip_all", |s| {
        s.zip_all([&*ended_partner()]).map(|row: Vec<i64>| row[0])
    })
    .await;
    emit_held_across_close("combine_latest_all", |s| {
        s.combine_latest_all([&*ended_partner()])
            .map(|row: Vec<i64>| row[0])
    })
    .await;
    // The same with the held element on the second input.
    emit_held_across_close("zip, second input", |s| {
        ended_partner().zip(s).map(|(_, x): (i64, i64)| x)
    })
    .await;
    emit_held_across_close("zip_latest, second input", |s| {
        ended_partner().zip_latest(s).map(|(_, x): (i64, i64)| x)
    })
    .await;
    emit_held_across_close("combine_latest, second input", |s| {
        ended_partner()
            .combine_latest(s)
            .map(|(_, x): (i64, i64)| x)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_held_across_close_is_refused_or_delivered() {
    emit_held_across_close("partition", |s| s.partition(3).flatten()).await;
    emit_held_across_close("collect", |s| {
        let c = s.collect();
        c.flatten()
    })
    .await;
    emit_held_across_close("partition_timeout", |s| {
        s.partition_timeout(3, Duration::from_secs(60)).flatten()
    })
    .await;
    emit_held_across_close("buffer", |s| s.buffer(4)).await;
    emit_held_across_close("timed_window", |s| {
        s.timed_window(Duration::from_secs(60)).flatten()
    })
    .await;
    emit_held_across_close("par_map", |s| s.par_map(1, |x| x)).await;
    emit_held_across_close("delay", |s| s.delay(Duration::from_millis(1))).await;
    emit_held_across_close("tumbling window", |s| {
        s.window(brooklet::window::Window::tumbling(1_000))
            .timestamp(|x: &i64| *x)
            .collect(|x: &i64| *x)
            .flat_map(|w| w.value)
    })
    .await;
    emit_held_across_close("count window", |s| {
        s.window(brooklet::window::Window::count(3))
            .collect(|x: &i64| *x)
            .flat_map(|w| w.value)
    })
    .await;
}
