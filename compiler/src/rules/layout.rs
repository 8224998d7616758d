//! Layout rules: permutes merge and cancel, reshapes merge, views to the same shape vanish, and
//! unary ops sink below broadcasts (computed on the small tensor).

use super::{Rhs, Rule, RuleSet, dims};
use crate::egraph::{TEGraph, TNode};
use tessera_ir::{DType, Graph, IrError, NodeId, Op, Shape, SliceRange};

/// The layout rules.
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            name: "permute-merge",
            set: RuleSet::Layout,
            witness: w_permute_merge,
            matcher: permute_merge,
        },
        Rule { name: "permute-id", set: RuleSet::Layout, witness: w_permute_id, matcher: permute_id },
        Rule {
            name: "reshape-merge",
            set: RuleSet::Layout,
            witness: w_reshape_merge,
            matcher: reshape_merge,
        },
        Rule { name: "reshape-same", set: RuleSet::Layout, witness: w_reshape_same, matcher: reshape_same },
        Rule {
            name: "broadcast-same",
            set: RuleSet::Layout,
            witness: w_broadcast_same,
            matcher: broadcast_same,
        },
        Rule { name: "slice-full", set: RuleSet::Layout, witness: w_slice_full, matcher: slice_full },
        Rule {
            name: "broadcast-sink",
            set: RuleSet::Layout,
            witness: w_broadcast_sink,
            matcher: broadcast_sink,
        },
    ]
}

fn is_identity(perm: &[usize]) -> bool {
    perm.iter().enumerate().all(|(i, &p)| i == p)
}

/// `permute(permute(x, p1), p2) = permute(x, i -> p1[p2[i]])`, or `x` when that is the identity.
fn permute_merge(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Permute { perm: p2 } = &node.op else { return None };
    let inner = egraph[node.args[0]].nodes.iter().find(|n| matches!(n.op, Op::Permute { .. }))?;
    let Op::Permute { perm: p1 } = &inner.op else { return None };
    let merged: Vec<usize> = p2.iter().map(|&i| p1[i]).collect();
    let x = Rhs::Class(inner.args[0]);
    Some(if is_identity(&merged) { x } else { Rhs::Node(Op::Permute { perm: merged }, vec![x]) })
}

fn permute_id(_egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Permute { perm } = &node.op else { return None };
    is_identity(perm).then_some(Rhs::Class(node.args[0]))
}

/// `reshape(reshape(x, a), b) = reshape(x, b)`.
fn reshape_merge(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Reshape { shape } = &node.op else { return None };
    let inner = egraph[node.args[0]].nodes.iter().find(|n| matches!(n.op, Op::Reshape { .. }))?;
    Some(Rhs::Node(Op::Reshape { shape: shape.clone() }, vec![Rhs::Class(inner.args[0])]))
}

fn reshape_same(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Reshape { shape } = &node.op else { return None };
    (dims(egraph, node.args[0]) == shape.dims()).then_some(Rhs::Class(node.args[0]))
}

fn broadcast_same(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Broadcast { shape } = &node.op else { return None };
    (dims(egraph, node.args[0]) == shape.dims()).then_some(Rhs::Class(node.args[0]))
}

fn slice_full(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Slice { ranges } = &node.op else { return None };
    let d = dims(egraph, node.args[0]);
    let full = ranges.len() == d.len() && ranges.iter().zip(d).all(|(r, &n)| *r == SliceRange::full(n));
    full.then_some(Rhs::Class(node.args[0]))
}

/// `f(broadcast(x)) = broadcast(f(x))` for unary ops and casts: compute on the small tensor.
fn broadcast_sink(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    if !matches!(node.op, Op::Unary(_) | Op::Cast { .. }) {
        return None;
    }
    let inner = egraph[node.args[0]].nodes.iter().find(|n| matches!(n.op, Op::Broadcast { .. }))?;
    let f = Rhs::Node(node.op.clone(), vec![Rhs::Class(inner.args[0])]);
    Some(Rhs::Node(inner.op.clone(), vec![f]))
}

// ---- witnesses ----

fn with_x(
    shape: &[usize],
    f: impl FnOnce(&mut Graph, NodeId) -> Result<NodeId, IrError>,
) -> Result<Graph, IrError> {
    let mut g = Graph::new();
    let x = g.input("x", shape.to_vec(), DType::F32);
    let y = f(&mut g, x)?;
    g.add_output(y)?;
    Ok(g)
}

fn w_permute_merge(s: &[usize]) -> Result<Graph, IrError> {
    let r = s.len();
    let rotate: Vec<usize> = (0..r).map(|i| (i + 1) % r).collect();
    let reverse: Vec<usize> = (0..r).rev().collect();
    with_x(s, |g, x| {
        let p = g.add(Op::Permute { perm: rotate }, &[x])?;
        g.add(Op::Permute { perm: reverse }, &[p])
    })
}

fn w_permute_id(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, |g, x| g.add(Op::Permute { perm: (0..s.len()).collect() }, &[x]))
}

fn w_reshape_merge(s: &[usize]) -> Result<Graph, IrError> {
    let n: usize = s.iter().product();
    let back: Vec<usize> = s.iter().rev().copied().collect();
    with_x(s, |g, x| {
        let flat = g.add(Op::Reshape { shape: Shape::from([n]) }, &[x])?;
        g.add(Op::Reshape { shape: Shape::from(back) }, &[flat])
    })
}

fn w_reshape_same(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, |g, x| g.add(Op::Reshape { shape: Shape::from(s) }, &[x]))
}

fn w_broadcast_same(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, |g, x| g.add(Op::Broadcast { shape: Shape::from(s) }, &[x]))
}

fn w_slice_full(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, |g, x| g.add(Op::Slice { ranges: s.iter().map(|&n| SliceRange::full(n)).collect() }, &[x]))
}

fn w_broadcast_sink(s: &[usize]) -> Result<Graph, IrError> {
    let mut big = vec![3];
    big.extend_from_slice(s);
    with_x(s, |g, x| {
        let b = g.add(Op::Broadcast { shape: Shape::from(big) }, &[x])?;
        g.add(Op::Unary(tessera_ir::UnaryOp::Exp), &[b])
    })
}
