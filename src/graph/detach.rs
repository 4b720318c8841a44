//! Taking a branch out of a running graph (`Stream::detach`, Streamz's `destroy`).
//!
//! The branch is the node and every node below it that is fed only from inside the branch.
//! Detaching runs in three steps:
//! 1. under the topology lock, the edges into the node are cut (so no new element reaches the
//!    branch), as are the edges between nodes of the branch;
//! 2. each edge from the branch to a node outside it delivers the branch's end, then is cut, so
//!    that node stops waiting for it (a `zip` stops waiting for its partner; a `union` waits
//!    only for the inputs it has left);
//! 3. every node of the branch ends with no edge left: what it holds (queues, windows, batches)
//!    goes nowhere and is dropped, its tokens released as done, and its background task, if
//!    any, winds down. Nothing upstream waits for it any more, so a later `close()` does not.
//!
//! Edges made by operators are never freed while their upstream lives (a push reads them
//! without a lock), so the nodes themselves keep their few bytes until their upstream goes;
//! what they held is freed at once.

use std::collections::HashSet;
use std::sync::Arc;

use super::cx::Cx;
use super::node::NodeDyn;
use super::stream::{Stream, addr};
use super::{Item, topology};

/// The nodes fed only from inside the branch of `root` (`root` included), in the order found.
fn branch_of(root: &Arc<dyn NodeDyn>) -> Vec<Arc<dyn NodeDyn>> {
    let mut inside: HashSet<*const ()> = HashSet::from([addr(root)]);
    let mut branch = vec![root.clone()];
    let mut seen: HashSet<*const ()> = HashSet::new();
    let mut candidates: Vec<Arc<dyn NodeDyn>> = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(n) = stack.pop() {
        for link in n.links() {
            if let (Some(next), false) = (link.node, link.feedback)
                && seen.insert(addr(&next))
            {
                candidates.push(next.clone());
                stack.push(next);
            }
        }
    }
    // Grow to a fixed point: a node joins once every forward upstream it has is inside.
    loop {
        let before = branch.len();
        for c in &candidates {
            let a = addr(c);
            if inside.contains(&a) {
                continue;
            }
            let fed_inside = c
                .meta()
                .uplinks()
                .iter()
                .filter(|(_, feedback)| !feedback)
                .all(|(up, _)| inside.contains(&addr(up)));
            if fed_inside {
                inside.insert(a);
                branch.push(c.clone());
            }
        }
        if branch.len() == before {
            return branch;
        }
    }
}

impl<T: Item> Stream<T> {
    /// Takes this node and everything below it that nothing else feeds out of the graph, while
    /// it runs (Streamz's `destroy`). After `detach` returns, no element reaches the branch;
    /// what its nodes held (queued, windowed, waiting for a partner) is dropped, with its
    /// acknowledgement tokens released as done (the branch was discarded on purpose); their
    /// background tasks wind down; and a later `close()` upstream does not wait for them.
    ///
    /// A node below the branch that has other inputs stays in the graph: it hears that the
    /// branch's input has ended, as if the branch had closed. An element already on its way
    /// through the branch on another thread when `detach` runs may still reach the branch's
    /// nodes; it is dropped there too. Detaching again does nothing.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let kept = source.map(|x: u32| x + 1).sink_to_vec();
    /// let branch = source.map(|x| x * 10);
    /// let batches = branch.partition(3);
    /// let dropped = batches.sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// assert_eq!(batches.metrics().held, 2);
    ///
    /// branch.detach();
    /// assert_eq!(batches.metrics().held, 0); // freed, not flushed
    /// source.emit(3).await?;
    /// source.close().await?;
    /// assert_eq!(kept.snapshot(), vec![2, 3, 4]);
    /// assert!(dropped.snapshot().is_empty());
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn detach(&self) {
        let root: Arc<dyn NodeDyn> = self.node.clone();
        let mut cut = Vec::new();
        let (branch, leaving) = {
            let _g = topology();
            if root.meta().is_done() && root.meta().uplinks().is_empty() {
                return;
            }
            let root_addr = addr(&root);
            for (up, _) in root.meta().uplinks() {
                while let Some((feedback, ended, held)) = up.cut_to(root_addr) {
                    root.meta().remove_uplink(addr(&up), !feedback, ended);
                    cut.push(held);
                }
            }
            let branch = branch_of(&root);
            let inside: HashSet<*const ()> = branch.iter().map(addr).collect();
            let mut leaving = Vec::new();
            for n in &branch {
                for link in n.links() {
                    let Some(next) = link.node else { continue };
                    if inside.contains(&addr(&next)) {
                        if let Some((feedback, ended, held)) = n.cut_to(addr(&next)) {
                            next.meta().remove_uplink(addr(n), !feedback, ended);
                            cut.push(held);
                        }
                    } else if link.feedback {
                        // A loop out of the branch: it would carry elements out of it.
                        if let Some((_, _, held)) = n.cut_to(addr(&next)) {
                            next.meta().remove_uplink(addr(n), false, false);
                            cut.push(held);
                        }
                    } else {
                        leaving.push((n.clone(), next));
                    }
                }
            }
            (branch, leaving)
        };
        // Dropped outside the topology lock: it may be the last hold on part of a graph.
        drop(cut);
        let mut cx = Cx::new();
        for (from, to) in leaving {
            from.end_to(addr(&to), &mut cx);
            let (all_ended, held) = {
                let _g = topology();
                match from.cut_to(addr(&to)) {
                    Some((feedback, ended, held)) => (
                        to.meta().remove_uplink(addr(&from), !feedback, ended),
                        Some(held),
                    ),
                    None => (false, None),
                }
            };
            drop(held);
            if all_ended {
                to.finish_now(&mut cx);
            }
        }
        for n in branch {
            n.finish_now(&mut cx);
        }
    }
}
