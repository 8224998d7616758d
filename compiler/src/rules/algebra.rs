//! Algebra rules: identities, double negation, exp/log where legal, constant folding, scalar
//! strength reduction and exact cast chains. No commutativity or associativity rules (they blow
//! the e-graph up); matchers try both operand orders instead.

use super::{Rhs, Rule, RuleSet, constant, dims};
use crate::egraph::{TEGraph, TNode};
use egg::Id;
use tessera_ir::interp::{Tensor, eval_op};
use tessera_ir::{BinaryOp, DType, Graph, IrError, Op, UnaryOp, float};

/// The algebra rules.
pub fn rules() -> Vec<Rule> {
    vec![
        Rule { name: "mul-one", set: RuleSet::Algebra, witness: w_mul_one, matcher: mul_one },
        Rule { name: "add-zero", set: RuleSet::Algebra, witness: w_add_zero, matcher: add_zero },
        Rule { name: "sub-self", set: RuleSet::Algebra, witness: w_sub_self, matcher: sub_self },
        Rule { name: "neg-neg", set: RuleSet::Algebra, witness: w_neg_neg, matcher: neg_neg },
        Rule { name: "exp-log", set: RuleSet::Algebra, witness: w_exp_log, matcher: exp_log },
        Rule { name: "div-const", set: RuleSet::Algebra, witness: w_div_const, matcher: div_const },
        Rule { name: "cast-same", set: RuleSet::Algebra, witness: w_cast_same, matcher: cast_same },
        Rule { name: "cast-chain", set: RuleSet::Algebra, witness: w_cast_chain, matcher: cast_chain },
        Rule { name: "const-fold", set: RuleSet::Algebra, witness: w_const_fold, matcher: const_fold },
    ]
}

/// Operand `keep` of a binary node, when the other operand is the constant `unit` and does not
/// broadcast `keep` to a larger shape.
fn drop_unit(egraph: &TEGraph, node: &TNode, keep: usize, unit: f64) -> Option<Rhs> {
    let (a, c) = (node.args[keep], node.args[1 - keep]);
    let out = crate::egraph::lang::node_type(egraph, &node.op, &node.args)?;
    (constant(egraph, c) == Some(unit) && dims(egraph, a) == out.shape.dims()).then_some(Rhs::Class(a))
}

fn mul_one(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    match node.op {
        Op::Binary(BinaryOp::Mul) => {
            drop_unit(egraph, node, 0, 1.0).or_else(|| drop_unit(egraph, node, 1, 1.0))
        }
        _ => None,
    }
}

fn add_zero(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    match node.op {
        Op::Binary(BinaryOp::Add) => {
            drop_unit(egraph, node, 0, 0.0).or_else(|| drop_unit(egraph, node, 1, 0.0))
        }
        Op::Binary(BinaryOp::Sub) => drop_unit(egraph, node, 0, 0.0),
        _ => None,
    }
}

/// `x - x = 0` on integers only: on floats, inf - inf is NaN.
fn sub_self(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Binary(BinaryOp::Sub) = node.op else { return None };
    let (a, b) = (egraph.find(node.args[0]), egraph.find(node.args[1]));
    let ty = &egraph[a].data.ty;
    (a == b && ty.dtype.is_int()).then(|| {
        Rhs::Node(
            Op::Constant { value: float(0.0).unwrap_or_default(), shape: ty.shape.clone(), dtype: ty.dtype },
            vec![],
        )
    })
}

/// An operand e-node of class `id` with op `op`, if any.
fn find_op(egraph: &TEGraph, id: Id, op: &Op) -> Option<Vec<Id>> {
    egraph[id].nodes.iter().find(|n| &n.op == op).map(|n| n.args.clone())
}

fn neg_neg(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Unary(UnaryOp::Neg) = node.op else { return None };
    find_op(egraph, node.args[0], &Op::Unary(UnaryOp::Neg)).map(|inner| Rhs::Class(inner[0]))
}

/// True when every element of class `id` is known to be > 0 (exp, sigmoid, positive constants).
fn positive(egraph: &TEGraph, id: Id) -> bool {
    constant(egraph, id).is_some_and(|c| c > 0.0)
        || egraph[id].nodes.iter().any(|n| matches!(n.op, Op::Unary(UnaryOp::Exp | UnaryOp::Sigmoid)))
}

/// `exp(log x) = x` only where x > 0 is known (elsewhere log gives NaN or -inf).
fn exp_log(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Unary(UnaryOp::Exp) = node.op else { return None };
    let inner = find_op(egraph, node.args[0], &Op::Unary(UnaryOp::Log))?;
    positive(egraph, inner[0]).then_some(Rhs::Class(inner[0]))
}

/// `x / c = x * (1/c)` for an f32 constant whose reciprocal is finite and nonzero.
fn div_const(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Binary(BinaryOp::Div) = node.op else { return None };
    let (a, c) = (node.args[0], node.args[1]);
    let ty = &egraph[c].data.ty;
    let v = constant(egraph, c)?;
    let r = 1.0 / v;
    if ty.dtype != DType::F32 || !r.is_finite() || r == 0.0 {
        return None;
    }
    let recip = Op::Constant { value: float(r)?, shape: ty.shape.clone(), dtype: ty.dtype };
    Some(Rhs::Node(Op::Binary(BinaryOp::Mul), vec![Rhs::Class(a), Rhs::Node(recip, vec![])]))
}

