//! What a Kafka source does with a message whose processing failed.
//!
//! Why: an acknowledgement can come back failed (a panic on the message's path, a node that
//! died, a graph closed under it). Committing past such a message would lose it silently, so
//! the source never does. It either stops before it (the default: the error comes out of
//! `run`, the offset stays uncommitted and the next run reads the message again), or writes the
//! message to a dead-letter topic and counts it done only once that write is delivered.
//!
//! Invariants:
//! - A failed offset is marked failed in its partition's tracker before anything else, unless
//!   a dead-letter write for it was queued; then the write's delivery report decides (done on
//!   delivery, failed otherwise).
//! - The first failure that stops the source is kept and returned by `run`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::Notify;

use super::failed;
use super::message::Message;
use super::offsets::Partition;
use crate::Error;
use crate::graph::sync::Lock;

/// What a [`KafkaSource`](crate::kafka::KafkaSource) does when a message's processing failed.
///
/// ```
/// use brooklet::kafka::OnFailure;
/// assert_eq!(OnFailure::default(), OnFailure::Stop);
/// let dlq = OnFailure::dead_letter("readings-dlq");
/// assert_eq!(dlq, OnFailure::DeadLetter { topic: "readings-dlq".to_string() });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnFailure {
    /// Stop before the failed message: `run` returns the error, and nothing at or past the
    /// message's offset is committed, so the next run starts with it.
    #[default]
    Stop,
    /// Write the message (key, payload, headers, plus `brooklet.error` and `brooklet.origin`
    /// headers) to this topic and go on; it counts as done once the write is delivered. If
    /// the write fails, the source stops as with [`Stop`](OnFailure::Stop). The dead-letter
    /// producer is idempotent and uses the source's connection and security settings
    /// (`bootstrap.servers`, `security.*`, `sasl.*`, `ssl.*`, `socket.*`, `client.*`, ...
    /// given with [`KafkaSourceBuilder::set`](crate::kafka::KafkaSourceBuilder::set)).
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

impl OnFailure {
    /// [`OnFailure::DeadLetter`] to `topic`.
    ///
    /// ```
    /// use brooklet::kafka::OnFailure;
    /// assert!(matches!(OnFailure::dead_letter("dlq"), OnFailure::DeadLetter { .. }));
    /// ```
    pub fn dead_letter(topic: impl Into<String>) -> OnFailure {
        OnFailure::DeadLetter {
            topic: topic.into(),
        }
    }
}

/// The first failure that stops the source, and the wake-up of the run loop.
pub(crate) struct Stopper {
    first: Lock<Option<Error>>,
    pub(crate) wake: Notify,
}

impl Stopper {
    pub(crate) fn new() -> Stopper {
        Stopper {
            first: Lock::new(None),
            wake: Notify::new(),
        }
    }

    /// Records `error` (the first one wins) and wakes the run loop.
    pub(crate) fn stop_with(&self, error: Error) {
        self.first.lock().get_or_insert(error);
        self.wake.notify_waiters();
    }

    pub(crate) fn error(&self) -> Option<Error> {
        self.first.lock().clone()
    }
}

/// Where a dead-letter write's delivery report goes.
pub(crate) struct DeadLetterContext {
    stopper: Arc<Stopper>,
}

impl ClientContext for DeadLetterContext {}

impl ProducerContext for DeadLetterContext {
    type DeliveryOpaque = Box<(Arc<Partition>, i64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (part, offset) = *opaque;
        match result {
            Ok(_) => part.done(offset),
            Err((e, _)) => {
                part.fail(offset);
                self.stopper.stop_with(failed(
                    "kafka_source",
                    format!(
                        "cannot write {}/{}@{offset} to the dead-letter topic: {e}",
                        part.topic, part.partition
                    ),
                ));
            }
        }
    }
}

/// Applies the failure policy to failed messages.
pub(crate) struct Failures {
    pub(crate) stopper: Arc<Stopper>,
    dead_letter: Option<DeadLetter>,
}

