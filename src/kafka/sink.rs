//! `to_kafka`: a sink that produces a record per element, at least once.
//!
//! Why it is built this way: librdkafka produces asynchronously (a record is queued, batched,
//! sent, and a delivery report comes back later), and a record that is queued is not yet safe.
//! So each element's acknowledgement tokens travel with its record through librdkafka (as the
//! record's delivery opaque) and are released only when the delivery report says the record is
//! stored; a source upstream therefore never commits past an element whose record could still
//! be lost. The report is taken on librdkafka's polling thread, which releases a delivered
//! record's tokens there and then: no future, channel or task wake-up per record.
//!
//! Invariants:
//! - Elements go through a bounded mailbox and a task; the task builds each record with the
//!   user's function and hands it to librdkafka. When librdkafka's queue is full the task waits
//!   a short while and retries: nothing is dropped, and `emit` pends once the mailbox is full
//!   too.
//! - At most `in_flight` records await their delivery report at once: a record is counted
//!   before it is queued, and leaves the count when its report is handled (on the polling
//!   thread when delivered; by the task, after passing it on, when not).
//! - Every record queued gets exactly one outcome for its tokens: done on a successful report,
//!   the error output or a failure otherwise. If the task is gone (its runtime shut down),
//!   dropping the producer purges the queue, and each purged record's report fails its
//!   tokens: a record never stored is never reported done.
//! - A record that cannot be delivered goes, with its element's tokens, to the
//!   [`errors`](KafkaSink::errors) side output, where it counts as handled once accepted; when
//!   nothing is connected there, its tokens are failed and the failure is reported on the next
//!   `emit` or by `close()`, never dropped silently. A panic in the record function fails the
//!   element's tokens too.
//! - `close()` resolves once every accepted element's record has a delivery report.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use tokio::sync::Notify;

use super::failed;
use crate::graph::task::{Detach, Mailbox, Task, runtime};
use crate::graph::{Acks, Cx, Input, NodeDyn, Operator, Outputs, Side, metrics_of};
use crate::{Error, Item, Metrics, Stream};

