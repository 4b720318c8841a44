//! Per-element overhead of brooklet compared with its peers, all in one run.
//!
//! Topologies (N elements per timed iteration, reported as `Throughput::Elements(N)`):
//!
//! * `map_filter_sink`: map(x + 1) -> filter(x % 3 != 0) -> sink (accumulate)
//! * `chain_depth/<D>`: D x map(x + 1) -> sink, D in [`DEPTHS`] (the slope gives the
//!   cost of one more node)
//! * `fan_out_4`: map(x + 1) -> 4 sinks, each accumulating into its own accumulator
//! * `union_4`: 4 sources merged into one sink; element x enters through source x % 4
//! * `zip_2`: 2 sources zipped into one sink of pairs (adding both halves); even elements
//!   enter through the first source, odd ones through the second, so N elements make N / 2
//!   pairs (still reported per input element)
//!
//! Peers (one bench function each, inside the same criterion group per topology):
//!
//! * `hand_loop`      — a plain `for` loop doing the same arithmetic (the limit)
//! * `futures_stream` — `futures::stream::iter(..)` + `StreamExt` combinators, driven by
//!   `futures::executor::block_on` (no tokio)
//! * `rxrust_local`   — rxRust 1.0.0-rc.6 `Local::subject()` (Rc/RefCell), pipeline built
//!   once, `next(x)` per element
//! * `rxrust_shared`  — rxRust 1.0.0-rc.6 `Shared::subject()` (Arc/Mutex), same shape
//! * `brooklet`       — `brooklet::Source`, pipeline built once, `emit(x)` per element
//! * `brooklet_batch` — the same graph fed with `Source::emit_batch`, [`BATCH`] elements per
//!   call (each batch collected from `black_box`ed elements into a fresh `Vec`, counted in
//!   the time). `union_4` sends each batch of [`BATCH`] to the next source in turn; `zip_2`
//!   splits each batch into its even elements (to the first source) and odd ones (to the
//!   second), through `zip_bounded(.., BATCH)` so a half batch never waits for the other.
//!
//! rxRust has `merge` (chained 3 times for 4 sources) and `zip`; futures has `select_all`
//! and `zip`.
//!
//! Every input element goes through `black_box`, and after each timed batch the
//! accumulator(s) are read and `black_box`ed. Before timing, every peer's pipeline is run
//! once over the whole input and its result is checked against the reference sum, so all
//! peers provably do the same work.
//!
//! Accumulators: `hand_loop` and `futures_stream` use plain local `u64`s (FnMut);
//! `rxrust_local` uses `Rc<Cell<u64>>` (it allows non-Send FnMut subscribers);
//! `rxrust_shared` and `brooklet` need `Send` (+ `Sync` for brooklet) closures, so both use
//! the same `Arc<AtomicU64>` with a relaxed load + store (no atomic read-modify-write).
//!
//! Run: `cargo bench -p brooklet-benchmarks --bench overhead` (about 2 minutes).

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main,
    measurement::WallTime,
};
use futures::{StreamExt, executor::block_on, future, stream};
use rxrust::prelude::*;

/// Elements pushed per timed iteration.
const N: u64 = 10_000;
/// Elements per `emit_batch` call in the `brooklet_batch` peer.
const BATCH: usize = 1024;
/// Chain depths for the `chain_depth` topology.
const DEPTHS: [usize; 4] = [1, 2, 5, 10];

// ---------------------------------------------------------------------------
// Reference results (computed without black_box, used for the sanity checks)
// ---------------------------------------------------------------------------

fn expected_map_filter_sink() -> u64 {
    (0..N)
        .map(|x| x + 1)
        .filter(|x| x % 3 != 0)
        .fold(0u64, |a, x| a.wrapping_add(x))
}

fn expected_chain(d: usize) -> u64 {
    (0..N).fold(0u64, |a, x| a.wrapping_add(x + d as u64))
}

/// Sum over the four accumulators (each one should hold the sum of x + 1).
fn expected_fan_out_4() -> u64 {
    let one = (0..N).fold(0u64, |a, x| a.wrapping_add(x + 1));
    one.wrapping_mul(4)
}

