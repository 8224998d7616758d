//! Attention over a KV cache (grouped-query heads, run-time valid length, optional causal mask):
//! the hand kernel `wgsl/attention.wgsl`, one workgroup per query row, online softmax over
//! chunks of keys, with the row's maximum found by the block reduction of `reduce`. Decode (few
//! rows) takes 256 keys per chunk and splits the value sums over groups of invocations.

use super::reduce::{block_reduce, row_kernel};
use super::{Launch, Scalar, Target, Value};
use crate::CompileError;

const ATTENTION: &str = include_str!("../wgsl/attention.wgsl");

/// Keys per chunk of the online softmax (and invocations per workgroup) where the device allows.
const CHUNK: usize = 64;

/// Invocations per workgroup when there are few query rows (decode: one per query head), so
/// each row gets more of the GPU: longer chunks and several groups summing the values.
const FEW_ROWS_CHUNK: usize = 256;

/// Query rows below which a workgroup takes [`FEW_ROWS_CHUNK`] keys per chunk.
const FEW_ROWS: usize = 128;

/// The cache a query attends to: keys `[B, Hkv, T, D]`, values `[B, Hkv, T, Dv]` and the number
/// of valid rows of each batch, u32 `[B]`.
#[derive(Clone, Copy, Debug)]
pub struct KvCache<'a> {
    /// Keys.
    pub k: &'a Value,
    /// Values.
    pub v: &'a Value,
    /// Valid rows per batch (read at run time).
    pub len: &'a Value,
}

/// `softmax(q k^T * scale) v` for `q [B, Hq, S, D]`; query head `h` reads kv head `h / (Hq/Hkv)`.
pub fn attention(
    target: &Target,
    scale: f64,
    causal: bool,
    q: &Value,
    cache: &KvCache,
    out: &Value,
) -> Result<Launch, CompileError> {
    let [_, hq, s, d] = dims4(&q.shape);
    let [_, hkv, t, _] = dims4(&cache.k.shape);
    let dv = cache.v.shape[3];
    let rows = out.numel() / dv.max(1);
    let name = format!("attention_{}_d{d}{}", q.dtype.name(), if causal { "_causal" } else { "" });
    let chunk = if rows < FEW_ROWS { FEW_ROWS_CHUNK } else { CHUNK };
    let (mut w, grid) = row_kernel(target, name.clone(), rows, chunk)?;
    for (what, v) in [("q", q), ("k", cache.k), ("v", cache.v), ("out", out)] {
        target.check_numel(&format!("attention {what}"), v.numel())?;
    }
    let scale = scale as f32;
    if !scale.is_finite() {
        return Err(CompileError::Unsupported { op: "attention".into(), reason: format!("scale {scale}") });
    }
    let wg = w.workgroup_size_x() as usize;
    // Groups of invocations that split the keys of a chunk for the value sums: a power of two
    // (so it divides the workgroup), each group at least DV wide.
    let groups = match wg / dv.max(1) {
        0 => 1,
        n => 1 << n.ilog2(),
    };
    let gw = wg / groups;
    let group_acc = if groups > 1 { groups * dv } else { 1 };
    for (c, v) in [
        ("HQ", hq),
        ("HKV", hkv),
        ("S", s),
        ("T", t),
        ("D", d),
        ("Q_ROW", d.max(1)),
        ("DV", dv),
        ("DV_ROW", dv.max(1)),
        ("DV_PER", dv.div_ceil(gw).max(1)),
        ("GROUPS", groups),
        ("GW", gw),
        ("GROUP_ACC", group_acc),
        ("CAUSAL", causal as usize),
    ] {
        w.constant(c, target.check_numel(&name, v)?);
    }
    w.constant_f32("SCALE", scale);
    for (v, load) in [(q, "load_q"), (cache.k, "load_k"), (cache.v, "load_v"), (cache.len, "load_len")] {
        let b = w.read(v.dtype, v.storage);
        w.load_fn(load, &b);
    }
    let ob = w.write(out.dtype, out.storage);
    w.store_fn("store_y", &ob);
    block_reduce(&mut w, target, "max", Scalar::F32, "op_max_f32", "subgroupMax");
    w.workgroup_bytes(4 * (d.max(1) + wg + group_acc + groups) as u32);
    w.include(ATTENTION);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

fn dims4(shape: &[usize]) -> [usize; 4] {
    [shape[0], shape[1], shape[2], shape[3]]
}