/// A record to produce: topic, and optionally key, payload, partition, timestamp and headers.
///
/// ```
/// use brooklet::kafka::Record;
/// let r = Record::to("out").key("sensor-1").payload("21.5").timestamp(1_000).header("v", "1");
/// assert_eq!(r.topic(), "out");
/// assert_eq!(r.key_bytes(), Some(&b"sensor-1"[..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// A record for `topic`, with no key and no payload yet.
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// assert_eq!(Record::to("t").payload_bytes(), None);
    /// ```
    pub fn to(topic: impl Into<String>) -> Record {
        Record {
            topic: topic.into(),
            partition: None,
            key: None,
            payload: None,
            timestamp: None,
            headers: Vec::new(),
        }
    }

    /// Sets the key (records with one key go to one partition, in order).
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// assert_eq!(Record::to("t").key([7u8]).key_bytes(), Some(&[7u8][..]));
    /// ```
    pub fn key(mut self, key: impl AsRef<[u8]>) -> Record {
        self.key = Some(key.as_ref().to_vec());
        self
    }

    /// Sets the payload.
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// assert_eq!(Record::to("t").payload("x").payload_bytes(), Some(&b"x"[..]));
    /// ```
    pub fn payload(mut self, payload: impl AsRef<[u8]>) -> Record {
        self.payload = Some(payload.as_ref().to_vec());
        self
    }

    /// Sends the record to this partition instead of the one the key picks.
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// let r = Record::to("t").partition(2);
    /// # drop(r);
    /// ```
    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    /// Sets the record's timestamp, in milliseconds since the Unix epoch (default: now).
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// let r = Record::to("t").timestamp(1_700_000_000_000);
    /// # drop(r);
    /// ```
    pub fn timestamp(mut self, millis: i64) -> Record {
        self.timestamp = Some(millis);
        self
    }

    /// Adds a header.
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// let r = Record::to("t").header("trace", "abc");
    /// # drop(r);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Record {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    /// The record's topic.
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// assert_eq!(Record::to("t").topic(), "t");
    /// ```
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The record's key, if set.
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// assert_eq!(Record::to("t").key_bytes(), None);
    /// ```
    pub fn key_bytes(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The record's payload, if set.
    ///
    /// ```
    /// use brooklet::kafka::Record;
    /// assert_eq!(Record::to("t").payload([1]).payload_bytes(), Some(&[1u8][..]));
    /// ```
    pub fn payload_bytes(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    /// Bytes of key, payload and headers (names and values): what counts against the
    /// producer's size limit, less its framing.
    fn size(&self) -> usize {
        let field = |f: &Option<Vec<u8>>| f.as_ref().map_or(0, Vec::len);
        field(&self.key)
            + field(&self.payload)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    fn base_record(&self, pending: Box<Pending>) -> BaseRecord<'_, [u8], [u8], Box<Pending>> {
        let mut r = BaseRecord::with_opaque_to(&self.topic, pending);
        if let Some(k) = &self.key {
            r = r.key(k.as_slice());
        }
        if let Some(p) = &self.payload {
            r = r.payload(p.as_slice());
        }
        if let Some(p) = self.partition {
            r = r.partition(p);
        }
        if let Some(t) = self.timestamp {
            r = r.timestamp(t);
        }
        if !self.headers.is_empty() {
            let mut hs = OwnedHeaders::new_with_capacity(self.headers.len());
            for (k, v) in &self.headers {
                hs = hs.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            r = r.headers(hs);
        }
        r
    }

    /// The record as a delivery report gives it back; `partition` and `timestamp` as the user
    /// set them (librdkafka fills in its own).
    fn returned(m: &BorrowedMessage<'_>, partition: Option<i32>, timestamp: Option<i64>) -> Record {
        Record {
            topic: m.topic().to_string(),
            partition,
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            timestamp,
            headers: m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A record the sink could not deliver, with the reason. It goes to the sink's
/// [`errors`](KafkaSink::errors) side output, carrying the element's tokens.
///
/// ```
/// use brooklet::kafka::{DeliveryError, Record};
/// let e = DeliveryError::new(Record::to("t"), "broker down");
/// assert_eq!(e.record().topic(), "t");
/// assert_eq!(e.to_string(), "cannot deliver a record to t: broker down");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryError {
    record: Record,
    error: String,
}

impl DeliveryError {
    /// A delivery failure of `record`.
    ///
    /// ```
    /// use brooklet::kafka::{DeliveryError, Record};
    /// assert_eq!(DeliveryError::new(Record::to("t"), "x").error(), "x");
    /// ```
    pub fn new(record: Record, error: impl fmt::Display) -> DeliveryError {
        DeliveryError {
            record,
            error: error.to_string(),
        }
    }

    /// The record that was not delivered.
    ///
    /// ```
    /// use brooklet::kafka::{DeliveryError, Record};
    /// assert_eq!(DeliveryError::new(Record::to("a"), "x").record().topic(), "a");
    /// ```
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Why it was not delivered.
    ///
    /// ```
    /// use brooklet::kafka::{DeliveryError, Record};
    /// assert!(DeliveryError::new(Record::to("a"), "timed out").error().contains("timed"));
    /// ```
    pub fn error(&self) -> &str {
        &self.error
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot deliver a record to {}: {}",
            self.record.topic, self.error
        )
    }
}

impl std::error::Error for DeliveryError {}

/// Producer settings for [`Stream::to_kafka`].
///
/// Defaults: `enable.idempotence=true` (a retried send is stored once and records of a
/// partition keep their order across retries; this needs `acks=all`, which librdkafka then
/// uses, and a broker that supports idempotent producers; `.set("enable.idempotence",
/// "false")` turns it off), `message.timeout.ms=30000` (librdkafka's own is 5 minutes),
/// `allow.auto.create.topics=false`, `reconnect.backoff.max.ms=1000`; 1,024 elements queued
/// before `emit` pends and 10,000 records awaiting delivery at most.
///
/// Time bound: a record that cannot be delivered (the brokers are unreachable, the topic does
/// not exist) fails once `message.timeout.ms` has passed since it was queued, and goes to the
/// sink's [`errors`](KafkaSink::errors) output (or fails `close()`); so `close()` returns at
/// most about `message.timeout.ms` after the last record was handed to the producer.
///
/// ```
/// use brooklet::kafka::ProducerConfig;
/// let config = ProducerConfig::new("127.0.0.1:9092")
///     .set("compression.type", "lz4")
///     .in_flight(50_000);
/// # drop(config);
/// ```
#[derive(Clone)]
pub struct ProducerConfig {
    config: ClientConfig,
    capacity: usize,
    in_flight: usize,
}

impl fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerConfig")
            .field("capacity", &self.capacity)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl ProducerConfig {
    /// Settings for producing to `brokers` (a comma-separated `host:port` list).
    ///
    /// ```
    /// use brooklet::kafka::ProducerConfig;
    /// let config = ProducerConfig::new("127.0.0.1:9092");
    /// # drop(config);
    /// ```
    pub fn new(brokers: &str) -> ProducerConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .set("allow.auto.create.topics", "false")
            .set("reconnect.backoff.max.ms", "1000");
        ProducerConfig {
            config,
            capacity: 1024,
            in_flight: 10_000,
        }
    }

    /// Sets a librdkafka producer property (`linger.ms`, `acks`, `compression.type`, ...).
    ///
    /// ```
    /// use brooklet::kafka::ProducerConfig;
    /// let config = ProducerConfig::new("127.0.0.1:9092").set("acks", "all");
    /// # drop(config);
    /// ```
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> ProducerConfig {
        self.config.set(key, value);
        self
    }

    /// How many elements the sink queues before `emit` pends (at least 1).
    ///
    /// ```
    /// use brooklet::kafka::ProducerConfig;
    /// let config = ProducerConfig::new("127.0.0.1:9092").capacity(64);
    /// # drop(config);
    /// ```
    pub fn capacity(mut self, elements: usize) -> ProducerConfig {
        self.capacity = elements.max(1);
        self
    }

    /// How many records may await their delivery report at once (at least 1).
    ///
    /// ```
    /// use brooklet::kafka::ProducerConfig;
    /// let config = ProducerConfig::new("127.0.0.1:9092").in_flight(1);
    /// # drop(config);
    /// ```
    pub fn in_flight(mut self, records: usize) -> ProducerConfig {
        self.in_flight = records.max(1);
        self
    }
}

pub(crate) struct KafkaSinkOp<T> {
    mailbox: Arc<Mailbox<T>>,
    task: Arc<Task>,
    errors: Side<DeliveryError>,
    /// The producer's `message.max.bytes`, quoted when a record is over it.
    max_bytes: String,
    _t: PhantomData<fn(T)>,
}

impl<T: Item> Operator for KafkaSinkOp<T> {
    type Out = ();
    const DEFERS_END: bool = true;

    fn on_end(&self, _out: &Outputs<()>, cx: &mut Cx) {
        self.mailbox.close();
        self.task.wait_finished(cx);
    }

    fn held(&self) -> usize {
        self.mailbox.len()
    }

    fn sides(&self) -> Vec<Arc<dyn NodeDyn>> {
        vec![self.errors.node()]
    }
}

impl<T: Item> Input<0> for KafkaSinkOp<T> {
    type In = T;

    fn on_input(&self, x: T, _out: &Outputs<()>, cx: &mut Cx) {
        self.task.report(cx);
        self.mailbox.put(x, cx);
    }
}

impl<T: Item> Detach for KafkaSinkOp<T> {
    fn detach(&self) {
        self.mailbox.close();
    }
}

/// Handle to a sink made by [`Stream::to_kafka`]. Keeping it is optional: the sink lives as
/// long as its upstream.
pub struct KafkaSink {
    node: Arc<dyn NodeDyn>,
    errors: Stream<DeliveryError>,
}

impl fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.node.meta().name())
            .finish()
    }
}

