//! Gemv for decode (at most [`GEMV_MAX_ROWS`] rows of x, [`INT8_GEMV_MAX_ROWS`] where x is
//! rounded to int8): `y[m, n] = sum_k x[m, k] * w[n, k]`
//! over weights stored as rows `[N, K]`, either affine-quantized ([`Packed`]) or dense f32/f16
//! (a matmul whose right operand is the transpose of such a matrix). One kernel skeleton
//! (`gemv_chunks.wgsl`, `gemv_staged.wgsl`) reads 16-byte chunks of R rows per workgroup; a chunk
//! format (`gemv_chunk_quant.wgsl`, `gemv_chunk_dense.wgsl`) turns a chunk into values.

use super::grid::Grid;
use super::quant::Packed;
use super::reduce::row_workgroup_size;
use super::writer::PRELUDE;
use super::{KernelWriter, Launch, Storage, Target, Value};
use crate::CompileError;

const IDS: &str = include_str!("../wgsl/ids.wgsl");
const IDS_SUBGROUP: &str = include_str!("../wgsl/ids_subgroup.wgsl");
const WORDS: &str = include_str!("../wgsl/quant_gemv.wgsl");
const CHUNKS: &str = include_str!("../wgsl/gemv_chunks.wgsl");
const STAGED: &str = include_str!("../wgsl/gemv_staged.wgsl");
const SUBGROUP_ROWS: &str = include_str!("../wgsl/gemv_subgroup_rows.wgsl");
const INT8_ROWS: &str = include_str!("../wgsl/gemv_int8_rows.wgsl");
const SUBGROUP_STORE: &str = include_str!("../wgsl/gemv_subgroup_store.wgsl");
const COMMON: &str = include_str!("../wgsl/gemv_common.wgsl");
const QUANT_CHUNK: &str = include_str!("../wgsl/gemv_chunk_quant.wgsl");
const DENSE_CHUNK: &str = include_str!("../wgsl/gemv_chunk_dense.wgsl");
const SLOTS: &str = include_str!("../wgsl/slots_reduce.wgsl");
const SLOTS_SUBGROUP: &str = include_str!("../wgsl/slots_reduce_subgroup.wgsl");

/// Rows of x up to which the gemv kernel runs (each invocation keeps `R * M` partials).
pub const GEMV_MAX_ROWS: usize = 8;

/// Rows of x up to which the integer-dot gemv runs (short prompts as well as decode): its x
/// staged as int8 is a quarter of f32's, so 32 rows still stage whole subgroups of chunks, and
/// a lane's 32 partials stay in registers. The tiled matmul it replaces there runs N / 64
/// workgroups of K / 16 serial steps: 0.87 ms per 8B projection at 16 rows on the H200.
pub const INT8_GEMV_MAX_ROWS: usize = 32;

/// Output rows per gemv workgroup of the word kernel.
const GEMV_ROWS_PER_GROUP: usize = 4;

/// Workgroups the chunk kernels keep for small matrices by taking fewer rows per workgroup.
const MIN_GEMV_WORKGROUPS: usize = 512;

/// Workgroups the subgroup-rows kernel keeps by taking fewer rows per subgroup. More rows per
/// workgroup stage x fewer times: H200 decode tok/s (dummy weights, one machine) against 512 /
/// 256: 8B q4 268.5 vs 240.1 / 239.0, 8B q8 248.4 vs 196.8 / 203.9, 1B q4 985 vs 827 / 968, 1B q8
/// 868 vs 898 / 894.
const SUBGROUP_ROWS_MIN_WORKGROUPS: usize = 128;

/// As `SUBGROUP_ROWS_MIN_WORKGROUPS` for the integer-dot kernel, whose staged x costs a quarter
/// as much: against 512 / 128 on the same machine, 8B q4 338 vs 322 / 331, 8B q8 252 vs 240, 1B
/// q4 1151 vs 1156 / 1082, 1B q8 933 vs 951.
const INT8_ROWS_MIN_WORKGROUPS: usize = 256;

/// Rows per subgroup up to which the integer-dot gemv loads each lane's first chunk before it
/// stages x (`PREFETCH`). H100, dummy q4 decode tok/s against no prefetch, processes alternated
/// in one call: 8B 337.1 / 336.2 vs 331.4 / 331.6, 1B 1140.6 vs 1104.6; prefetching at every R
/// (8B gate_up takes 8 rows, 48 registers a chunk) lost 8B 327.7 vs 333.1, and a second chunk
/// ahead lost further in an earlier call (322.3 / 322.7).
const INT8_PREFETCH_MAX_ROWS: usize = 4;

