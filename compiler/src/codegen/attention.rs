//! Attention over a KV cache (grouped-query heads, run-time valid length, optional causal mask):
//! the hand kernel `wgsl/attention.wgsl`, one workgroup per query row, online softmax over
//! chunks of keys, with the row's maximum found by the block reduction of `reduce`. Decode (few
//! rows) takes 256 keys per chunk and splits the value sums over groups of invocations. Where the
//! device has subgroups, the kernels of `wgsl/attention_subgroup.wgsl` run instead: one online
//! softmax per subgroup over a share of the keys, its lanes across the head dims. Few query rows
//! over a long cache (decode) split each row's keys over several workgroups (flash decoding,
//! `attention_split.wgsl`), whose partial softmaxes a second kernel folds
//! (`attention_combine.wgsl`) through the plan's workspace.

use super::grid::Grid;
use super::reduce::{block_reduce, row_kernel, row_kernel_sized};
use super::{Binds, KernelWriter, Launch, Scalar, Storage, Target, Value, buffer_bytes};
use crate::CompileError;
use crate::fuse::inline::KernelFusion;
use std::sync::Arc;
use tessera_ir::DType;

const ATTENTION: &str = include_str!("../wgsl/attention.wgsl");
const ATTENTION_SUBGROUP: &str = include_str!("../wgsl/attention_subgroup.wgsl");
const ATTENTION_WHOLE: &str = include_str!("../wgsl/attention_whole.wgsl");
const ATTENTION_SPLIT: &str = include_str!("../wgsl/attention_split.wgsl");
const ATTENTION_COMBINE: &str = include_str!("../wgsl/attention_combine.wgsl");
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

/// Query rows below which a workgroup takes [`FEW_ROWS_CHUNK`] keys per chunk, and the subgroup
/// kernels split long caches.
const FEW_ROWS: usize = 128;

/// Workgroups the split kernel aims at (rows x parts) on a GPU: one per query head leaves most
/// of a large GPU idle while it reads a long cache. On the H100, 8B q4 decode after 2048 cached
/// tokens ran 269 / 280 / 260 tok/s aiming at 256 / 512 / 1024 (212 unsplit).
const SPLIT_WORKGROUPS: usize = 512;

/// Workgroups it aims at per workgroup a device runs side by side, where the profile says (a
/// CPU adapter: parts beyond its threads only cost, each empty one several us on lavapipe).
const SPLIT_PER_PARALLEL: usize = 4;

/// Keys of the cache's capacity per part, at least: smaller parts cost more at short lengths
/// than they gain at long ones. On the H100 SmolLM2 (9 query heads, a 4096-row cache) decoded
/// 713 / 830 / 748 tok/s after 2048 tokens with 72 / 256 / 512 keys per part (562 unsplit),
/// and 851 / 955 / 972 after 3 tokens (1020 unsplit).
const KEYS_PER_PART: usize = 256;

/// Subgroups per workgroup of the split kernel: its ranges are short, so smaller workgroups
/// (8B: 268 / 280 / 262 tok/s after 2048 tokens with 4 / 8 / 16).
const SPLIT_SUBGROUPS: u32 = 8;

/// Fewest keys a busy part scores at run time: a short cache busies few workgroups.
const MIN_KEYS: u32 = 64;

/// Most parts per row (the combine reads every part's max and sum per output dim).
const MAX_PARTS: usize = 64;

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

/// One attention node as its kernels see it.
struct Node<'a> {
    /// Kernel name stem (`attention_f32_d64_causal`).
    name: String,
    scale: f32,
    causal: bool,
    q: &'a Value,
    cache: &'a KvCache<'a>,
    out: &'a Value,
}

impl Node<'_> {
    /// Query rows (b, h, i).
    fn rows(&self) -> usize {
        self.q.shape[0] * self.q.shape[1] * self.q.shape[2]
    }

    /// Value dims.
    fn dv(&self) -> usize {
        self.cache.v.shape[3]
    }
}

