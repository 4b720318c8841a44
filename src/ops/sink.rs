//! `sink` and `sink_to_vec`: where elements leave the graph.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::graph::sync::Lock;
use crate::graph::{Cx, Input, NodeDyn, Operator, Outputs};
use crate::{Item, Metrics, Stream};

pub(crate) struct SinkOp<F, T> {
    f: F,
    _t: PhantomData<fn(T)>,
}

impl<F, T> Operator for SinkOp<F, T>
where
    F: Fn(T) + Send + Sync + 'static,
    T: Send + 'static,
{
    type Out = ();
}

impl<F, T> Input<0> for SinkOp<F, T>
where
    F: Fn(T) + Send + Sync + 'static,
    T: Send + 'static,
{
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<()>, _cx: &mut Cx) {
        out.call(|| (self.f)(x));
    }

    fn on_batch(&self, xs: Vec<T>, out: &Outputs<()>, _cx: &mut Cx) {
        // A panic leaves the elements after the panicking one to be dropped by the unwind.
        for x in xs {
            out.call(|| (self.f)(x));
        }
    }
}

/// The operator behind [`Stream::sink_to_vec`]: one lock per batch.
pub(crate) struct VecSinkOp<T> {
    items: Arc<Lock<Vec<T>>>,
}

impl<T: Send + 'static> Operator for VecSinkOp<T> {
    type Out = ();
}

impl<T: Send + 'static> Input<0> for VecSinkOp<T> {
    type In = T;

    #[inline]
    fn on_input(&self, x: T, _out: &Outputs<()>, _cx: &mut Cx) {
        self.items.lock().push(x);
    }

    fn on_batch(&self, xs: Vec<T>, _out: &Outputs<()>, _cx: &mut Cx) {
        let mut items = self.items.lock();
        if items.is_empty() {
            *items = xs;
        } else {
            items.extend(xs);
        }
    }
}

/// Handle to a sink node. Keeping it is optional: the sink lives as long as its upstream.
pub struct Sink {
    node: Arc<dyn NodeDyn>,
}

impl Sink {
    /// The sink's name (`"sink"` unless renamed).
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<i32>::new();
    /// assert_eq!(source.sink(|_| ()).name(), "sink");
    /// ```
    pub fn name(&self) -> String {
        self.node.meta().name()
    }

    /// Renames the sink and returns it.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<i32>::new();
    /// let sink = source.sink(|_| ()).named("discard");
    /// assert!(source.to_dot().contains("discard"));
    /// ```
    pub fn named(self, name: impl Into<String>) -> Sink {
        self.node.meta().set_name(name.into());
        self
    }

    /// The sink's counters.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::new();
    /// let sink = source.sink(|_: u8| ());
    /// drop(source.emit(1));
    /// assert_eq!(sink.metrics().received, 1);
    /// ```
    pub fn metrics(&self) -> Metrics {
        crate::graph::metrics_of(&*self.node)
    }
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink").field("name", &self.name()).finish()
    }
}

/// Handle returned by [`Stream::sink_to_vec`]: everything that arrived, in order.
pub struct VecSink<T> {
    sink: Sink,
    items: Arc<Lock<Vec<T>>>,
}

impl<T> Clone for VecSink<T> {
    fn clone(&self) -> Self {
        VecSink {
            sink: Sink {
                node: self.sink.node.clone(),
            },
            items: self.items.clone(),
        }
    }
}

impl<T> std::ops::Deref for VecSink<T> {
    type Target = Sink;

    fn deref(&self) -> &Sink {
        &self.sink
    }
}

impl<T: fmt::Debug> fmt::Debug for VecSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items.lock().iter()).finish()
    }
}

impl<T: Clone> VecSink<T> {
    /// A copy of everything that arrived so far.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let seen = source.sink_to_vec();
    /// source.emit(1).await?;
    /// assert_eq!(seen.snapshot(), vec![1]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn snapshot(&self) -> Vec<T> {
        self.items.lock().clone()
    }
}

impl<T> VecSink<T> {
    /// Removes and returns everything that arrived so far.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let seen = source.sink_to_vec();
    /// source.emit(1).await?;
    /// assert_eq!(seen.take(), vec![1]);
    /// assert!(seen.take().is_empty());
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock())
    }

    /// How many elements arrived (and were not taken).
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::new();
    /// let seen = source.sink_to_vec();
    /// drop(source.emit('x'));
    /// assert_eq!(seen.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// Whether nothing arrived (or everything was taken).
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<u8>::new();
    /// assert!(source.sink_to_vec().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Item> Stream<T> {
    /// Calls `f` on every element. This is where a graph ends: the sink lives as long as its
    /// upstream does, so the returned handle need not be kept.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let total = Arc::new(AtomicU64::new(0));
    /// let t = total.clone();
    /// source.sink(move |x: u64| { t.fetch_add(x, Ordering::Relaxed); });
    /// source.emit(2).await?;
    /// source.emit(3).await?;
    /// assert_eq!(total.load(Ordering::Relaxed), 5);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn sink(&self, f: impl Fn(T) + Send + Sync + 'static) -> Sink {
        let node = self.then_node("sink", SinkOp { f, _t: PhantomData });
        Sink { node }
    }

    /// Like [`sink`](Self::sink), for a function with state of its own (`FnMut`): a
    /// `BufWriter`, a counter, a file handle, with no `Mutex` of yours.
    ///
    /// The node calls `f` under a lock of its own, so elements pushed from several threads at
    /// once reach it one at a time. That lock is the whole difference from `sink`, which
    /// takes none and so stays the cheaper choice for a function that needs no `&mut`. Since
    /// `f` runs under that lock, it must not emit into a graph that leads back to this sink.
    ///
    /// ```
    /// use std::io::Write;
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let mut out = std::io::BufWriter::new(Vec::new());
    /// let mut count = 0;
    /// source.sink_mut(move |line: &str| {
    ///     count += 1;
    ///     writeln!(out, "{count}: {line}").unwrap();
    /// });
    /// source.emit("hello").await?;
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn sink_mut(&self, f: impl FnMut(T) + Send + 'static) -> Sink {
        let f = Lock::new(f);
        let node = self.then_node(
            "sink",
            SinkOp {
                f: move |x| (f.lock())(x),
                _t: PhantomData,
            },
        );
        Sink { node }
    }

    /// Collects every element into a `Vec` readable through the returned handle.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let seen = source.map(|x: i32| -x).sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// assert_eq!(seen.snapshot(), vec![-1, -2]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn sink_to_vec(&self) -> VecSink<T> {
        let items = Arc::new(Lock::new(Vec::new()));
        let node = self.then_node(
            "sink_to_vec",
            VecSinkOp {
                items: items.clone(),
            },
        );
        VecSink {
            sink: Sink { node },
            items,
        }
    }
}
