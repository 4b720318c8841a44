//! The synchronous path allocates nothing per element, checked with a counting global
//! allocator. Only the measuring thread's allocations count: the test harness and other
//! tests' threads allocate whenever they like, and must not make this test flaky.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brooklet::Source;

struct Counting;

thread_local! {
    /// Allocations made by this thread (a const-initialised cell: reading it never allocates).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter left, and is not the one measured.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwards the caller's layout unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn synchronous_emits_allocate_nothing() {
    let source = Source::new();
    let total = Arc::new(AtomicU64::new(0));
    let mapped = source.map(|x: u64| x + 1).filter(|x| x % 3 != 0);
    for _ in 0..3 {
        let t = total.clone();
        mapped.map(|x| x * 2).sink(move |x| {
            t.fetch_add(x, Ordering::Relaxed);
        });
    }
    let accumulated = mapped.accumulate(0u64, |a, x| a + x);
    let _ = accumulated.sink(|_| ());

    let before = allocations();
    for x in 0..100_000u64 {
        let emitted = source.emit(x);
        assert!(emitted.is_complete());
    }
    let after = allocations();
    assert_eq!(after - before, 0, "allocations on the synchronous path");
    assert!(total.load(Ordering::Relaxed) > 0);
}

#[test]
fn the_counter_sees_this_threads_allocations() {
    // Guards the guard: a counter that saw nothing would make the test above pass vacuously.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 64]);
    assert!(allocations() > before);
    drop(v);
}

#[test]
fn synchronous_emits_with_a_token_allocate_nothing_per_hop() {
    // A token is one allocation of the caller's; pushing it through synchronous nodes adds none.
    let source = Source::new();
    let _out = source
        .map(|x: u64| x + 1)
        .filter(|x| x % 2 == 0)
        .sink(|_| ());
    let ack = brooklet::Ack::new(|_| ());
    let before = allocations();
    for x in 0..10_000u64 {
        let emitted = source.emit_with_ack(x, ack.clone());
        assert!(emitted.is_complete());
        drop(emitted);
    }
    assert_eq!(
        allocations() - before,
        0,
        "allocations per element with a token"
    );
}