/// The dead-letter topic and its producer.
struct DeadLetter {
    topic: String,
    producer: Arc<ThreadedProducer<DeadLetterContext>>,
    /// Where writes that found the producer's queue full are retried.
    runtime: tokio::runtime::Handle,
    /// Writes being retried on the runtime.
    retrying: Arc<AtomicUsize>,
}

/// At most this many dead-letter writes wait for room in the producer's queue; past it, a
/// failed message stops the source.
const MAX_RETRYING: usize = 10_000;

/// How long a dead-letter write may wait for room in the producer's queue.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// Consumer settings that the dead-letter producer shares: where the brokers are and how to
/// connect and authenticate to them.
const SHARED_SETTINGS: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "security.",
    "sasl.",
    "ssl.",
    "ssl_",
    "enable.ssl.",
    "enable.sasl.",
    "https.",
    "socket.",
    "broker.",
    "client.",
    "reconnect.",
    "api.version.",
    "connections.max.idle.ms",
    "resolve.canonical.bootstrap.servers.only",
];

impl fmt::Debug for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failures")
            .field("dead_letter", &self.dead_letter.as_ref().map(|d| &d.topic))
            .finish()
    }
}

impl Failures {
    /// The handler for `policy`; a dead-letter policy makes a producer with the connection
    /// and security settings of `consumer` (the source's consumer configuration).
    pub(crate) fn new(policy: &OnFailure, consumer: &ClientConfig) -> Result<Failures, Error> {
        let stopper = Arc::new(Stopper::new());
        let dead_letter = match policy {
            OnFailure::Stop => None,
            OnFailure::DeadLetter { topic } => {
                let mut config = ClientConfig::new();
                config
                    .set("message.timeout.ms", "30000")
                    .set("allow.auto.create.topics", "false")
                    .set("reconnect.backoff.max.ms", "1000")
                    .set("enable.idempotence", "true");
                for (k, v) in consumer.config_map() {
                    if SHARED_SETTINGS.iter().any(|s| {
                        if s.ends_with('.') || s.ends_with('_') {
                            k.starts_with(s)
                        } else {
                            k == *s
                        }
                    }) {
                        config.set(k, v);
                    }
                }
                let producer = config
                    .create_with_context(DeadLetterContext {
                        stopper: stopper.clone(),
                    })
                    .map_err(|e| {
                        failed(
                            "kafka_source",
                            format!("cannot create the dead-letter producer: {e}"),
                        )
                    })?;
                Some(DeadLetter {
                    topic: topic.clone(),
                    producer: Arc::new(producer),
                    runtime: crate::graph::task::runtime("kafka_source"),
                    retrying: Arc::new(AtomicUsize::new(0)),
                })
            }
        };
        Ok(Failures {
            stopper,
            dead_letter,
        })
    }

    /// Whether failed messages need their content kept (for the dead-letter topic).
    pub(crate) fn keeps_messages(&self) -> bool {
        self.dead_letter.is_some()
    }

    /// Message `offset` of `part` failed with `error`.
    pub(crate) fn failed(
        &self,
        part: &Arc<Partition>,
        offset: i64,
        message: Option<&Message>,
        error: Error,
    ) {
        tracing::warn!(
            topic = %part.topic, partition = part.partition, offset, error = %error,
            "kafka source: processing a message failed"
        );
        if let (Some(dl), Some(m)) = (&self.dead_letter, message) {
            let text = error.to_string();
            match dead_letter(&dl.producer, &dl.topic, part, m, &text) {
                Ok(()) => {}
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
                    if dl.retrying.fetch_add(1, Ordering::AcqRel) < MAX_RETRYING =>
                {
                    // The queue empties on the producer's own thread. This runs wherever the
                    // token was released: retry on the runtime rather than block here.
                    let (producer, topic, retrying) =
                        (dl.producer.clone(), dl.topic.clone(), dl.retrying.clone());
                    let (part, m, stopper) = (part.clone(), m.clone(), self.stopper.clone());
                    dl.runtime.spawn(async move {
                        let until = Instant::now() + RETRY_FOR;
                        let result = loop {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            match dead_letter(&producer, &topic, &part, &m, &text) {
                                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
                                    if Instant::now() < until => {}
                                r => break r,
                            }
                        };
                        if let Err(e) = result {
                            part.fail(offset);
                            stopper.stop_with(failed(
                                "kafka_source",
                                format!("cannot write {}: {e} (after: {text})", origin(&m)),
                            ));
                        }
                        retrying.fetch_sub(1, Ordering::AcqRel);
                    });
                }
                Err(e) => {
                    if matches!(
                        e,
                        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                    ) {
                        dl.retrying.fetch_sub(1, Ordering::AcqRel);
                    }
                    part.fail(offset);
                    self.stopper.stop_with(failed(
                        "kafka_source",
                        format!("cannot write {}: {e} (after: {error})", origin(m)),
                    ));
                }
            }
            return;
        }
        part.fail(offset);
        let at = format!("{}/{}@{offset}", part.topic, part.partition);
        self.stopper.stop_with(located(error, &at));
    }

