//! The emission context: what one push collects on its way through the graph.
//!
//! Every push carries a `&mut Cx`. Nodes that cannot accept an element at once still take it (so
//! a dropped [`Emit`] future never loses data) and register a [`Pending`] future that resolves
//! when they have room again; failures found on asynchronous paths are recorded as errors. When
//! the push returns, the context becomes the [`Emit`] future handed to the caller.
//!
//! Invariant: a push through synchronous nodes only never allocates here. `Vec::new` does not
//! allocate, and nothing is added to either list unless a node pends or fails.

use std::future::Future;
use std::pin::Pin;

use super::ack::Acks;
use super::emit::Emit;
use super::error::Error;

/// A future a node hands back when it cannot accept more right now; it resolves when it can.
/// It never owns the element, so dropping it loses nothing.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>>;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Cx {
    /// Tokens of the element being pushed.
    pub(crate) acks: Acks,
    pending: Vec<Pending>,
    errors: Vec<Error>,
}

impl Cx {
    #[inline]
    pub(crate) fn new() -> Cx {
        Cx::default()
    }

    #[inline]
    pub(crate) fn with_acks(acks: Acks) -> Cx {
        Cx {
            acks,
            ..Cx::default()
        }
    }

    /// Registers a wait: the push is accepted, but the caller should not send more until
    /// `until` resolves.
    pub(crate) fn wait(&mut self, until: impl Future<Output = Result<(), Error>> + Send + 'static) {
        self.pending.push(Box::pin(until));
    }

    /// Records a failure found on an asynchronous path.
    pub(crate) fn fail(&mut self, error: Error) {
        self.errors.push(error);
    }

    /// Turns what this push collected into the caller's future.
    #[inline]
    pub(crate) fn into_emit(self) -> Emit {
        if self.pending.is_empty() && self.errors.is_empty() {
            Emit::ready(Ok(()))
        } else {
            Emit::waiting(self.pending, self.errors.into_iter().next())
        }
    }
}
