//! `KafkaSource`: a consumer that feeds a graph, at least once.
//!
//! Why it is built this way:
//! - Backpressure without leaving the group. The source awaits each `emit`, so it never runs
//!   ahead of the graph; but a Kafka consumer that stops polling for `max.poll.interval.ms` is
//!   thrown out of its group. So while an emit pends, the source pauses its partitions and
//!   keeps polling (polls return nothing for paused partitions, and they serve rebalances and
//!   keep the membership alive); once the emit resolves it resumes them. Messages that were
//!   already on their way when the pause took effect are kept, in order, and emitted next.
//! - Bounded memory. librdkafka prefetches into the consumer's one queue up to
//!   `queued.max.messages.kbytes` for all partitions together (64 MiB by default; a fetch may
//!   overshoot it by up to `fetch.message.max.bytes`, 1 MiB, per partition); the source sets
//!   4 MiB, which the user may change. `queued.min.messages` (per partition) only asks for
//!   more prefetch and yields to the byte cap.
//! - Bounded startup. Before reading, the source asks the brokers for the metadata of its
//!   topics, within the startup timeout: an unreachable broker or a missing topic or
//!   partition fails `run` with an error that names them, instead of a silent wait.
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
//!   not stop its partition. With nothing connected to that output it is a failure like any
//!   other.

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
use super::failure::{Failures, OnFailure, Stopper};
use super::message::{DecodeError, Message};
use super::offsets::{Assignment, Partition};
use crate::graph::sync::Lock;
use crate::graph::task::runtime;
use crate::graph::{Acks, panic_message};
use crate::{Ack, Emit, Error, Item, Outcome, Source, Stream};

/// How often the source polls even when nothing arrives: keeps the group membership alive while
/// partitions are paused, and notices a stop request.
const TICK: Duration = Duration::from_millis(200);

/// How often the metadata is asked whether an input the consumer reported unknown is back.
const MISSING_CHECK: Duration = Duration::from_secs(1);

/// The consumer context: keeps the assignment tracker in step with rebalances and commits the
/// positions of revoked partitions before they go to another member.
struct Context {
    assignment: Arc<Assignment>,
    /// Rebalances that assigned partitions to this consumer.
    assigned: Arc<AtomicU64>,
    /// Where a fatal client error stops the source.
    stopper: Arc<Stopper>,
    /// The last error librdkafka reported, quoted when the source cannot start.
    last_error: Arc<Lock<Option<String>>>,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        *self.last_error.lock() = Some(format!("{error}: {reason}"));
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            // librdkafka gives up on a fatal error (a fenced or misconfigured client): the
            // consumer will never read again, so stop rather than poll forever.
            self.stopper.stop_with(failed(
                "kafka_source",
                format!("fatal Kafka client error: {reason}"),
            ));
        } else {
            tracing::warn!(error = %error, reason, "kafka source: client error");
        }
    }
}

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
            Rebalance::Error(e) => {
                // librdkafka drops the whole assignment after a rebalance error: the partitions
                // may already belong to another member, so stop tracking them all (nothing is
                // committed for them from here; their new owner reads what was not committed).
                tracing::warn!(error = %e, "kafka source: rebalance error, dropping every partition");
                self.assignment.revoke_all();
            }
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

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if matches!(&result, Err(e) if !is_no_offset(e)) {
            // Send these positions again with the next periodic commit.
            self.assignment.commit_failed(positions_of(offsets));
        }
        log_commit(result, "periodic");
    }
}

fn log_commit(result: KafkaResult<()>, when: &str) {
    match result {
        Ok(()) => {}
        Err(e) if is_no_offset(&e) => {}
        Err(e) => tracing::warn!(error = %e, when, "kafka source: commit failed"),
    }
}

/// Nothing stored to commit: harmless.
fn is_no_offset(e: &KafkaError) -> bool {
    matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
}

