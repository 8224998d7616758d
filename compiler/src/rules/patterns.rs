//! Pattern rules: compositions of primitives recognized as one composite op that has a fast
//! hand kernel. Today: `softmax(q k^T * scale) v` as `attention` (non-causal, every key valid).

use super::{Rhs, Rule, RuleSet, constant, dims};
use crate::egraph::{TEGraph, TNode};
use egg::Id;
use tessera_ir::{BinaryOp, DType, Graph, IrError, Op, Shape, float};

/// The pattern rules.
pub fn rules() -> Vec<Rule> {
    vec![Rule { name: "attention-pattern", set: RuleSet::Patterns, witness: w_attention, matcher: attention }]
}

/// The first e-node of class `id` that `f` accepts.
fn find(egraph: &TEGraph, id: Id, f: impl Fn(&TNode) -> bool) -> Option<&TNode> {
    egraph[id].nodes.iter().find(|n| f(n))
}

/// `matmul(softmax(matmul(q, permute(k, [0, 1, 3, 2])) * c, axis 3), v)` with q `[B, H, S, D]`,
/// k `[B, H, T, D]`, v `[B, H, T, Dv]` and a constant c is `attention(q, k, v, [T; B])` with
/// scale c, not causal.
fn attention(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::MatMul = node.op else { return None };
    let (p, v) = (node.args[0], node.args[1]);
    let softmax = find(egraph, p, |n| matches!(n.op, Op::Softmax { axis: 3 }))?;
    let scaled = find(egraph, softmax.args[0], |n| n.op == Op::Binary(BinaryOp::Mul))?;
    let (scores, c) = [(scaled.args[0], scaled.args[1]), (scaled.args[1], scaled.args[0])]
        .into_iter()
        .find_map(|(s, c)| Some((s, constant(egraph, c)?)))?;
    // The constant must not broadcast the scores to a larger shape.
    if dims(egraph, softmax.args[0]) != dims(egraph, scores) {
        return None;
    }
    let qk = find(egraph, scores, |n| n.op == Op::MatMul)?;
    let (q, kt) = (qk.args[0], qk.args[1]);
    let k = find(egraph, kt, |n| matches!(&n.op, Op::Permute { perm } if perm[..] == [0, 1, 3, 2]))?.args[0];
    let (qd, kd, vd) = (dims(egraph, q), dims(egraph, k), dims(egraph, v));
    let f32s = [q, k, v].iter().all(|&id| egraph[id].data.ty.dtype == DType::F32);
    let shapes_fit = qd.len() == 4
        && kd.len() == 4
        && vd.len() == 4
        && qd[..2] == kd[..2]
        && kd[..3] == vd[..3]
        && qd[3] == kd[3]
        && kd[2] > 0;
    if !(f32s && shapes_fit) || dims(egraph, node.args[0]) != [qd[0], qd[1], qd[2], kd[2]] {
        return None;
    }
    let kv_len = Op::Constant { value: float(kd[2] as f64)?, shape: Shape::from([qd[0]]), dtype: DType::U32 };
    let op = Op::Attention { scale: float(c)?, causal: false };
    Some(Rhs::Node(op, vec![Rhs::Class(q), Rhs::Class(k), Rhs::Class(v), Rhs::Node(kv_len, vec![])]))
}

/// Attention spelled out in primitives, sized from `s` (inputs `q`, `k`, `v`).
fn w_attention(s: &[usize]) -> Result<Graph, IrError> {
    let (b, h, seq, t, d) = (1, s.len(), s[0], s[s.len() - 1] + 1, 2 + s.len());
    let mut g = Graph::new();
    let q = g.input("q", [b, h, seq, d], DType::F32);
    let k = g.input("k", [b, h, t, d], DType::F32);
    let v = g.input("v", [b, h, t, 3], DType::F32);
    let kt = g.add(Op::Permute { perm: vec![0, 1, 3, 2] }, &[k])?;
    let scores = g.add(Op::MatMul, &[q, kt])?;
    let scale = float(1.0 / (d as f64).sqrt()).ok_or_else(|| IrError::Graph("NaN scale".into()))?;
    let c =
        g.add(Op::Constant { value: scale, shape: Shape::from([b, h, seq, t]), dtype: DType::F32 }, &[])?;
    let scaled = g.add(Op::Binary(BinaryOp::Mul), &[scores, c])?;
    let p = g.add(Op::Softmax { axis: 3 }, &[scaled])?;
    let y = g.add(Op::MatMul, &[p, v])?;
    g.add_output(y)?;
    Ok(g)
}