/// Union of 4 and zip of 2 both add up every input element.
fn expected_sum() -> u64 {
    (0..N).fold(0u64, |a, x| a.wrapping_add(x))
}

// ---------------------------------------------------------------------------
// Shared measurement harness
// ---------------------------------------------------------------------------

/// The `Send + Sync` accumulator used by brooklet and rxrust_shared sinks:
/// a relaxed load followed by a relaxed store (no atomic RMW).
#[derive(Clone, Default)]
struct SyncAcc(Arc<AtomicU64>);

impl SyncAcc {
    #[inline(always)]
    fn add(&self, x: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(x), Relaxed);
    }
    #[inline(always)]
    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// The non-Send accumulator used by rxrust_local sinks.
#[derive(Clone, Default)]
struct LocalAcc(Rc<Cell<u64>>);

impl LocalAcc {
    #[inline(always)]
    fn add(&self, x: u64) {
        self.0.set(self.0.get().wrapping_add(x));
    }
    #[inline(always)]
    fn get(&self) -> u64 {
        self.0.get()
    }
}

/// One timed batch for push-style peers: every element goes through `black_box`.
#[inline(always)]
fn push_batch(emit: &mut impl FnMut(u64)) {
    for x in 0..N {
        emit(black_box(x));
    }
}

/// Bench a push-style peer (pipeline built once outside the timed loop; `emit` pushes
/// one element; `read` returns the accumulator(s), combined).
fn bench_push(
    g: &mut BenchmarkGroup<'_, WallTime>,
    (peer, param): (&str, u64),
    (mut emit, read): (impl FnMut(u64), impl Fn() -> u64),
    expected: u64,
) {
    // Sanity: one full pass must add exactly the reference result to the accumulator(s).
    let before = read();
    push_batch(&mut emit);
    let got = read().wrapping_sub(before);
    assert_eq!(
        got, expected,
        "{peer}/{param}: pipeline produced a wrong result"
    );

    g.bench_function(BenchmarkId::new(peer, param), |b| {
        b.iter(|| {
            push_batch(&mut emit);
            black_box(read())
        })
    });
}

/// One timed batch for chunk-style peers: the input cut into `Vec`s of [`BATCH`] elements,
/// every element through `black_box`.
#[inline(always)]
fn push_chunks(emit: &mut impl FnMut(Vec<u64>)) {
    let mut start = 0;
    while start < N {
        let end = (start + BATCH as u64).min(N);
        emit((start..end).map(black_box).collect());
        start = end;
    }
}

/// Bench a chunk-style peer (like [`bench_push`], `emit` takes a whole batch).
fn bench_chunks(
    g: &mut BenchmarkGroup<'_, WallTime>,
    (peer, param): (&str, u64),
    (mut emit, read): (impl FnMut(Vec<u64>), impl Fn() -> u64),
    expected: u64,
) {
    let before = read();
    push_chunks(&mut emit);
    let got = read().wrapping_sub(before);
    assert_eq!(
        got, expected,
        "{peer}/{param}: pipeline produced a wrong result"
    );

    g.bench_function(BenchmarkId::new(peer, param), |b| {
        b.iter(|| {
            push_chunks(&mut emit);
            black_box(read())
        })
    });
}

/// Bench a batch-style peer (`batch` processes all N elements and returns the result).
fn bench_batch(
    g: &mut BenchmarkGroup<'_, WallTime>,
    (peer, param): (&str, u64),
    mut batch: impl FnMut() -> u64,
    expected: u64,
) {
    assert_eq!(
        batch(),
        expected,
        "{peer}/{param}: pipeline produced a wrong result"
    );
    g.bench_function(BenchmarkId::new(peer, param), |b| {
        b.iter(|| black_box(batch()))
    });
}

