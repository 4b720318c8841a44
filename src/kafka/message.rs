//! The element a Kafka source emits, and what a failed decode turns into.
//!
//! A [`Message`] owns its bytes behind reference counts, so the fan-out clones a graph makes are
//! cheap and a message can be kept past the consumer's poll (librdkafka's own message is
//! borrowed from the consumer and must be copied once anyway).

use std::fmt;
use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Headers, Message as _};

/// Bytes shared between the clones of a [`Message`] (a clone copies no byte).
///
/// ```
/// use brooklet::kafka::Bytes;
/// let b: Bytes = b"payload".as_slice().into();
/// let c = b.clone();
/// assert!(std::sync::Arc::ptr_eq(&b, &c));
/// ```
pub type Bytes = Arc<[u8]>;

/// A record read from Kafka: where it came from and what it holds.
///
/// ```
/// use brooklet::kafka::Message;
/// let m = Message::new("readings", 0, 42).with_key("sensor-1").with_payload("21.5");
/// assert_eq!(m.topic(), "readings");
/// assert_eq!(m.key(), Some(&b"sensor-1"[..]));
/// assert_eq!(m.payload_str(), Some("21.5"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    /// The key's bytes, then the payload's, in one allocation per message read.
    body: Bytes,
    /// The key's length; `None`: no key.
    key_len: Option<usize>,
    /// Whether there is a payload (the bytes after the key).
    has_payload: bool,
    timestamp: Option<i64>,
    headers: Vec<(String, Option<Bytes>)>,
}

impl Message {
    /// A message with no key, payload, timestamp or headers; for tests and for building one by
    /// hand.
    ///
    /// ```
    /// use brooklet::kafka::Message;
    /// let m = Message::new("t", 3, 7);
    /// assert_eq!((m.partition(), m.offset(), m.payload()), (3, 7, None));
    /// ```
    pub fn new(topic: impl Into<Arc<str>>, partition: i32, offset: i64) -> Message {
        Message {
            topic: topic.into(),
            partition,
            offset,
            body: Bytes::from(&[][..]),
            key_len: None,
            has_payload: false,
            timestamp: None,
            headers: Vec::new(),
        }
    }

    /// This message with `key`.
    ///
    /// ```
    /// use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).with_key("k").key(), Some(&b"k"[..]));
    /// ```
    pub fn with_key(mut self, key: impl AsRef<[u8]>) -> Message {
        let key = key.as_ref();
        self.body = joined(key, self.payload().unwrap_or_default());
        self.key_len = Some(key.len());
        self
    }

    /// This message with `payload`.
    ///
    /// ```
    /// use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).with_payload([1, 2]).payload(), Some(&[1u8, 2][..]));
    /// ```
    pub fn with_payload(mut self, payload: impl AsRef<[u8]>) -> Message {
        self.body = joined(self.key().unwrap_or_default(), payload.as_ref());
        self.has_payload = true;
        self
    }

    /// This message with a timestamp (milliseconds since the Unix epoch).
    ///
    /// ```
    /// use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).with_timestamp(1_000).timestamp(), Some(1_000));
    /// ```
    pub fn with_timestamp(mut self, millis: i64) -> Message {
        self.timestamp = Some(millis);
        self
    }

    /// This message with one more header.
    ///
    /// ```
    /// use brooklet::kafka::Message;
    /// let m = Message::new("t", 0, 0).with_header("trace", "abc");
    /// assert_eq!(m.header("trace"), Some(&b"abc"[..]));
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Message {
        self.headers
            .push((name.into(), Some(value.as_ref().into())));
        self
    }