impl KafkaSink {
    /// The side output of records that could not be delivered, each with its element's
    /// tokens: once a record is accepted there it counts as handled. With nothing connected,
    /// the element's tokens are failed and the failure is reported on the next `emit` or by
    /// `close()`.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::kafka::{ProducerConfig, Record};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let sink = source.to_kafka(ProducerConfig::new("127.0.0.1:9092"), |s: String| {
    ///     Record::to("out").payload(s)
    /// })?;
    /// let dead_letters = sink.errors().sink_to_vec();
    /// assert!(dead_letters.snapshot().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn errors(&self) -> Stream<DeliveryError> {
        self.errors.clone()
    }

    /// The sink's counters: `held` is the number of queued elements not yet handed to the
    /// producer, and `errors` counts panics in the record function and delivery failures.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::kafka::{ProducerConfig, Record};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let sink = source.to_kafka(ProducerConfig::new("127.0.0.1:9092"), |s: String| {
    ///     Record::to("out").payload(s)
    /// })?;
    /// assert_eq!(sink.metrics().received, 0);
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> Metrics {
        metrics_of(&*self.node)
    }
}

/// What the sink's task and librdkafka's delivery reports share.
struct Shared {
    /// Records handed to the producer whose report the task has not finished with: a
    /// delivered record leaves when its report comes, an undelivered one once the task has
    /// passed it on.
    in_flight: AtomicUsize,
    max: usize,
    /// Wakes the task when `in_flight` falls below `max` or to zero.
    changed: Notify,
    /// Reports the task must act on: undelivered records, panics while releasing tokens.
    report: tokio::sync::mpsc::UnboundedSender<Report>,
    task: Arc<Task>,
}