/// Invocations per workgroup of the subgroup-rows kernel (where the limits allow).
const SUBGROUP_ROWS_WG: u32 = 512;

/// The `[N, K]` weights a gemv reads.
#[derive(Clone, Copy, Debug)]
pub enum GemvWeights<'a> {
    /// Affine-quantized codes with per-group scales and biases.
    Packed(&'a Packed<'a>),
    /// Dense float rows, f32 or f16 as stored.
    Dense(&'a Value),
}

impl GemvWeights<'_> {
    /// Output rows N.
    fn rows(&self) -> usize {
        match self {
            GemvWeights::Packed(p) => p.w.shape[0],
            GemvWeights::Dense(w) => w.shape[0],
        }
    }

    /// Values per 16-byte chunk.
    fn codes(&self) -> usize {
        match self {
            GemvWeights::Packed(p) => 4 * p.per_word(),
            GemvWeights::Dense(w) => 16 / w.storage.bytes() as usize,
        }
    }

    /// Chunks per row, when every row is whole chunks (each in one quantization group).
    fn vecs(&self) -> Option<usize> {
        match self {
            GemvWeights::Packed(p) => p.chunks_fit().then(|| p.w.shape[1] / 4),
            GemvWeights::Dense(w) => {
                w.shape[1].is_multiple_of(self.codes()).then(|| w.shape[1] / self.codes())
            }
        }
    }

    /// True when the chunk kernels can read every row (the dense weights have no other kernel).
    pub fn has_chunks(&self) -> bool {
        self.vecs().is_some()
    }

    /// The kernel's name: the weight format around the kernel `kind`.
    fn kernel_name(&self, kind: &str) -> String {
        match self {
            GemvWeights::Packed(p) => format!("quant_{kind}_q{}g{}", p.bits, p.group_size),
            GemvWeights::Dense(w) => format!("dense_{kind}_{}", w.storage.dtype().name()),
        }
    }

    /// Binds the weights (after x) and defines what the chunk format reads them through.
    fn bind(&self, w: &mut KernelWriter, target: &Target, chunks: bool) -> Result<(), CompileError> {
        match self {
            GemvWeights::Packed(p) => p.bind_as(w, target, "quant_matmul", chunks),
            GemvWeights::Dense(v) => {
                target.check_numel("gemv weights", v.numel())?;
                let vecs = self.vecs().ok_or_else(|| CompileError::Unsupported {
                    op: "matmul".into(),
                    reason: format!("gemv rows of {} values are not whole 16-byte chunks", v.shape[1]),
                })?;
                w.constant("VECS", target.check_numel("gemv weights", vecs)?);
                w.constant("CODES", self.codes() as u32);
                w.read_words4("load_w4");
                let unpack = match v.storage {
                    Storage::F16 => "vec4<f32>(unpack2x16float(w[2u * j]), unpack2x16float(w[2u * j + 1u]))",
                    _ => "bitcast<vec4<f32>>(w)",
                };
                w.function(&format!("fn unpack4(w: vec4<u32>, j: u32) -> vec4<f32> {{ return {unpack}; }}"));
                Ok(())
            }
        }
    }
}

/// Values of x sharing one int8 scale in the integer-dot gemv.
const INT8_BLOCK: u32 = 32;

/// True when the quantized gemv of `m` rows of x, `[n, k]` weights of `bits` in groups of
/// `group_size`, runs the integer-dot kernel, which rounds x to int8 per block of `block` as it
/// stages it (so a `round_int8` feeding it is fused into it).
pub fn int8_gemv(
    target: &Target,
    m: usize,
    n: usize,
    k: usize,
    bits: u32,
    group_size: u32,
    block: u32,
) -> bool {
    let codes = 128 / bits.max(1) as usize;
    let chunks = k.is_multiple_of(codes) && (group_size as usize).is_multiple_of(codes);
    let fits = (1..=INT8_GEMV_MAX_ROWS).contains(&m) && block == INT8_BLOCK && chunks && k.is_multiple_of(32);
    fits && GemvLayout::int8_rows(target, m, n, k / codes, codes).is_some()
}