/// `maps!(expr; + + +)` applies `.map(|x: u64| x + 1)` once per `+`.
macro_rules! maps {
    ($e:expr;) => { $e };
    ($e:expr; + $($rest:tt)*) => { maps!($e.map(|x: u64| x + 1); $($rest)*) };
}

/// Expands `$body` with `$s` replaced by `$base` followed by `d` maps, for d in DEPTHS.
macro_rules! with_depth {
    ($d:expr, $base:expr, |$s:ident| $body:expr) => {
        match $d {
            1 => { let $s = maps!($base; +); $body }
            2 => { let $s = maps!($base; + +); $body }
            5 => { let $s = maps!($base; + + + + +); $body }
            10 => { let $s = maps!($base; + + + + + + + + + +); $body }
            d => unreachable!("depth {d} not in DEPTHS"),
        }
    };
}

// ---------------------------------------------------------------------------
// Peer 1: hand loop (the limit)
// ---------------------------------------------------------------------------

fn hand_map_filter_sink() -> u64 {
    let mut acc = 0u64;
    for x in 0..N {
        let y = black_box(x) + 1;
        if y % 3 != 0 {
            acc = acc.wrapping_add(y);
        }
    }
    acc
}

fn hand_chain<const D: usize>() -> u64 {
    let mut acc = 0u64;
    for x in 0..N {
        let mut y = black_box(x);
        for _ in 0..D {
            y += 1;
        }
        acc = acc.wrapping_add(y);
    }
    acc
}

fn hand_fan_out_4() -> u64 {
    let (mut a0, mut a1, mut a2, mut a3) = (0u64, 0u64, 0u64, 0u64);
    for x in 0..N {
        let y = black_box(x) + 1;
        a0 = a0.wrapping_add(y);
        a1 = a1.wrapping_add(y);
        a2 = a2.wrapping_add(y);
        a3 = a3.wrapping_add(y);
    }
    black_box((a0, a1, a2, a3));
    a0.wrapping_add(a1).wrapping_add(a2).wrapping_add(a3)
}

fn hand_union_4() -> u64 {
    let mut acc = 0u64;
    for x in 0..N {
        acc = acc.wrapping_add(black_box(x));
    }
    acc
}

fn hand_zip_2() -> u64 {
    let mut acc = 0u64;
    for x in (0..N).step_by(2) {
        let (a, b) = (black_box(x), black_box(x + 1));
        acc = acc.wrapping_add(a.wrapping_add(b));
    }
    acc
}

fn hand_chain_dyn(d: usize) -> fn() -> u64 {
    match d {
        1 => hand_chain::<1>,
        2 => hand_chain::<2>,
        5 => hand_chain::<5>,
        10 => hand_chain::<10>,
        d => unreachable!("depth {d} not in DEPTHS"),
    }
}

// ---------------------------------------------------------------------------
// Peer 2: futures::StreamExt, driven by futures::executor::block_on
// ---------------------------------------------------------------------------

fn futures_map_filter_sink() -> u64 {
    let mut acc = 0u64;
    block_on(
        stream::iter((0..N).map(black_box))
            .map(|x| x + 1)
            .filter(|x| future::ready(x % 3 != 0))
            .for_each(|x| {
                acc = acc.wrapping_add(x);
                future::ready(())
            }),
    );
    acc
}

fn futures_chain(d: usize) -> u64 {
    let mut acc = 0u64;
    with_depth!(d, stream::iter((0..N).map(black_box)), |s| block_on(
        s.for_each(|x| {
            acc = acc.wrapping_add(x);
            future::ready(())
        })
    ));
    acc
}

fn futures_fan_out_4() -> u64 {
    let (mut a0, mut a1, mut a2, mut a3) = (0u64, 0u64, 0u64, 0u64);
    block_on(
        stream::iter((0..N).map(black_box))
            .map(|x| x + 1)
            .for_each(|y| {
                a0 = a0.wrapping_add(y);
                a1 = a1.wrapping_add(y);
                a2 = a2.wrapping_add(y);
                a3 = a3.wrapping_add(y);
                future::ready(())
            }),
    );
    black_box((a0, a1, a2, a3));
    a0.wrapping_add(a1).wrapping_add(a2).wrapping_add(a3)
}

