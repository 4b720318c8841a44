//! Side outputs: a second stream fed by a node besides its main output (late events of a
//! window, errors of a fallible operator).
//!
//! A side output is a node with no input port. Its owner pushes into it directly and finishes
//! it when the owner itself ends, so it ends exactly when its owner does.

use std::marker::PhantomData;
use std::sync::Arc;

use super::Item;
use super::cx::Cx;
use super::node::{Node, NodeDyn, Operator};
use super::stream::Stream;

pub(crate) struct SideOp<T>(PhantomData<fn(T)>);

impl<T: Item> Operator for SideOp<T> {
    type Out = T;
}

/// The owner's end of a side output.
pub(crate) struct Side<T: Item> {
    node: Arc<Node<SideOp<T>>>,
}

impl<T: Item> Side<T> {
    /// A side output named `kind`.
    pub(crate) fn new(kind: &'static str) -> Side<T> {
        Side {
            node: Arc::new(Node::new(kind, SideOp(PhantomData))),
        }
    }

    /// Records `owner` as the node feeding this side output (for DOT). Call it once the owner
    /// node exists.
    pub(crate) fn set_owner(&self, owner: Arc<dyn NodeDyn>) {
        self.node.meta.add_uplink(Arc::downgrade(&owner), false);
    }

    /// Pushes `x` to whatever is connected to the side output (nothing, often).
    pub(crate) fn push(&self, x: T, cx: &mut Cx) {
        self.node.meta.received.inc();
        self.node.out.push(x, cx);
    }

    /// Whether anything is connected downstream of the side output.
    pub(crate) fn is_connected(&self) -> bool {
        self.node.out.has_active()
    }

    /// Ends the side output; call it from the owner's `on_end`.
    pub(crate) fn finish(&self, cx: &mut Cx) {
        self.node.finish(cx);
    }

    /// The side output's node, for `Operator::sides`.
    pub(crate) fn node(&self) -> Arc<dyn NodeDyn> {
        self.node.clone()
    }

    /// A handle users build on.
    pub(crate) fn stream(&self) -> Stream<T> {
        Stream::from_node(self.node.clone())
    }
}