    /// Waits until every dead-letter write was queued (those retried have a bounded time) and
    /// then, on a blocking thread, until each has its delivery report.
    pub(crate) async fn flush(self: &Arc<Self>) {
        let Some(dl) = &self.dead_letter else {
            return;
        };
        while dl.retrying.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let producer = dl.producer.clone();
        let flushed =
            tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(60))).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "kafka source: dead-letter writes not flushed");
        }
    }
}

/// `error`, saying which message (`at`, as `topic/partition@offset`) it stopped the source at,
/// unless it says so already.
fn located(error: Error, at: &str) -> Error {
    let with_at = |message: String| {
        if message.contains(at) {
            message
        } else {
            format!("{message} (while processing {at})")
        }
    };
    match error {
        Error::Panicked { node, message } => Error::Panicked {
            node,
            message: with_at(message),
        },
        Error::Failed { node, message } => Error::Failed {
            node,
            message: with_at(message),
        },
        Error::Several { first, more } => Error::Several {
            first: Box::new(located(*first, at)),
            more,
        },
        other => other,
    }
}

fn origin(m: &Message) -> String {
    format!("{}/{}@{}", m.topic(), m.partition(), m.offset())
}

/// Queues `m` on the dead-letter topic, without waiting.
fn dead_letter(
    producer: &ThreadedProducer<DeadLetterContext>,
    topic: &str,
    part: &Arc<Partition>,
    m: &Message,
    error_text: &str,
) -> Result<(), KafkaError> {
    let mut headers = OwnedHeaders::new_with_capacity(m.headers().len() + 2);
    for (k, v) in m.headers() {
        headers = headers.insert(Header {
            key: k,
            value: v.as_deref(),
        });
    }
    let origin = origin(m);
    headers = headers
        .insert(Header {
            key: "brooklet.error",
            value: Some(error_text.as_bytes()),
        })
        .insert(Header {
            key: "brooklet.origin",
            value: Some(origin.as_bytes()),
        });
    let mut record: BaseRecord<'_, [u8], [u8], _> =
        BaseRecord::with_opaque_to(topic, Box::new((part.clone(), m.offset()))).headers(headers);
    if let Some(k) = m.key() {
        record = record.key(k);
    }
    if let Some(p) = m.payload() {
        record = record.payload(p);
    }
    if let Some(t) = m.timestamp() {
        record = record.timestamp(t);
    }
    producer.send(record).map_err(|(e, _)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_dead_letter_producer_takes_the_consumers_connection_settings() {
        let mut consumer = ClientConfig::new();
        consumer
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("group.id", "g")
            .set("security.protocol", "no-such-protocol");
        let policy = OnFailure::dead_letter("dlq");
        let err = Failures::new(&policy, &consumer).unwrap_err();
        assert!(err.to_string().contains("security.protocol"), "{err}");
        // Consumer-only settings stay with the consumer.
        consumer.set("security.protocol", "plaintext");
        assert!(Failures::new(&policy, &consumer).is_ok());
    }
}