fn futures_union_4() -> u64 {
    let mut acc = 0u64;
    let sources = (0..4).map(|i| stream::iter((i..N).step_by(4).map(black_box)));
    block_on(stream::select_all(sources).for_each(|x| {
        acc = acc.wrapping_add(x);
        future::ready(())
    }));
    acc
}

fn futures_zip_2() -> u64 {
    let mut acc = 0u64;
    let evens = stream::iter((0..N).step_by(2).map(black_box));
    let odds = stream::iter((1..N).step_by(2).map(black_box));
    block_on(evens.zip(odds).for_each(|(a, b)| {
        acc = acc.wrapping_add(a.wrapping_add(b));
        future::ready(())
    }));
    acc
}

// ---------------------------------------------------------------------------
// Peer 3: rxRust 1.0.0-rc.6, Local (Rc/RefCell) and Shared (Arc/Mutex) subjects.
// Pipelines are built once; the returned `emit` calls `subject.next(x)`.
// ---------------------------------------------------------------------------

fn rx_local_map_filter_sink() -> (impl FnMut(u64), impl Fn() -> u64) {
    let mut subject = Local::subject::<u64, Infallible>();
    let acc = LocalAcc::default();
    let a = acc.clone();
    subject
        .clone()
        .map(|x| x + 1)
        .filter(|x| x % 3 != 0)
        .subscribe(move |x| a.add(x));
    (move |x| subject.next(x), move || acc.get())
}

fn rx_shared_map_filter_sink() -> (impl FnMut(u64), impl Fn() -> u64) {
    let mut subject = Shared::subject::<u64, Infallible>();
    let acc = SyncAcc::default();
    let a = acc.clone();
    subject
        .clone()
        .map(|x| x + 1)
        .filter(|x| x % 3 != 0)
        .subscribe(move |x| a.add(x));
    (move |x| subject.next(x), move || acc.get())
}

fn rx_local_chain(d: usize) -> (impl FnMut(u64), impl Fn() -> u64) {
    let mut subject = Local::subject::<u64, Infallible>();
    let acc = LocalAcc::default();
    let a = acc.clone();
    let sink = move |x: u64| a.add(x);
    with_depth!(d, subject.clone(), |s| {
        s.subscribe(sink);
    });
    (move |x| subject.next(x), move || acc.get())
}

fn rx_shared_chain(d: usize) -> (impl FnMut(u64), impl Fn() -> u64) {
    let mut subject = Shared::subject::<u64, Infallible>();
    let acc = SyncAcc::default();
    let a = acc.clone();
    let sink = move |x: u64| a.add(x);
    with_depth!(d, subject.clone(), |s| {
        s.subscribe(sink);
    });
    (move |x| subject.next(x), move || acc.get())
}

/// map runs once; `publish()` multicasts the mapped value to 4 subscribers (via an
/// internal Subject), like brooklet's 4 sinks on one map node.
fn rx_local_fan_out_4() -> (impl FnMut(u64), impl Fn() -> u64) {
    let mut subject = Local::subject::<u64, Infallible>();
    let accs: [LocalAcc; 4] = Default::default();
    let connectable = subject.clone().map(|x| x + 1).publish();
    for acc in &accs {
        let a = acc.clone();
        connectable.fork().subscribe(move |x| a.add(x));
    }
    connectable.connect();
    (
        move |x| subject.next(x),
        move || accs.iter().fold(0u64, |s, a| s.wrapping_add(a.get())),
    )
}

fn rx_shared_fan_out_4() -> (impl FnMut(u64), impl Fn() -> u64) {
    let mut subject = Shared::subject::<u64, Infallible>();
    let accs: [SyncAcc; 4] = Default::default();
    let connectable = subject.clone().map(|x| x + 1).publish();
    for acc in &accs {
        let a = acc.clone();
        connectable.fork().subscribe(move |x| a.add(x));
    }
    connectable.connect();
    (
        move |x| subject.next(x),
        move || accs.iter().fold(0u64, |s, a| s.wrapping_add(a.get())),
    )
}