/// The producer's context: it takes each delivery report on librdkafka's polling thread. A
/// delivered record's tokens are released there and then, with no hop through the task; an
/// undelivered one goes to the task, which owns the error output.
struct Reports(Arc<Shared>);

/// What travels with a record through librdkafka: its element's tokens, and what the
/// delivery report cannot give back as the user set it.
struct Pending {
    acks: Acks,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

enum Report {
    Undelivered(Undelivered),
    Panicked(Error),
}

/// An undelivered record on its way to the task. If the task is gone (its runtime shut
/// down), dropping it fails the tokens: the record was never stored.
struct Undelivered {
    record: Record,
    error: KafkaError,
    acks: Acks,
    task: Arc<Task>,
}

impl Undelivered {
    /// The record, its error and its tokens, for the task to pass on; the drop then has no
    /// tokens left to fail.
    fn take(mut self) -> (Record, KafkaError, Acks) {
        let acks = std::mem::take(&mut self.acks);
        let record = std::mem::replace(&mut self.record, Record::to(""));
        (record, self.error.clone(), acks)
    }
}

impl Drop for Undelivered {
    fn drop(&mut self) {
        if !self.acks.is_empty() {
            self.acks
                .fail(&torn_down(&self.task, &self.record, &self.error));
        }
    }
}

fn torn_down(task: &Task, rec: &Record, error: &KafkaError) -> Error {
    failed(
        &task.name(),
        format!(
            "cannot deliver a record to {}: {error}; the sink stopped (its runtime shut down) \
             before the record was delivered",
            rec.topic
        ),
    )
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        let shared = &*self.0;
        let Pending {
            acks,
            partition,
            timestamp,
        } = *pending;
        match result {
            Ok(_) => {
                // Releasing the tokens runs their callbacks; a panic there must not end
                // librdkafka's polling thread (no more reports would come).
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(acks))) {
                    let error = shared.task.panicked(&*payload);
                    let _ = shared.report.send(Report::Panicked(error));
                }
                let before = shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                if before == shared.max || before == 1 {
                    shared.changed.notify_one();
                }
            }
            Err((error, message)) => {
                let undelivered = Undelivered {
                    record: Record::returned(message, partition, timestamp),
                    error: error.clone(),
                    acks,
                    task: shared.task.clone(),
                };
                // With the task gone, the report comes back and its drop fails the tokens.
                if let Err(returned) = shared.report.send(Report::Undelivered(undelivered)) {
                    let _ = catch_unwind(AssertUnwindSafe(|| drop(returned)));
                }
            }
        }
    }
}

