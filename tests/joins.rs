//! Joins whose inputs change at run time: `connect` into a `union`, `zip_all` or
//! `combine_latest_all` adds an input, `disconnect` takes one out (Streamz's `connect` and
//! `disconnect` on joins), and cutting an input never wedges the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use brooklet::{Ack, Outcome, Source};
use futures::executor::block_on;

/// A token and a flag set when it is released, with whether it was released as done.
fn token() -> (Ack, Arc<AtomicBool>, Arc<AtomicBool>) {
    let released = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let (r, d) = (released.clone(), done.clone());
    (
        Ack::new(move |outcome| {
            d.store(matches!(outcome, Outcome::Done), Ordering::SeqCst);
            r.store(true, Ordering::SeqCst);
        }),
        released,
        done,
    )
}

#[test]
fn a_union_takes_inputs_connected_later_and_lets_any_input_go() {
    block_on(async {
        let a = Source::new();
        let b = Source::new();
        let merged = a.union(&b);
        let seen = merged.sink_to_vec();
        let c = Source::new();
        c.connect(&merged);
        c.connect(&merged); // already an input: no change
        c.emit(1).await.unwrap();
        // A construction-time input leaves like a connected one.
        assert!(a.disconnect(&merged));
        assert!(!a.disconnect(&merged));
        a.emit(2).await.unwrap();
        b.emit(3).await.unwrap();
        assert!(c.disconnect(&merged));
        c.emit(4).await.unwrap();
        // And comes back.
        a.connect(&merged);
        a.emit(5).await.unwrap();
        assert_eq!(seen.snapshot(), vec![1, 3, 5]);
    });
}

#[test]
fn a_union_waits_for_every_input_it_has_left_even_after_an_ended_one_is_cut() {
    block_on(async {
        let a = Source::new();
        let b = Source::new();
        let c = Source::new();
        let merged = a.union_all([&*b, &*c]);
        // `partition` flushes its partial batch when the union ends.
        let batches = merged.partition(100).sink_to_vec();
        a.emit(1).await.unwrap();
        a.close().await.unwrap();
        assert!(a.disconnect(&merged)); // its end no longer counts
        b.close().await.unwrap();
        assert!(batches.snapshot().is_empty(), "ended with c still open");
        c.emit(2).await.unwrap();
        c.close().await.unwrap();
        assert_eq!(batches.snapshot(), vec![vec![1, 2]]);
    });
}

#[test]
fn cutting_the_last_open_input_of_a_union_ends_it() {
    block_on(async {
        let a = Source::new();
        let b = Source::<i32>::new();
        let merged = a.union(&b);
        let batches = merged.partition(100).sink_to_vec();
        a.emit(1).await.unwrap();
        a.close().await.unwrap();
        assert!(batches.snapshot().is_empty());
        // b never ended, but it was the only input left open: without it, all have ended.
        assert!(b.disconnect(&merged));
        assert_eq!(batches.snapshot(), vec![vec![1]]);
    });
}

#[test]
fn a_source_keeps_waiting_for_its_open_upstreams_after_an_ended_one_is_cut() {
    block_on(async {
        let target = Source::new();
        let seen = target.sink_to_vec();
        let ups: Vec<Source<i32>> = (0..3).map(|_| Source::new()).collect();
        for up in &ups {
            up.connect(&target);
        }
        ups[0].close().await.unwrap();
        assert!(ups[0].disconnect(&target));
        ups[1].close().await.unwrap();
        assert!(
            !target.is_closed(),
            "closed while an upstream is still open"
        );
        ups[2].emit(7).await.unwrap();
        ups[2].close().await.unwrap();
        assert!(target.is_closed());
        assert_eq!(seen.snapshot(), vec![7]);
    });
}

#[test]
fn zip_all_waits_for_an_input_connected_later() {
    block_on(async {
        let a = Source::new();
        let b = Source::new();
        let rows = a.zip_all([&*b]);
        let seen = rows.sink_to_vec();
        a.emit(1).await.unwrap();
        b.emit(10).await.unwrap();
        let c = Source::new();
        c.connect(&rows);
        a.emit(2).await.unwrap();
        b.emit(20).await.unwrap();
        assert_eq!(seen.snapshot(), vec![vec![1, 10]], "a row without c");
        c.emit(200).await.unwrap();
        assert_eq!(seen.snapshot(), vec![vec![1, 10], vec![2, 20, 200]]);
        assert_eq!(rows.metrics().held, 0);
    });
}