    pub(crate) fn from_kafka(m: &BorrowedMessage<'_>, topic: Arc<str>) -> Message {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(Bytes::from)))
                    .collect()
            })
            .unwrap_or_default();
        let (key, payload) = (m.key(), m.payload());
        let body: Bytes = match (key, payload) {
            (Some(k), Some(p)) => joined(k, p),
            (Some(b), None) | (None, Some(b)) => b.into(),
            (None, None) => Bytes::from(&[][..]),
        };
        Message {
            topic,
            partition: m.partition(),
            offset: m.offset(),
            body,
            key_len: key.map(<[u8]>::len),
            has_payload: payload.is_some(),
            timestamp: m.timestamp().to_millis(),
            headers,
        }
    }

    /// The topic the message was read from.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).topic(), "t");
    /// ```
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition the message was read from.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 5, 0).partition(), 5);
    /// ```
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The message's offset in its partition.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 9).offset(), 9);
    /// ```
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The key, if the message has one.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).key(), None);
    /// ```
    pub fn key(&self) -> Option<&[u8]> {
        self.key_len.map(|n| &self.body[..n])
    }

    /// The payload, if the message has one (a tombstone has none).
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).with_payload("x").payload(), Some(&b"x"[..]));
    /// ```
    pub fn payload(&self) -> Option<&[u8]> {
        self.has_payload
            .then(|| &self.body[self.key_len.unwrap_or(0)..])
    }

    /// The payload as UTF-8 text, if it is some and valid.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).with_payload([0xff]).payload_str(), None);
    /// ```
    pub fn payload_str(&self) -> Option<&str> {
        self.payload().and_then(|p| std::str::from_utf8(p).ok())
    }

    /// The key as UTF-8 text, if it is some and valid.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).with_key("k").key_str(), Some("k"));
    /// ```
    pub fn key_str(&self) -> Option<&str> {
        self.key().and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The record's timestamp (create or log-append time, in milliseconds since the Unix
    /// epoch), if the broker gave one.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).timestamp(), None);
    /// ```
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// All headers, in order; a header may have no value.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// let m = Message::new("t", 0, 0).with_header("a", "1").with_header("b", "2");
    /// assert_eq!(m.headers().len(), 2);
    /// assert_eq!(m.headers()[1].0, "b");
    /// ```
    pub fn headers(&self) -> &[(String, Option<Bytes>)] {
        &self.headers
    }

    /// The value of the first header named `name`.
    ///
    /// ```
    /// # use brooklet::kafka::Message;
    /// assert_eq!(Message::new("t", 0, 0).header("missing"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.0 == name)
            .and_then(|h| h.1.as_deref())
    }
}

/// `a` then `b`, in one allocation (the iterator knows its exact length).
fn joined(a: &[u8], b: &[u8]) -> Bytes {
    a.iter().chain(b).copied().collect()
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("key", &self.key().map(String::from_utf8_lossy))
            .field("payload_len", &self.payload().map(<[u8]>::len))
            .field("timestamp", &self.timestamp)
            .field("headers", &self.headers.len())
            .finish()
    }
}

/// A message the source's decoder refused, with the decoder's error. It goes to the source's
/// [`errors`](crate::kafka::KafkaSource::errors) side output; once accepted there it counts as
/// handled, and the partition goes on.
///
/// ```
/// use brooklet::kafka::{DecodeError, Message};
/// let e = DecodeError::new(Message::new("t", 0, 4), "not a number");
/// assert_eq!(e.message().offset(), 4);
/// assert_eq!(e.to_string(), "cannot decode t/0@4: not a number");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    message: Message,
    error: String,
}

impl DecodeError {
    /// A decode failure of `message`.
    ///
    /// ```
    /// use brooklet::kafka::{DecodeError, Message};
    /// let e = DecodeError::new(Message::new("t", 0, 0), "bad");
    /// assert_eq!(e.error(), "bad");
    /// ```
    pub fn new(message: Message, error: impl fmt::Display) -> DecodeError {
        DecodeError {
            message,
            error: error.to_string(),
        }
    }

    /// The message that could not be decoded.
    ///
    /// ```
    /// use brooklet::kafka::{DecodeError, Message};
    /// assert_eq!(DecodeError::new(Message::new("t", 1, 0), "x").message().partition(), 1);
    /// ```
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// What the decoder said.
    ///
    /// ```
    /// use brooklet::kafka::{DecodeError, Message};
    /// assert_eq!(DecodeError::new(Message::new("t", 0, 0), 7).error(), "7");
    /// ```
    pub fn error(&self) -> &str {
        &self.error
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot decode {}/{}@{}: {}",
            self.message.topic, self.message.partition, self.message.offset, self.error
        )
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn key_and_payload_share_one_buffer_and_read_back_apart() {
        let none = Message::new("t", 0, 0);
        assert_eq!((none.key(), none.payload()), (None, None));
        let key = Message::new("t", 0, 0).with_key("k1");
        assert_eq!((key.key(), key.payload()), (Some(&b"k1"[..]), None));
        let payload = Message::new("t", 0, 0).with_payload("p");
        assert_eq!((payload.key(), payload.payload()), (None, Some(&b"p"[..])));
        // Either order of the builders gives the same message.
        let both = Message::new("t", 0, 0).with_payload("pay").with_key("k");
        assert_eq!(
            both,
            Message::new("t", 0, 0).with_key("k").with_payload("pay")
        );
        assert_eq!(
            (both.key(), both.payload()),
            (Some(&b"k"[..]), Some(&b"pay"[..]))
        );
        // An empty key or payload is not a missing one.
        let empty = Message::new("t", 0, 0).with_key("").with_payload("");
        assert_eq!(
            (empty.key(), empty.payload()),
            (Some(&b""[..]), Some(&b""[..]))
        );
        assert_ne!(empty, none);
        // Replacing a key keeps the payload, and the other way round.
        let replaced = both.clone().with_key("longer-key").with_payload("p2");
        assert_eq!(replaced.key_str(), Some("longer-key"));
        assert_eq!(replaced.payload_str(), Some("p2"));
    }
}
