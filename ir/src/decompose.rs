//! Decompositions of composite ops (Softmax, RmsNorm, LayerNorm, Rope, Attention) into primitives.
//!
//! Fused kernels for the composites are tested against these expansions, and a backend without
//! a fused kernel can run the expansion instead. f16 composites are expanded in f32 (cast in,
//! compute, cast out), as Hugging Face does, so the expansion stays close to the f64 definition.

use crate::{
    BinaryOp, DType, Float, Graph, IrError, NodeId, Op, ReduceKind, RopeStyle, Shape, SliceRange, UnaryOp,
};

/// Returns an equivalent graph with every composite op expanded into primitive ops.
/// Input and Param names and the output order are preserved; other ops are copied unchanged.
pub fn decompose(graph: &Graph) -> Result<Graph, IrError> {
    let mut b = Builder { g: Graph::new() };
    let mut map: Vec<NodeId> = Vec::with_capacity(graph.len());
    for (id, node) in graph.iter() {
        let inputs = node
            .inputs
            .iter()
            .map(|i| {
                map.get(i.index())
                    .copied()
                    .ok_or_else(|| IrError::Graph(format!("{id} uses {i}, which does not precede it")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let operand = |i: usize| {
            inputs.get(i).copied().ok_or_else(|| {
                IrError::Graph(format!("{id} ({}) has {} operand(s)", node.op.mnemonic(), inputs.len()))
            })
        };
        let new = match &node.op {
            Op::Softmax { axis } => b.softmax(operand(0)?, *axis)?,
            Op::RmsNorm { eps } => b.rms_norm(operand(0)?, operand(1)?, *eps)?,
            Op::LayerNorm { eps } => b.layer_norm(operand(0)?, operand(1)?, operand(2)?, *eps)?,
            Op::Rope { style } => b.rope(operand(0)?, operand(1)?, operand(2)?, *style)?,
            Op::Attention { scale, causal } => {
                b.attention([operand(0)?, operand(1)?, operand(2)?, operand(3)?], *scale, *causal)?
            }
            Op::Input { .. }
            | Op::Param { .. }
            | Op::Constant { .. }
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Where
            | Op::Cast { .. }
            | Op::Reduce { .. }
            | Op::ArgMax { .. }
            | Op::MatMul
            | Op::Reshape { .. }
            | Op::Permute { .. }
            | Op::Broadcast { .. }
            | Op::Slice { .. }
            | Op::Concat { .. }
            | Op::Gather
            | Op::State { .. }
            | Op::Iota { .. }
            | Op::WriteSlice { .. }
            | Op::RoundInt8 { .. }
            | Op::QuantMatMul { .. }
            | Op::QuantGather { .. } => b.g.add(node.op.clone(), &inputs)?,
        };
        map.push(new);
    }
    let outputs = graph
        .outputs()
        .iter()
        .map(|o| {
            map.get(o.index()).copied().ok_or_else(|| IrError::Graph(format!("output {o} does not exist")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    b.g.set_outputs(outputs)?;
    Ok(b.g)
}

/// Appends primitive ops to the graph under construction.
struct Builder {
    g: Graph,
}

impl Builder {
    /// `exp(x - max) / sum(exp(x - max))` along `axis`.
    fn softmax(&mut self, x: NodeId, axis: usize) -> Result<NodeId, IrError> {
        let (x, dtype) = self.widen(x)?;
        let max = self.reduce(ReduceKind::Max, x, axis)?;
        let shifted = self.binary(BinaryOp::Sub, x, max)?;
        let e = self.unary(UnaryOp::Exp, shifted)?;
        let sum = self.reduce(ReduceKind::Sum, e, axis)?;
        let y = self.binary(BinaryOp::Div, e, sum)?;
        self.narrow(y, dtype)
    }

    /// `x / sqrt(mean(x^2) + eps) * w` over the last axis.
    fn rms_norm(&mut self, x: NodeId, w: NodeId, eps: Float) -> Result<NodeId, IrError> {
        let (x, dtype) = self.widen(x)?;
        let (w, _) = self.widen(w)?;
        let last = self.last_axis(x)?;
        let sq = self.binary(BinaryOp::Mul, x, x)?;
        let mean_sq = self.reduce(ReduceKind::Mean, sq, last)?;
        let denom = self.sqrt_plus_eps(mean_sq, eps)?;
        let normed = self.binary(BinaryOp::Div, x, denom)?;
        let y = self.binary(BinaryOp::Mul, normed, w)?;
        self.narrow(y, dtype)
    }

    /// `(x - mean) / sqrt(var + eps) * w + b` over the last axis (biased variance).
    fn layer_norm(&mut self, x: NodeId, w: NodeId, b: NodeId, eps: Float) -> Result<NodeId, IrError> {
        let (x, dtype) = self.widen(x)?;
        let (w, _) = self.widen(w)?;
        let (b, _) = self.widen(b)?;
        let last = self.last_axis(x)?;
        let mean = self.reduce(ReduceKind::Mean, x, last)?;
        let centered = self.binary(BinaryOp::Sub, x, mean)?;
        let sq = self.binary(BinaryOp::Mul, centered, centered)?;
        let var = self.reduce(ReduceKind::Mean, sq, last)?;
        let denom = self.sqrt_plus_eps(var, eps)?;
        let normed = self.binary(BinaryOp::Div, centered, denom)?;
        let scaled = self.binary(BinaryOp::Mul, normed, w)?;
        let y = self.binary(BinaryOp::Add, scaled, b)?;
        self.narrow(y, dtype)
    }

    /// `softmax(q k^T * scale + mask) v`, kv heads repeated for grouped queries. The mask hides
    /// keys `j >= kv_len[b]` and, when causal, `j + S > kv_len[b] + i`. A query row with no
    /// visible key gives NaN here (the op's definition gives zeros); models never produce one.
    fn attention(
        &mut self,
        [q, k, v, kv_len]: [NodeId; 4],
        scale: Float,
        causal: bool,
    ) -> Result<NodeId, IrError> {
        let (q, dtype) = self.widen(q)?;
        let (k, _) = self.widen(k)?;
        let (v, _) = self.widen(v)?;
        let qd = self.g.get(q)?.shape.dims().to_vec();
        let kd = self.g.get(k)?.shape.dims().to_vec();
        let (b, hq, s, hkv, t) = (qd[0], qd[1], qd[2], kd[1], kd[2]);
        let k = self.repeat_heads(k, hq / hkv.max(1))?;
        let v = self.repeat_heads(v, hq / hkv.max(1))?;
        let kt = self.g.add(Op::Permute { perm: vec![0, 1, 3, 2] }, &[k])?;
        let scores = self.g.add(Op::MatMul, &[q, kt])?;
        let scale =
            self.g.add(Op::Constant { value: scale, shape: Shape::scalar(), dtype: DType::F32 }, &[])?;
        let scores = self.binary(BinaryOp::Mul, scores, scale)?;
        let mask_shape = Shape::from([b, 1, s, t]);
        let j = self.g.add(Op::Iota { shape: mask_shape.clone(), axis: 3, dtype: DType::U32 }, &[])?;
        let len = self.g.add(Op::Reshape { shape: Shape::from([b, 1, 1, 1]) }, &[kv_len])?;
        let mut visible = self.binary(BinaryOp::Lt, j, len)?;
        if causal {
            let i = self.g.add(Op::Iota { shape: mask_shape, axis: 2, dtype: DType::U32 }, &[])?;
            let rows = self.constant(s as f64, DType::U32)?;
            let key_end = self.binary(BinaryOp::Add, j, rows)?;
            let row_end = self.binary(BinaryOp::Add, len, i)?;
            let before = self.binary(BinaryOp::Le, key_end, row_end)?;
            // visible && before, written as where(visible, before, visible).
            visible = self.g.add(Op::Where, &[visible, before, visible])?;
        }
        let neg_inf = self.constant(f64::NEG_INFINITY, DType::F32)?;
        let masked = self.g.add(Op::Where, &[visible, scores, neg_inf])?;
        let p = self.softmax(masked, 3)?;
        let y = self.g.add(Op::MatMul, &[p, v])?;
        self.narrow(y, dtype)
    }

    /// `[b, h, t, d]` -> `[b, h * g, t, d]`, each head repeated `g` times (grouped queries).
    fn repeat_heads(&mut self, x: NodeId, g: usize) -> Result<NodeId, IrError> {
        if g == 1 {
            return Ok(x);
        }
        let d = self.g.get(x)?.shape.dims().to_vec();
        let x = self.g.add(Op::Reshape { shape: Shape::from([d[0], d[1], 1, d[2], d[3]]) }, &[x])?;
        let x = self.g.add(Op::Broadcast { shape: Shape::from([d[0], d[1], g, d[2], d[3]]) }, &[x])?;
        self.g.add(Op::Reshape { shape: Shape::from([d[0], d[1] * g, d[2], d[3]]) }, &[x])
    }

    fn constant(&mut self, value: f64, dtype: DType) -> Result<NodeId, IrError> {
        let value = crate::float(value).ok_or_else(|| IrError::Graph("NaN constant".into()))?;
        self.g.add(Op::Constant { value, shape: Shape::scalar(), dtype }, &[])
    }

    /// Rotates pairs `(lo, hi)` of the last axis: `lo*c - hi*s`, `hi*c + lo*s`.
    fn rope(&mut self, x: NodeId, cos: NodeId, sin: NodeId, style: RopeStyle) -> Result<NodeId, IrError> {
        let (x, dtype) = self.widen(x)?;
        let (c, _) = self.widen(cos)?;
        let (s, _) = self.widen(sin)?;
        let shape = self.g.get(x)?.shape.clone();
        let last = self.last_axis(x)?;
        let d = shape.dims()[last];
        let (lo, hi) = match style {
            RopeStyle::HalfSplit => (self.slice_last(x, 0, d / 2, 1)?, self.slice_last(x, d / 2, d, 1)?),
            RopeStyle::Interleaved => (self.slice_last(x, 0, d, 2)?, self.slice_last(x, 1, d, 2)?),
        };
        // cos/sin broadcast against the half-size slices in the binary ops themselves.
        let lo_c = self.binary(BinaryOp::Mul, lo, c)?;
        let hi_s = self.binary(BinaryOp::Mul, hi, s)?;
        let new_lo = self.binary(BinaryOp::Sub, lo_c, hi_s)?;
        let hi_c = self.binary(BinaryOp::Mul, hi, c)?;
        let lo_s = self.binary(BinaryOp::Mul, lo, s)?;
        let new_hi = self.binary(BinaryOp::Add, hi_c, lo_s)?;
        let y = match style {
            RopeStyle::HalfSplit => self.g.add(Op::Concat { axis: last }, &[new_lo, new_hi])?,
            RopeStyle::Interleaved => {
                // [..., h] twice -> [..., h, 2] -> [..., d] puts the pairs back side by side.
                let mut pair = self.g.get(new_lo)?.shape.0.clone();
                pair.push(1);
                let a = self.g.add(Op::Reshape { shape: Shape(pair.clone()) }, &[new_lo])?;
                let b = self.g.add(Op::Reshape { shape: Shape(pair) }, &[new_hi])?;
                let joined = self.g.add(Op::Concat { axis: last + 1 }, &[a, b])?;
                self.g.add(Op::Reshape { shape }, &[joined])?
            }
        };
        self.narrow(y, dtype)
    }

    /// Casts f16 up to f32 so the expansion computes at f32 precision; returns the original dtype.
    fn widen(&mut self, x: NodeId) -> Result<(NodeId, DType), IrError> {
        let dtype = self.g.get(x)?.dtype;
        match dtype {
            DType::F16 => Ok((self.g.add(Op::Cast { to: DType::F32 }, &[x])?, dtype)),
            DType::F32 | DType::I32 | DType::U32 | DType::Bool => Ok((x, dtype)),
        }
    }

    /// Casts back to `dtype` when `widen` changed it.
    fn narrow(&mut self, y: NodeId, dtype: DType) -> Result<NodeId, IrError> {
        if self.g.get(y)?.dtype == dtype { Ok(y) } else { self.g.add(Op::Cast { to: dtype }, &[y]) }
    }

    fn last_axis(&self, x: NodeId) -> Result<usize, IrError> {
        let rank = self.g.get(x)?.shape.rank();
        rank.checked_sub(1).ok_or_else(|| IrError::Graph("composite op on a scalar".into()))
    }

    /// `sqrt(v + eps)` with `eps` as a scalar constant of v's dtype.
    fn sqrt_plus_eps(&mut self, v: NodeId, eps: Float) -> Result<NodeId, IrError> {
        let dtype = self.g.get(v)?.dtype;
        let eps = self.g.add(Op::Constant { value: eps, shape: Shape::scalar(), dtype }, &[])?;
        let sum = self.binary(BinaryOp::Add, v, eps)?;
        self.unary(UnaryOp::Sqrt, sum)
    }

    /// Reduction over one axis, keeping it so the result broadcasts against the operand.
    fn reduce(&mut self, kind: ReduceKind, x: NodeId, axis: usize) -> Result<NodeId, IrError> {
        self.g.add(Op::Reduce { kind, axes: vec![axis], keepdims: true }, &[x])
    }

    fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> Result<NodeId, IrError> {
        self.g.add(Op::Binary(op), &[a, b])
    }

    fn unary(&mut self, op: UnaryOp, x: NodeId) -> Result<NodeId, IrError> {
        self.g.add(Op::Unary(op), &[x])
    }

    /// `x[..., start..stop by step]`.
    fn slice_last(&mut self, x: NodeId, start: usize, stop: usize, step: usize) -> Result<NodeId, IrError> {
        let dims = self.g.get(x)?.shape.0.clone();
        let mut ranges: Vec<SliceRange> = dims.iter().map(|&d| SliceRange::full(d)).collect();
        if let Some(r) = ranges.last_mut() {
            *r = SliceRange { start, stop, step };
        }
        self.g.add(Op::Slice { ranges }, &[x])
    }
}
