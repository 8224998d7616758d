//! Shape and dtype inference: the one place that decides what each op accepts and produces.
//! Used by `Graph::add`, `verify`, and the compiler's e-graph analysis.

use crate::{DType, IrError, Op, ReduceKind, Shape, SliceRange};

/// Shape and dtype of a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Shape.
    pub shape: Shape,
    /// Element type.
    pub dtype: DType,
}

impl TensorType {
    /// Builds a tensor type.
    pub fn new(shape: impl Into<Shape>, dtype: DType) -> TensorType {
        TensorType { shape: shape.into(), dtype }
    }
}

/// Infers the result type of `op` applied to operands of the given types.
pub fn infer(op: &Op, operands: &[TensorType]) -> Result<TensorType, IrError> {
    let fail = |reason: String| IrError::Type {
        op: op.mnemonic(),
        operands: operands.iter().map(|t| (t.shape.clone(), t.dtype)).collect(),
        reason,
    };
    let attr = |reason: String| IrError::Attribute { op: op.mnemonic(), reason };
    match op.arity() {
        Some(n) if operands.len() != n => {
            return Err(fail(format!("expects {n} operand(s), got {}", operands.len())));
        }
        None if operands.is_empty() => return Err(fail("expects at least one operand".into())),
        _ => {}
    }
    let t = |i: usize| &operands[i];
    let broadcast_all = |ts: &[&TensorType]| -> Result<Shape, IrError> {
        let mut out = Shape::scalar();
        for x in ts {
            out = Shape::broadcast(&out, &x.shape).ok_or_else(|| fail("shapes do not broadcast".into()))?;
        }
        Ok(out)
    };
    match op {
        Op::Input { shape, dtype, .. } | Op::Param { shape, dtype, .. } | Op::State { shape, dtype, .. } => {
            Ok(TensorType::new(shape.clone(), *dtype))
        }
        Op::Constant { value, shape, dtype } => {
            if !dtype.is_float() && value.is_infinite() {
                return Err(attr(format!("infinite value for {dtype}")));
            }
            Ok(TensorType::new(shape.clone(), *dtype))
        }
        Op::Unary(u) => {
            let d = t(0).dtype;
            let ok = d.is_float() || (d.is_int() && u.accepts_int());
            if !ok {
                return Err(fail(format!("{} is not defined on {d}", u.name())));
            }
            Ok(t(0).clone())
        }
        Op::Binary(b) => {
            let (x, y) = (t(0), t(1));
            if x.dtype != y.dtype {
                return Err(fail(format!("dtypes differ ({} vs {})", x.dtype, y.dtype)));
            }
            if !b.accepts(x.dtype) {
                return Err(fail(format!("{} is not defined on {}", b.name(), x.dtype)));
            }
            let shape = broadcast_all(&[x, y])?;
            let dtype = if b.is_comparison() { DType::Bool } else { x.dtype };
            Ok(TensorType::new(shape, dtype))
        }
        Op::Where => {
            let (c, x, y) = (t(0), t(1), t(2));
            if c.dtype != DType::Bool {
                return Err(fail(format!("condition must be bool, got {}", c.dtype)));
            }
            if x.dtype != y.dtype {
                return Err(fail(format!("branch dtypes differ ({} vs {})", x.dtype, y.dtype)));
            }
            Ok(TensorType::new(broadcast_all(&[c, x, y])?, x.dtype))
        }
        Op::Cast { to } => Ok(TensorType::new(t(0).shape.clone(), *to)),
        Op::Reduce { kind, axes, keepdims } => {
            let x = t(0);
            check_axes(&x.shape, axes).map_err(attr)?;
            let ok = match kind {
                ReduceKind::Mean => x.dtype.is_float(),
                ReduceKind::Sum | ReduceKind::Max | ReduceKind::Min => x.dtype != DType::Bool,
            };
            if !ok {
                return Err(fail(format!("reduce.{} is not defined on {}", kind.name(), x.dtype)));
            }
            Ok(TensorType::new(reduced_shape(&x.shape, axes, *keepdims), x.dtype))
        }
        Op::ArgMax { axis, keepdims } => {
            let x = t(0);
            check_axes(&x.shape, &[*axis]).map_err(attr)?;
            if x.dtype == DType::Bool {
                return Err(fail("argmax is not defined on bool".into()));
            }
            if x.shape.dims()[*axis] == 0 {
                return Err(fail("argmax over an empty axis".into()));
            }
            Ok(TensorType::new(reduced_shape(&x.shape, &[*axis], *keepdims), DType::U32))
        }
        Op::MatMul => {
            let (a, b) = (t(0), t(1));
            if a.dtype != b.dtype || !a.dtype.is_float() {
                return Err(fail("operands must share a float dtype".into()));
            }
            if a.shape.rank() < 2 || b.shape.rank() < 2 {
                return Err(fail("operands must have rank >= 2".into()));
            }
            let (ad, bd) = (a.shape.dims(), b.shape.dims());
            let (m, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
            let (k2, n) = (bd[bd.len() - 2], bd[bd.len() - 1]);
            if k != k2 {
                return Err(fail(format!("inner dimensions differ ({k} vs {k2})")));
            }
            let batch =
                Shape::broadcast(&Shape::from(&ad[..ad.len() - 2]), &Shape::from(&bd[..bd.len() - 2]))
                    .ok_or_else(|| fail("batch dimensions do not broadcast".into()))?;
            let mut dims = batch.0;
            dims.extend([m, n]);
            Ok(TensorType::new(dims, a.dtype))
        }
        Op::Reshape { shape } => {
            if shape.numel() != t(0).shape.numel() {
                return Err(fail(format!("cannot reshape {} elements into {shape}", t(0).shape.numel())));
            }
            Ok(TensorType::new(shape.clone(), t(0).dtype))
        }
        Op::Permute { perm } => {
            let x = t(0);
            let mut seen = vec![false; x.shape.rank()];
            if perm.len() != x.shape.rank()
                || !perm.iter().all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true))
            {
                return Err(fail(format!("{perm:?} is not a permutation of {} axes", x.shape.rank())));
            }
            let dims = perm.iter().map(|&p| x.shape.dims()[p]).collect::<Vec<_>>();
            Ok(TensorType::new(dims, x.dtype))
        }
        Op::Broadcast { shape } => {
            if !t(0).shape.broadcasts_to(shape) {
                return Err(fail(format!("cannot broadcast to {shape}")));
            }
            Ok(TensorType::new(shape.clone(), t(0).dtype))
        }
        Op::Slice { ranges } => {
            let x = t(0);
            if ranges.len() != x.shape.rank() {
                return Err(fail(format!("{} ranges for rank {}", ranges.len(), x.shape.rank())));
            }
            let mut dims = Vec::with_capacity(ranges.len());
            for (axis, (r, &d)) in ranges.iter().zip(x.shape.dims()).enumerate() {
                check_range(r, d).map_err(|e| fail(format!("axis {axis}: {e}")))?;
                dims.push(r.len());
            }
            Ok(TensorType::new(dims, x.dtype))
        }
        Op::Concat { axis } => {
            let first = t(0);
            check_axes(&first.shape, &[*axis]).map_err(attr)?;
            let mut dims = first.shape.0.clone();
            dims[*axis] = 0;
            for x in operands {
                let same_rest = x.shape.rank() == first.shape.rank()
                    && (0..dims.len()).all(|i| i == *axis || x.shape.dims()[i] == dims[i]);
                if x.dtype != first.dtype || !same_rest {
                    return Err(fail(format!("operands differ off axis {axis}")));
                }
                dims[*axis] += x.shape.dims()[*axis];
            }
            Ok(TensorType::new(dims, first.dtype))
        }
        Op::Gather => {
            let (table, idx) = (t(0), t(1));
            if table.shape.rank() < 1 || table.shape.dims()[0] == 0 {
                return Err(fail("table must have at least one row".into()));
            }
            if !idx.dtype.is_int() {
                return Err(fail(format!("indices must be i32 or u32, got {}", idx.dtype)));
            }
            let mut dims = idx.shape.0.clone();
            dims.extend_from_slice(&table.shape.dims()[1..]);
            Ok(TensorType::new(dims, table.dtype))
        }
        Op::Softmax { axis } => {
            check_axes(&t(0).shape, &[*axis]).map_err(attr)?;
            if !t(0).dtype.is_float() {
                return Err(fail("softmax needs a float operand".into()));
            }
            Ok(t(0).clone())
        }
        Op::RmsNorm { .. } | Op::LayerNorm { .. } => {
            let x = t(0);
            let last = x.shape.dims().last().copied();
            if !x.dtype.is_float() || last.is_none() {
                return Err(fail("needs a float operand of rank >= 1".into()));
            }
            for p in &operands[1..] {
                if p.dtype != x.dtype || p.shape.dims() != [last.unwrap_or(0)] {
                    return Err(fail(format!("weight/bias must be {}[{}]", x.dtype, last.unwrap_or(0))));
                }
            }
            Ok(x.clone())
        }
        Op::Rope { .. } => {
            let (x, cos, sin) = (t(0), t(1), t(2));
            let d = x.shape.dims().last().copied().unwrap_or(0);
            if !x.dtype.is_float() || d == 0 || d % 2 != 0 {
                return Err(fail("x must be float with an even, non-zero last axis".into()));
            }
            let mut half = x.shape.0.clone();
            if let Some(last) = half.last_mut() {
                *last = d / 2;
            }
            let half = Shape(half);
            for c in [cos, sin] {
                if c.dtype != x.dtype || !c.shape.broadcasts_to(&half) {
                    return Err(fail(format!("cos/sin must broadcast to {}{half}", x.dtype)));
                }
            }
            Ok(x.clone())
        }
        Op::Iota { shape, axis, dtype } => {
            check_axes(shape, &[*axis]).map_err(attr)?;
            if *dtype == DType::Bool {
                return Err(attr("iota needs a numeric dtype".into()));
            }
            Ok(TensorType::new(shape.clone(), *dtype))
        }
        Op::WriteSlice { axis } => {
            let (dst, src, offset) = (t(0), t(1), t(2));
            check_axes(&dst.shape, &[*axis]).map_err(attr)?;
            let fits = src.shape.rank() == dst.shape.rank()
                && (0..dst.shape.rank()).all(|a| {
                    let (s, d) = (src.shape.dims()[a], dst.shape.dims()[a]);
                    if a == *axis { s <= d } else { s == d }
                });
            if src.dtype != dst.dtype || !fits {
                return Err(fail(format!("src must match dst off axis {axis} and fit along it")));
            }
            if offset.dtype != DType::U32 || offset.shape.dims() != [1] {
                return Err(fail("offset must be u32[1]".into()));
            }
            Ok(dst.clone())
        }
        Op::Attention { .. } => {
            let (q, k, v, len) = (t(0), t(1), t(2), t(3));
            let (qd, kd, vd) = (q.shape.dims(), k.shape.dims(), v.shape.dims());
            let ok = q.dtype.is_float()
                && k.dtype == q.dtype
                && v.dtype == q.dtype
                && qd.len() == 4
                && kd.len() == 4
                && vd.len() == 4
                && kd[0] == qd[0]
                && vd[0] == qd[0]
                && kd[1] > 0
                && qd[1] % kd[1] == 0
                && vd[1] == kd[1]
                && kd[3] == qd[3]
                && vd[2] == kd[2];
            if !ok {
                return Err(fail(
                    "expects q[B,Hq,S,D], k[B,Hkv,T,D], v[B,Hkv,T,Dv] of one float dtype with Hq a multiple of Hkv".into(),
                ));
            }
            if len.dtype != DType::U32 || len.shape.dims() != [qd[0]] {
                return Err(fail(format!("kv_len must be u32[{}]", qd[0])));
            }
            Ok(TensorType::new([qd[0], qd[1], qd[2], vd[3]], q.dtype))
        }
        Op::RoundInt8 { block } => {
            let x = t(0);
            let last = x.shape.dims().last().copied().unwrap_or(0);
            if x.dtype != DType::F32 || *block == 0 || !last.is_multiple_of(*block as usize) {
                return Err(fail(format!("x must be f32 with a last axis of whole blocks of {block}")));
            }
            Ok(x.clone())
        }
        Op::QuantMatMul { bits, group_size } => {
            let (x, w, scales, biases) = (t(0), t(1), t(2), t(3));
            let k = quant_row_len(*bits, *group_size, w, scales, biases).map_err(&fail)?;
            if !x.dtype.is_float() || x.shape.dims().last() != Some(&k) {
                return Err(fail(format!("x must be float with last axis {k}")));
            }
            let mut dims = x.shape.0.clone();
            if let Some(last) = dims.last_mut() {
                *last = w.shape.dims()[0];
            }
            Ok(TensorType::new(dims, x.dtype))
        }
        Op::QuantGather { bits, group_size } => {
            let (w, scales, biases, idx) = (t(0), t(1), t(2), t(3));
            let k = quant_row_len(*bits, *group_size, w, scales, biases).map_err(&fail)?;
            if !idx.dtype.is_int() || w.shape.dims()[0] == 0 {
                return Err(fail("indices must be i32 or u32 and the table non-empty".into()));
            }
            let mut dims = idx.shape.0.clone();
            dims.push(k);
            Ok(TensorType::new(dims, scales.dtype))
        }
    }
}

