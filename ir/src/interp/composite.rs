//! Composite ops, computed directly in f64 from their definitions (rounded once by `eval_op`).
//! `crate::decompose` expresses the same definitions in primitive ops.

use super::{Tensor, broadcast_offsets};
use crate::{RopeStyle, Shape};

/// `exp(x - max) / sum(exp(x - max))` along `axis`. A line that is all -inf gives NaN.
pub(super) fn softmax(axis: usize, x: &Tensor) -> Vec<f64> {
    let dims = x.shape.dims();
    let outer: usize = dims[..axis].iter().product();
    let len = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let mut out = vec![0.0; x.data.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            let max = (0..len).map(|j| x.data[at(j)]).fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for j in 0..len {
                let e = (x.data[at(j)] - max).exp();
                out[at(j)] = e;
                sum += e;
            }
            for j in 0..len {
                out[at(j)] /= sum;
            }
        }
    }
    out
}

/// `x / sqrt(mean(x^2) + eps) * w` over the last axis.
pub(super) fn rms_norm(eps: f64, x: &Tensor, w: &Tensor) -> Vec<f64> {
    let d = w.data.len();
    let mut out = Vec::with_capacity(x.data.len());
    for row in x.data.chunks(d.max(1)) {
        let mean_sq = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
        let denom = (mean_sq + eps).sqrt();
        out.extend(row.iter().zip(&w.data).map(|(v, wv)| v / denom * wv));
    }
    out
}

/// `(x - mean) / sqrt(var + eps) * w + b` over the last axis, with the biased variance.
pub(super) fn layer_norm(eps: f64, x: &Tensor, w: &Tensor, b: &Tensor) -> Vec<f64> {
    let d = w.data.len();
    let mut out = Vec::with_capacity(x.data.len());
    for row in x.data.chunks(d.max(1)) {
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
        let denom = (var + eps).sqrt();
        for ((v, wv), bv) in row.iter().zip(&w.data).zip(&b.data) {
            out.push((v - mean) / denom * wv + bv);
        }
    }
    out
}

/// Rotary embedding of the last axis (size d = 2h) with `cos`/`sin` broadcast to
/// `x.shape[..-1] ++ [h]`; `style` picks which elements form the rotated pairs.
pub(super) fn rope(style: RopeStyle, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Vec<f64> {
    let d = x.shape.dims().last().copied().unwrap_or(0);
    let h = d / 2;
    let mut half = x.shape.dims().to_vec();
    if let Some(last) = half.last_mut() {
        *last = h;
    }
    let half = Shape(half);
    let (co, so) = (broadcast_offsets(&cos.shape, &half), broadcast_offsets(&sin.shape, &half));
    let mut out = vec![0.0; x.data.len()];
    for r in 0..x.data.len() / d.max(1) {
        let base = r * d;
        for i in 0..h {
            let (c, s) = (cos.data[co[r * h + i]], sin.data[so[r * h + i]]);
            let (lo, hi) = match style {
                RopeStyle::HalfSplit => (base + i, base + i + h),
                RopeStyle::Interleaved => (base + 2 * i, base + 2 * i + 1),
            };
            let (a, b) = (x.data[lo], x.data[hi]);
            out[lo] = a * c - b * s;
            out[hi] = b * c + a * s;
        }
    }
    out
}
