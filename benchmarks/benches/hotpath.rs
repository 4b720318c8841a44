//! A fixed amount of work through one synchronous topology, for instruction-count profiles.
//!
//! Criterion's timings on a shared machine move by tens of percent from run to run; the number
//! of instructions an element costs does not. This driver pushes `count` elements through one
//! topology of `benchmarks/benches/overhead.rs` and exits, so a profiler such as callgrind can count what
//! one element costs (subtract a run with a smaller count to remove the set-up):
//!
//! ```text
//! cargo bench -p brooklet-benchmarks --bench hotpath --no-run
//! valgrind --tool=callgrind target/release/deps/hotpath-<hash> map_filter_sink 100000
//! ```
//!
//! Topologies: `map_filter_sink`, `chain1`, `chain2`, `chain5`, `chain10`, `fan_out_4`,
//! `union_4`, `zip_2`, and each of them with `_batch` appended (the same elements pushed in
//! batches of 1,024 with `emit_batch`). The window workloads of `benchmarks/benches/windows.rs`:
//! `tumbling` and `hopping` (in order, 100 keys) and `tumbling_ooo` and `hopping_ooo` (1,000
//! keys, out of order inside a 1 s grace period). The peer: `rx_map_filter_sink`, `rx_chain1`
//! and `rx_chain10` run the same chains on rxRust `Local`, pushed by the same loop.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use brooklet::Source;

const BATCH: usize = 1024;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let (Some(topology), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: hotpath <topology> <count>");
        return;
    };
    let count: u64 = count.parse().expect("count is a number");
    if let Some(total) = windows(&topology, count) {
        println!("{total}");
        return;
    }
    if let Some(total) = rx_local(&topology, count) {
        println!("{total}");
        return;
    }
    let (name, batched) = match topology.strip_suffix("_batch") {
        Some(name) => (name, true),
        None => (topology.as_str(), false),
    };
    let acc = Arc::new(AtomicU64::new(0));
    let add = {
        let acc = acc.clone();
        move |x: u64| acc.store(acc.load(Relaxed).wrapping_add(x), Relaxed)
    };
    let sources: Vec<Source<u64>> = match name {
        "map_filter_sink" => {
            let s = Source::new();
            s.map(|x| x + 1).filter(|x| x % 3 != 0).sink(add);
            vec![s]
        }
        "fan_out_4" => {
            let s = Source::new();
            let m = s.map(|x| x + 1);
            for _ in 0..4 {
                m.sink(add.clone());
            }
            vec![s]
        }
        "union_4" => {
            let s: Vec<Source<u64>> = (0..4).map(|_| Source::new()).collect();
            let rest: Vec<_> = s[1..].iter().map(|s| (**s).clone()).collect();
            s[0].union_all(&rest).map(|x| x + 1).sink(add);
            s
        }
        "zip_2" => {
            let (a, b) = (Source::new(), Source::new());
            a.zip(&b).map(|(x, y)| x + y).sink(add);
            vec![a, b]
        }
        chain if chain.starts_with("chain") => {
            let depth: usize = chain["chain".len()..].parse().expect("chain<depth>");
            let s = Source::new();
            let mut m = s.map(|x| x + 1);
            for _ in 1..depth {
                m = m.map(|x| x + 1);
            }
            m.sink(add);
            vec![s]
        }
        other => panic!("unknown topology {other}"),
    };
    if batched {
        let mut x = 0;
        while x < count {
            let n = (count - x).min(BATCH as u64);
            for s in &sources {
                let batch: Vec<u64> = (x..x + n).map(black_box).collect();
                drop(black_box(s.emit_batch(batch)));
            }
            x += n;
        }
    } else {
        for x in 0..count {
            for s in &sources {
                drop(s.emit(black_box(x)));
            }
        }
    }
    println!("{}", acc.load(Relaxed));
}

/// The peer to compare with: rxRust `Local` (`Rc`/`RefCell`), the synchronous chains of
/// `overhead.rs` with an `rx_` prefix (`rx_map_filter_sink`, `rx_chain1`, `rx_chain10`), pushed
/// by the same loop; returns the sum, or `None` for a topology that is not one of these.
fn rx_local(topology: &str, count: u64) -> Option<u64> {
    use rxrust::prelude::*;
    use std::cell::Cell;
    use std::convert::Infallible;
    use std::rc::Rc;
    let name = topology.strip_prefix("rx_")?;
    let subject = Local::subject::<u64, Infallible>();
    let acc = Rc::new(Cell::new(0u64));
    let a = acc.clone();
    let add = move |x: u64| a.set(a.get().wrapping_add(x));
    match name {
        "map_filter_sink" => {
            subject
                .clone()
                .map(|x| x + 1)
                .filter(|x| x % 3 != 0)
                .subscribe(add);
        }
        "chain1" => {
            subject.clone().map(|x| x + 1).subscribe(add);
        }
        "chain10" => {
            subject
                .clone()
                .map(|x| x + 1)
                .map(|x| x + 1)
                .map(|x| x + 1)
                .map(|x| x + 1)
                .map(|x| x + 1)
                .map(|x| x + 1)
                .map(|x| x + 1)
                .map(|x| x + 1)
                .map(|x| x + 1)
                .map(|x| x + 1)
                .subscribe(add);
        }
        other => panic!("unknown topology {other}"),
    }
    // The same loop over the sources as brooklet's below.
    let mut subjects = vec![subject];
    for x in 0..count {
        for s in &mut subjects {
            s.next(black_box(x));
        }
    }
    Some(acc.get())
}

#[derive(Clone, Copy)]
struct Reading {
    key: u64,
    ts: i64,
    value: u64,
}

/// The window workloads: `count` events summed per key and window; returns how many results
/// came out, or `None` for a topology that is not a window.
fn windows(topology: &str, count: u64) -> Option<u64> {
    use brooklet::window::Window;
    let (window, shuffled) = match topology {
        "tumbling" => (Window::tumbling(1_000), false),
        "hopping" => (Window::hopping(10_000, 1_000), false),
        "tumbling_ooo" => (Window::tumbling(1_000), true),
        "hopping_ooo" => (Window::hopping(10_000, 1_000), true),
        _ => return None,
    };
    let event = |i: u64| {
        if shuffled {
            let delay = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 500;
            Reading {
                key: i % 1_000,
                ts: (i / 10) as i64 - delay as i64,
                value: i % 7,
            }
        } else {
            Reading {
                key: i % 100,
                ts: i as i64,
                value: i % 7,
            }
        }
    };
    let source = Source::new();
    let results = Arc::new(AtomicU64::new(0));
    let r = results.clone();
    source
        .window(window)
        .timestamp(|e: &Reading| e.ts)
        .grace(if shuffled { 1_000 } else { 0 })
        .key_by(|e| e.key)
        .sum(|e| e.value)
        .sink(move |w| {
            black_box(w);
            r.fetch_add(1, Relaxed);
        });
    for i in 0..count {
        drop(source.emit(black_box(event(i))));
    }
    drop(source.close());
    Some(results.load(Relaxed))
}
