//! The graph: an arena of nodes in topological order, with one or more outputs.

use crate::infer::{TensorType, infer};
use crate::{DType, IrError, Op, Shape};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Index of a node in its graph. Operands always have smaller ids than their users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The arena index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// One operation applied to earlier nodes, with its inferred type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Operands, in the op's order.
    pub inputs: Vec<NodeId>,
    /// Result shape.
    pub shape: Shape,
    /// Result dtype.
    pub dtype: DType,
}

impl Node {
    /// Result type.
    pub fn ty(&self) -> TensorType {
        TensorType { shape: self.shape.clone(), dtype: self.dtype }
    }
}

/// A computation: nodes in topological order plus the ids of its outputs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Graph {
    nodes: Vec<Node>,
    outputs: Vec<NodeId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Appends `op` applied to `inputs`, inferring its type; errors name the op and shapes.
    pub fn add(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId, IrError> {
        let operand_types =
            inputs.iter().map(|&id| self.get(id).map(Node::ty)).collect::<Result<Vec<_>, _>>()?;
        let ty = infer(&op, &operand_types)?;
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node { op, inputs: inputs.to_vec(), shape: ty.shape, dtype: ty.dtype });
        Ok(id)
    }

    /// Adds a runtime input.
    pub fn input(&mut self, name: &str, shape: impl Into<Shape>, dtype: DType) -> NodeId {
        self.push_leaf(Op::Input { name: name.into(), shape: shape.into(), dtype })
    }

    /// Adds a weight.
    pub fn param(&mut self, name: &str, shape: impl Into<Shape>, dtype: DType) -> NodeId {
        self.push_leaf(Op::Param { name: name.into(), shape: shape.into(), dtype })
    }

    fn push_leaf(&mut self, op: Op) -> NodeId {
        let (shape, dtype) = match &op {
            Op::Input { shape, dtype, .. } | Op::Param { shape, dtype, .. } => (shape.clone(), *dtype),
            _ => unreachable!("push_leaf is only called with Input or Param"),
        };
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node { op, inputs: Vec::new(), shape, dtype });
        id
    }

    /// Marks `id` as an output (outputs keep the order they were added in).
    pub fn add_output(&mut self, id: NodeId) -> Result<(), IrError> {
        self.get(id)?;
        self.outputs.push(id);
        Ok(())
    }

    /// Replaces the output list.
    pub fn set_outputs(&mut self, ids: Vec<NodeId>) -> Result<(), IrError> {
        for &id in &ids {
            self.get(id)?;
        }
        self.outputs = ids;
        Ok(())
    }

    /// The node with id `id`, or a graph error.
    pub fn get(&self, id: NodeId) -> Result<&Node, IrError> {
        self.nodes
            .get(id.index())
            .ok_or_else(|| IrError::Graph(format!("{id} does not exist ({} nodes)", self.nodes.len())))
    }

    /// The node with id `id`. Panics on a foreign id; use [`Graph::get`] for untrusted ids.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// All nodes in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Iterates `(id, node)` in topological order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i as u32), n))
    }

    /// Output ids.
    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Ids of the `Input` nodes, in order.
    pub fn inputs(&self) -> Vec<NodeId> {
        self.iter().filter(|(_, n)| matches!(n.op, Op::Input { .. })).map(|(id, _)| id).collect()
    }

    /// Ids of the `State` nodes, in order.
    pub fn states(&self) -> Vec<NodeId> {
        self.iter().filter(|(_, n)| matches!(n.op, Op::State { .. })).map(|(id, _)| id).collect()
    }

    /// A State is updated in place, so its only use is as the destination (operand 0) of
    /// exactly one WriteSlice: any other reader could see the value before or after the update.
    fn verify_states(&self) -> Result<(), IrError> {
        for state in self.states() {
            let mut uses = Vec::new();
            for (id, n) in self.iter() {
                for (slot, i) in n.inputs.iter().enumerate() {
                    if *i == state {
                        uses.push((id, slot, matches!(n.op, Op::WriteSlice { .. })));
                    }
                }
            }
            let ok = matches!(uses.as_slice(), [(_, 0, true)]) && !self.outputs.contains(&state);
            if !ok {
                return Err(IrError::Graph(format!(
                    "{state} (state) must be used exactly once, as the destination of a write_slice"
                )));
            }
        }
        Ok(())
    }

    /// Ids of the `Param` nodes, in order.
    pub fn params(&self) -> Vec<NodeId> {
        self.iter().filter(|(_, n)| matches!(n.op, Op::Param { .. })).map(|(id, _)| id).collect()
    }

    /// Number of users of each node (outputs count as a use).
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for i in &n.inputs {
                uses[i.index()] += 1;
            }
        }
        for o in &self.outputs {
            uses[o.index()] += 1;
        }
        uses
    }

    /// Checks the whole graph: topological order, operand counts, recorded types equal to
    /// inferred types, unique input/param names, at least one output.
    pub fn verify(&self) -> Result<(), IrError> {
        let mut names = std::collections::HashSet::new();
        for (id, node) in self.iter() {
            if let Some(bad) = node.inputs.iter().find(|i| i.index() >= id.index()) {
                return Err(IrError::Graph(format!("{id} uses {bad}, which does not precede it")));
            }
            let operands = node.inputs.iter().map(|&i| self.node(i).ty()).collect::<Vec<_>>();
            let ty = infer(&node.op, &operands)?;
            if ty != node.ty() {
                return Err(IrError::Graph(format!(
                    "{id} ({}) records {}{} but infers {}{}",
                    node.op.mnemonic(),
                    node.dtype,
                    node.shape,
                    ty.dtype,
                    ty.shape
                )));
            }
            if let Op::Input { name, .. } | Op::Param { name, .. } = &node.op {
                if !names.insert(name.as_str()) {
                    return Err(IrError::Graph(format!("{id}: name `{name}` is used twice")));
                }
            }
        }
        self.verify_states()?;
        if self.outputs.is_empty() {
            return Err(IrError::Graph("no outputs".into()));
        }
        for o in &self.outputs {
            self.get(*o)?;
        }
        Ok(())
    }
}