/// The positions in a commit's partition list.
fn positions_of(tpl: &TopicPartitionList) -> Vec<(String, i32, i64)> {
    tpl.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.topic().to_string(), e.partition(), o)),
            _ => None,
        })
        .collect()
}

type Decoder<T> = Box<dyn Fn(Message) -> Result<T, Box<DecodeError>> + Send + Sync>;

/// How messages become elements: one by one, or gathered into batches.
enum Decode<T> {
    One(Decoder<T>),
    Batch {
        max_len: usize,
        linger: Duration,
        make: Box<dyn Fn(Vec<Message>) -> T + Send + Sync>,
    },
}

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
    startup_timeout: Duration,
    on_failure: OnFailure,
}

impl fmt::Debug for KafkaSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSourceBuilder")
            .field("input", &self.input)
            .field("commit_interval", &self.commit_interval)
            .field("startup_timeout", &self.startup_timeout)
            .field("on_failure", &self.on_failure)
            .finish_non_exhaustive()
    }
}

impl KafkaSourceBuilder {
    /// Subscribes to `topic` (as part of the consumer group); call again for more topics. A
    /// name starting with `^` is a regular expression matching topic names.
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

    /// How long [`run`](KafkaSource::run) may take to reach the brokers and find every topic
    /// and partition it reads (default 30 s). Past it, `run` fails naming the brokers or the
    /// missing topic, instead of waiting for them forever. The same bound applies while
    /// running: a topic or partition the consumer reports unknown (deleted while being read)
    /// and still missing from the metadata after this long ends `run` with an error naming
    /// it, once what was done is committed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::kafka::KafkaSource;
    /// let b = KafkaSource::builder("h:1", "g").topic("t").startup_timeout(Duration::from_secs(5));
    /// # drop(b);
    /// ```
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
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
        self.build_inner(Decode::One(Box::new(Ok)))
    }

    /// Builds a source that decodes every message with `decode` and emits the results. A
    /// message `decode` refuses goes, with the error, to the [`errors`](KafkaSource::errors)
    /// side output; it counts as handled once that output accepted it, and the partition goes
    /// on. With nothing connected to `errors()`, a refused message is a failure for the
    /// [failure policy](KafkaSourceBuilder::on_failure).
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
        self.build_inner(Decode::One(Box::new(move |m| match decode(&m) {
            Ok(x) => Ok(x),
            Err(e) => Err(Box::new(DecodeError::new(m, e))),
        })))
    }

    /// Builds a source that emits messages in batches: a batch is emitted once it holds
    /// `max_len` messages (at least 1), or `linger` after its first message arrived, or when
    /// the source stops. A batch carries the acknowledgement tokens of all its messages, so
    /// their offsets are committed only once the batch (and every output built from it) is
    /// done; if its processing fails, every message in it follows the
    /// [failure policy](Self::on_failure).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::kafka::KafkaSource;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = KafkaSource::builder("127.0.0.1:9092", "g")
    ///     .topic("readings")
    ///     .build_batched(500, Duration::from_millis(100))?;
    /// let _sizes = source.map(|batch| batch.len()).sink_to_vec();
    /// # Ok(()) }
    /// ```
    pub fn build_batched(
        self,
        max_len: usize,
        linger: Duration,
    ) -> Result<KafkaSource<Vec<Message>>, Error> {
        self.build_inner(Decode::Batch {
            max_len: max_len.max(1),
            linger,
            make: Box::new(|batch| batch),
        })
    }

    fn build_inner<T: Item>(self, decode: Decode<T>) -> Result<KafkaSource<T>, Error> {
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
        let brokers = config
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_string();
        let failures = Arc::new(Failures::new(&self.on_failure, &config)?);
        let last_error = Arc::new(Lock::new(None));
        let consumer: StreamConsumer<Context> = config
            .create_with_context(Context {
                assignment: assignment.clone(),
                assigned: assigned.clone(),
                stopper: failures.stopper.clone(),
                last_error: last_error.clone(),
            })
            .map_err(|e| failed("kafka_source", format!("cannot create the consumer: {e}")))?;
        let source = Source::new().named("kafka_source");
        let errors = Source::new().named("kafka_decode_errors");
        Ok(KafkaSource {
            source,
            errors,
            shared: Arc::new(Shared {
                consumer: Lock::new(Some(Arc::new(consumer))),
                brokers,
                startup_timeout: self.startup_timeout,
                last_error,
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
    consumer: Lock<Option<Arc<StreamConsumer<Context>>>>,
    brokers: String,
    startup_timeout: Duration,
    last_error: Arc<Lock<Option<String>>>,
    assignment: Arc<Assignment>,
    assigned: Arc<AtomicU64>,
    input: Input,
    commit_interval: Duration,
    pause_after: Duration,
    decode: Decode<T>,
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
/// (`queued.max.messages.kbytes`, 4 MiB for the whole consumer, settable with
/// [`KafkaSourceBuilder::set`]; see the [module docs](crate::kafka) for the exact bound).
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
    /// Defaults: `auto.offset.reset=earliest`, a prefetch cap of 4 MiB for the consumer
    /// (`queued.max.messages.kbytes=4096`, for all partitions together),
    /// `reconnect.backoff.max.ms=1000`, commits every second, a startup timeout of 30 s.
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
            startup_timeout: Duration::from_secs(30),
            on_failure: OnFailure::Stop,
        }
    }
}

impl<T: Item> KafkaSource<T> {
    /// The side output of messages the decoder refused (see
    /// [`KafkaSourceBuilder::build_with`]). A refused message counts as handled once this output
    /// has accepted it; with nothing connected here it is a failure, which the
    /// [failure policy](KafkaSourceBuilder::on_failure) decides on (by default the source
    /// stops before it, uncommitted).
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
    /// committed, so the next run reads it again. A panic while the graph flushes at the end
    /// does not unwind out of `run`: what is done is still committed and `run` returns the
    /// panic as [`Error::Panicked`]. Fails with [`Error::NotRunnable`] when the source is
    /// already being run, and with [`Error::Failed`] when, within the
    /// [startup timeout](KafkaSourceBuilder::startup_timeout), the brokers do not answer or a
    /// topic or partition to read does not exist, or when one is deleted while being read and
    /// stays missing for that long.
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
            // released; then commit what is done. The consumer keeps polling meanwhile.
            let closed = this.draining(&consumer, this.source.close_caught()).await;
            let errors_closed = this.draining(&consumer, this.errors.close_caught()).await;
            // Dead-letter writes decide whether their messages are done.
            this.draining(&consumer, this.shared.failures.flush()).await;
            // The final commit and closing the consumer (which leaves the group) block on the
            // brokers: do them on a blocking thread, not on a runtime worker.
            let closing = this.clone();
            let closed_consumer = tokio::task::spawn_blocking(move || {
                closing.commit(&consumer, CommitMode::Sync, true);
                closing.shared.assignment.revoke_all();
                drop(consumer);
            })
            .await;
            if let Err(e) = closed_consumer {
                tracing::warn!(error = %e, "kafka source: closing the consumer failed");
            }
            if let Some(e) = this.shared.failures.stopper.error() {
                return Err(e);
            }
            result.and(closed).and(errors_closed)
        }
    }

    /// Awaits `work` (the graph draining at stop) while the consumer keeps polling, its
    /// partitions paused: a drain longer than `max.poll.interval.ms` would otherwise make
    /// librdkafka leave the group, and the final commit would be refused. What arrives
    /// meanwhile (prefetched before the pause, or from a partition assigned since) is not
    /// emitted, so not committed either: the next run reads it. Progress is committed every
    /// commit interval, as while running.
    async fn draining<R>(
        &self,
        consumer: &StreamConsumer<Context>,
        work: impl Future<Output = R>,
    ) -> R {
        let mut work = std::pin::pin!(work);
        if let Ok(r) = tokio::time::timeout(self.shared.pause_after, &mut work).await {
            return r;
        }
        pause(consumer, true);
        let mut reader = Reader::new(self.shared.commit_interval, self.shared.pause_after);
        loop {
            tokio::select! {
                r = &mut work => return r,
                polled = reader.poll(self, consumer) => {
                    if let Polled::Message(..) = polled {
                        pause(consumer, true);
                    }
                }
            }
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

    async fn drive(&self, consumer: &Arc<StreamConsumer<Context>>) -> Result<(), Error> {
        if self.stopping() {
            return Ok(());
        }
        self.check_input(consumer).await?;
        if self.stopping() {
            return Ok(());
        }
        self.subscribe(consumer)?;
        let mut reader = Reader::new(self.shared.commit_interval, self.shared.pause_after);
        let mut batch: Vec<(Message, Ack)> = Vec::new();
        loop {
            if self.stopping() {
                // Messages of an unfinished batch go into the graph before it closes: their
                // tokens must not be released unprocessed.
                if let Some(r) = self.emit_batch(&mut reader, consumer, &mut batch).await {
                    return r;
                }
                return Ok(());
            }
            if reader.linger_until.is_some_and(|t| Instant::now() >= t)
                && let Some(r) = self.emit_batch(&mut reader, consumer, &mut batch).await
            {
                return r;
            }
            if let Some(since) = reader.missing_since
                && reader.last_check.elapsed() >= MISSING_CHECK
            {
                reader.last_check = Instant::now();
                match self.input_now(consumer).await {
                    Some(None) => reader.missing_since = None,
                    Some(Some(what)) if since.elapsed() >= self.shared.startup_timeout => {
                        return Err(failed(
                            "kafka_source",
                            format!(
                                "{what} on the brokers {} any more (missing for over {:?}, the \
                                 startup timeout): was it deleted while being read? Recreate \
                                 it, or stop reading it; what was done before is committed",
                                self.shared.brokers, self.shared.startup_timeout
                            ),
                        ));
                    }
                    // Still missing but not for long yet, or the brokers did not answer
                    // (a broker restart is waited out, not an error).
                    _ => {}
                }
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
            let decode = match &self.shared.decode {
                Decode::One(decode) => decode,
                Decode::Batch {
                    max_len, linger, ..
                } => {
                    if batch.is_empty() {
                        reader.linger_until = Some(Instant::now() + *linger);
                    }
                    batch.push((msg, ack));
                    if batch.len() >= *max_len
                        && let Some(r) = self.emit_batch(&mut reader, consumer, &mut batch).await
                    {
                        return r;
                    }
                    continue;
                }
            };
            // A panic on the synchronous path unwinds through the emit; the source keeps a
            // clone of the token across the call, to mark it failed with the panic's message
            // before it is released.
            let token = ack.clone();
            let emitted = std::panic::catch_unwind(AssertUnwindSafe(|| match decode(msg) {
                Ok(x) => self.source.emit_with_ack(x, token),
                Err(bad) if self.errors.node.out.has_active() => {
                    tracing::debug!(error = %bad, "kafka source: message does not decode");
                    self.errors.emit_with_ack(*bad, token)
                }
                Err(bad) => {
                    // Nothing takes the refusal, so nothing handled the message: a failure,
                    // for the failure policy to decide on (as `try_map` does).
                    token.fail(Error::Failed {
                        node: self.source.name(),
                        message: format!(
                            "{}/{}@{offset} does not decode ({bad}), and nothing consumes the \
                             source's `errors()` output",
                            part.topic, part.partition
                        ),
                    });
                    Emit::complete()
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
            if let Some(r) = self.settle(reader.wait(self, consumer, emit).await) {
                return r;
            }
        }
    }

    /// Emits the messages gathered so far as one batch carrying all their tokens, and waits
    /// for it; `Some` when the run must end with that result.
    async fn emit_batch(
        &self,
        reader: &mut Reader,
        consumer: &StreamConsumer<Context>,
        batch: &mut Vec<(Message, Ack)>,
    ) -> Option<Result<(), Error>> {
        reader.linger_until = None;
        let Decode::Batch { make, .. } = &self.shared.decode else {
            return None;
        };
        if batch.is_empty() {
            return None;
        }
        let (messages, acks): (Vec<Message>, Vec<Ack>) = batch.drain(..).unzip();
        let first = messages
            .first()
            .map(|m| format!("{}/{}@{}", m.topic(), m.partition(), m.offset()))
            .unwrap_or_default();
        let len = messages.len();
        let tokens = if acks.len() == 1 {
            Acks::One(acks.into_iter().next().expect("one token"))
        } else {
            Acks::Many(acks.into())
        };
        let held = tokens.clone();
        let emitted = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.source.emit_with_acks(make(messages), held)
        }));
        let emit = match emitted {
            Ok(emit) => emit,
            Err(payload) => {
                tokens.fail(&Error::Panicked {
                    node: self.source.name(),
                    message: format!(
                        "while processing a batch of {len} from {first}: {}",
                        panic_message(&*payload)
                    ),
                });
                return None;
            }
        };
        drop(tokens);
        // As for single messages: let the tasks this emit woke run now and then.
        tokio::task::consume_budget().await;
        self.settle(reader.wait(self, consumer, emit).await)
    }

    /// What an emission's result means for the run: `Some` when it must end with it.
    fn settle(&self, waited: Result<(), Error>) -> Option<Result<(), Error>> {
        match waited {
            Ok(()) => None,
            Err(Error::Closed) => Some(Ok(())),
            Err(e) if self.shared.failures.keeps_messages() => {
                // Failed elements reach the dead-letter topic through their tokens.
                tracing::warn!(error = %e, "kafka source: the graph reported a failure");
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Waits, within the startup timeout, until the brokers answer and every topic and
    /// partition to read exists; fails naming what is missing otherwise.
    async fn check_input(&self, consumer: &Arc<StreamConsumer<Context>>) -> Result<(), Error> {
        let limit = self.shared.startup_timeout;
        let started = Instant::now();
        let mut missing: Option<String> = None;
        loop {
            if self.stopping() {
                return Ok(());
            }
            // In slices, so that a stop request is noticed soon.
            let left = limit
                .saturating_sub(started.elapsed())
                .min(Duration::from_secs(2));
            let fetched = self.input_metadata(consumer, left).await?;
            let problem = match fetched {
                // The brokers answered before: what was missing then is the news.
                Err(_) if missing.is_some() => missing.clone().unwrap_or_default(),
                Err(e) => {
                    let last = self.shared.last_error.lock().clone();
                    format!(
                        "cannot reach the brokers {} ({e}{}); check bootstrap.servers and the \
                         network, or raise startup_timeout",
                        self.shared.brokers,
                        last.map(|l| format!(", last client error: {l}"))
                            .unwrap_or_default()
                    )
                }
                Ok(metadata) => match self.missing_input(&metadata) {
                    None => return Ok(()),
                    Some(what) => {
                        let problem = format!(
                            "{what} on the brokers {}; create it, or raise startup_timeout if \
                             it is being created",
                            self.shared.brokers
                        );
                        missing = Some(problem.clone());
                        problem
                    }
                },
            };
            if limit.saturating_sub(started.elapsed()) < 2 * TICK {
                return Err(failed(
                    "kafka_source",
                    format!("not started within the startup timeout of {limit:?}: {problem}"),
                ));
            }
            // A topic just created may take a moment to show in the metadata.
            tokio::time::sleep(TICK).await;
        }
    }

    /// The metadata of every topic to read (of none, with only patterns: then it only shows
    /// that the brokers answer), asked on a blocking thread, as the requests block until the
    /// brokers answer or `limit` is up.
    async fn input_metadata(
        &self,
        consumer: &Arc<StreamConsumer<Context>>,
        limit: Duration,
    ) -> Result<KafkaResult<Vec<rdkafka::metadata::Metadata>>, Error> {
        let c = consumer.clone();
        let topics = self.topics();
        tokio::task::spawn_blocking(move || {
            if topics.is_empty() {
                return c.fetch_metadata(None, limit).map(|m| vec![m]);
            }
            topics
                .iter()
                .map(|t| c.fetch_metadata(Some(t), limit))
                .collect::<KafkaResult<Vec<_>>>()
        })
        .await
        .map_err(|e| failed("kafka_source", format!("metadata request failed: {e}")))
    }

    /// One look at the metadata of the input: `Some(None)` when every topic and partition to
    /// read exists, `Some(Some(what))` naming one that does not, `None` when the brokers did
    /// not answer in time.
    async fn input_now(&self, consumer: &Arc<StreamConsumer<Context>>) -> Option<Option<String>> {
        let fetched = self
            .input_metadata(consumer, MISSING_CHECK)
            .await
            .ok()?
            .ok()?;
        Some(self.missing_input(&fetched))
    }

    /// The topics to read, each once; subscription patterns (`^...`) are left out, as they
    /// may match nothing yet.
    fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = match &self.shared.input {
            Input::Topics(ts) => ts.iter().filter(|t| !is_pattern(t)).cloned().collect(),
            Input::Partitions(ps) => ps.iter().map(|(t, _)| t.clone()).collect(),
        };
        topics.sort();
        topics.dedup();
        topics
    }

    /// The first topic or partition to read that the metadata does not list.
    fn missing_input(&self, metadata: &[rdkafka::metadata::Metadata]) -> Option<String> {
        let topic = |name: &str| {
            metadata
                .iter()
                .flat_map(|m| m.topics())
                .find(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
        };
        match &self.shared.input {
            Input::Topics(topics) => topics
                .iter()
                .find(|t| !is_pattern(t) && topic(t).is_none())
                .map(|t| format!("topic {t} does not exist")),
            Input::Partitions(parts) => parts.iter().find_map(|(t, p)| match topic(t) {
                None => Some(format!("topic {t} does not exist")),
                Some(md) if !md.partitions().iter().any(|x| x.id() == *p) => Some(format!(
                    "partition {p} of topic {t} does not exist (it has {} partitions)",
                    md.partitions().len()
                )),
                Some(_) => None,
            }),
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
            // The result comes to the context's commit callback, unless the request could
            // not even be queued.
            CommitMode::Async => {
                let result = consumer.commit(&tpl, mode);
                if matches!(&result, Err(e) if !is_no_offset(e)) {
                    self.shared.assignment.commit_failed(positions_of(&tpl));
                }
                log_commit(result, "periodic");
            }
        }
    }
}

/// A subscription pattern (librdkafka takes a topic starting with `^` as a regex).
fn is_pattern(topic: &str) -> bool {
    topic.starts_with('^')
}

/// The polling half of the run loop: messages received while the partitions were paused, the
/// commit clock and the rate limit of repeated warnings.
struct Reader {
    backlog: std::collections::VecDeque<(Message, Arc<Partition>)>,
    commit_every: Duration,
    pause_after: Duration,
    last_commit: Instant,
    last_warning: Option<Instant>,
    /// Since when the consumer has reported a topic or partition to read as unknown (a topic
    /// deleted while being read), until the metadata shows it again.
    missing_since: Option<Instant>,
    /// When the metadata was last asked whether a missing input is back.
    last_check: Instant,
    topics: Vec<Arc<str>>,
    /// When the batch being gathered must be emitted, full or not.
    linger_until: Option<Instant>,
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
            missing_since: None,
            last_check: Instant::now(),
            topics: Vec::new(),
            linger_until: None,
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
        // Wake in time to emit a lingering batch.
        let wait = self.linger_until.map_or(TICK, |t| {
            t.saturating_duration_since(Instant::now()).min(TICK)
        });
        // `biased`: a message that is ready is taken without polling the other branches,
        // so a busy source registers no timer and no waiter per message. The caller checks
        // for a stop between messages.
        let received = tokio::select! {
            biased;
            r = consumer.recv() => r.map(|m| {
                let topic = self.topic(m.topic());
                Message::from_kafka(&m, topic)
            }),
            _ = tokio::time::sleep(wait) => return Polled::Nothing,
            _ = stopped => return Polled::Nothing,
        };
        match received {
            Ok(msg) => match src.shared.assignment.get(msg.topic(), msg.partition()) {
                Some(part) => Polled::Message(msg, part),
                None => Polled::Nothing,
            },
            Err(e) => {
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::UnknownTopicOrPartition
                            | RDKafkaErrorCode::UnknownTopic
                            | RDKafkaErrorCode::UnknownPartition
                    )
                ) {
                    self.missing_since.get_or_insert_with(Instant::now);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_client_setting_fails_the_build() {
        let err = KafkaSource::builder("127.0.0.1:1", "g")
            .topic("t")
            .set("security.protocol", "no-such-protocol")
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot create the consumer"),
            "{err}"
        );
    }

    /// A topic that disappears while being read (deleted). The mock cluster stands in for a
    /// broker here: librdkafka 2.12.1 crashes in its metadata cache when the project's test
    /// broker deletes a topic that is being read, before the source can see anything.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_topic_gone_while_being_read_ends_run_with_an_error_naming_it() {
        use rdkafka::mocking::MockCluster;
        use rdkafka::producer::{FutureProducer, FutureRecord};
        use rdkafka::types::RDKafkaRespErr;

        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("readings", 2, 1).unwrap();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .unwrap();
        for i in 0..10 {
            let payload = i.to_string();
            producer
                .send(
                    FutureRecord::to("readings").key("k").payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
        let source = KafkaSource::builder(&cluster.bootstrap_servers(), "g")
            .topic("readings")
            // The mock cluster's group never assigns below 3000 ms.
            .set("session.timeout.ms", "3000")
            .set("heartbeat.interval.ms", "500")
            .set("topic.metadata.refresh.interval.ms", "500")
            .startup_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let seen = source.sink_to_vec();
        let run = tokio::spawn(source.run());
        tokio::time::timeout(Duration::from_secs(30), async {
            while seen.snapshot().len() < 10 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every message read");
        cluster
            .topic_error(
                "readings",
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            )
            .unwrap();
        let result = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("run did not end after its topic went away")
            .unwrap();
        assert!(
            matches!(&result, Err(Error::Failed { node, message }) if node == "kafka_source"
                && message.contains("topic readings does not exist")
                && message.contains("deleted while being read")),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_rebalance_error_revokes_every_partition() {
        let assignment = Arc::new(Assignment::default());
        let consumer: BaseConsumer<Context> = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("group.id", "g")
            .create_with_context(Context {
                assignment: assignment.clone(),
                assigned: Arc::new(AtomicU64::new(0)),
                stopper: Arc::new(Stopper::new()),
                last_error: Arc::new(Lock::new(None)),
            })
            .unwrap();
        assignment.assign("t", 0);
        assignment.assign("u", 3);
        let part = assignment.get("t", 0).unwrap();
        let error = KafkaError::Global(RDKafkaErrorCode::Fail);
        consumer
            .context()
            .pre_rebalance(&consumer, &Rebalance::Error(error));
        assert!(assignment.get("t", 0).is_none() && assignment.get("u", 3).is_none());
        assert!(!part.is_live(), "tokens released later change nothing");
    }
}