/// The block of the `round_int8` a kernel fuses as its x prologue, if any.
pub fn fused_int8_block(target: &Target) -> Option<u32> {
    target.fusion.as_ref().and_then(|f| f.prologues.first().cloned().flatten()).and_then(|x| x.int8_block())
}

/// `x [M, K] @ w[N, K]^T -> [M, N]` for `m <= GEMV_MAX_ROWS` rows of x (`INT8_GEMV_MAX_ROWS`
/// where x is a fused `round_int8`).
pub fn gemv(
    target: &Target,
    m: usize,
    k: usize,
    x: &Value,
    weights: GemvWeights,
    out: &Value,
) -> Result<Launch, CompileError> {
    let n = weights.rows();
    let int8 = fused_int8_block(target);
    let layout = match (int8, &weights) {
        (None, _) => Some(GemvLayout::choose(target, m, &weights)),
        (Some(block), GemvWeights::Packed(p)) if int8_gemv(target, m, n, k, p.bits, p.group_size, block) => {
            GemvLayout::int8_rows(target, m, n, k / weights.codes(), weights.codes())
        }
        (Some(_), _) => None,
    };
    // Fusion inlines a round_int8 only where `int8_gemv` holds.
    let layout = layout.ok_or_else(|| CompileError::Unsupported {
        op: "quant_matmul".into(),
        reason: "a fused round_int8 needs the integer-dot gemv, which these weights do not take".into(),
    })?;
    let (wg, r) = (layout.wg, layout.r);
    let suffix = if target.subgroups { "_sg" } else { "" };
    let kind = match layout.kernel {
        GemvKernel::Words => "gemv",
        GemvKernel::Chunks => "gemv4",
        GemvKernel::Staged { .. } => "gemv4s",
        GemvKernel::SubgroupRows { .. } => "gemv4r",
        GemvKernel::Int8Rows { .. } => "gemv4i8",
    };
    let name = format!("{}_{}_m{m}{suffix}", weights.kernel_name(kind), x.dtype.name());
    let rows = layout.rows_per_workgroup();
    let grid = Grid::linear(n.div_ceil(rows) as u64, &target.profile.limits)?;
    let mut w = KernelWriter::new(name, wg).fused(target);
    w.constant("M", m as u32);
    w.constant("R", r as u32);
    w.constant("RM", (r * m) as u32);
    w.constant("N", n as u32);
    w.constant("K", k as u32);
    w.constant("GRID_X", grid.grid_x);
    w.constant("NSG", slot_rows(target, wg));
    let xb = w.read(x.dtype, x.storage);
    w.load_fn("load_x", &xb);
    // A fused RMSNorm adds one slot per row of x for its sum of squares; the subgroup-rows
    // kernel sums only those over the workgroup.
    let norm_slots = if w.has_norm() { m } else { 0 };
    let slots = match layout.kernel {
        GemvKernel::SubgroupRows { .. } | GemvKernel::Int8Rows { .. } => norm_slots.max(1),
        _ => r * m + norm_slots,
    };
    w.constant("SLOTS", slots as u32);
    weights.bind(&mut w, target, layout.kernel != GemvKernel::Words)?;
    let yb = w.write(out.dtype, out.storage);
    w.store_fn("store_y", &yb);
    w.include(PRELUDE);
    if target.subgroups {
        w.uses_subgroups();
        w.include(IDS_SUBGROUP);
        w.include(SLOTS_SUBGROUP);
    } else {
        w.include(IDS);
        w.include(SLOTS);
    }
    let slot_bytes = 4 * slots as u32 * slot_rows(target, wg);
    w.norm_fns();
    if !matches!(layout.kernel, GemvKernel::SubgroupRows { .. } | GemvKernel::Int8Rows { .. }) {
        w.include(COMMON);
    }
    if layout.kernel != GemvKernel::Words {
        w.include(match weights {
            GemvWeights::Packed(_) => QUANT_CHUNK,
            GemvWeights::Dense(_) => DENSE_CHUNK,
        });
    }
    match layout.kernel {
        GemvKernel::Words => {
            w.workgroup_bytes(slot_bytes);
            w.include(WORDS);
        }
        GemvKernel::Chunks => {
            w.workgroup_bytes(slot_bytes);
            w.include(CHUNKS);
        }
        GemvKernel::Staged { tile } => {
            w.constant("TILE", tile);
            w.workgroup_bytes(slot_bytes + tile * staged_chunk_bytes(m, &weights));
            w.include(STAGED);
        }
        GemvKernel::SubgroupRows { tile, sg } => {
            w.constant("TILE", tile);
            w.constant("SG", sg);
            w.constant("ROWS", rows as u32);
            w.constant("KS", 1);
            w.constant("KPARTS", 1);
            w.workgroup_bytes(slot_bytes + 4 + tile * staged_chunk_bytes(m, &weights));
            w.include(SUBGROUP_STORE);
            w.include(SUBGROUP_ROWS);
        }
        GemvKernel::Int8Rows { tile, sg, ks } => {
            w.constant("TILE", tile);
            w.constant("SG", sg);
            w.constant("ROWS", rows as u32);
            w.constant("KS", ks);
            w.function(&format!("const PREFETCH: bool = {};", r <= INT8_PREFETCH_MAX_ROWS));
            let kparts = k_split_partials(ks, wg, sg, r * m);
            w.constant("KPARTS", kparts);
            w.workgroup_bytes(slot_bytes + 4 * kparts + tile * int8_chunk_bytes(m, weights.codes()));
            w.include(SUBGROUP_STORE);
            w.include(INT8_ROWS);
        }
    }
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// Which gemv kernel runs a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GemvKernel {
    /// One u32 word per invocation and row (quantization groups smaller than a 16-byte chunk).
    Words,
    /// One 16-byte chunk per invocation for R rows, x loaded from memory.
    Chunks,
    /// As `Chunks`, with x staged through workgroup memory in tiles of `tile` chunks.
    Staged { tile: u32 },
    /// x staged as in `Staged`; each subgroup (of the fixed size `sg`) owns R rows, its lanes
    /// striding over their chunks, and sums its partials with subgroupAdd alone.
    SubgroupRows { tile: u32, sg: u32 },
    /// As `SubgroupRows` with x rounded to int8 as it is staged and integer dot products; `ks`
    /// subgroups share each subgroup's rows, each summing a slice of K.
    Int8Rows { tile: u32, sg: u32, ks: u32 },
}