impl<T: Item> Stream<T> {
    /// Produces a Kafka record for every element: `record` builds it (topic, key, payload,
    /// timestamp, headers) from the element.
    ///
    /// At least once: the element's acknowledgement tokens are released only when the record's
    /// delivery report says it is stored. While librdkafka's queue is full the sink waits and
    /// retries, and `emit` pends once the sink's own queue is full. A record that cannot be
    /// delivered goes to [`KafkaSink::errors`] (or, with nothing connected there, fails its
    /// tokens). A panic in `record` fails the element's tokens and is reported on the next
    /// `emit` or by `close()`. `close()` resolves once every record has a delivery report.
    ///
    /// Fails with [`Error::Failed`] when the producer cannot be created (a bad property).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::kafka::{ProducerConfig, Record};
    /// use brooklet::kafka::rdkafka::mocking::MockCluster;
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = MockCluster::new(1)?;
    /// cluster.create_topic("readings", 2, 1)?;
    /// let source = Source::new();
    /// source.to_kafka(ProducerConfig::new(&cluster.bootstrap_servers()), |(sensor, value): (String, f64)| {
    ///     Record::to("readings").key(sensor).payload(value.to_string())
    /// })?;
    /// source.emit(("s1".to_string(), 21.5)).await?;
    /// source.emit(("s2".to_string(), 19.0)).await?;
    /// source.close().await?; // both delivered
    /// # Ok(()) }
    /// ```
    pub fn to_kafka<F>(&self, config: ProducerConfig, record: F) -> Result<KafkaSink, Error>
    where
        F: Fn(T) -> Record + Send + Sync + 'static,
    {
        let rt = runtime("to_kafka");
        // librdkafka's default limit when the user sets none; quoted when a record is over it.
        let max_bytes = config
            .config
            .get("message.max.bytes")
            .unwrap_or("1000000")
            .to_string();
        let task = Task::new("to_kafka");
        let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            in_flight: AtomicUsize::new(0),
            max: config.in_flight,
            changed: Notify::new(),
            report,
            task: task.clone(),
        });
        let producer: ThreadedProducer<Reports> = config
            .config
            .create_with_context(Reports(shared.clone()))
            .map_err(|e| failed("to_kafka", format!("cannot create the producer: {e}")))?;
        let mailbox = Mailbox::new(config.capacity);
        let errors = Side::new("errors");
        let error_stream = errors.stream();
        let node = self.then_detachable(
            "to_kafka",
            KafkaSinkOp {
                mailbox: mailbox.clone(),
                task: task.clone(),
                errors,
                max_bytes,
                _t: PhantomData,
            },
        );
        node.op.errors.set_owner(node.clone());
        task.bind(node.clone());
        let worker = node.clone();
        let t = task.clone();
        task.spawn(&rt, async move {
            let mut open = true;
            loop {
                let in_flight = shared.in_flight.load(Ordering::Acquire);
                if !open && in_flight == 0 {
                    break;
                }
                let room = open && in_flight < shared.max;
                tokio::select! {
                    biased;
                    Some(report) = reports.recv() => match report {
                        Report::Undelivered(u) => {
                            let (rec, err, acks) = u.take();
                            undelivered(&worker, rec, &err, acks).await;
                            shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                        }
                        Report::Panicked(error) => t.fail(error),
                    },
                    x = mailbox.recv(), if room => match x {
                        None => open = false,
                        Some((x, acks)) => match catch_unwind(AssertUnwindSafe(|| record(x))) {
                            Ok(rec) => {
                                if let Err((e, acks)) = send(&producer, &shared, &rec, acks).await {
                                    undelivered(&worker, rec, &e, acks).await;
                                }
                            }
                            Err(payload) => {
                                worker.out.errors.inc_exact();
                                let error = t.panicked(&*payload);
                                acks.fail(&error);
                                t.fail(error);
                            }
                        },
                    },
                    // Room again, or the last report in: look again.
                    () = shared.changed.notified(), if !room => {}
                }
            }
            // Dropping the producer purges and flushes, which blocks: not on a runtime worker.
            let _ = tokio::task::spawn_blocking(move || drop(producer)).await;
            let mut cx = Cx::new();
            worker.op.errors.finish(&mut cx);
            if let Err(e) = cx.into_emit().await {
                t.fail(e);
            }
        });
        Ok(KafkaSink {
            node,
            errors: error_stream,
        })
    }
}

