//! Reductions and the matrix product: everything that sums or compares along an axis.

use super::{Tensor, broadcast_offsets};
use crate::{DType, ReduceKind, Shape, reduced_shape};

/// Reduces `x` over `axes` (sorted, unique). The data order is the same with or without
/// keepdims, so the result is laid out as the keepdims shape.
pub(super) fn reduce(kind: ReduceKind, axes: &[usize], x: &Tensor) -> Vec<f64> {
    let kept = reduced_shape(&x.shape, axes, true);
    // For each input element, the output element it folds into.
    let target = broadcast_offsets(&kept, &x.shape);
    let count: usize = axes.iter().map(|&a| x.shape.dims()[a]).product();
    let n = kept.numel();
    match kind {
        ReduceKind::Sum | ReduceKind::Mean => {
            if x.dtype.is_int() {
                // Wrapping 64-bit sums agree with wrapping 32-bit sums in their low 32 bits.
                let mut acc = vec![0i64; n];
                for (&v, &t) in x.data.iter().zip(&target) {
                    acc[t] = acc[t].wrapping_add(v as i64);
                }
                acc.into_iter().map(|s| low32(s, x.dtype)).collect()
            } else {
                let mut acc = vec![0.0f64; n];
                for (&v, &t) in x.data.iter().zip(&target) {
                    acc[t] += v;
                }
                if kind == ReduceKind::Mean {
                    // 0/0 = NaN for an empty reduction, by definition.
                    acc.iter_mut().for_each(|s| *s /= count as f64);
                }
                acc
            }
        }
        ReduceKind::Max => {
            let mut acc = vec![lowest(x.dtype); n];
            for (&v, &t) in x.data.iter().zip(&target) {
                acc[t] = acc[t].max(v);
            }
            acc
        }
        ReduceKind::Min => {
            let mut acc = vec![highest(x.dtype); n];
            for (&v, &t) in x.data.iter().zip(&target) {
                acc[t] = acc[t].min(v);
            }
            acc
        }
    }
}

/// Identity of max: -inf for floats, the smallest value for integers.
fn lowest(dtype: DType) -> f64 {
    match dtype {
        DType::F32 | DType::F16 => f64::NEG_INFINITY,
        DType::I32 => i32::MIN as f64,
        DType::U32 | DType::Bool => 0.0,
    }
}

/// Identity of min: +inf for floats, the largest value for integers.
fn highest(dtype: DType) -> f64 {
    match dtype {
        DType::F32 | DType::F16 => f64::INFINITY,
        DType::I32 => i32::MAX as f64,
        DType::U32 => u32::MAX as f64,
        DType::Bool => 1.0,
    }
}

fn low32(s: i64, dtype: DType) -> f64 {
    match dtype {
        DType::I32 => s as i32 as f64,
        DType::U32 | DType::F32 | DType::F16 | DType::Bool => s as u32 as f64,
    }
}

/// Index of the first maximum along `axis` (a strict `>` scan, so ties keep the earliest and a
/// NaN is never chosen unless it comes first).
pub(super) fn argmax(axis: usize, x: &Tensor) -> Vec<f64> {
    let dims = x.shape.dims();
    let outer: usize = dims[..axis].iter().product();
    let len = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| x.data[(o * len + j) * inner + i];
            let mut best = 0;
            for j in 1..len {
                if at(j) > at(best) {
                    best = j;
                }
            }
            out.push(best as f64);
        }
    }
    out
}

/// `[..., m, k] x [..., k, n]` with broadcast batch dims, accumulated in f64.
pub(super) fn matmul(a: &Tensor, b: &Tensor, out: &Shape) -> Vec<f64> {
    let (ad, bd) = (a.shape.dims(), b.shape.dims());
    let (m, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
    let n = bd[bd.len() - 1];
    let batch = Shape::from(&out.dims()[..out.rank() - 2]);
    let a_batch = broadcast_offsets(&Shape::from(&ad[..ad.len() - 2]), &batch);
    let b_batch = broadcast_offsets(&Shape::from(&bd[..bd.len() - 2]), &batch);
    let mut result = Vec::with_capacity(out.numel());
    let mut row = vec![0.0f64; n];
    for (&ab, &bb) in a_batch.iter().zip(&b_batch) {
        let (a0, b0) = (ab * m * k, bb * k * n);
        for i in 0..m {
            row.iter_mut().for_each(|r| *r = 0.0);
            for p in 0..k {
                let av = a.data[a0 + i * k + p];
                let brow = &b.data[b0 + p * n..b0 + (p + 1) * n];
                for (r, &bv) in row.iter_mut().zip(brow) {
                    *r += av * bv;
                }
            }
            result.extend_from_slice(&row);
        }
    }
    result
}