/// A gemv's kernel, workgroup size and rows per workgroup.
#[derive(Clone, Copy, Debug)]
struct GemvLayout {
    kernel: GemvKernel,
    wg: u32,
    r: usize,
}

impl GemvLayout {
    /// Output rows a workgroup computes.
    fn rows_per_workgroup(&self) -> usize {
        match self.kernel {
            GemvKernel::SubgroupRows { sg, .. } => self.r * (self.wg / sg) as usize,
            GemvKernel::Int8Rows { sg, ks, .. } => self.r * (self.wg / sg / ks) as usize,
            _ => self.r,
        }
    }

    /// x staged through workgroup memory wherever a tile of at least a workgroup fits: every
    /// x element is then loaded once per workgroup, coalesced, and read back as vec4s. Measured on
    /// the H200 (1B q4 decode): 529 tok/s staged against 367 loading x per chunk; gate_up
    /// (2048 x 16384 with the RMSNorm prologue) 74 -> 41 us.
    fn choose(target: &Target, m: usize, weights: &GemvWeights) -> GemvLayout {
        let Some(vecs) = weights.vecs() else {
            let wg = row_workgroup_size(target, 64);
            let r = GEMV_ROWS_PER_GROUP.min(wg as usize / m.max(1)).max(1);
            return GemvLayout { kernel: GemvKernel::Words, wg, r };
        };
        let vecs = vecs as u32;
        // Rows per workgroup share each x element, but a small matrix also needs workgroups
        // enough to keep loads in flight: R drops until there are MIN_GEMV_WORKGROUPS. Measured
        // on the H200 against a fixed 8 (decode tok/s, dummy q4): SmolLM2 shapes 439 -> 683,
        // 1B 514-521 either way, 8B 127-129 either way; at least 1024 workgroups was slower for 1B
        // (down_proj at K = 8192 then stages x for 2 rows per workgroup). R = 4/6/12 against 8:
        // 1B 598/623/616 vs 653 tok/s, 8B 116/133/132 vs 135 (16 spills registers).
        let r = max_rows_per_subgroup(m);
        if let Some(layout) = Self::subgroup_rows(target, m, weights, vecs, r) {
            return layout;
        }
        let r = (weights.rows() / MIN_GEMV_WORKGROUPS).clamp(1, r);
        let mut wg = row_workgroup_size(target, vecs as usize);
        // Dense rows need 2 (f16) or 1 (f32) vec4 of x per chunk, not the 8 of a 4-bit chunk:
        // x read from memory beats staging it once a row is more chunks than the workgroup has
        // invocations. H200, f16 decode tok/s: 1B 680-702 direct vs 438 staged, 8B 176 vs 108;
        // SmolLM2 (K <= 1536, fewer chunks than invocations) 884 staged vs 759-786 direct.
        if matches!(weights, GemvWeights::Dense(_)) && vecs >= wg {
            return GemvLayout { kernel: GemvKernel::Chunks, wg, r };
        }
        let limit = target.profile.limits.max_compute_workgroup_storage_size;
        let per_chunk = staged_chunk_bytes(m, weights);
        let fit = |wg: u32| limit.saturating_sub(4 * (r * m + m) as u32 * slot_rows(target, wg)) / per_chunk;
        if fit(wg) >= vecs {
            return GemvLayout { kernel: GemvKernel::Staged { tile: vecs }, wg, r };
        }
        // Several tiles: each a whole number of workgroups, shrinking the workgroup to fit.
        while wg > 32 && fit(wg) < wg {
            wg /= 2;
        }
        let tile = fit(wg) - fit(wg) % wg;
        if tile == 0 {
            return GemvLayout {
                kernel: GemvKernel::Chunks,
                wg: row_workgroup_size(target, vecs as usize),
                r,
            };
        }
        GemvLayout { kernel: GemvKernel::Staged { tile }, wg, r }
    }