/// Axes must be in range, sorted and unique.
fn check_axes(shape: &Shape, axes: &[usize]) -> Result<(), String> {
    if let Some(&a) = axes.iter().find(|&&a| a >= shape.rank()) {
        return Err(format!("axis {a} is out of range for rank {}", shape.rank()));
    }
    if axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("axes {axes:?} must be sorted and unique"));
    }
    Ok(())
}

fn check_range(r: &SliceRange, dim: usize) -> Result<(), String> {
    if r.step == 0 {
        return Err("step must be >= 1".into());
    }
    if r.start > r.stop || r.stop > dim {
        return Err(format!("range {}..{} is outside 0..{dim}", r.start, r.stop));
    }
    Ok(())
}

/// Shape after reducing `axes`.
pub fn reduced_shape(shape: &Shape, axes: &[usize], keepdims: bool) -> Shape {
    let mut dims = Vec::with_capacity(shape.rank());
    for (i, &d) in shape.dims().iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                dims.push(1);
            }
        } else {
            dims.push(d);
        }
    }
    Shape(dims)
}

/// Row length K of an affine-quantized `[N, K]` matrix, checking the layout of its parts.
fn quant_row_len(
    bits: u32,
    group: u32,
    w: &TensorType,
    scales: &TensorType,
    biases: &TensorType,
) -> Result<usize, String> {
    if bits != 4 && bits != 8 {
        return Err(format!("{bits}-bit codes are not supported (4 or 8)"));
    }
    let per_word = 32 / bits;
    if group == 0 || !group.is_multiple_of(per_word) {
        return Err(format!("group size {group} must be a positive multiple of {per_word}"));
    }
    let wd = w.shape.dims();
    if w.dtype != DType::U32 || wd.len() != 2 {
        return Err("packed weights must be u32[N, K*bits/32]".into());
    }
    let k = wd[1] * per_word as usize;
    if !k.is_multiple_of(group as usize) {
        return Err(format!("row length {k} is not a multiple of the group size {group}"));
    }
    let groups = [wd[0], k / group as usize];
    for p in [scales, biases] {
        if !p.dtype.is_float() || p.dtype != scales.dtype || p.shape.dims() != groups {
            return Err(format!(
                "scales and biases must share a float dtype and shape [{}, {}]",
                groups[0], groups[1]
            ));
        }
    }
    Ok(k)
}