/// Hands `rec` to the producer, retrying while its queue is full; its tokens travel with it
/// to the delivery report. Returns the tokens with the error when it cannot be queued at all.
async fn send(
    producer: &ThreadedProducer<Reports>,
    shared: &Shared,
    rec: &Record,
    acks: Acks,
) -> Result<(), (KafkaError, Acks)> {
    let mut pending = Box::new(Pending {
        acks,
        partition: rec.partition,
        timestamp: rec.timestamp,
    });
    // Counted before the record is queued: its report may come before `send` returns.
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    loop {
        match producer.send(rec.base_record(pending)) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                // librdkafka's queue drains on its own thread as records are sent: wait a
                // moment and retry. Nothing is dropped.
                pending = r.delivery_opaque;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((e, r)) => {
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Err((e, r.delivery_opaque.acks));
            }
        }
    }
}

/// Why `rec` was not delivered, in words that say what to change where librdkafka's own
/// message does not (a record over the size limit, refused by the client or by the broker).
fn reason(e: &KafkaError, rec: &Record, max_bytes: &str) -> String {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => format!(
            "{e}: the record is {} bytes (key, payload and headers) and the producer's \
             message.max.bytes is {max_bytes}; send smaller records, or raise \
             message.max.bytes on the ProducerConfig and max.message.bytes on the topic {:?}",
            rec.size(),
            rec.topic
        ),
        _ => e.to_string(),
    }
}

/// Sends an undelivered record to the error side output with its tokens; when nothing is
/// connected there, records the failure for the next `emit` or `close()`.
async fn undelivered<T: Item>(
    node: &crate::graph::Node<KafkaSinkOp<T>>,
    rec: Record,
    e: &KafkaError,
    acks: Acks,
) {
    let (errors, task) = (&node.op.errors, &node.op.task);
    let err = reason(e, &rec, &node.op.max_bytes);
    node.out.errors.inc_exact();
    tracing::warn!(topic = rec.topic(), error = %err, "to_kafka: a record was not delivered");
    if !errors.is_connected() {
        // Nobody takes the failure: the element is not done.
        let error = failed(
            &node.meta.name(),
            format!("cannot deliver a record to {}: {err}", rec.topic()),
        );
        acks.fail(&error);
        task.fail(error);
        return;
    }
    let mut cx = Cx::with_acks(acks);
    errors.push(DeliveryError::new(rec, err), &mut cx);
    if let Err(e) = cx.into_emit().await {
        task.fail(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_are_idempotent_unless_told_otherwise() {
        let config = ProducerConfig::new("127.0.0.1:9092");
        assert_eq!(config.config.get("enable.idempotence"), Some("true"));
        let config = config.set("enable.idempotence", "false");
        assert_eq!(config.config.get("enable.idempotence"), Some("false"));
    }
}
