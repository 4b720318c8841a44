//! Acknowledgement tokens: released exactly when every output built from an element has been
//! accepted downstream, or the element was dropped. Mirrors Streamz's reference-counting tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use brooklet::{Ack, Source};

/// A token and a way to ask whether it has been released.
fn token() -> (Ack, Arc<AtomicBool>) {
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    (
        Ack::new(move |_| flag.store(true, Ordering::SeqCst)),
        released,
    )
}

fn released(flag: &Arc<AtomicBool>) -> bool {
    flag.load(Ordering::SeqCst)
}

#[tokio::test]
async fn stateless_nodes_release_at_once() {
    let source = Source::new();
    let _a = source.map(|x: i32| x + 1).sink(|_| ());
    let _b = source.filter(|x| *x > 100).sink(|_| ());
    let _c = source.map(|x| vec![x, x]).flatten().sink(|_| ());
    let _d = source.unique().sink(|_| ());
    let _e = source.union(&Source::new()).sink(|_| ());
    for x in [1, 1, 2] {
        let (ack, flag) = token();
        source.emit_with_ack(x, ack).await.unwrap();
        assert!(released(&flag), "token of {x} still held");
    }
}

#[tokio::test]
async fn sliding_window_holds_until_the_element_leaves_the_window() {
    // Streamz test_sliding_window_ref_counts, with the element held while it is in the window.
    let source = Source::new();
    let _w = source.sliding_window(2).sink(|_| ());
    let (first, first_flag) = token();
    source.emit_with_ack(-1, first).await.unwrap();
    let mut prev = first_flag;
    for i in 0..10 {
        let (ack, flag) = token();
        assert!(!released(&prev));
        source.emit_with_ack(i, ack).await.unwrap();
        // prev is still in the window [prev, i]; the element before it has left.
        assert!(!released(&prev));
        assert!(!released(&flag));
        let (next, next_flag) = token();
        source.emit_with_ack(100 + i, next).await.unwrap();
        assert!(released(&prev), "left the window at step {i}");
        assert!(!released(&next_flag));
        prev = next_flag;
    }
}

#[tokio::test]
async fn partition_holds_until_the_batch_is_emitted() {
    // Streamz test_partition_ref_counts.
    let source = Source::new();
    let _p = source.partition(2).sink(|_| ());
    let mut held = Vec::new();
    for i in 0..10 {
        let (ack, flag) = token();
        source.emit_with_ack(i, ack).await.unwrap();
        held.push(flag);
        if i % 2 == 0 {
            assert!(!released(held.last().unwrap()));
        } else {
            assert!(held.iter().all(released));
        }
    }
}

#[tokio::test]
async fn collect_holds_until_flush() {
    // Streamz test_collect_ref_counts.
    let source = Source::new();
    let collected = source.collect();
    let _s = collected.sink(|_| ());
    let flags: Vec<_> = futures::future::join_all((0..10).map(|i| {
        let (ack, flag) = token();
        let emit = source.emit_with_ack(i, ack);
        async move {
            emit.await.unwrap();
            flag
        }
    }))
    .await;
    assert!(flags.iter().all(|f| !released(f)));
    collected.flush().await.unwrap();
    assert!(flags.iter().all(released));
}

#[tokio::test]
async fn zip_holds_until_paired() {
    // Streamz test_zip_ref_counts.
    let (a, b) = (Source::new(), Source::new());
    let _z = a.zip(&b).sink(|_| ());
    let (r1, f1) = token();
    a.emit_with_ack(1, r1).await.unwrap();
    assert!(!released(&f1));
    let (r2, f2) = token();
    a.emit_with_ack(2, r2).await.unwrap();
    assert!(!released(&f1) && !released(&f2));
    let (r3, f3) = token();
    b.emit_with_ack(3, r3).await.unwrap();
    assert!(released(&f1));
    assert!(!released(&f2));
    assert!(released(&f3));
}

