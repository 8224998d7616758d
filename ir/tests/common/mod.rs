//! Shared by the integration tests: one graph that uses every op and every op kind.
#![allow(dead_code)]

use tessera_ir::{
    BinaryOp, DType, Graph, IrError, NodeId, Op, ReduceKind, RopeStyle, Shape, SliceRange, UnaryOp, float,
};

/// Number of `Op` variants; `variant_index` must map onto exactly `0..OP_VARIANTS`.
pub const OP_VARIANTS: usize = 27;

/// A dense index per `Op` variant. Exhaustive on purpose: a new variant stops this compiling,
/// and then `every_op_graph` must gain an instance before the coverage tests pass.
pub fn variant_index(op: &Op) -> usize {
    match op {
        Op::Input { .. } => 0,
        Op::Param { .. } => 1,
        Op::Constant { .. } => 2,
        Op::Unary(_) => 3,
        Op::Binary(_) => 4,
        Op::Where => 5,
        Op::Cast { .. } => 6,
        Op::Reduce { .. } => 7,
        Op::ArgMax { .. } => 8,
        Op::MatMul => 9,
        Op::Reshape { .. } => 10,
        Op::Permute { .. } => 11,
        Op::Broadcast { .. } => 12,
        Op::Slice { .. } => 13,
        Op::Concat { .. } => 14,
        Op::Gather => 15,
        Op::Softmax { .. } => 16,
        Op::RmsNorm { .. } => 17,
        Op::LayerNorm { .. } => 18,
        Op::Rope { .. } => 19,
        Op::State { .. } => 20,
        Op::Iota { .. } => 21,
        Op::WriteSlice { .. } => 22,
        Op::Attention { .. } => 23,
        Op::QuantMatMul { .. } => 24,
        Op::QuantGather { .. } => 25,
        Op::RoundInt8 { .. } => 26,
    }
}

/// Every unary op, listed through an exhaustive match so that a new one breaks compilation.
pub fn all_unary() -> Vec<UnaryOp> {
    let check = |u: UnaryOp| match u {
        UnaryOp::Neg
        | UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Sqrt
        | UnaryOp::Rsqrt
        | UnaryOp::Sin
        | UnaryOp::Cos
        | UnaryOp::Tanh
        | UnaryOp::Sigmoid
        | UnaryOp::Silu
        | UnaryOp::Gelu
        | UnaryOp::GeluTanh
        | UnaryOp::Relu
        | UnaryOp::Abs
        | UnaryOp::Recip => u,
    };
    assert_eq!(UnaryOp::ALL.len(), 15, "a unary op was added: update the match above and SPEC.md");
    UnaryOp::ALL.into_iter().map(check).collect()
}

/// Every binary op (see `all_unary`).
pub fn all_binary() -> Vec<BinaryOp> {
    let check = |b: BinaryOp| match b {
        BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Max
        | BinaryOp::Min
        | BinaryOp::Pow
        | BinaryOp::Eq
        | BinaryOp::Ne
        | BinaryOp::Lt
        | BinaryOp::Le
        | BinaryOp::Gt
        | BinaryOp::Ge => b,
    };
    assert_eq!(BinaryOp::ALL.len(), 13, "a binary op was added: update the match above and SPEC.md");
    BinaryOp::ALL.into_iter().map(check).collect()
}

/// Every reduction (see `all_unary`).
pub fn all_reduce() -> Vec<ReduceKind> {
    let check = |k: ReduceKind| match k {
        ReduceKind::Sum | ReduceKind::Max | ReduceKind::Min | ReduceKind::Mean => k,
    };
    assert_eq!(ReduceKind::ALL.len(), 4, "a reduction was added: update the match above and SPEC.md");
    ReduceKind::ALL.into_iter().map(check).collect()
}

