//! Data movement: permute, broadcast, slice, concat, gather. Values are copied, never changed.

use super::{Tensor, broadcast_offsets, strided_offsets};
use crate::{Shape, SliceRange};

/// Output axis `i` is input axis `perm[i]`.
pub(super) fn permute(perm: &[usize], x: &Tensor) -> Vec<f64> {
    let in_strides = x.shape.strides();
    let dims: Vec<usize> = perm.iter().map(|&p| x.shape.dims()[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    gather_offsets(x, &strided_offsets(&dims, &strides, 0))
}

/// NumPy broadcast of `x` to `shape`.
pub(super) fn broadcast(x: &Tensor, shape: &Shape) -> Vec<f64> {
    gather_offsets(x, &broadcast_offsets(&x.shape, shape))
}

/// Strided slice, one `start..stop` by `step` range per axis.
pub(super) fn slice(ranges: &[SliceRange], x: &Tensor) -> Vec<f64> {
    let in_strides = x.shape.strides();
    let dims: Vec<usize> = ranges.iter().map(SliceRange::len).collect();
    let strides: Vec<usize> = ranges.iter().zip(&in_strides).map(|(r, s)| r.step * s).collect();
    let base = ranges.iter().zip(&in_strides).map(|(r, s)| r.start * s).sum();
    gather_offsets(x, &strided_offsets(&dims, &strides, base))
}

/// Joins the operands along `axis`.
pub(super) fn concat(axis: usize, operands: &[&Tensor], out: &Shape) -> Vec<f64> {
    let outer: usize = out.dims()[..axis].iter().product();
    let inner: usize = out.dims()[axis + 1..].iter().product();
    let mut result = Vec::with_capacity(out.numel());
    for o in 0..outer {
        for t in operands {
            // Each operand contributes one contiguous block of `dim * inner` per outer index.
            let block = t.shape.dims()[axis] * inner;
            result.extend_from_slice(&t.data[o * block..(o + 1) * block]);
        }
    }
    result
}

/// Rows of `table` picked by `idx`, each index clamped into `[0, rows - 1]`.
pub(super) fn gather(table: &Tensor, idx: &Tensor) -> Vec<f64> {
    let rows = table.shape.dims()[0];
    let row = table.shape.dims()[1..].iter().product::<usize>();
    let mut result = Vec::with_capacity(idx.data.len() * row);
    for &i in &idx.data {
        // Clamping keeps a bad token id from reading out of bounds, on the GPU as here.
        let r = i.clamp(0.0, (rows - 1) as f64) as usize;
        result.extend_from_slice(&table.data[r * row..(r + 1) * row]);
    }
    result
}

fn gather_offsets(x: &Tensor, offsets: &[usize]) -> Vec<f64> {
    offsets.iter().map(|&o| x.data[o]).collect()
}

/// `dst` with `src` written from `offset[0]` along `axis`; what falls past the end is dropped.
pub(super) fn write_slice(axis: usize, dst: &Tensor, src: &Tensor, offset: &Tensor) -> Vec<f64> {
    let mut out = dst.data.clone();
    let dd = dst.shape.dims();
    let sd = src.shape.dims();
    let start = offset.data[0] as usize;
    let inner: usize = dd[axis + 1..].iter().product();
    let outer: usize = dd[..axis].iter().product();
    for o in 0..outer {
        for a in 0..sd[axis] {
            let pos = start + a;
            if pos >= dd[axis] {
                break;
            }
            let from = (o * sd[axis] + a) * inner;
            let to = (o * dd[axis] + pos) * inner;
            out[to..to + inner].copy_from_slice(&src.data[from..from + inner]);
        }
    }
    out
}

/// Values of `iota`: each element's index along `axis`.
pub(super) fn iota(shape: &Shape, axis: usize) -> Vec<f64> {
    let dims = shape.dims();
    let inner: usize = dims[axis + 1..].iter().product();
    (0..shape.numel()).map(|i| ((i / inner.max(1)) % dims[axis].max(1)) as f64).collect()
}