fn rx_local_union_4() -> (impl FnMut(u64), impl Fn() -> u64) {
    let subjects: [_; 4] = std::array::from_fn(|_| Local::subject::<u64, Infallible>());
    let acc = LocalAcc::default();
    let a = acc.clone();
    let [s0, s1, s2, s3] = subjects.clone();
    s0.merge(s1)
        .merge(s2)
        .merge(s3)
        .subscribe(move |x| a.add(x));
    let mut subjects = subjects;
    (
        move |x| subjects[(x % 4) as usize].next(x),
        move || acc.get(),
    )
}

fn rx_shared_union_4() -> (impl FnMut(u64), impl Fn() -> u64) {
    let subjects: [_; 4] = std::array::from_fn(|_| Shared::subject::<u64, Infallible>());
    let acc = SyncAcc::default();
    let a = acc.clone();
    let [s0, s1, s2, s3] = subjects.clone();
    s0.merge(s1)
        .merge(s2)
        .merge(s3)
        .subscribe(move |x| a.add(x));
    let mut subjects = subjects;
    (
        move |x| subjects[(x % 4) as usize].next(x),
        move || acc.get(),
    )
}

fn rx_local_zip_2() -> (impl FnMut(u64), impl Fn() -> u64) {
    let mut a = Local::subject::<u64, Infallible>();
    let mut b = Local::subject::<u64, Infallible>();
    let acc = LocalAcc::default();
    let sink = acc.clone();
    a.clone()
        .zip(b.clone())
        .subscribe(move |(x, y): (u64, u64)| sink.add(x.wrapping_add(y)));
    (
        move |x| if x % 2 == 0 { a.next(x) } else { b.next(x) },
        move || acc.get(),
    )
}

fn rx_shared_zip_2() -> (impl FnMut(u64), impl Fn() -> u64) {
    let mut a = Shared::subject::<u64, Infallible>();
    let mut b = Shared::subject::<u64, Infallible>();
    let acc = SyncAcc::default();
    let sink = acc.clone();
    a.clone()
        .zip(b.clone())
        .subscribe(move |(x, y): (u64, u64)| sink.add(x.wrapping_add(y)));
    (
        move |x| if x % 2 == 0 { a.next(x) } else { b.next(x) },
        move || acc.get(),
    )
}

// ---------------------------------------------------------------------------
// Peer 4: brooklet. Kept separate so it is easy to adjust if the API spelling changes.
// Each function builds the pipeline once and returns (emit one element, read accumulators).
// ---------------------------------------------------------------------------

mod brooklet_peer {
    use super::{BATCH, SyncAcc};
    use brooklet::{Source, Stream};

    /// Push one element. `emit` completes synchronously here; the returned (already
    /// complete) future is simply dropped.
    #[inline(always)]
    fn emit(src: &Source<u64>, x: u64) {
        drop(src.emit(x));
    }

    /// Push one batch; like `emit`, it completes synchronously here.
    #[inline(always)]
    fn emit_batch(src: &Source<u64>, xs: Vec<u64>) {
        drop(src.emit_batch(xs));
    }

    /// Reads a graph's accumulator(s).
    pub type Read = Box<dyn Fn() -> u64>;

    /// A one-source graph fed one element per call.
    pub fn single(build: impl Fn(&Source<u64>) -> Read) -> (impl FnMut(u64), Read) {
        let src = Source::<u64>::new();
        let read = build(&src);
        (move |x| emit(&src, x), read)
    }

    /// The same graph fed one batch per call.
    pub fn batched(build: impl Fn(&Source<u64>) -> Read) -> (impl FnMut(Vec<u64>), Read) {
        let src = Source::<u64>::new();
        let read = build(&src);
        (move |xs| emit_batch(&src, xs), read)
    }