/// `softmax(q k^T * scale) v` for `q [B, Hq, S, D]`; query head `h` reads kv head `h / (Hq/Hkv)`.
pub fn attention(
    target: &Target,
    scale: f64,
    causal: bool,
    q: &Value,
    cache: &KvCache,
    out: &Value,
) -> Result<Vec<(Launch, Binds)>, CompileError> {
    target.check_numel("attention out", out.numel())?;
    let d = q.shape[3];
    let name = format!("attention_{}_d{d}{}", q.dtype.name(), if causal { "_causal" } else { "" });
    let scale = scale as f32;
    if !scale.is_finite() {
        return Err(CompileError::Unsupported { op: "attention".into(), reason: format!("scale {scale}") });
    }
    let node = Node { name, scale, causal, q, cache, out };
    let (rows, dv) = (node.rows(), node.dv());
    let sg = target.profile.subgroup_min_size;
    // The subgroup kernel keeps each subgroup's value sums in workgroup memory: 4 of them at least.
    let l = &target.profile.limits;
    let room = l.max_compute_workgroup_storage_size.min(16384) as usize;
    let lanes = l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x);
    if target.subgroups && sg >= 4 && 4 * sg <= lanes && 4 * 4 * (dv + 2) <= room {
        if let Some(parts) = split_parts(target, rows, cache.k.shape[2]) {
            return split(target, &node, sg, parts);
        }
        return Ok(vec![(per_subgroup(target, &node, sg)?, Binds::Node)]);
    }
    let chunk = if rows < FEW_ROWS { FEW_ROWS_CHUNK } else { CHUNK };
    let (mut w, grid) = row_kernel(target, node.name.clone(), rows, chunk)?;
    row_loads(&mut w, target, &node)?;
    let ob = w.write(out.dtype, out.storage);
    w.store_fn("store_y", &ob);
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
        w.constant(c, target.check_numel(&node.name, v)?);
    }
    block_reduce(&mut w, target, "max", Scalar::F32, "op_max_f32", "subgroupMax");
    w.workgroup_bytes(4 * (d.max(1) + wg + group_acc + groups) as u32);
    w.include(ATTENTION);
    Ok(vec![(Launch { kernel: w.finish(), workgroups: grid.workgroups }, Binds::Node)])
}