/// A graph with at least one node of every op variant and every unary/binary/reduce kind,
/// plus awkward names and floats for the text form.
pub fn every_op_graph() -> Result<Graph, IrError> {
    let mut g = Graph::new();
    let x = g.input("x", [2, 4], DType::F32);
    let w = g.param("model.layers.0.w \"quoted\" \\ tab\t newline\n", [4], DType::F32);
    let b = g.param("bias", [4], DType::F32);
    let ids = g.input("ids", [3], DType::I32);
    let m = g.param("m", [4, 3], DType::F32);
    let cos = g.input("cos", [2], DType::F32);
    let sin = g.input("sin", [1, 2], DType::F32);
    let mut outs: Vec<NodeId> = Vec::new();
    for (value, dtype) in
        [(f64::NEG_INFINITY, DType::F32), (1e-5, DType::F16), (0.1, DType::F32), (-7.0, DType::I32)]
    {
        let value = float(value).ok_or_else(|| IrError::Graph("NaN".into()))?;
        outs.push(g.add(Op::Constant { value, shape: Shape::from([2]), dtype }, &[])?);
    }
    for u in all_unary() {
        outs.push(g.add(Op::Unary(u), &[x])?);
    }
    for op in all_binary() {
        outs.push(g.add(Op::Binary(op), &[x, w])?);
    }
    let cond = g.add(Op::Binary(BinaryOp::Gt), &[x, w])?;
    outs.push(g.add(Op::Where, &[cond, x, w])?);
    outs.push(g.add(Op::Cast { to: DType::I32 }, &[x])?);
    for kind in all_reduce() {
        outs.push(g.add(Op::Reduce { kind, axes: vec![1], keepdims: true }, &[x])?);
    }
    outs.push(g.add(Op::Reduce { kind: ReduceKind::Sum, axes: vec![0, 1], keepdims: false }, &[x])?);
    outs.push(g.add(Op::ArgMax { axis: 1, keepdims: false }, &[x])?);
    outs.push(g.add(Op::MatMul, &[x, m])?);
    outs.push(g.add(Op::Reshape { shape: Shape::from([4, 2]) }, &[x])?);
    outs.push(g.add(Op::Permute { perm: vec![1, 0] }, &[x])?);
    outs.push(g.add(Op::Broadcast { shape: Shape::from([3, 4]) }, &[w])?);
    let ranges = vec![SliceRange { start: 0, stop: 2, step: 1 }, SliceRange { start: 1, stop: 4, step: 2 }];
    outs.push(g.add(Op::Slice { ranges }, &[x])?);
    outs.push(g.add(Op::Concat { axis: 0 }, &[x, x, x])?);
    outs.push(g.add(Op::Gather, &[x, ids])?);
    outs.push(g.add(Op::Softmax { axis: 1 }, &[x])?);
    let eps = float(1e-5).ok_or_else(|| IrError::Graph("NaN".into()))?;
    outs.push(g.add(Op::RmsNorm { eps }, &[x, w])?);
    outs.push(g.add(Op::LayerNorm { eps }, &[x, w, b])?);
    for style in [RopeStyle::HalfSplit, RopeStyle::Interleaved] {
        outs.push(g.add(Op::Rope { style }, &[x, cos, sin])?);
    }
    // Model ops: a KV cache state updated in place, attention over it, quantized weights.
    let q = g.input("q", [1, 4, 2, 8], DType::F32);
    let k = g.input("k", [1, 2, 2, 8], DType::F32);
    let cache = g.add(
        Op::State { name: "cache.0.k".into(), shape: Shape::from([1, 2, 6, 8]), dtype: DType::F32 },
        &[],
    )?;
    let offset = g.input("offset", [1], DType::U32);
    let kc = g.add(Op::WriteSlice { axis: 2 }, &[cache, k, offset])?;
    let kv_len = g.input("kv_len", [1], DType::U32);
    let scale = float(0.125).ok_or_else(|| IrError::Graph("NaN".into()))?;
    outs.push(g.add(Op::Attention { scale, causal: true }, &[q, kc, kc, kv_len])?);
    outs.push(g.add(Op::Iota { shape: Shape::from([2, 3]), axis: 1, dtype: DType::U32 }, &[])?);
    let packed = g.param("qw.weight", [3, 4], DType::U32);
    let scales = g.param("qw.scales", [3, 1], DType::F32);
    let biases = g.param("qw.biases", [3, 1], DType::F32);
    let x16 = g.input("x16", [2, 16], DType::F32);
    outs.push(g.add(Op::QuantMatMul { bits: 8, group_size: 16 }, &[x16, packed, scales, biases])?);
    let x32 = g.input("x32", [2, 32], DType::F32);
    outs.push(g.add(Op::RoundInt8 { block: 32 }, &[x32])?);
    outs.push(g.add(Op::QuantGather { bits: 8, group_size: 16 }, &[packed, scales, biases, ids])?);
    g.set_outputs(outs)?;
    Ok(g)
}
