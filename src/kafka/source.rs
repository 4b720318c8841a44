//! `KafkaSource`: a consumer that feeds a graph, at least once.
//!
//! Why it is built this way:
//! - Backpressure without leaving the group. The source awaits each `emit`, so it never runs
//!   ahead of the graph; but a Kafka consumer that stops polling for `max.poll.interval.ms` is
//!   thrown out of its group. So while an emit pends, the source pauses its partitions and
//!   keeps polling (polls return nothing for paused partitions, and they serve rebalances and
//!   keep the membership alive); once the emit resolves it resumes them. Messages that were
//!   already on their way when the pause took effect are kept, in order, and emitted next.
//! - Bounded memory. librdkafka prefetches up to `queued.max.messages.kbytes` per partition
//!   (64 MiB by default); the source sets a much lower cap, which the user may change.
//! - At least once. Every message is emitted with an [`Ack`](crate::Ack) token. The token
//!   marks its offset done in the partition's tracker, which lets the committable position
//!   move only over a contiguous prefix of done messages, whatever order they finish in. The
//!   source commits those positions, and only those (librdkafka's own offset store and
//!   auto-commit are off), every commit interval, when partitions are revoked (before the
//!   rebalance completes, from the consumer context) and when it stops, after the graph has
//!   drained.
//! - Decoding is part of the source: a typed source runs the user's decoder on each message;
//!   a message that does not decode goes to the [`errors`](KafkaSource::errors) side output
//!   with its token, and counts as handled once that output accepted it, so one bad record does
//!   not stop its partition.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::failed;
use super::failure::{Failures, OnFailure};
use super::message::{DecodeError, Message};
use super::offsets::{Assignment, Partition};
use crate::graph::panic_message;
use crate::graph::sync::Lock;
use crate::graph::task::runtime;
use crate::{Ack, Emit, Error, Item, Outcome, Source, Stream};

/// How often the source polls even when nothing arrives: keeps the group membership alive while
/// partitions are paused, and notices a stop request.
const TICK: Duration = Duration::from_millis(200);

/// The consumer context: keeps the assignment tracker in step with rebalances and commits the
/// positions of revoked partitions before they go to another member.
struct Context {
    assignment: Arc<Assignment>,
    /// Rebalances that assigned partitions to this consumer.
    assigned: Arc<AtomicU64>,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let mut commit = TopicPartitionList::new();
                for e in tpl.elements() {
                    if let Some(pos) = self.assignment.revoke(e.topic(), e.partition()) {
                        let _ = commit.add_partition_offset(
                            e.topic(),
                            e.partition(),
                            Offset::Offset(pos),
                        );
                    }
                }
                tracing::debug!(partitions = tpl.count(), "kafka source: partitions revoked");
                if commit.count() > 0 && !consumer.assignment_lost() {
                    log_commit(consumer.commit(&commit, CommitMode::Sync), "on revocation");
                }
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "kafka source: rebalance error"),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.assigned.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                partitions = tpl.count(),
                "kafka source: partitions assigned"
            );
            for e in tpl.elements() {
                self.assignment.assign(e.topic(), e.partition());
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        log_commit(result, "periodic");
    }
}

fn log_commit(result: KafkaResult<()>, when: &str) {
    match result {
        Ok(()) => {}
        // Nothing stored to commit: harmless.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(error = %e, when, "kafka source: commit failed"),
    }
}

type Decoder<T> = Box<dyn Fn(Message) -> Result<T, Box<DecodeError>> + Send + Sync>;

/// What the source reads: a subscription (partitions come from the group) or fixed partitions.
#[derive(Clone, Debug)]
enum Input {
    Topics(Vec<String>),
    Partitions(Vec<(String, i32)>),
}

