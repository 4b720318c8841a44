//! Streams of batches: `emit_batch` gives what the same elements emitted one by one give,
//! through every kind of operator, with the same tokens and waits; empty batches, batches of
//! one, a batch larger than a bounded node's capacity and a panic in the middle of a batch.

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brooklet::window::Window;
use brooklet::{Ack, Error, Item, Outcome, Source, VecSink};
use futures::executor::block_on;
use tokio::time::{sleep, timeout};

/// The input every comparison uses: long enough for several windows and batches.
fn input() -> Vec<u64> {
    (0..100).collect()
}

/// Builds the same graph twice, feeds one `input()` element by element and the other in
/// batches of `batch`, closes both, and checks that every sink saw the same thing.
async fn same_as_one_by_one<O: Item + PartialEq + Debug>(
    batch: usize,
    build: impl Fn(&Source<u64>) -> Vec<VecSink<O>>,
) {
    let one = Source::new();
    let one_out = build(&one);
    for x in input() {
        one.emit(x).await.unwrap();
    }
    one.close().await.unwrap();

    let many = Source::new();
    let many_out = build(&many);
    for chunk in input().chunks(batch) {
        many.emit_batch(chunk.to_vec()).await.unwrap();
    }
    many.close().await.unwrap();

    assert_eq!(many.metrics().received, input().len() as u64);
    for (a, b) in one_out.iter().zip(&many_out) {
        assert!(
            !a.is_empty(),
            "the graph produced nothing: the check would be vacuous"
        );
        assert_eq!(a.snapshot(), b.snapshot());
        assert_eq!(a.metrics(), b.metrics(), "counters count elements");
    }
}

#[test]
fn element_wise_operators_give_what_single_emits_give() {
    block_on(async {
        for batch in [1, 7, 100] {
            same_as_one_by_one(batch, |s| {
                let m = s.map(|x| x * 3);
                let f = m.filter(|x| x % 2 == 0);
                vec![
                    m.sink_to_vec(),
                    f.sink_to_vec(),
                    s.filter_map(|x| (x % 5 != 0).then_some(x + 1))
                        .sink_to_vec(),
                    s.flat_map(|x| vec![x; (x % 3) as usize]).sink_to_vec(),
                    f.accumulate(0, |a, x| a + x).sink_to_vec(),
                    s.accumulate_state(0u64, |n, x| (n + 1, n * 1000 + x))
                        .sink_to_vec(),
                ]
            })
            .await;
        }
    });
}

#[test]
fn sink_and_counters_see_every_element_of_a_batch() {
    let source = Source::new();
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    let mapped = source.map(|x: u64| x + 1);
    let kept = mapped.filter(|x| x % 2 == 0);
    let sink = kept.sink(move |x| {
        t.fetch_add(x, Ordering::SeqCst);
    });
    block_on(source.emit_batch((0..10).collect())).unwrap();
    assert_eq!(total.load(Ordering::SeqCst), 2 + 4 + 6 + 8 + 10);
    assert_eq!(
        (mapped.metrics().received, mapped.metrics().emitted),
        (10, 10)
    );
    assert_eq!((kept.metrics().received, kept.metrics().emitted), (10, 5));
    assert_eq!(sink.metrics().received, 5);
}

#[test]
fn windows_take_the_elements_of_a_batch_one_by_one() {
    block_on(async {
        same_as_one_by_one(8, |s| vec![s.sliding_window(3).sink_to_vec()]).await;
        same_as_one_by_one(8, |s| vec![s.partition(4).sink_to_vec()]).await;
        same_as_one_by_one(8, |s| vec![s.unique_by(|x| x % 7).sink_to_vec()]).await;
        same_as_one_by_one(8, |s| {
            vec![
                s.window(Window::count(5))
                    .count()
                    .map(|w| w.value)
                    .sink_to_vec(),
            ]
        })
        .await;
        same_as_one_by_one(8, |s| {
            vec![
                s.window(Window::tumbling(10))
                    .timestamp(|x| *x as i64)
                    .sum(|x| *x)
                    .map(|w| (w.start, w.value))
                    .sink_to_vec(),
            ]
        })
        .await;
    });
}

