//! `to_kafka`: a sink that produces a record per element, at least once.
//!
//! Why it is built this way: librdkafka produces asynchronously (a record is queued, batched,
//! sent, and a delivery report comes back later), and a record that is queued is not yet safe.
//! So the sink keeps each element's acknowledgement tokens beside its delivery future and
//! releases them only when the delivery report says the record is stored; a source upstream
//! therefore never commits past an element whose record could still be lost.
//!
//! Invariants:
//! - Elements go through a bounded mailbox and a task; the task builds each record with the
//!   user's function and hands it to librdkafka. When librdkafka's queue is full the task waits
//!   for a delivery (or a short while) and retries: nothing is dropped, and `emit` pends once
//!   the mailbox is full too.
//! - At most `in_flight` records await their delivery report at once.
//! - A record that cannot be delivered goes, with its element's tokens, to the
//!   [`errors`](KafkaSink::errors) side output, where it counts as handled once accepted; when
//!   nothing is connected there, its tokens are failed and the failure is reported on the next
//!   `emit` or by `close()`, never dropped silently. A panic in the record function fails the
//!   element's tokens too.
//! - `close()` resolves once every accepted element's record has a delivery report.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

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

    fn future_record(&self) -> FutureRecord<'_, [u8], [u8]> {
        let mut r = FutureRecord::to(&self.topic);
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

type Delivery = Pin<Box<dyn Future<Output = (KafkaResult<()>, Record, Acks)> + Send>>;

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
        let producer: FutureProducer = config
            .config
            .create()
            .map_err(|e| failed("to_kafka", format!("cannot create the producer: {e}")))?;
        let mailbox = Mailbox::new(config.capacity);
        let task = Task::new("to_kafka");
        let errors = Side::new("errors");
        let error_stream = errors.stream();
        let node = self.then_detachable(
            "to_kafka",
            KafkaSinkOp {
                mailbox: mailbox.clone(),
                task: task.clone(),
                errors,
                _t: PhantomData,
            },
        );
        node.op.errors.set_owner(node.clone());
        task.bind(node.clone());
        let worker = node.clone();
        let t = task.clone();
        let max_in_flight = config.in_flight;
        task.spawn(&rt, async move {
            let mut in_flight: FuturesUnordered<Delivery> = FuturesUnordered::new();
            let mut open = true;
            loop {
                let next = if open && in_flight.len() < max_in_flight {
                    if in_flight.is_empty() {
                        futures_util::future::Either::Left(mailbox.recv().await)
                    } else {
                        tokio::select! {
                            x = mailbox.recv() => futures_util::future::Either::Left(x),
                            Some(d) = in_flight.next() => futures_util::future::Either::Right(d),
                        }
                    }
                } else if let Some(d) = in_flight.next().await {
                    futures_util::future::Either::Right(d)
                } else {
                    break;
                };
                match next {
                    futures_util::future::Either::Left(Some((x, acks))) => {
                        let built = std::panic::catch_unwind(AssertUnwindSafe(|| record(x)));
                        match built {
                            Ok(rec) => match send(&producer, rec, acks).await {
                                Ok(delivery) => in_flight.push(delivery),
                                Err((err, rec, acks)) => {
                                    let why = reason(&err, &rec, &max_bytes);
                                    undelivered(&worker.op.errors, &t, &worker, rec, why, acks)
                                        .await;
                                }
                            },
                            Err(payload) => {
                                worker.out.errors.inc_exact();
                                let error = t.panicked(&*payload);
                                acks.fail(&error);
                                t.fail(error);
                            }
                        }
                    }
                    futures_util::future::Either::Left(None) => open = false,
                    futures_util::future::Either::Right((Ok(()), _rec, acks)) => drop(acks),
                    futures_util::future::Either::Right((Err(err), rec, acks)) => {
                        let why = reason(&err, &rec, &max_bytes);
                        undelivered(&worker.op.errors, &t, &worker, rec, why, acks).await;
                    }
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

/// Hands `rec` to the producer, retrying while its queue is full, and returns its delivery.
/// Returns the record back with the error when it cannot be queued at all.
async fn send(
    producer: &FutureProducer,
    rec: Record,
    acks: Acks,
) -> Result<Delivery, (KafkaError, Record, Acks)> {
    loop {
        let attempt = producer.send_result(rec.future_record());
        match attempt {
            Ok(delivery) => {
                return Ok(Box::pin(async move {
                    let result = match delivery.await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((e, _))) => Err(e),
                        Err(_) => Err(KafkaError::Canceled),
                    };
                    (result, rec, acks)
                }));
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // librdkafka's queue drains on its own thread as records are sent: wait a
                // moment and retry. Nothing is dropped.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((e, _)) => return Err((e, rec, acks)),
        }
    }
}

/// Why `rec` was not delivered, in words that say what to change where librdkafka's own
/// message does not (a record over the size limit, refused by the client or by the broker).
fn reason(e: &KafkaError, rec: &Record, max_bytes: &str) -> String {
    if let KafkaError::Canceled = e {
        return "the producer was dropped before delivery".to_string();
    }
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
    errors: &Side<DeliveryError>,
    task: &Task,
    node: &crate::graph::Node<KafkaSinkOp<T>>,
    rec: Record,
    err: String,
    acks: Acks,
) {
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