/// Configures a [`KafkaSource`]; made by [`KafkaSource::builder`].
///
/// ```
/// use std::time::Duration;
/// use brooklet::kafka::KafkaSource;
/// let builder = KafkaSource::builder("127.0.0.1:9092", "my-group")
///     .topic("readings")
///     .commit_interval(Duration::from_secs(2))
///     .set("session.timeout.ms", "6000");
/// # drop(builder);
/// ```
#[derive(Clone)]
pub struct KafkaSourceBuilder {
    config: ClientConfig,
    input: Option<Input>,
    commit_interval: Duration,
    on_failure: OnFailure,
}

impl fmt::Debug for KafkaSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSourceBuilder")
            .field("input", &self.input)
            .field("commit_interval", &self.commit_interval)
            .field("on_failure", &self.on_failure)
            .finish_non_exhaustive()
    }
}

impl KafkaSourceBuilder {
    /// Subscribes to `topic` (as part of the consumer group); call again for more topics.
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// let b = KafkaSource::builder("127.0.0.1:9092", "g").topic("a").topic("b");
    /// # drop(b);
    /// ```
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        match &mut self.input {
            Some(Input::Topics(ts)) => ts.push(topic.into()),
            _ => self.input = Some(Input::Topics(vec![topic.into()])),
        }
        self
    }

    /// Reads partition `partition` of `topic` directly, without group rebalancing (offsets are
    /// still committed under the group id); call again for more partitions. Replaces topics
    /// given with [`topic`](Self::topic).
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// let b = KafkaSource::builder("127.0.0.1:9092", "g").partition("a", 0).partition("a", 1);
    /// # drop(b);
    /// ```
    pub fn partition(mut self, topic: impl Into<String>, partition: i32) -> Self {
        match &mut self.input {
            Some(Input::Partitions(ps)) => ps.push((topic.into(), partition)),
            _ => self.input = Some(Input::Partitions(vec![(topic.into(), partition)])),
        }
        self
    }

    /// Sets a librdkafka consumer property (`session.timeout.ms`, `auto.offset.reset`,
    /// `queued.max.messages.kbytes`, ...). `enable.auto.commit` and `enable.auto.offset.store`
    /// stay off whatever is set here: offsets are committed only once messages are done.
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// let b = KafkaSource::builder("127.0.0.1:9092", "g").set("auto.offset.reset", "latest");
    /// # drop(b);
    /// ```
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.set(key, value);
        self
    }

    /// How often positions of done messages are committed (default 1 s). They are also
    /// committed when partitions are revoked and when the source stops.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::kafka::KafkaSource;
    /// let b = KafkaSource::builder("h:1", "g").commit_interval(Duration::from_millis(500));
    /// # drop(b);
    /// ```
    pub fn commit_interval(mut self, every: Duration) -> Self {
        self.commit_interval = every;
        self
    }

    /// What to do with a message whose processing failed (default [`OnFailure::Stop`]: stop
    /// before it, uncommitted).
    ///
    /// ```
    /// use brooklet::kafka::{KafkaSource, OnFailure};
    /// let b = KafkaSource::builder("127.0.0.1:9092", "g")
    ///     .topic("readings")
    ///     .on_failure(OnFailure::dead_letter("readings-dlq"));
    /// # drop(b);
    /// ```
    pub fn on_failure(mut self, policy: OnFailure) -> Self {
        self.on_failure = policy;
        self
    }

    /// Builds a source that emits every [`Message`] as it is.
    ///
    /// Fails with [`Error::Failed`] when no topic or partition was given or the consumer
    /// cannot be created (a bad property, say).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (the consumer's wake-ups run on it).
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = KafkaSource::builder("127.0.0.1:9092", "g").build().unwrap_err();
    /// assert!(err.to_string().contains("no topic"));
    /// # }
    /// ```
    pub fn build(self) -> Result<KafkaSource<Message>, Error> {
        self.build_inner(Box::new(Ok))
    }

    /// Builds a source that decodes every message with `decode` and emits the results. A
    /// message `decode` refuses goes, with the error, to the [`errors`](KafkaSource::errors)
    /// side output; it counts as handled once that output accepted it, and the partition goes
    /// on.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::kafka::{KafkaSource, Message};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = KafkaSource::builder("127.0.0.1:9092", "g")
    ///     .topic("numbers")
    ///     .build_with(|m: &Message| m.payload_str().unwrap_or("").parse::<i64>())?;
    /// let _sum = source.accumulate(0, |a, x| a + x).sink(|_| ());
    /// let _bad = source.errors().sink(|e| eprintln!("{e}"));
    /// # Ok(()) }
    /// ```
    pub fn build_with<T, E, F>(self, decode: F) -> Result<KafkaSource<T>, Error>
    where
        T: Item,
        E: fmt::Display,
        F: Fn(&Message) -> Result<T, E> + Send + Sync + 'static,
    {
        self.build_inner(Box::new(move |m| match decode(&m) {
            Ok(x) => Ok(x),
            Err(e) => Err(Box::new(DecodeError::new(m, e))),
        }))
    }

    fn build_inner<T: Item>(self, decode: Decoder<T>) -> Result<KafkaSource<T>, Error> {
        // The consumer's wake-ups run on the ambient runtime: say so clearly when there is none.
        let _ = runtime("kafka_source");
        let input = self
            .input
            .ok_or_else(|| failed("kafka_source", "no topic or partition to read was given"))?;
        let mut config = self.config;
        // librdkafka's default max.poll.interval.ms is 300 s.
        let max_poll = config
            .get("max.poll.interval.ms")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(300_000);
        let pause_after = Duration::from_millis((max_poll / 4).min(1000));
        config.set("enable.auto.commit", "false");
        config.set("enable.auto.offset.store", "false");
        let assignment = Arc::new(Assignment::default());
        let assigned = Arc::new(AtomicU64::new(0));
        let consumer: StreamConsumer<Context> = config
            .create_with_context(Context {
                assignment: assignment.clone(),
                assigned: assigned.clone(),
            })
            .map_err(|e| failed("kafka_source", format!("cannot create the consumer: {e}")))?;
        let brokers = config
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_string();
        let failures = Arc::new(Failures::new(&self.on_failure, &brokers)?);
        let source = Source::new().named("kafka_source");
        let errors = Source::new().named("kafka_decode_errors");
        Ok(KafkaSource {
            source,
            errors,
            shared: Arc::new(Shared {
                consumer: Lock::new(Some(consumer)),
                assignment,
                assigned,
                input,
                commit_interval: self.commit_interval,
                pause_after,
                decode,
                failures,
                stop: AtomicBool::new(false),
            }),
        })
    }
}

