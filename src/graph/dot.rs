//! Graphviz DOT export of the graph around a node.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write;
use std::sync::Arc;

use super::node::NodeDyn;
use super::stream::metrics;

/// Renders every node connected to `start` (upstream and downstream, transitively), with
/// each node's counters in its label when `counters` is set.
pub(crate) fn render(start: Arc<dyn NodeDyn>, counters: bool) -> String {
    let mut nodes: BTreeMap<u64, Arc<dyn NodeDyn>> = BTreeMap::new();
    let mut edges: Vec<(u64, u64, bool)> = Vec::new();
    let mut seen_edges = HashSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let id = n.meta().id();
        if nodes.insert(id, n.clone()).is_some() {
            continue;
        }
        for link in n.links() {
            if let Some(down) = link.node {
                if seen_edges.insert((id, down.meta().id())) {
                    edges.push((id, down.meta().id(), link.feedback));
                }
                queue.push_back(down);
            }
        }
        for (up, _) in n.meta().uplinks() {
            queue.push_back(up);
        }
    }
    let mut out = String::from("digraph brooklet {\n  rankdir=LR;\n");
    for (id, n) in &nodes {
        let name = n.meta().name();
        let kind = n.meta().kind();
        let mut label = if name == kind {
            escape(&name)
        } else {
            format!("{}\\n({})", escape(&name), escape(kind))
        };
        if counters {
            let m = metrics(&**n);
            let _ = write!(label, "\\nin {} · out {}", m.received, m.emitted);
            if m.held > 0 {
                let _ = write!(label, " · held {}", m.held);
            }
            if m.errors > 0 {
                let _ = write!(label, " · errors {}", m.errors);
            }
        }
        let _ = writeln!(out, "  n{id} [label=\"{label}\"];");
    }
    for (from, to, feedback) in edges {
        if feedback {
            let _ = writeln!(out, "  n{from} -> n{to} [style=dashed];");
        } else {
            let _ = writeln!(out, "  n{from} -> n{to};");
        }
    }
    out.push_str("}\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