    /// The subgroup-rows kernel for 4- and 8-bit weights on adapters of one fixed subgroup size:
    /// a workgroup of SUBGROUP_ROWS_WG invocations stages x once for its subgroups' R rows each,
    /// R dropping (from `r_max`) until there are SUBGROUP_ROWS_MIN_WORKGROUPS. H200, decode tok/s
    /// against the staged kernel (dummy weights, one machine): 1B q4 663 -> 1016, 8B q4 152 ->
    /// 246, 1B q8 658 -> 927, 8B q8 146 -> 201, SmolLM2 shapes q4 862 -> 983. Workgroups of 256
    /// invocations: 1B q4 912, 8B q4 192; of 128: no gain in decode. Dense rows are left to the chunk kernels: at
    /// 4096 x 14336 f16 this kernel read 2815 GB/s against their 3010.
    fn subgroup_rows(
        target: &Target,
        m: usize,
        weights: &GemvWeights,
        vecs: u32,
        r_max: usize,
    ) -> Option<GemvLayout> {
        let sg = target.profile.subgroup_min_size;
        let fixed = target.subgroups && sg > 0 && sg == target.profile.subgroup_max_size;
        let measured = matches!(weights, GemvWeights::Packed(p) if p.bits == 4 || p.bits == 8);
        let limits = &target.profile.limits;
        let wg = SUBGROUP_ROWS_WG
            .min(limits.max_compute_invocations_per_workgroup)
            .min(limits.max_compute_workgroup_size_x);
        if !fixed || !measured || wg < sg || !wg.is_power_of_two() {
            return None;
        }
        let subgroups = (wg / sg) as usize;
        // Lane j of a subgroup stores its partial j: R * M of them at most.
        let r_max = r_max.min(sg as usize / m.max(1));
        if r_max == 0 {
            return None;
        }
        let r = (weights.rows() / (SUBGROUP_ROWS_MIN_WORKGROUPS * subgroups)).clamp(1, r_max);
        // The RMSNorm slots, and the one float of the (unused) K-split meeting place.
        let norm_slots = 4 * m as u32 * slot_rows(target, wg) + 4;
        let limit = target.profile.limits.max_compute_workgroup_storage_size;
        let fit = limit.saturating_sub(norm_slots) / staged_chunk_bytes(m, weights);
        let tile = if fit >= vecs { vecs } else { fit - fit % sg };
        (tile > 0).then_some(GemvLayout { kernel: GemvKernel::SubgroupRows { tile, sg }, wg, r })
    }