    pub fn map_filter_sink(src: &Source<u64>) -> Read {
        let acc = SyncAcc::default();
        let a = acc.clone();
        src.map(|x| x + 1)
            .filter(|x| x % 3 != 0)
            .sink(move |x| a.add(x));
        Box::new(move || acc.get())
    }

    pub fn chain(d: usize) -> impl Fn(&Source<u64>) -> Read {
        assert!(d >= 1);
        move |src| {
            let acc = SyncAcc::default();
            let a = acc.clone();
            let mut s = src.map(|x| x + 1);
            for _ in 1..d {
                s = s.map(|x| x + 1);
            }
            s.sink(move |x| a.add(x));
            Box::new(move || acc.get())
        }
    }

    pub fn fan_out_4(src: &Source<u64>) -> Read {
        let accs: [SyncAcc; 4] = Default::default();
        let m = src.map(|x| x + 1);
        for acc in &accs {
            let a = acc.clone();
            m.sink(move |x| a.add(x));
        }
        Box::new(move || accs.iter().fold(0u64, |s, a| s.wrapping_add(a.get())))
    }

    fn union_4_graph() -> ([Source<u64>; 4], SyncAcc) {
        let sources: [Source<u64>; 4] = Default::default();
        let acc = SyncAcc::default();
        let a = acc.clone();
        sources[0]
            .union_all(sources[1..].iter().map(|s| &**s))
            .sink(move |x| a.add(x));
        (sources, acc)
    }

    pub fn union_4() -> (impl FnMut(u64), impl Fn() -> u64) {
        let (sources, acc) = union_4_graph();
        (
            move |x| emit(&sources[(x % 4) as usize], x),
            move || acc.get(),
        )
    }

    pub fn union_4_batch() -> (impl FnMut(Vec<u64>), impl Fn() -> u64) {
        let (sources, acc) = union_4_graph();
        let mut next = 0;
        (
            move |xs| {
                emit_batch(&sources[next], xs);
                next = (next + 1) % 4;
            },
            move || acc.get(),
        )
    }

    /// `None`: the default bound of `zip`.
    fn zip_2_graph(bound: Option<usize>) -> (Source<u64>, Source<u64>, SyncAcc) {
        let (a, b) = (Source::<u64>::new(), Source::<u64>::new());
        let acc = SyncAcc::default();
        let sink = acc.clone();
        let other: &Stream<u64> = &b;
        let zipped = match bound {
            Some(bound) => a.zip_bounded(other, bound),
            None => a.zip(other),
        };
        zipped.sink(move |(x, y)| sink.add(x.wrapping_add(y)));
        (a, b, acc)
    }

    pub fn zip_2() -> (impl FnMut(u64), impl Fn() -> u64) {
        let (a, b, acc) = zip_2_graph(None);
        (
            move |x| emit(if x % 2 == 0 { &a } else { &b }, x),
            move || acc.get(),
        )
    }

    pub fn zip_2_batch() -> (impl FnMut(Vec<u64>), impl Fn() -> u64) {
        let (a, b, acc) = zip_2_graph(Some(BATCH));
        (
            move |xs: Vec<u64>| {
                let (evens, odds): (Vec<u64>, Vec<u64>) = xs.into_iter().partition(|x| x % 2 == 0);
                emit_batch(&a, evens);
                emit_batch(&b, odds);
            },
            move || acc.get(),
        )
    }
}

// ---------------------------------------------------------------------------
// Criterion groups: one group per topology, one bench function per peer.
// ---------------------------------------------------------------------------

fn map_filter_sink(c: &mut Criterion) {
    let expected = expected_map_filter_sink();
    let mut g = c.benchmark_group("map_filter_sink");
    g.throughput(Throughput::Elements(N));
    let id = |peer| (peer, N);

    bench_batch(&mut g, id("hand_loop"), hand_map_filter_sink, expected);
    bench_batch(
        &mut g,
        id("futures_stream"),
        futures_map_filter_sink,
        expected,
    );
    bench_push(
        &mut g,
        id("rxrust_local"),
        rx_local_map_filter_sink(),
        expected,
    );
    bench_push(
        &mut g,
        id("rxrust_shared"),
        rx_shared_map_filter_sink(),
        expected,
    );
    let (single, batched) = (brooklet_peer::single, brooklet_peer::batched);
    let build = brooklet_peer::map_filter_sink;
    bench_push(&mut g, id("brooklet"), single(build), expected);
    bench_chunks(&mut g, id("brooklet_batch"), batched(build), expected);
    g.finish();
}

