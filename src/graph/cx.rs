//! The emission context: what one push collects on its way through the graph.
//!
//! Every push carries a `&mut Cx`. Nodes that cannot accept an element at once still take it (so
//! a dropped [`Emit`] future never loses data) and register a [`Pending`] future that resolves
//! when they have room again; failures found on asynchronous paths are recorded as errors. When
//! the push returns, the context becomes the [`Emit`] future handed to the caller.
//!
//! Invariant: a push through synchronous nodes only never allocates here and costs one null
//! check to finish: waits and errors live behind a single optional box, created by the first
//! node that pends or fails.

use std::future::Future;
use std::pin::Pin;

use super::ack::Acks;
use super::emit::Emit;
use super::error::Error;

/// A future a node hands back when it cannot accept more right now; it resolves when it can.
/// It never owns the element, so dropping it loses nothing.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

/// What a push collected besides success: waits and errors.
#[derive(Default)]
pub(crate) struct Collected {
    pub(crate) pending: Vec<Pending>,
    pub(crate) error: Option<Error>,
}

/// See the module documentation.
pub(crate) struct Cx {
    /// Tokens of the element being pushed.
    pub(crate) acks: Acks,
    slow: Option<Box<Collected>>,
}

impl Cx {
    #[inline]
    pub(crate) fn new() -> Cx {
        Cx {
            acks: Acks::None,
            slow: None,
        }
    }

    #[inline]
    pub(crate) fn with_acks(acks: Acks) -> Cx {
        Cx { acks, slow: None }
    }

    /// No tokens and nothing collected: the synchronous case, which needs no cleanup.
    #[inline(always)]
    pub(crate) fn is_trivial(&self) -> bool {
        self.acks.is_empty() && self.slow.is_none()
    }

    fn collected(&mut self) -> &mut Collected {
        self.slow.get_or_insert_with(Box::default)
    }

    /// Registers a wait: the push is accepted, but the caller should not send more until
    /// `until` resolves.
    pub(crate) fn wait(&mut self, until: impl Future<Output = Result<(), Error>> + Send + 'static) {
        self.collected().pending.push(Box::pin(until));
    }

    /// Records a failure found on an asynchronous path (the first one is reported).
    pub(crate) fn fail(&mut self, error: Error) {
        self.collected().error.get_or_insert(error);
    }

    /// Refuses the element being pushed because the node has ended (a push that raced
    /// `close()`): the push fails with [`Error::Closed`], and so do the element's tokens.
    #[cold]
    pub(crate) fn reject_closed(&mut self) {
        self.acks.fail(&Error::Closed);
        self.fail(Error::Closed);
    }

    /// Takes over `other`'s failure, if any, and drops its waits (see `edges::FeedbackPort`).
    pub(crate) fn absorb_failures(&mut self, other: Cx) {
        if let Some(e) = other.into_failure() {
            self.fail(e);
        }
    }

    fn into_failure(self) -> Option<Error> {
        if self.is_trivial() {
            std::mem::forget(self);
            return None;
        }
        self.slow.and_then(|mut c| c.error.take())
    }

    /// Turns what this push collected into the caller's future.
    ///
    /// Callers on the hot path check [`is_trivial`](Self::is_trivial) first, by reference, and
    /// `forget` the context when it holds; moving a context that a push wrote through a
    /// reference makes the compiler copy it, and that copy stalls on store forwarding.
    #[inline(never)]
    pub(crate) fn into_emit(self) -> Emit {
        let Cx { acks, slow } = self;
        drop(acks);
        match slow {
            None => Emit::complete(),
            Some(collected) => Emit::waiting(collected),
        }
    }
}