    /// The integer-dot kernel for `m` rows of x and `n` rows of `vecs` chunks of `codes` each:
    /// the subgroup-rows layout on subgroups of a fixed size that is a multiple of 8 (a block
    /// of 32 values is 8 words of int8 codes, rounded together through shuffles).
    fn int8_rows(target: &Target, m: usize, n: usize, vecs: usize, codes: usize) -> Option<GemvLayout> {
        let sg = target.profile.subgroup_min_size;
        let fixed =
            target.subgroups && sg >= 8 && sg == target.profile.subgroup_max_size && sg.is_power_of_two();
        let limits = &target.profile.limits;
        let wg = SUBGROUP_ROWS_WG
            .min(limits.max_compute_invocations_per_workgroup)
            .min(limits.max_compute_workgroup_size_x);
        if !fixed || wg < sg || !wg.is_power_of_two() || m == 0 || m > INT8_GEMV_MAX_ROWS {
            return None;
        }
        let vecs = u32::try_from(vecs).ok()?;
        let ks = int8_k_split(m, vecs, sg, wg);
        let subgroups = (wg / sg / ks) as usize;
        // A lane may store several of the subgroup's R * M partials (store_subgroup_rows).
        let r = (n / (INT8_ROWS_MIN_WORKGROUPS * subgroups)).clamp(1, max_rows_per_subgroup(m));
        let kparts = 4 * k_split_partials(ks, wg, sg, r * m);
        let norm_slots = 4 * m as u32 * slot_rows(target, wg) + kparts;
        let fit =
            limits.max_compute_workgroup_storage_size.saturating_sub(norm_slots) / int8_chunk_bytes(m, codes);
        // A tile of several is a multiple of SG chunks, so whole blocks of 32 values.
        let tile = if fit >= vecs { vecs } else { fit - fit % sg };
        (tile > 0).then_some(GemvLayout { kernel: GemvKernel::Int8Rows { tile, sg, ks }, wg, r })
    }
}

/// Subgroups sharing each row of the integer-dot gemv (each summing every KS-th run of SG
/// chunks): 2 in decode where a row is at least 4 chunks per lane, so each subgroup streams
/// twice the rows over half of K. H100, dummy q4 decode tok/s against 1 on the same machine: 8B
/// (K >= 4096) 332.1 / 332.1 vs 324.2 / 324.4; 1B (K = 2048 but for down_proj) 1071 / 1069 vs
/// 1080 / 1083 and SmolLM2 1006 vs 1024 with every gemv split. 4 subgroups a row lost in
/// another call (8B 291 against 317 for 2).
fn int8_k_split(m: usize, vecs: u32, sg: u32, wg: u32) -> u32 {
    let subgroups = wg / sg;
    if m == 1 && vecs >= 4 * sg && subgroups.is_multiple_of(2) { 2 } else { 1 }
}

/// Workgroup floats where the `ks` subgroups of a row meet (`rm` partials per subgroup).
fn k_split_partials(ks: u32, wg: u32, sg: u32, rm: usize) -> u32 {
    if ks > 1 { (wg / sg) * rm as u32 } else { 1 }
}

/// Rows of weights each invocation (or subgroup) takes at most for `m` rows of x: its `R * M`
/// partials stay in registers.
fn max_rows_per_subgroup(m: usize) -> usize {
    match m {
        0..=1 => 8,
        2 => 4,
        3..=4 => 2,
        _ => 1,
    }
}

/// Workgroup bytes of one chunk of x staged as int8: `m` rows of its codes, scale and sum.
fn int8_chunk_bytes(m: usize, codes: usize) -> u32 {
    m as u32 * (codes as u32 + 8)
}

/// Workgroup bytes of one staged chunk of x: `m` rows of its values' x plus one vec4 of padding.
fn staged_chunk_bytes(m: usize, weights: &GemvWeights) -> u32 {
    m as u32 * (weights.codes() as u32 / 4 + 1) * 16
}

/// Rows of the slot table `reduce_slots` keeps: one per subgroup where subgroups reduce first
/// (the adapter's smallest subgroup bounds their number), else one per invocation.
fn slot_rows(target: &Target, wg: u32) -> u32 {
    match target.profile.subgroup_min_size {
        min if target.subgroups && min > 0 => (wg / min).max(1),
        _ => wg,
    }
}
