//! The synchronous path allocates nothing per element (DESIGN invariant 1), checked with a
//! counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use brooklet::Source;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
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

    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for x in 0..100_000u64 {
        let emitted = source.emit(x);
        assert!(emitted.is_complete());
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "allocations on the synchronous path");
    assert!(total.load(Ordering::Relaxed) > 0);
}