#[tokio::test(start_paused = true)]
async fn cutting_a_zip_input_frees_what_it_held_and_unblocks_the_others() {
    let a = Source::new();
    let b = Source::new();
    let c = Source::new();
    let rows = a.zip_all_bounded([&*b, &*c], 1);
    let seen = rows.sink_to_vec();
    // c holds an element, with a token; a runs ahead of b until it pends.
    let (ack, released, done) = token();
    c.emit_with_ack(100, ack).await.unwrap();
    a.emit(1).await.unwrap();
    let pending = a.emit(2);
    assert!(!pending.is_complete());
    assert_eq!(rows.metrics().held, 3);
    // b leaves without ever sending: the rows a and c can make now are emitted at once.
    assert!(b.disconnect(&rows));
    tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the pending emit was wedged")
        .unwrap();
    assert_eq!(seen.snapshot(), vec![vec![1, 100]]);
    assert!(released.load(Ordering::SeqCst) && done.load(Ordering::SeqCst));
    // c leaves while holding nothing; a holds 2, which now makes a row on its own.
    let (ack, released, done) = token();
    c.emit_with_ack(200, ack).await.unwrap();
    assert_eq!(seen.snapshot(), vec![vec![1, 100], vec![2, 200]]);
    assert!(released.load(Ordering::SeqCst) && done.load(Ordering::SeqCst));
    let (ack, released, done) = token();
    c.emit_with_ack(300, ack).await.unwrap();
    assert!(!released.load(Ordering::SeqCst), "held until paired");
    assert!(c.disconnect(&rows));
    assert!(
        released.load(Ordering::SeqCst),
        "a cut input's elements are freed"
    );
    assert!(done.load(Ordering::SeqCst));
    a.emit(3).await.unwrap();
    assert_eq!(seen.snapshot(), vec![vec![1, 100], vec![2, 200], vec![3]]);
}

#[test]
fn zip_all_drops_what_can_never_make_a_row_and_ends_with_its_inputs() {
    block_on(async {
        let a = Source::new();
        let b = Source::new();
        let rows = a.zip_all([&*b]);
        let batches = rows.partition(100).sink_to_vec();
        a.emit(1).await.unwrap();
        b.emit(10).await.unwrap();
        b.close().await.unwrap();
        // b ended with nothing queued: no row can ever hold a's next element.
        let (ack, released, _) = token();
        a.emit_with_ack(2, ack).await.unwrap();
        assert!(released.load(Ordering::SeqCst));
        assert_eq!(rows.metrics().held, 0);
        // An upstream that has already ended joins as an ended input.
        let ended = Source::new();
        ended.close().await.unwrap();
        ended.connect(&rows);
        a.close().await.unwrap();
        assert_eq!(batches.snapshot(), vec![vec![vec![1, 10]]]);
    });
}

#[test]
fn combine_latest_all_follows_its_inputs() {
    block_on(async {
        let a = Source::new();
        let b = Source::new();
        let latest = a.combine_latest_all([&*b]);
        let seen = latest.sink_to_vec();
        let (ack, released, _) = token();
        a.emit(1).await.unwrap();
        b.emit_with_ack(10, ack).await.unwrap();
        assert!(
            !released.load(Ordering::SeqCst),
            "the latest element holds its token"
        );
        let c = Source::new();
        c.connect(&latest);
        a.emit(2).await.unwrap(); // c has not emitted: no row
        c.emit(100).await.unwrap();
        assert!(b.disconnect(&latest));
        assert!(
            released.load(Ordering::SeqCst),
            "cut: its latest element is dropped"
        );
        a.emit(3).await.unwrap();
        assert_eq!(
            seen.snapshot(),
            vec![vec![1, 10], vec![2, 10, 100], vec![3, 100]]
        );
    });
}

#[test]
fn a_loop_back_into_a_union_is_a_feedback_input() {
    block_on(async {
        let a = Source::new();
        let b = Source::new();
        let merged = a.union(&b);
        let batches = merged.partition(100).sink_to_vec();
        let next = merged.filter(|x: &u32| *x < 5).map(|x| x + 1);
        next.connect(&merged);
        a.emit(0).await.unwrap();
        // The feedback input neither keeps the union open nor ends it: closing the two real
        // inputs ends the union, which flushes the partial batch.
        a.close().await.unwrap();
        assert!(batches.snapshot().is_empty());
        b.close().await.unwrap();
        assert_eq!(batches.snapshot(), vec![vec![0, 1, 2, 3, 4, 5]]);
    });
}

#[test]
fn a_join_and_what_it_holds_are_freed_with_their_handles() {
    let element = Arc::new(());
    {
        let a = Source::<Arc<()>>::new();
        let b = Source::new();
        let rows = a.zip_all([&*b]);
        let c = Source::new();
        c.connect(&rows);
        drop(a.emit(element.clone()));
        assert_eq!(rows.metrics().held, 1);
        assert_eq!(Arc::strong_count(&element), 2);
    }
    // Every handle is gone: the graph, and the element the zip held, are freed.
    assert_eq!(Arc::strong_count(&element), 1);
}