struct Shared<T> {
    consumer: Lock<Option<StreamConsumer<Context>>>,
    assignment: Arc<Assignment>,
    assigned: Arc<AtomicU64>,
    input: Input,
    commit_interval: Duration,
    pause_after: Duration,
    decode: Decoder<T>,
    failures: Arc<Failures>,
    stop: AtomicBool,
}

/// A Kafka consumer that emits what it reads into a graph, at least once.
///
/// Build one with [`KafkaSource::builder`], wire operators on it (it dereferences to a
/// [`Stream`]), then drive it with [`run`](KafkaSource::run). Each message is emitted with an
/// acknowledgement token; the offset after it is committed only once it and every message
/// before it on its partition are done (every output built from it accepted downstream, or it
/// was dropped). A crash at any moment therefore loses nothing: the next consumer of the
/// partition starts at the first message not done (some messages may be seen twice).
///
/// While the graph is slow to accept, the source pauses its partitions and keeps polling, so it
/// stays in its consumer group; memory stays bounded by a low prefetch cap
/// (`queued.max.messages.kbytes`, settable with [`KafkaSourceBuilder::set`]).
///
/// This example runs against librdkafka's in-process mock cluster; with a real broker, pass its
/// address instead.
///
/// ```
/// use std::time::Duration;
/// use brooklet::kafka::{KafkaSource, ProducerConfig, Record};
/// use brooklet::kafka::rdkafka::mocking::MockCluster;
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = MockCluster::new(1)?;
/// let brokers = cluster.bootstrap_servers();
/// cluster.create_topic("words", 1, 1)?;
///
/// // Put three messages on the topic.
/// let input = brooklet::Source::new();
/// let _out = input.to_kafka(ProducerConfig::new(&brokers), |w: &str| Record::to("words").payload(w))?;
/// for w in ["a", "bb", "ccc"] {
///     input.emit(w).await?;
/// }
/// input.close().await?;
///
/// // Read them back.
/// let source = KafkaSource::builder(&brokers, "lengths").partition("words", 0).build()?;
/// let lengths = source.map(|m| m.payload().map_or(0, |p| p.len())).sink_to_vec();
/// let run = tokio::spawn(source.run());
/// tokio::time::timeout(Duration::from_secs(30), async {
///     while lengths.snapshot().len() < 3 {
///         tokio::time::sleep(Duration::from_millis(10)).await;
///     }
/// })
/// .await?;
/// source.stop();
/// run.await??;
/// assert_eq!(lengths.snapshot(), vec![1, 2, 3]);
/// # Ok(()) }
/// ```
pub struct KafkaSource<T: Item = Message> {
    source: Source<T>,
    errors: Source<DecodeError>,
    shared: Arc<Shared<T>>,
}