#[tokio::test(start_paused = true)]
async fn buffer_and_zip_take_the_elements_one_by_one() {
    let run = async {
        same_as_one_by_one(16, |s| vec![s.buffer(4).map(|x| x * 2).sink_to_vec()]).await;
        same_as_one_by_one(16, |s| {
            let odd = s.filter(|x| x % 2 == 1);
            vec![s.filter(|x| x % 2 == 0).zip_bounded(&odd, 64).sink_to_vec()]
        })
        .await;
    };
    timeout(Duration::from_secs(60), run)
        .await
        .expect("no hang");
}

#[tokio::test(start_paused = true)]
async fn a_zip_batch_over_the_bound_is_kept_and_pends_until_the_partner_catches_up() {
    let (a, b) = (Source::new(), Source::new());
    let pairs = a.zip_bounded(&b, 2).sink_to_vec();
    let mut ahead = a.emit_batch(vec![1, 2, 3, 4, 5]);
    assert!(
        !ahead.is_complete(),
        "five unpaired elements against a bound of 2"
    );
    b.emit_batch(vec![10, 20]).await.unwrap();
    assert!(
        timeout(Duration::from_secs(1), &mut ahead).await.is_err(),
        "three still wait: over the bound"
    );
    b.emit(30).await.unwrap();
    timeout(Duration::from_secs(1), ahead)
        .await
        .expect("room again")
        .unwrap();
    b.emit_batch(vec![40, 50, 60]).await.unwrap();
    assert_eq!(
        pairs.snapshot(),
        vec![(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)]
    );
    assert_eq!(pairs.metrics().received, 5);
}

// `par_map` works on threads of its own, which a paused clock does not wait for: this test
// runs on the real clock, bounded all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn par_map_takes_the_elements_one_by_one() {
    let run = same_as_one_by_one(16, |s| vec![s.par_map(2, |x| x * x).sink_to_vec()]);
    timeout(Duration::from_secs(60), run)
        .await
        .expect("no hang");
}

#[test]
fn union_passes_batches_on_whole() {
    let (a, b) = (Source::new(), Source::new());
    let merged = a.union(&b);
    let seen = merged.map(|x: u32| x + 1).sink_to_vec();
    block_on(a.emit_batch(vec![1, 2])).unwrap();
    block_on(b.emit_batch(vec![10, 20, 30])).unwrap();
    block_on(a.emit(3)).unwrap();
    assert_eq!(seen.snapshot(), vec![2, 3, 11, 21, 31, 4]);
    assert_eq!(merged.metrics().received, 6);
}

#[test]
fn an_empty_batch_does_nothing() {
    let source = Source::<u32>::new();
    let seen = source.map(|x| x + 1).sink_to_vec();
    let emit = source.emit_batch(Vec::new());
    assert!(emit.is_complete());
    block_on(emit).unwrap();
    assert_eq!(source.metrics().received, 0);
    assert!(seen.is_empty());

    // With a token: released at once, done.
    let outcome = Arc::new(Mutex::new(None));
    let slot = outcome.clone();
    let ack = Ack::new(move |o| *slot.lock().unwrap() = Some(o));
    block_on(source.emit_batch_with_ack(Vec::new(), ack)).unwrap();
    assert_eq!(*outcome.lock().unwrap(), Some(Outcome::Done));

    // Nothing to lose on a closed source either.
    block_on(source.close()).unwrap();
    block_on(source.emit_batch(Vec::new())).unwrap();
    assert_eq!(block_on(source.emit_batch(vec![1])), Err(Error::Closed));
    assert_eq!(block_on(source.emit_batch(vec![1, 2])), Err(Error::Closed));
}

#[test]
fn a_batch_of_one_is_an_emit() {
    let source = Source::new();
    let mapped = source.map(|x: u32| x * 2);
    let seen = mapped.sink_to_vec();
    block_on(source.emit_batch(vec![21])).unwrap();
    block_on(source.emit(4)).unwrap();
    assert_eq!(seen.snapshot(), vec![42, 8]);
    assert_eq!(mapped.metrics().received, 2);
}

