//! Attention over a KV cache (grouped-query heads, run-time valid length, optional causal mask):
//! the hand kernel `wgsl/attention.wgsl`, one workgroup per query row, online softmax over
//! chunks of keys, with the row's maximum found by the block reduction of `reduce`. Decode (few
//! rows) takes 256 keys per chunk and splits the value sums over groups of invocations. Where the
//! device has subgroups, `wgsl/attention_subgroup.wgsl` runs instead: one online softmax per
//! subgroup over a share of the keys, its lanes across the head dims.

use super::reduce::{block_reduce, row_kernel, row_kernel_sized};
use super::{KernelWriter, Launch, Scalar, Target, Value};
use crate::CompileError;

const ATTENTION: &str = include_str!("../wgsl/attention.wgsl");
const ATTENTION_SUBGROUP: &str = include_str!("../wgsl/attention_subgroup.wgsl");
const ATTENTION_ROW: &str = include_str!("../wgsl/attention_row.wgsl");

/// Subgroups per workgroup of the subgroup kernel (at the smallest subgroup size): each takes
/// every NSG-th key, so a short cache still spreads over many of them. On the H200 (Llama 8B, a
/// cache of ~150 rows) 16 and 32 decoded alike, 7% faster than the chunked kernel, and 512-token
/// prompts ran 1.3-1.5x faster through it.
const SUBGROUPS: u32 = 32;

/// Keys each subgroup of the subgroup kernel has in flight per step, with their values. On the
/// H200, 8B decode after 2048 cached tokens ran 153 / 182 / 149 tok/s with 2 / 4 / 8, and 230
/// once the values were loaded with the keys (one head's keys are read by one workgroup, so how
/// many loads it keeps in flight bounds it).
const KEYS_PER_STEP: usize = 4;

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
    let d = q.shape[3];
    let dv = cache.v.shape[3];
    let rows = out.numel() / dv.max(1);
    let name = format!("attention_{}_d{d}{}", q.dtype.name(), if causal { "_causal" } else { "" });
    let scale = scale as f32;
    if !scale.is_finite() {
        return Err(CompileError::Unsupported { op: "attention".into(), reason: format!("scale {scale}") });
    }
    let sg = target.profile.subgroup_min_size;
    // The subgroup kernel keeps each subgroup's value sums in workgroup memory: 4 of them at least.
    let l = &target.profile.limits;
    let room = l.max_compute_workgroup_storage_size.min(16384) as usize;
    let lanes = l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x);
    if target.subgroups && sg >= 4 && 4 * sg <= lanes && 4 * 4 * (dv + 2) <= room {
        return per_subgroup(target, name, scale, causal, q, cache, out, sg);
    }
    let chunk = if rows < FEW_ROWS { FEW_ROWS_CHUNK } else { CHUNK };
    let (mut w, grid) = row_kernel(target, name.clone(), rows, chunk)?;
    row_parts(&mut w, target, &name, scale, causal, q, cache, out)?;
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
        ("Q_ROW", d.max(1)),
        ("DV_PER", dv.div_ceil(gw).max(1)),
        ("GROUPS", groups),
        ("GW", gw),
        ("GROUP_ACC", group_acc),
    ] {
        w.constant(c, target.check_numel(&name, v)?);
    }
    block_reduce(&mut w, target, "max", Scalar::F32, "op_max_f32", "subgroupMax");
    w.workgroup_bytes(4 * (d.max(1) + wg + group_acc + groups) as u32);
    w.include(ATTENTION);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// The subgroup kernel: one workgroup of up to [`SUBGROUPS`] subgroups per query row, each
/// subgroup scoring every NSG-th key with its lanes across the head dims.
#[allow(clippy::too_many_arguments)]
fn per_subgroup(
    target: &Target,
    name: String,
    scale: f32,
    causal: bool,
    q: &Value,
    cache: &KvCache,
    out: &Value,
    sg: u32,
) -> Result<Launch, CompileError> {
    let (d, dv) = (q.shape[3], cache.v.shape[3]);
    let rows = out.numel() / dv.max(1);
    let l = &target.profile.limits;
    let cap = l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x).min(1024);
    // A power of two of whole subgroups whose value sums, maxima and sums fit in 16 KiB.
    let bytes = l.max_compute_workgroup_storage_size.min(16384);
    let fit = (bytes / (4 * (dv as u32 + 2))).max(1) * sg;
    let wg = (SUBGROUPS * sg).min(cap).min(fit).max(sg);
    let wg = 1 << wg.ilog2();
    let (mut w, grid) = row_kernel_sized(target, format!("{name}_split"), rows, wg)?;
    row_parts(&mut w, target, &name, scale, causal, q, cache, out)?;
    let nsg = (wg / sg).max(1) as usize;
    let sg = sg as usize;
    for (c, v) in
        [("QP", d.div_ceil(sg).max(1)), ("VP", dv.div_ceil(sg).max(1)), ("NSG", nsg), ("KPS", KEYS_PER_STEP)]
    {
        w.constant(c, target.check_numel(&name, v)?);
    }
    w.workgroup_bytes(4 * (2 * nsg + nsg * dv.max(1)) as u32);
    w.include(ATTENTION_SUBGROUP);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// What both kernels share: the shapes, scale and mask as constants, the loads of q, k, v and
/// kv_len, the store of the result, and `attention_row`.
#[allow(clippy::too_many_arguments)]
fn row_parts(
    w: &mut KernelWriter,
    target: &Target,
    name: &str,
    scale: f32,
    causal: bool,
    q: &Value,
    cache: &KvCache,
    out: &Value,
) -> Result<(), CompileError> {
    for (what, v) in [("q", q), ("k", cache.k), ("v", cache.v), ("out", out)] {
        target.check_numel(&format!("attention {what}"), v.numel())?;
    }
    let [_, hq, s, d] = dims4(&q.shape);
    let [_, hkv, t, _] = dims4(&cache.k.shape);
    let dv = cache.v.shape[3];
    for (c, v) in [
        ("HQ", hq),
        ("HKV", hkv),
        ("S", s),
        ("T", t),
        ("D", d),
        ("DV", dv),
        ("DV_ROW", dv.max(1)),
        ("CAUSAL", causal as usize),
    ] {
        w.constant(c, target.check_numel(name, v)?);
    }
    w.constant_f32("SCALE", scale);
    for (v, load) in [(q, "load_q"), (cache.k, "load_k"), (cache.v, "load_v"), (cache.len, "load_len")] {
        let b = w.read(v.dtype, v.storage);
        w.load_fn(load, &b);
    }
    let ob = w.write(out.dtype, out.storage);
    w.store_fn("store_y", &ob);
    w.include(ATTENTION_ROW);
    Ok(())
}

fn dims4(shape: &[usize]) -> [usize; 4] {
    [shape[0], shape[1], shape[2], shape[3]]
}
