//! The children of an `all` or `any`, with the order decisions read them in.

use crate::compile::Node;

/// The children of an `all` or `any`.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// In file order: explanations list them so.
    pub nodes: Vec<Node>,
    /// Indexes into `nodes`, cheapest first: decisions read them in this order,
    /// so a deciding child that time never changes (a trait, consent) ends the
    /// walk before the costlier ones. The answer does not depend on the order.
    pub cheap_first: Vec<usize>,
}

impl Group {
    pub fn new(nodes: Vec<Node>) -> Group {
        let mut cheap_first: Vec<usize> = (0..nodes.len()).collect();
        cheap_first.sort_by_key(|i| cost(&nodes[*i]));
        Group { nodes, cheap_first }
    }

    /// The children, cheapest first.
    pub fn cheap_first(&self) -> impl Iterator<Item = &Node> {
        self.cheap_first.iter().map(|i| &self.nodes[*i])
    }
}

/// A rough relative cost of deciding a condition. Recorded holds name
/// conditions by this order: changing it changes `crate::compile::DECISIONS`.
fn cost(node: &Node) -> usize {
    match node {
        Node::Consent(_) | Node::Trait(_) | Node::Segment(_) => 1,
        Node::Last { .. } => 2,
        Node::Count { .. } => 3,
        Node::Sequence { steps, .. } => 2 * steps.len(),
        Node::Velocity { .. } => 6,
        Node::Score { .. } => 8,
        Node::Not(child) => cost(child),
        Node::All(group) | Node::Any(group) => group.nodes.iter().map(cost).sum(),
    }
}