fn chain_depth(c: &mut Criterion) {
    let mut g = c.benchmark_group("chain_depth");
    g.throughput(Throughput::Elements(N));
    for d in DEPTHS {
        let expected = expected_chain(d);
        let id = |peer| (peer, d as u64);

        bench_batch(&mut g, id("hand_loop"), hand_chain_dyn(d), expected);
        bench_batch(&mut g, id("futures_stream"), || futures_chain(d), expected);
        bench_push(&mut g, id("rxrust_local"), rx_local_chain(d), expected);
        bench_push(&mut g, id("rxrust_shared"), rx_shared_chain(d), expected);
        let (single, batched) = (brooklet_peer::single, brooklet_peer::batched);
        let build = brooklet_peer::chain(d);
        bench_push(&mut g, id("brooklet"), single(&build), expected);
        bench_chunks(&mut g, id("brooklet_batch"), batched(&build), expected);
    }
    g.finish();
}

fn fan_out_4(c: &mut Criterion) {
    let expected = expected_fan_out_4();
    let mut g = c.benchmark_group("fan_out_4");
    g.throughput(Throughput::Elements(N));
    let id = |peer| (peer, N);

    bench_batch(&mut g, id("hand_loop"), hand_fan_out_4, expected);
    bench_batch(&mut g, id("futures_stream"), futures_fan_out_4, expected);
    bench_push(&mut g, id("rxrust_local"), rx_local_fan_out_4(), expected);
    bench_push(&mut g, id("rxrust_shared"), rx_shared_fan_out_4(), expected);
    let (single, batched) = (brooklet_peer::single, brooklet_peer::batched);
    let build = brooklet_peer::fan_out_4;
    bench_push(&mut g, id("brooklet"), single(build), expected);
    bench_chunks(&mut g, id("brooklet_batch"), batched(build), expected);
    g.finish();
}

fn union_4(c: &mut Criterion) {
    let expected = expected_sum();
    let mut g = c.benchmark_group("union_4");
    g.throughput(Throughput::Elements(N));
    let id = |peer| (peer, N);

    bench_batch(&mut g, id("hand_loop"), hand_union_4, expected);
    bench_batch(&mut g, id("futures_stream"), futures_union_4, expected);
    bench_push(&mut g, id("rxrust_local"), rx_local_union_4(), expected);
    bench_push(&mut g, id("rxrust_shared"), rx_shared_union_4(), expected);
    bench_push(&mut g, id("brooklet"), brooklet_peer::union_4(), expected);
    bench_chunks(
        &mut g,
        id("brooklet_batch"),
        brooklet_peer::union_4_batch(),
        expected,
    );
    g.finish();
}

fn zip_2(c: &mut Criterion) {
    let expected = expected_sum();
    let mut g = c.benchmark_group("zip_2");
    g.throughput(Throughput::Elements(N));
    let id = |peer| (peer, N);

    bench_batch(&mut g, id("hand_loop"), hand_zip_2, expected);
    bench_batch(&mut g, id("futures_stream"), futures_zip_2, expected);
    bench_push(&mut g, id("rxrust_local"), rx_local_zip_2(), expected);
    bench_push(&mut g, id("rxrust_shared"), rx_shared_zip_2(), expected);
    bench_push(&mut g, id("brooklet"), brooklet_peer::zip_2(), expected);
    bench_chunks(
        &mut g,
        id("brooklet_batch"),
        brooklet_peer::zip_2_batch(),
        expected,
    );
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = overhead;
    config = config();
    targets = map_filter_sink, chain_depth, fan_out_4, union_4, zip_2
}
criterion_main!(overhead);