#[tokio::test]
async fn zip_batches_release_a_token_once_all_its_elements_are_paired() {
    let (a, b) = (Source::new(), Source::new());
    let pairs = a.zip_bounded(&b, 8).sink_to_vec();
    // A batch without tokens waits on one side; a batch with a token pairs with it.
    a.emit_batch(vec![1, 2, 3]).await.unwrap();
    let (r1, f1) = token();
    b.emit_batch_with_ack(vec![10, 20, 30, 40], r1)
        .await
        .unwrap();
    assert!(!released(&f1), "40 still waits for its partner");
    // A tokenless batch meets the held, token-carrying 40: the pair takes that token.
    a.emit_batch(vec![4, 5]).await.unwrap();
    assert!(released(&f1));
    let (r2, f2) = token();
    b.emit_batch_with_ack(vec![50], r2).await.unwrap();
    assert!(released(&f2));
    assert_eq!(
        pairs.snapshot(),
        vec![(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)]
    );
}

#[tokio::test]
async fn combine_latest_holds_the_latest_value() {
    // Streamz test_combine_latest_ref_counts.
    let (a, b) = (Source::new(), Source::new());
    let _c = a.combine_latest(&b).sink(|_| ());
    let (r1, f1) = token();
    a.emit_with_ack(1, r1).await.unwrap();
    assert!(!released(&f1));
    let (r2, f2) = token();
    a.emit_with_ack(2, r2).await.unwrap();
    assert!(released(&f1));
    assert!(!released(&f2));
    let (r3, f3) = token();
    b.emit_with_ack(3, r3).await.unwrap();
    assert!(!released(&f2));
    assert!(!released(&f3));
}

#[tokio::test]
async fn zip_latest_holds_lossless_until_emitted_and_lossy_while_latest() {
    // Streamz test_zip_latest_ref_counts.
    let (a, b) = (Source::new(), Source::new());
    let _z = a.zip_latest(&b).sink(|_| ());
    let (r1, f1) = token();
    a.emit_with_ack(1, r1).await.unwrap();
    assert!(!released(&f1));
    let (r2, f2) = token();
    b.emit_with_ack(2, r2).await.unwrap();
    assert!(released(&f1));
    assert!(!released(&f2));
    let (r3, f3) = token();
    b.emit_with_ack(3, r3).await.unwrap();
    assert!(released(&f2));
    assert!(!released(&f3));
    let (r4, f4) = token();
    a.emit_with_ack(3, r4).await.unwrap();
    assert!(!released(&f3));
    assert!(released(&f4));
}

#[tokio::test]
async fn tokens_of_held_elements_follow_them_downstream() {
    // A batch built from held elements carries all their tokens: a pull reader that has not
    // read the batch yet keeps them all.
    let source = Source::new();
    let mut pull = source.partition(2).to_stream();
    let (r1, f1) = token();
    let (r2, f2) = token();
    source.emit_with_ack(1, r1).await.unwrap();
    source.emit_with_ack(2, r2).await.unwrap();
    assert!(!released(&f1) && !released(&f2));
    use futures::StreamExt;
    assert_eq!(pull.next().await, Some(vec![1, 2]));
    assert!(released(&f1) && released(&f2));
}

#[tokio::test]
async fn leftovers_dropped_at_close_release_their_tokens() {
    let (a, b) = (Source::new(), Source::<u8>::new());
    let _z = a.zip(&b).sink(|_| ());
    let (r1, f1) = token();
    a.emit_with_ack(1u8, r1).await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
    assert!(released(&f1));
}

#[tokio::test]
async fn nodes_that_can_emit_nothing_more_release_their_tokens_at_close() {
    let a = Source::new();
    let b = Source::new();
    let _w = a.sliding_window(3).sink(|_| ());
    let _c = a.combine_latest(&b).sink(|_| ());
    let _l = a.combine_latest_all([&*b]).sink(|_| ());
    let _u = a.unique().sink(|_| ());
    let (ack, flag) = token();
    a.emit_with_ack(1, ack).await.unwrap();
    assert!(
        !released(&flag),
        "held by the windows and the latest values"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
    assert!(released(&flag));
}