impl<T: Item> Clone for KafkaSource<T> {
    fn clone(&self) -> Self {
        KafkaSource {
            source: self.source.clone(),
            errors: self.errors.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<T: Item> Deref for KafkaSource<T> {
    type Target = Stream<T>;

    fn deref(&self) -> &Stream<T> {
        &self.source
    }
}

impl<T: Item> fmt::Debug for KafkaSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSource")
            .field("input", &self.shared.input)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl KafkaSource<Message> {
    /// Starts configuring a source that reads from `brokers` (a comma-separated
    /// `host:port` list) as member of consumer group `group_id`.
    ///
    /// Defaults: `auto.offset.reset=earliest`, a prefetch cap of 4 MiB per partition,
    /// `reconnect.backoff.max.ms=1000`, commits every second.
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = KafkaSource::builder("127.0.0.1:9092", "my-group").topic("t").build()?;
    /// # drop(source);
    /// # Ok(()) }
    /// ```
    pub fn builder(brokers: &str, group_id: &str) -> KafkaSourceBuilder {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("group.id", group_id)
            .set("auto.offset.reset", "earliest")
            .set("queued.max.messages.kbytes", "4096")
            .set("queued.min.messages", "10000")
            .set("reconnect.backoff.max.ms", "1000");
        KafkaSourceBuilder {
            config,
            input: None,
            commit_interval: Duration::from_secs(1),
            on_failure: OnFailure::Stop,
        }
    }
}

impl<T: Item> KafkaSource<T> {
    /// The side output of messages the decoder refused (see
    /// [`KafkaSourceBuilder::build_with`]). With nothing connected, such messages are dropped,
    /// and count as handled.
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = KafkaSource::builder("127.0.0.1:9092", "g")
    ///     .topic("t")
    ///     .build_with(|m| m.payload_str().ok_or("not UTF-8").map(str::to_owned))?;
    /// let dead_letters = source.errors().sink_to_vec();
    /// # drop(dead_letters);
    /// # Ok(()) }
    /// ```
    pub fn errors(&self) -> Stream<DecodeError> {
        (*self.errors).clone()
    }

    /// Messages emitted and not yet done, over every assigned partition.
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = KafkaSource::builder("127.0.0.1:9092", "g").topic("t").build()?;
    /// assert_eq!(source.in_flight(), 0);
    /// # Ok(()) }
    /// ```
    pub fn in_flight(&self) -> usize {
        self.shared.assignment.in_flight()
    }

    /// How many times partitions were assigned to this source: once for fixed partitions, once
    /// per rebalance that gave it partitions in a group. A steady member sees 1; a count that
    /// keeps growing means the consumer keeps leaving and rejoining its group.
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = KafkaSource::builder("127.0.0.1:9092", "g").topic("t").build()?;
    /// assert_eq!(source.assignments(), 0); // not running yet
    /// # Ok(()) }
    /// ```
    pub fn assignments(&self) -> u64 {
        self.shared.assigned.load(Ordering::Relaxed)
    }

    /// Asks a running [`run`](Self::run) to stop: it stops reading, closes the graph (which
    /// drains), commits what is done and returns. Before `run`, makes it return at once.
    ///
    /// ```
    /// use brooklet::kafka::KafkaSource;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = KafkaSource::builder("127.0.0.1:9092", "g").topic("t").build()?;
    /// source.stop();
    /// source.run().await?; // returns at once
    /// # Ok(()) }
    /// ```
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.failures.stopper.wake.notify_waiters();
    }

    /// Reads and emits until [`stop`](Self::stop) is called or the graph fails, then closes the
    /// graph, waits for it to drain, commits the positions of done messages and returns.
    ///
    /// Each emission is awaited (backpressure); while one pends for long, the partitions are
    /// paused and the consumer keeps polling. A message whose processing failed (a panic on
    /// its path, synchronous or not, a node that died) follows the
    /// [failure policy](KafkaSourceBuilder::on_failure): by default the source stops, `run`
    /// returns the error, and neither that message nor anything after it on its partition is
    /// committed, so the next run reads it again. Fails with [`Error::NotRunnable`] when the
    /// source is already being run.
    ///
    /// ```
    /// use brooklet::{Error, kafka::KafkaSource};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// let source = KafkaSource::builder("127.0.0.1:9092", "g").topic("t").build()?;
    /// source.stop();
    /// source.run().await?;
    /// assert_eq!(source.run().await, Err(Error::NotRunnable)); // the consumer is gone
    /// # Ok(()) }
    /// ```
    pub fn run(&self) -> impl Future<Output = Result<(), Error>> + Send + use<T> {
        let this = self.clone();
        let consumer = self.shared.consumer.lock().take();
        async move {
            let Some(consumer) = consumer else {
                return Err(Error::NotRunnable);
            };
            let result = this.drive(&consumer).await;
            // Close the graph: it flushes and drains, and the tokens of everything in it are
            // released; then commit what is done.
            let closed = this.source.close().await;
            let errors_closed = this.errors.close().await;
            // Dead-letter writes decide whether their messages are done.
            this.shared.failures.flush().await;
            this.commit(&consumer, CommitMode::Sync, true);
            this.shared.assignment.revoke_all();
            drop(consumer);
            if let Some(e) = this.shared.failures.stopper.error() {
                return Err(e);
            }
            result.and(closed).and(errors_closed)
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
            || self.source.is_closed()
            || self.shared.failures.stopper.error().is_some()
    }

    fn subscribe(&self, consumer: &StreamConsumer<Context>) -> Result<(), Error> {
        match &self.shared.input {
            Input::Topics(topics) => {
                let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
                consumer
                    .subscribe(&topics)
                    .map_err(|e| failed("kafka_source", format!("cannot subscribe: {e}")))
            }
            Input::Partitions(parts) => {
                let mut tpl = TopicPartitionList::new();
                for (t, p) in parts {
                    tpl.add_partition(t, *p);
                }
                consumer
                    .assign(&tpl)
                    .map_err(|e| failed("kafka_source", format!("cannot assign: {e}")))?;
                for (t, p) in parts {
                    self.shared.assignment.assign(t, *p);
                }
                self.shared.assigned.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    async fn drive(&self, consumer: &StreamConsumer<Context>) -> Result<(), Error> {
        if self.stopping() {
            return Ok(());
        }
        self.subscribe(consumer)?;
        let mut reader = Reader::new(self.shared.commit_interval, self.shared.pause_after);
        loop {
            if self.stopping() {
                return Ok(());
            }
            let Some((msg, part)) = reader.next(self, consumer).await else {
                continue;
            };
            if !part.track(msg.offset()) {
                // Revoked while it waited, or already seen: its new owner reads it.
                continue;
            }
            let offset = msg.offset();
            let kept = self.shared.failures.keeps_messages().then(|| msg.clone());
            let releasing = part.clone();
            let failures = self.shared.failures.clone();
            let ack = Ack::new(move |outcome: Outcome| {
                if outcome.is_done() {
                    releasing.done(offset);
                } else {
                    let error = outcome.error().cloned().unwrap_or_else(|| {
                        failed("kafka_source", "the message's processing did not finish")
                    });
                    failures.failed(&releasing, offset, kept.as_ref(), error);
                }
            });
            // A panic on the synchronous path unwinds through the emit; the source keeps a
            // clone of the token across the call, to mark it failed with the panic's message
            // before it is released.
            let token = ack.clone();
            let emitted =
                std::panic::catch_unwind(AssertUnwindSafe(|| match (self.shared.decode)(msg) {
                    Ok(x) => self.source.emit_with_ack(x, token),
                    Err(bad) => {
                        tracing::debug!(error = %bad, "kafka source: message does not decode");
                        self.errors.emit_with_ack(*bad, token)
                    }
                }));
            let emit = match emitted {
                Ok(emit) => emit,
                Err(payload) => {
                    ack.fail(Error::Panicked {
                        node: self.source.name(),
                        message: format!(
                            "while processing {}/{}@{offset}: {}",
                            part.topic,
                            part.partition,
                            panic_message(&*payload)
                        ),
                    });
                    // The failure policy decides: stop, or dead-letter and go on.
                    drop(ack);
                    continue;
                }
            };
            drop(ack);
            // When messages keep arriving and emits complete at once, this loop would never
            // yield: a task it wakes (the Kafka sink's, delivering results) waits in this
            // worker's next-task slot, which other workers do not take, until the input runs
            // dry. Spending tokio's cooperative budget yields every so often.
            tokio::task::consume_budget().await;
            match reader.wait(self, consumer, emit).await {
                Ok(()) => {}
                Err(Error::Closed) => return Ok(()),
                Err(e) if self.shared.failures.keeps_messages() => {
                    // Failed elements reach the dead-letter topic through their tokens.
                    tracing::warn!(error = %e, "kafka source: the graph reported a failure");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Commits the positions of done messages (those that moved, or all when `all`).
    fn commit(&self, consumer: &StreamConsumer<Context>, mode: CommitMode, all: bool) {
        let positions = self.shared.assignment.positions(all);
        if positions.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::with_capacity(positions.len());
        for (t, p, pos) in &positions {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*pos));
        }
        match mode {
            CommitMode::Sync => log_commit(consumer.commit(&tpl, mode), "on stop"),
            // The result comes to the context's commit callback.
            CommitMode::Async => log_commit(consumer.commit(&tpl, mode), "periodic"),
        }
    }
}

/// The polling half of the run loop: messages received while the partitions were paused, the
/// commit clock and the rate limit of repeated warnings.
struct Reader {
    backlog: std::collections::VecDeque<(Message, Arc<Partition>)>,
    commit_every: Duration,
    pause_after: Duration,
    last_commit: Instant,
    last_warning: Option<Instant>,
    topics: Vec<Arc<str>>,
}

enum Polled {
    Message(Message, Arc<Partition>),
    Nothing,
}

impl Reader {
    fn new(commit_every: Duration, pause_after: Duration) -> Reader {
        Reader {
            backlog: Default::default(),
            commit_every,
            pause_after,
            last_commit: Instant::now(),
            last_warning: None,
            topics: Vec::new(),
        }
    }

    /// Interned topic names: one allocation per topic, not per message.
    fn topic(&mut self, name: &str) -> Arc<str> {
        if let Some(t) = self.topics.iter().find(|t| ***t == *name) {
            return t.clone();
        }
        let t: Arc<str> = name.into();
        self.topics.push(t.clone());
        t
    }

    /// The next message to emit, from the backlog or the consumer; `None` after a tick or an
    /// error (the caller checks for a stop and calls again).
    async fn next<T: Item>(
        &mut self,
        src: &KafkaSource<T>,
        consumer: &StreamConsumer<Context>,
    ) -> Option<(Message, Arc<Partition>)> {
        if let Some(m) = self.backlog.pop_front() {
            return Some(m);
        }
        match self.poll(src, consumer).await {
            Polled::Message(m, p) => Some((m, p)),
            Polled::Nothing => None,
        }
    }

    /// One poll, bounded by the tick; commits when the interval has passed.
    async fn poll<T: Item>(
        &mut self,
        src: &KafkaSource<T>,
        consumer: &StreamConsumer<Context>,
    ) -> Polled {
        if self.last_commit.elapsed() >= self.commit_every {
            src.commit(consumer, CommitMode::Async, false);
            self.last_commit = Instant::now();
        }
        let stopped = src.shared.failures.stopper.wake.notified();
        let received = tokio::select! {
            r = consumer.recv() => r.map(|m| {
                let topic = self.topic(m.topic());
                Message::from_kafka(&m, topic)
            }),
            _ = tokio::time::sleep(TICK) => return Polled::Nothing,
            _ = stopped => return Polled::Nothing,
        };
        match received {
            Ok(msg) => match src.shared.assignment.get(msg.topic(), msg.partition()) {
                Some(part) => Polled::Message(msg, part),
                None => Polled::Nothing,
            },
            Err(e) => {
                self.warn(&e);
                Polled::Nothing
            }
        }
    }

    /// Waits for `emit`; if it pends for long, pauses the assigned partitions and polls
    /// meanwhile.
    async fn wait<T: Item>(
        &mut self,
        src: &KafkaSource<T>,
        consumer: &StreamConsumer<Context>,
        emit: Emit,
    ) -> Result<(), Error> {
        if emit.is_complete() {
            return emit.await;
        }
        let mut emit = std::pin::pin!(emit);
        // A short wait is only waited out: pausing makes librdkafka drop what it prefetched
        // for the partitions and fetch it again on resume, which costs a fetch round trip
        // per pause. Past `pause_after` (well inside `max.poll.interval.ms`), pause and poll.
        if let Ok(r) = tokio::time::timeout(self.pause_after, &mut emit).await {
            return r;
        }
        tracing::debug!("kafka source: downstream is slow, pausing the partitions");
        pause(consumer, true);
        let result = loop {
            if src.shared.stop.load(Ordering::Acquire) {
                // Stop requested: stop waiting; closing the graph drains what is pending.
                break Ok(());
            }
            let stopped = src.shared.failures.stopper.wake.notified();
            let polled = tokio::select! {
                r = &mut emit => break r,
                p = self.poll(src, consumer) => p,
                _ = stopped => continue,
            };
            if let Polled::Message(m, p) = polled {
                self.backlog.push_back((m, p));
                // Partitions assigned meanwhile were not paused yet.
                pause(consumer, true);
            }
        };
        pause(consumer, false);
        result
    }

    fn warn(&mut self, e: &KafkaError) {
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            self.last_warning = Some(now);
            tracing::warn!(error = %e, "kafka source: consumer error (repeats within 10 s are logged at debug)");
        } else {
            tracing::debug!(error = %e, "kafka source: consumer error");
        }
    }
}

/// Pauses (or resumes) every partition currently assigned.
fn pause(consumer: &StreamConsumer<Context>, paused: bool) {
    let Ok(tpl) = consumer.assignment() else {
        return;
    };
    if tpl.count() == 0 {
        return;
    }
    let r = if paused {
        consumer.pause(&tpl)
    } else {
        consumer.resume(&tpl)
    };
    if let Err(e) = r {
        tracing::debug!(error = %e, paused, "kafka source: pause/resume failed");
    }
}
