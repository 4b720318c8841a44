//! Small synchronisation helpers shared by every node.
//!
//! Invariants:
//! - [`Lock`] never reports poisoning. A user closure that panics while a node holds its state
//!   lock leaves that state as it was before the call (nodes only write state after the closure
//!   returned), so the next element can use it safely.
//! - [`Counter`] is a statistic, not a synchronisation device. It is bumped with a relaxed load
//!   and store, which is a plain `mov` on x86 and costs no read-modify-write. It is exact while one
//!   thread at a time pushes into the node and may miss increments that race with each other.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// A mutex that ignores poisoning (see the module invariants).
#[derive(Debug, Default)]
pub(crate) struct Lock<T>(Mutex<T>);

impl<T> Lock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Lock(Mutex::new(value))
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A cheap, possibly lossy under contention, event counter (see the module invariants).
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline(always)]
    pub(crate) fn inc(&self) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// Adds `n` (a batch), as [`inc`](Self::inc) adds one.
    #[inline(always)]
    pub(crate) fn add(&self, n: usize) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n as u64),
            Ordering::Relaxed,
        );
    }

    /// An exact increment, for rare events (errors) where every count matters.
    pub(crate) fn inc_exact(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Waits until `ready()` holds, re-checking each time `notify` wakes its waiters.
///
/// The notified future is enabled before the check, so a `notify_waiters()` that happens between
/// the check and the await is never missed. Whoever changes the state that `ready` reads must
/// call `notify.notify_waiters()` after releasing its lock.
pub(crate) async fn until(notify: &Notify, ready: impl Fn() -> bool) {
    loop {
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        if ready() {
            return;
        }
        notified.await;
    }
}

/// A [`Notify`] for waits on a condition that the hot path changes often and that is rarely
/// waited for: [`wake`](Gate::wake) costs one atomic load while nobody waits, where
/// `notify_waiters` always takes the notifier's internal lock.
///
/// No wake-up is lost: a waiter counts itself (sequentially consistent) before it checks the
/// condition under the state's lock, and a waker changes the state under that lock, releases
/// it, then reads the count. If the waker reads zero, the waiter counted itself after that
/// read, so its check comes after the change and sees it.
#[derive(Default)]
pub(crate) struct Gate {
    notify: Notify,
    waiting: AtomicUsize,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate::default()
    }

    /// Waits until `ready()` holds (see [`until`]).
    pub(crate) async fn until(&self, ready: impl Fn() -> bool) {
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _counted = Counted(&self.waiting);
        until(&self.notify, ready).await;
    }

    /// Wakes the waiters, if there are any. Call it after releasing the lock under which the
    /// condition changed.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Wakes the waiters if there are any and `ready()` holds now: for a condition whose
    /// every change is followed by this call (a sequentially consistent change, then the
    /// call), so that a waiter not woken now is woken by a later change.
    #[inline]
    pub(crate) fn wake_if(&self, ready: impl FnOnce() -> bool) {
        if self.waiting.load(Ordering::SeqCst) > 0 && ready() {
            self.notify.notify_waiters();
        }
    }
}
