//! `ParMap`: the options of a parallel map.

/// Options for [`Stream::par_map_with`](crate::Stream::par_map_with) and
/// [`Stream::try_par_map_with`](crate::Stream::try_par_map_with): how many worker threads, how
/// much work may be in flight, and whether outputs keep the input order.
///
/// In flight means accepted by the node and not yet accepted downstream: queued for a worker,
/// running, finished and waiting for its turn (ordered mode), or being pushed downstream. When
/// that reaches the bound, `emit` pends until half the bound has drained (wake-ups are batched).
///
/// ```
/// use brooklet::parallel::ParMap;
/// let options = ParMap::new(4).max_in_flight(16).unordered();
/// assert_eq!(options.workers(), 4);
/// assert_eq!(options.in_flight(), 16);
/// assert!(!options.is_ordered());
/// assert_eq!(ParMap::new(3).in_flight(), 32); // default: 2 × workers, at least 32
/// assert_eq!(ParMap::new(20).in_flight(), 40);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParMap {
    workers: usize,
    in_flight: usize,
    ordered: bool,
}

impl ParMap {
    /// `workers` threads, at most `2 × workers` elements in flight but never fewer than 32,
    /// outputs in input order.
    ///
    /// Why at least 32: with room for only a few, the producer waits for nearly every result
    /// and must be woken for each, which costs a worker several microseconds per element; with
    /// 32 it is woken once per 16 results, and each worker still has queued work. Set a lower
    /// bound with [`max_in_flight`](Self::max_in_flight) when elements are large.
    ///
    /// # Panics
    ///
    /// If `workers` is 0.
    ///
    /// ```
    /// use brooklet::parallel::ParMap;
    /// let options = ParMap::new(2);
    /// assert!(options.is_ordered());
    /// ```
    pub fn new(workers: usize) -> ParMap {
        assert!(
            workers > 0,
            "par_map: `workers` must be at least 1 (got 0): a pool with no worker thread would \
             never run the function"
        );
        ParMap {
            workers,
            in_flight: workers.saturating_mul(2).max(32),
            ordered: true,
        }
    }

    /// Sets how many elements may be in flight before `emit` pends. A bound below the number
    /// of workers leaves some workers idle.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// use brooklet::parallel::ParMap;
    /// assert_eq!(ParMap::new(2).max_in_flight(1).in_flight(), 1);
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> ParMap {
        assert!(n > 0, "par_map: `max_in_flight` must be at least 1 (got 0)");
        self.in_flight = n;
        self
    }

    /// Emits results as they finish instead of in input order.
    ///
    /// ```
    /// use brooklet::parallel::ParMap;
    /// assert!(!ParMap::new(2).unordered().is_ordered());
    /// ```
    pub fn unordered(mut self) -> ParMap {
        self.ordered = false;
        self
    }

    /// The number of worker threads.
    ///
    /// ```
    /// use brooklet::parallel::ParMap;
    /// assert_eq!(ParMap::new(5).workers(), 5);
    /// ```
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The in-flight bound.
    ///
    /// ```
    /// use brooklet::parallel::ParMap;
    /// assert_eq!(ParMap::new(1).in_flight(), 32);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether outputs keep the input order.
    ///
    /// ```
    /// use brooklet::parallel::ParMap;
    /// assert!(ParMap::new(1).is_ordered());
    /// ```
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }
}
