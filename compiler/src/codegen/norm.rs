//! Softmax, RMSNorm and LayerNorm: one workgroup per row, f32 accumulation, the hand kernels in
//! `wgsl/` with the generated loads, stores and row offsets.

use super::reduce::{block_reduce, row_kernel};
use super::{Launch, Scalar, Target, Value};
use crate::CompileError;

const SOFTMAX: &str = include_str!("../wgsl/softmax.wgsl");
const RMS_NORM: &str = include_str!("../wgsl/rms_norm.wgsl");
const LAYER_NORM: &str = include_str!("../wgsl/layer_norm.wgsl");

/// `exp(x - max) / sum` along `axis`.
pub fn softmax(target: &Target, axis: usize, x: &Value, out: &Value) -> Result<Launch, CompileError> {
    let len = x.shape[axis];
    let inner: usize = x.shape[axis + 1..].iter().product();
    let rows = x.numel() / len.max(1);
    let (mut w, grid) = row_kernel(target, format!("softmax_{}", x.dtype.name()), rows, len)?;
    w.constant("LEN", target.check_numel("softmax", len)?);
    w.constant("STRIDE", inner as u32);
    // Row o = (outer, inner): its first element sits at outer * LEN * INNER + inner.
    w.constant("INNER", inner.max(1) as u32);
    w.function("fn row_base(o: u32) -> u32 { return (o / INNER) * LEN * INNER + o % INNER; }");
    let xb = w.read(x.dtype, x.storage);
    let ob = w.write(out.dtype, out.storage);
    w.load_fn("load_x", &xb);
    w.store_fn("store_y", &ob);
    block_reduce(&mut w, target, "max", Scalar::F32, "op_max_f32", "subgroupMax");
    block_reduce(&mut w, target, "sum", Scalar::F32, "op_add_f32", "subgroupAdd");
    w.include(SOFTMAX);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// `x / sqrt(mean(x^2) + eps) * w` over the last axis.
pub fn rms_norm(
    target: &Target,
    eps: f64,
    x: &Value,
    weight: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    norm(target, "rms_norm", RMS_NORM, eps, &[x, weight], out)
}

/// `(x - mean) / sqrt(var + eps) * w + b` over the last axis (biased variance).
pub fn layer_norm(
    target: &Target,
    eps: f64,
    x: &Value,
    weight: &Value,
    bias: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    norm(target, "layer_norm", LAYER_NORM, eps, &[x, weight, bias], out)
}

fn norm(
    target: &Target,
    kind: &str,
    source: &str,
    eps: f64,
    operands: &[&Value],
    out: &Value,
) -> Result<Launch, CompileError> {
    let x = operands[0];
    let len = x.shape.last().copied().unwrap_or(1);
    let rows = x.numel() / len.max(1);
    let (mut w, grid) = row_kernel(target, format!("{kind}_{}", x.dtype.name()), rows, len)?;
    w.constant("LEN", target.check_numel(kind, len)?);
    let eps = eps as f32;
    if !eps.is_finite() {
        return Err(CompileError::Unsupported {
            op: kind.into(),
            reason: format!("eps {eps} is not finite in f32"),
        });
    }
    w.constant_f32("EPS", eps);
    for (v, load) in operands.iter().zip(["load_x", "load_w", "load_b"]) {
        let b = w.read(v.dtype, v.storage);
        w.load_fn(load, &b);
    }
    let ob = w.write(out.dtype, out.storage);
    w.store_fn("store_y", &ob);
    block_reduce(&mut w, target, "sum", Scalar::F32, "op_add_f32", "subgroupAdd");
    w.include(source);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}