/// A token that records its outcome.
fn recorded() -> (Ack, Arc<Mutex<Option<Outcome>>>) {
    let outcome = Arc::new(Mutex::new(None));
    let slot = outcome.clone();
    (Ack::new(move |o| *slot.lock().unwrap() = Some(o)), outcome)
}

#[test]
fn one_token_is_released_when_every_element_of_the_batch_is_done() {
    let source = Source::new();
    let windows = source.sliding_window(2).sink_to_vec();
    let kept = source.filter(|x: &u32| *x > 1).sink_to_vec();
    let (ack, outcome) = recorded();
    block_on(source.emit_batch_with_ack(vec![1, 2, 3], ack)).unwrap();
    // The sliding window still holds element 3 (and 2).
    assert_eq!(*outcome.lock().unwrap(), None);
    block_on(source.emit(4)).unwrap();
    assert_eq!(*outcome.lock().unwrap(), None, "3 is still in the window");
    block_on(source.emit(5)).unwrap();
    assert_eq!(*outcome.lock().unwrap(), Some(Outcome::Done));
    assert_eq!(kept.snapshot(), vec![2, 3, 4, 5]);
    assert_eq!(windows.snapshot()[..2], [vec![1, 2], vec![2, 3]]);

    // Through synchronous nodes only, the token is done when the emit returns.
    let (ack, outcome) = recorded();
    block_on(source.emit_batch_with_ack(vec![7, 8], ack)).unwrap();
    drop(source);
    assert_eq!(*outcome.lock().unwrap(), Some(Outcome::Done));

    let closed = Source::<u32>::new();
    block_on(closed.close()).unwrap();
    let (ack, outcome) = recorded();
    assert_eq!(
        block_on(closed.emit_batch_with_ack(vec![1, 2], ack)),
        Err(Error::Closed)
    );
    assert_eq!(
        *outcome.lock().unwrap(),
        Some(Outcome::Failed(Error::Closed))
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_larger_than_a_buffer_is_taken_and_waits_without_deadlock() {
    let source = Source::new();
    let buffered = source.buffer(4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    buffered.sink_async(move |x: u64| {
        let s = s.clone();
        async move {
            sleep(Duration::from_millis(1)).await;
            s.lock().unwrap().push(x);
        }
    });
    let (ack, outcome) = recorded();
    let emit = source.emit_batch_with_ack((0..1000).collect(), ack);
    assert!(
        !emit.is_complete(),
        "1000 elements into a buffer of 4 must wait"
    );
    timeout(Duration::from_secs(60), emit)
        .await
        .expect("a batch over the capacity must not deadlock")
        .unwrap();
    // The emit resolved once the buffer was back under its bound.
    assert!(buffered.metrics().held <= 4);
    timeout(Duration::from_secs(60), source.close())
        .await
        .expect("close drains")
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), (0..1000).collect::<Vec<u64>>());
    assert_eq!(*outcome.lock().unwrap(), Some(Outcome::Done));

    // A producer that awaits each batch keeps the buffer bounded by one batch.
    let source = Source::new();
    let buffered = source.buffer(4);
    let _sink = buffered.sink_async(|_: u64| sleep(Duration::from_millis(1)));
    for chunk in (0..100u64).collect::<Vec<_>>().chunks(10) {
        timeout(Duration::from_secs(60), source.emit_batch(chunk.to_vec()))
            .await
            .expect("no hang")
            .unwrap();
        assert!(buffered.metrics().held <= 4);
    }
    timeout(Duration::from_secs(60), source.close())
        .await
        .expect("close drains")
        .unwrap();
}

#[test]
fn a_panic_mid_batch_delivers_what_came_before_it() {
    let source = Source::new();
    let mapped = source.map(|x: u32| {
        assert!(x != 3, "three");
        x * 10
    });
    let seen = mapped.sink_to_vec();
    let (ack, outcome) = recorded();
    let emitted = catch_unwind(AssertUnwindSafe(|| {
        drop(source.emit_batch_with_ack(vec![1, 2, 3, 4], ack))
    }));
    assert!(emitted.is_err(), "the panic reaches the caller");
    assert_eq!(seen.snapshot(), vec![10, 20]);
    let m = mapped.metrics();
    assert_eq!((m.received, m.emitted, m.errors), (4, 2, 1));
    match outcome.lock().unwrap().clone() {
        Some(Outcome::Failed(Error::Panicked { node, .. })) => assert_eq!(node, "map"),
        other => panic!("expected a failed token naming map, got {other:?}"),
    }
    // The graph stays usable.
    block_on(source.emit_batch(vec![5, 6])).unwrap();
    block_on(source.emit(7)).unwrap();
    assert_eq!(seen.snapshot(), vec![10, 20, 50, 60, 70]);
    let m = mapped.metrics();
    assert_eq!((m.received, m.emitted, m.errors), (7, 5, 1));
}

#[test]
fn a_panic_mid_batch_in_filter_accumulate_and_sink() {
    let source = Source::new();
    let kept = source
        .filter(|x: &u32| {
            assert!(*x != 5, "five");
            x.is_multiple_of(2)
        })
        .sink_to_vec();
    let totals = source
        .accumulate(0, |a, x: u32| {
            assert!(x != 6, "six");
            a + x
        })
        .sink_to_vec();
    let sunk = Arc::new(Mutex::new(Vec::new()));
    let s = sunk.clone();
    source.sink(move |x: u32| {
        assert!(x != 4, "four");
        s.lock().unwrap().push(x);
    });
    let emitted = catch_unwind(AssertUnwindSafe(|| {
        drop(source.emit_batch(vec![1, 2, 3, 4, 5, 6, 7, 8]))
    }));
    assert!(emitted.is_err());
    // The filter is first: it panicked at 5, passing on 2 and 4; the other branches never ran.
    assert_eq!(kept.snapshot(), vec![2, 4]);
    assert!(totals.is_empty());
    assert!(sunk.lock().unwrap().is_empty());

    // Without the filter's panic, the accumulator stops at 6 with its state as after 5.
    let emitted = catch_unwind(AssertUnwindSafe(|| {
        drop(source.emit_batch(vec![1, 2, 3, 6, 7]))
    }));
    assert!(emitted.is_err());
    assert_eq!(totals.snapshot(), vec![1, 3, 6]);
    block_on(source.emit_batch(vec![1, 1])).unwrap();
    assert_eq!(totals.snapshot(), vec![1, 3, 6, 7, 8]);
    // The sink took 1, 2, 3 before 4 panicked, then the last batch.
    let emitted = catch_unwind(AssertUnwindSafe(|| drop(source.emit_batch(vec![9, 4, 10]))));
    assert!(emitted.is_err());
    assert_eq!(*sunk.lock().unwrap(), vec![1, 1, 9]);
}

#[test]
fn a_batch_fans_out_and_crosses_connections_and_loops() {
    let upstream = Source::new();
    let downstream = Source::new();
    let seen = downstream.map(|x: u32| x + 1).sink_to_vec();
    let direct = upstream.sink_to_vec();
    upstream.connect(&downstream);
    block_on(upstream.emit_batch(vec![1, 2, 3])).unwrap();
    assert_eq!(seen.snapshot(), vec![2, 3, 4]);
    assert_eq!(direct.snapshot(), vec![1, 2, 3]);

    // A feedback loop fed a batch: each element goes round until it reaches 10.
    let counter = Source::new();
    let out = counter.sink_to_vec();
    counter
        .filter(|x: &u32| *x < 10)
        .map(|x| x + 1)
        .connect(&counter);
    block_on(counter.emit_batch(vec![7, 8])).unwrap();
    let mut got = out.snapshot();
    got.sort();
    assert_eq!(got, vec![7, 8, 8, 9, 9, 10, 10]);
}