fn cast_same(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Cast { to } = node.op else { return None };
    (egraph[node.args[0]].data.ty.dtype == to).then_some(Rhs::Class(node.args[0]))
}

/// Casts that keep every value exactly.
fn lossless(from: DType, to: DType) -> bool {
    from == to
        || matches!(
            (from, to),
            (DType::F16, DType::F32) | (DType::Bool, DType::F16 | DType::F32 | DType::I32 | DType::U32)
        )
}

/// `cast(cast(x, B), C) = cast(x, C)` when the first cast is exact.
fn cast_chain(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    let Op::Cast { to } = node.op else { return None };
    let mid = egraph[node.args[0]].data.ty.dtype;
    let inner = egraph[node.args[0]].nodes.iter().find(|n| matches!(n.op, Op::Cast { .. }))?;
    let x = inner.args[0];
    let from = egraph[x].data.ty.dtype;
    if !lossless(from, mid) {
        return None;
    }
    Some(if from == to { Rhs::Class(x) } else { Rhs::Node(Op::Cast { to }, vec![Rhs::Class(x)]) })
}

/// Elementwise ops over constant fills become one constant fill.
fn const_fold(egraph: &TEGraph, node: &TNode) -> Option<Rhs> {
    if !node.op.is_elementwise() {
        return None;
    }
    let operands: Vec<Tensor> = node
        .args
        .iter()
        .map(|&a| constant(egraph, a).map(|v| Tensor::scalar(v, egraph[a].data.ty.dtype)))
        .collect::<Option<_>>()?;
    let refs: Vec<&Tensor> = operands.iter().collect();
    let value = eval_op(&node.op, &refs).ok()?.data.first().copied()?;
    let out = crate::egraph::lang::node_type(egraph, &node.op, &node.args)?;
    if !out.dtype.is_float() && !value.is_finite() {
        return None;
    }
    Some(Rhs::Node(Op::Constant { value: float(value)?, shape: out.shape, dtype: out.dtype }, vec![]))
}

// ---- witnesses ----

fn scalar(g: &mut Graph, v: f64, dtype: DType) -> Result<tessera_ir::NodeId, IrError> {
    let value = float(v).ok_or_else(|| IrError::Graph("NaN constant".into()))?;
    g.add(Op::Constant { value, shape: [].into(), dtype }, &[])
}

fn with_x(
    shape: &[usize],
    dtype: DType,
    f: impl FnOnce(&mut Graph, tessera_ir::NodeId) -> Result<tessera_ir::NodeId, IrError>,
) -> Result<Graph, IrError> {
    let mut g = Graph::new();
    let x = g.input("x", shape.to_vec(), dtype);
    let y = f(&mut g, x)?;
    g.add_output(y)?;
    Ok(g)
}

fn w_mul_one(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::F32, |g, x| {
        let one = scalar(g, 1.0, DType::F32)?;
        g.add(Op::Binary(BinaryOp::Mul), &[one, x])
    })
}

fn w_add_zero(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::F32, |g, x| {
        let zero = scalar(g, 0.0, DType::F32)?;
        g.add(Op::Binary(BinaryOp::Add), &[x, zero])
    })
}

fn w_sub_self(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::I32, |g, x| g.add(Op::Binary(BinaryOp::Sub), &[x, x]))
}

fn w_neg_neg(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::F32, |g, x| {
        let n = g.add(Op::Unary(UnaryOp::Neg), &[x])?;
        g.add(Op::Unary(UnaryOp::Neg), &[n])
    })
}

fn w_exp_log(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::F32, |g, x| {
        let e = g.add(Op::Unary(UnaryOp::Exp), &[x])?;
        let l = g.add(Op::Unary(UnaryOp::Log), &[e])?;
        g.add(Op::Unary(UnaryOp::Exp), &[l])
    })
}

fn w_div_const(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::F32, |g, x| {
        let c = scalar(g, 4.0, DType::F32)?;
        g.add(Op::Binary(BinaryOp::Div), &[x, c])
    })
}

fn w_cast_same(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::F32, |g, x| g.add(Op::Cast { to: DType::F32 }, &[x]))
}

fn w_cast_chain(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::F16, |g, x| {
        let f = g.add(Op::Cast { to: DType::F32 }, &[x])?;
        g.add(Op::Cast { to: DType::I32 }, &[f])
    })
}

fn w_const_fold(s: &[usize]) -> Result<Graph, IrError> {
    with_x(s, DType::F32, |g, x| {
        let a = scalar(g, 2.0, DType::F32)?;
        let b = scalar(g, 3.0, DType::F32)?;
        let c = g.add(Op::Binary(BinaryOp::Mul), &[a, b])?;
        let c = g.add(Op::Unary(UnaryOp::Exp), &[c])?;
        g.add(Op::Binary(BinaryOp::Add), &[x, c])
    })
}