/// The subgroup kernel: one workgroup of up to [`SUBGROUPS`] subgroups per query row, each
/// subgroup scoring every NSG-th key with its lanes across the head dims.
fn per_subgroup(target: &Target, node: &Node, sg: u32) -> Result<Launch, CompileError> {
    let (mut w, grid) = subgroup_kernel(target, node, "subgroups", node.rows(), SUBGROUPS, sg)?;
    let ob = w.write(node.out.dtype, node.out.storage);
    w.store_fn("store_y", &ob);
    w.include(ATTENTION_WHOLE);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// Parts to cut each query row's keys into (flash decoding), or `None` to score every row in
/// one workgroup: a few rows over a cache of two [`KEYS_PER_PART`] or more, on a device that
/// runs more workgroups side by side than there are rows.
fn split_parts(target: &Target, rows: usize, capacity: usize) -> Option<usize> {
    if rows >= FEW_ROWS {
        return None;
    }
    let workgroups = match target.profile.parallelism {
        0 => SPLIT_WORKGROUPS,
        n => SPLIT_PER_PARALLEL * n as usize,
    };
    let parts = workgroups.div_ceil(rows.max(1)).min(capacity / KEYS_PER_PART).min(MAX_PARTS);
    (parts >= 2).then_some(parts)
}

/// Flash decoding: `parts` workgroups of [`SPLIT_SUBGROUPS`] subgroups per query row, each over
/// one range of its keys, write partial softmaxes to the workspace; a second kernel folds them.
fn split(target: &Target, node: &Node, sg: u32, parts: usize) -> Result<Vec<(Launch, Binds)>, CompileError> {
    let (rows, dv, name) = (node.rows(), node.dv(), &node.name);
    let stride = dv + 2;
    let ws_len = target.check_numel(&format!("{name} workspace"), rows * parts * stride)?;
    let ws = Value { shape: vec![ws_len as usize], dtype: DType::F32, storage: Storage::F32 };
    let fusion = target.fusion.as_deref().cloned().unwrap_or_default();
    let constants = |w: &mut KernelWriter| -> Result<(), CompileError> {
        w.constant("PARTS", target.check_numel(name, parts)?);
        w.constant("WS_STRIDE", target.check_numel(name, stride)?);
        Ok(())
    };

    // The first half loads q through its prologue and stores plain partials (no epilogue).
    let first_fusion = KernelFusion { prologues: fusion.prologues.clone(), ..KernelFusion::default() };
    let first = Target { fusion: Some(Arc::new(first_fusion)), ..target.clone() };
    let (mut w, grid) = subgroup_kernel(&first, node, "parts", rows * parts, SPLIT_SUBGROUPS, sg)?;
    constants(&mut w)?;
    w.constant("MIN_KEYS", MIN_KEYS);
    w.constant("GROUPS", grid.workgroups[0] * grid.workgroups[1]);
    let wb = w.write(ws.dtype, ws.storage);
    w.store_fn("store_ws", &wb);
    w.workgroup_bytes(4);
    w.include(ATTENTION_SPLIT);
    let partials = Launch { kernel: w.finish(), workgroups: grid.workgroups };

    // The second half reads the partials (no prologue) and stores the rows through the epilogue.
    let second_fusion = KernelFusion { prologues: Vec::new(), ..fusion };
    let second = Target { fusion: Some(Arc::new(second_fusion)), ..target.clone() };
    let combine_wg = (dv.next_power_of_two().clamp(32, 256)) as u32;
    let (mut w, grid) = row_kernel_sized(&second, format!("{name}_combine"), rows, combine_wg)?;
    constants(&mut w)?;
    w.constant("DV", target.check_numel(name, dv)?);
    let rb = w.read(ws.dtype, ws.storage);
    w.load_fn("load_ws", &rb);
    let ob = w.write(node.out.dtype, node.out.storage);
    w.store_fn("store_y", &ob);
    w.workgroup_bytes(4 * parts as u32);
    w.include(ATTENTION_COMBINE);
    let combine = Launch { kernel: w.finish(), workgroups: grid.workgroups };
    let bytes = buffer_bytes(ws_len as usize, Storage::F32);
    Ok(vec![(partials, Binds::ToWorkspace { bytes }), (combine, Binds::FromWorkspace)])
}

/// The setup both subgroup kernels share: a grid of `groups` workgroups of up to `subgroups`
/// subgroups (a power of two whose value sums, maxima and sums fit in 16 KiB), the loads and
/// constants of [`row_loads`], and `attention_subgroup.wgsl`.
fn subgroup_kernel(
    target: &Target,
    node: &Node,
    suffix: &str,
    groups: usize,
    subgroups: u32,
    sg: u32,
) -> Result<(KernelWriter, Grid), CompileError> {
    let (d, dv) = (node.q.shape[3], node.dv());
    let l = &target.profile.limits;
    let cap = l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x).min(1024);
    let bytes = l.max_compute_workgroup_storage_size.min(16384);
    let fit = (bytes / (4 * (dv as u32 + 2))).max(1) * sg;
    let wg = (subgroups * sg).min(cap).min(fit).max(sg);
    let wg = 1 << wg.ilog2();
    let name = format!("{}_{suffix}", node.name);
    let (mut w, grid) = row_kernel_sized(target, name.clone(), groups, wg)?;
    row_loads(&mut w, target, node)?;
    let nsg = (wg / sg).max(1) as usize;
    let sg = sg as usize;
    for (c, v) in
        [("QP", d.div_ceil(sg).max(1)), ("VP", dv.div_ceil(sg).max(1)), ("NSG", nsg), ("KPS", KEYS_PER_STEP)]
    {
        w.constant(c, target.check_numel(&name, v)?);
    }
    w.workgroup_bytes(4 * (2 * nsg + nsg * dv.max(1)) as u32);
    w.include(ATTENTION_SUBGROUP);
    Ok((w, grid))
}

/// What every attention kernel but the combine shares: the shapes, scale and mask as constants,
/// the loads of q, k, v and kv_len, and `attention_row`.
fn row_loads(w: &mut KernelWriter, target: &Target, node: &Node) -> Result<(), CompileError> {
    let (q, cache) = (node.q, node.cache);
    for (what, v) in [("q", q), ("k", cache.k), ("v", cache.v)] {
        target.check_numel(&format!("attention {what}"), v.numel())?;
    }
    let [_, hq, s, d] = dims4(&q.shape);
    let [_, hkv, t, _] = dims4(&cache.k.shape);
    let dv = cache.v.shape[3];
    for (c, v) in [
        ("QROWS", node.rows()),
        ("HQ", hq),
        ("HKV", hkv),
        ("S", s),
        ("T", t),
        ("D", d),
        ("DV", dv),
        ("DV_ROW", dv.max(1)),
        ("CAUSAL", node.causal as usize),
    ] {
        w.constant(c, target.check_numel(&node.name, v)?);
    }
    w.constant_f32("SCALE", node.scale);
    for (v, load) in [(q, "load_q"), (cache.k, "load_k"), (cache.v, "load_v"), (cache.len, "load_len")] {
        let b = w.read(v.dtype, v.storage);
        w.load_fn(load, &b);
    }
    w.include(ATTENTION_ROW);
    Ok(())
}

fn dims4(shape: &[usize]) -> [usize; 4] {
    [shape[0], shape[1], shape[2], shape[3]]
}
