//! Affine-quantized weights (the MLX layout: u32 words of `32 / bits` codes, low bits first,
//! weight = scale * code + bias per group along a row): a gemv for few rows of x (decode), a
//! tiled matmul that dequantizes the weight tile while loading it (prefill), and row gathers.

use super::grid::Grid;
use super::matmul::Tile;
use super::reduce::row_workgroup_size;
use super::writer::PRELUDE;
use super::{KernelWriter, Launch, Target, Value};
use crate::CompileError;
use tessera_ir::DType;

const IDS: &str = include_str!("../wgsl/ids.wgsl");
const IDS_SUBGROUP: &str = include_str!("../wgsl/ids_subgroup.wgsl");
const GEMV: &str = include_str!("../wgsl/quant_gemv.wgsl");
const GEMV4: &str = include_str!("../wgsl/quant_gemv4.wgsl");
const GEMV4_STAGED: &str = include_str!("../wgsl/quant_gemv4_staged.wgsl");
const GEMV_COMMON: &str = include_str!("../wgsl/quant_gemv_common.wgsl");
const SLOTS: &str = include_str!("../wgsl/slots_reduce.wgsl");
const SLOTS_SUBGROUP: &str = include_str!("../wgsl/slots_reduce_subgroup.wgsl");
const MATMUL: &str = include_str!("../wgsl/quant_matmul.wgsl");

/// Rows of x up to which the gemv kernel runs (each invocation keeps `R * M` partials).
pub const GEMV_MAX_ROWS: usize = 8;

/// Output rows per gemv workgroup of the word kernel.
const GEMV_ROWS_PER_GROUP: usize = 4;

/// Workgroups the vec4 gemv keeps for small matrices by taking fewer rows per workgroup.
const MIN_GEMV_WORKGROUPS: usize = 512;

/// A packed `[rows, K]` matrix: u32 words `[rows, K * bits / 32]`, scales and biases
/// `[rows, K / group_size]`.
#[derive(Clone, Copy, Debug)]
pub struct Packed<'a> {
    /// Bits per code (4 or 8).
    pub bits: u32,
    /// Codes sharing one scale and bias.
    pub group_size: u32,
    /// The packed codes.
    pub w: &'a Value,
    /// Scale of each group.
    pub scales: &'a Value,
    /// Bias of each group.
    pub biases: &'a Value,
}

impl Packed<'_> {
    /// Codes per u32 word.
    fn per_word(&self) -> usize {
        (32 / self.bits) as usize
    }

    /// Dequantized row length K.
    fn row_len(&self) -> usize {
        self.w.shape[1] * self.per_word()
    }

    /// True when every row is whole 16-byte chunks of codes that each lie in one group, so the
    /// gemv can read the codes as `vec4<u32>`.
    fn chunks_fit(&self) -> bool {
        let codes = 4 * self.per_word();
        self.w.shape[1].is_multiple_of(4) && (self.group_size as usize).is_multiple_of(codes)
    }

    /// Binds w, scales and biases (in that order, after whatever is bound already), declares the
    /// layout constants and the loads `load_w` (`load_w4` over vec4 chunks when `chunks`),
    /// `load_scale`, `load_bias`.
    fn bind(&self, w: &mut KernelWriter, target: &Target, what: &str) -> Result<(), CompileError> {
        self.bind_as(w, target, what, false)
    }

    fn bind_as(
        &self,
        w: &mut KernelWriter,
        target: &Target,
        what: &str,
        chunks: bool,
    ) -> Result<(), CompileError> {
        for v in [self.w, self.scales] {
            target.check_numel(what, v.numel())?;
        }
        let k = self.row_len();
        w.constant("BITS", self.bits);
        w.constant("PER_WORD", self.per_word() as u32);
        w.constant("WORDS", target.check_numel(what, self.w.shape[1])?);
        w.constant("GROUP", self.group_size);
        w.constant("ROW_GROUPS", target.check_numel(what, k / self.group_size as usize)?);
        if chunks {
            w.constant("VECS", target.check_numel(what, self.w.shape[1] / 4)?);
            w.constant("CODES", 4 * self.per_word() as u32);
            w.read_words4("load_w4");
        } else {
            let b = w.read(self.w.dtype, self.w.storage);
            w.load_fn("load_w", &b);
        }
        for (v, load) in [(self.scales, "load_scale"), (self.biases, "load_bias")] {
            let b = w.read(v.dtype, v.storage);
            w.load_fn(load, &b);
        }
        Ok(())
    }
}

/// `x [..., K] @ dequant(w)[N, K]^T -> [..., N]`: the gemv kernel for at most
/// [`GEMV_MAX_ROWS`] rows of x, the tiled kernel otherwise.
pub fn quant_matmul(
    target: &Target,
    x: &Value,
    weights: &Packed,
    out: &Value,
) -> Result<Launch, CompileError> {
    let k = weights.row_len();
    let rows = x.numel() / k.max(1);
    let n = weights.w.shape[0];
    for (what, v) in [("x", x), ("y", out)] {
        target.check_numel(&format!("quant_matmul {what}"), v.numel())?;
    }
    if rows <= GEMV_MAX_ROWS {
        gemv(target, rows, n, k, x, weights, out)
    } else {
        tiled(target, rows, n, k, x, weights, out)
    }
}

fn gemv(
    target: &Target,
    m: usize,
    n: usize,
    k: usize,
    x: &Value,
    weights: &Packed,
    out: &Value,
) -> Result<Launch, CompileError> {
    let layout = GemvLayout::choose(target, m, n, weights);
    let (wg, r) = (layout.wg, layout.r);
    let suffix = if target.subgroups { "_sg" } else { "" };
    let kind = match layout.kernel {
        GemvKernel::Words => "gemv",
        GemvKernel::Chunks => "gemv4",
        GemvKernel::Staged { .. } => "gemv4s",
    };
    let name =
        format!("quant_{kind}_q{}g{}_{}_m{m}{suffix}", weights.bits, weights.group_size, x.dtype.name());
    let grid = Grid::linear(n.div_ceil(r) as u64, &target.profile.limits)?;
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
    // A fused RMSNorm adds one slot per row of x for its sum of squares.
    let slots = r * m + if w.has_norm() { m } else { 0 };
    w.constant("SLOTS", slots as u32);
    let chunks = layout.kernel != GemvKernel::Words;
    weights.bind_as(&mut w, target, "quant_matmul", chunks)?;
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
    w.include(GEMV_COMMON);
    match layout.kernel {
        GemvKernel::Words => {
            w.workgroup_bytes(slot_bytes);
            w.include(GEMV);
        }
        GemvKernel::Chunks => {
            w.workgroup_bytes(slot_bytes);
            w.include(GEMV4);
        }
        GemvKernel::Staged { tile } => {
            w.constant("TILE", tile);
            w.workgroup_bytes(slot_bytes + tile * staged_chunk_bytes(m, weights));
            w.include(GEMV4_STAGED);
        }
    }
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// Which gemv kernel runs a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GemvKernel {
    /// One u32 word per invocation and row (groups smaller than a 16-byte chunk).
    Words,
    /// One 16-byte chunk per invocation for R rows, x loaded from memory.
    Chunks,
    /// As `Chunks`, with x staged through workgroup memory in tiles of `tile` chunks.
    Staged { tile: u32 },
}

/// A gemv's kernel, workgroup size and rows per workgroup.
#[derive(Clone, Copy, Debug)]
struct GemvLayout {
    kernel: GemvKernel,
    wg: u32,
    r: usize,
}

impl GemvLayout {
    /// x staged through workgroup memory wherever a tile of at least a workgroup fits: every
    /// x element is then loaded once per workgroup, coalesced, and read back as vec4s. Measured on
    /// the H200 (1B q4 decode): 529 tok/s staged against 367 loading x per chunk; gate_up
    /// (2048 x 16384 with the RMSNorm prologue) 74 -> 41 us.
    fn choose(target: &Target, m: usize, n: usize, weights: &Packed) -> GemvLayout {
        if !weights.chunks_fit() {
            let wg = row_workgroup_size(target, 64);
            let r = GEMV_ROWS_PER_GROUP.min(wg as usize / m.max(1)).max(1);
            return GemvLayout { kernel: GemvKernel::Words, wg, r };
        }
        let vecs = (weights.w.shape[1] / 4) as u32;
        // Rows per workgroup share each x element, but a small matrix also needs workgroups
        // enough to keep loads in flight: R drops until there are MIN_GEMV_WORKGROUPS. Measured
        // on the H200 against a fixed 8 (decode tok/s, dummy q4): SmolLM2 shapes 439 -> 683,
        // 1B 514-521 either way, 8B 127-129 either way; at least 1024 workgroups was slower for 1B
        // (down_proj at K = 8192 then stages x for 2 rows per workgroup). R = 4/6/12 against 8:
        // 1B 598/623/616 vs 653 tok/s, 8B 116/133/132 vs 135 (16 spills registers).
        let r = match m {
            0..=1 => 8,
            2 => 4,
            3..=4 => 2,
            _ => 1,
        };
        let r = (n / MIN_GEMV_WORKGROUPS).clamp(1, r);
        let mut wg = row_workgroup_size(target, vecs as usize);
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
}

/// Workgroup bytes of one staged chunk of x: `m` rows of its codes' x values plus one vec4 of
/// padding.
fn staged_chunk_bytes(m: usize, weights: &Packed) -> u32 {
    m as u32 * (weights.per_word() as u32 + 1) * 16
}

/// Rows of the slot table `reduce_slots` keeps: one per subgroup where subgroups reduce first
/// (the adapter's smallest subgroup bounds their number), else one per invocation.
fn slot_rows(target: &Target, wg: u32) -> u32 {
    match target.profile.subgroup_min_size {
        min if target.subgroups && min > 0 => (wg / min).max(1),
        _ => wg,
    }
}

fn tiled(
    target: &Target,
    m: usize,
    n: usize,
    k: usize,
    x: &Value,
    weights: &Packed,
    out: &Value,
) -> Result<Launch, CompileError> {
    let tile = Tile::for_target(target)?;
    let name = format!(
        "quant_matmul_q{}g{}_{}_{}x{}",
        weights.bits,
        weights.group_size,
        x.dtype.name(),
        tile.bm,
        tile.bn
    );
    let tiles_m = m.div_ceil(tile.bm as usize);
    let tiles_n = n.div_ceil(tile.bn as usize);
    let tiles = (tiles_m * tiles_n) as u64;
    let grid = Grid::linear(tiles, &target.profile.limits)?;
    let mut w = KernelWriter::new(name, tile.threads()).fused(target);
    for (c, v) in [
        ("M", m),
        ("N", n),
        ("K", k),
        ("BM", tile.bm as usize),
        ("BN", tile.bn as usize),
        ("BK", tile.bk as usize),
        ("TM", tile.tm as usize),
        ("TN", tile.tn as usize),
        ("TILES_M", tiles_m),
        ("TILES_N", tiles_n),
    ] {
        w.constant(c, target.check_numel("quant_matmul", v)?);
    }
    w.constant("TILES", tiles as u32);
    w.constant("GRID_X", grid.grid_x);
    let xb = w.read(x.dtype, x.storage);
    w.load_fn("load_x", &xb);
    weights.bind(&mut w, target, "quant_matmul")?;
    let yb = w.write(out.dtype, out.storage);
    w.store_fn("store_y", &yb);
    w.workgroup_bytes(tile.workgroup_bytes());
    w.include(PRELUDE);
    w.include(IDS);
    w.include(MATMUL);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// Dequantized rows `clamp(index, 0, rows - 1)` of a packed table: one invocation per element.
pub fn quant_gather(
    target: &Target,
    table: &Packed,
    indices: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    let wg = target.workgroup_size();
    let name = format!(
        "quant_gather_q{}g{}_{}_{}",
        table.bits,
        table.group_size,
        out.dtype.name(),
        indices.dtype.name()
    );
    let total = target.check_numel(&name, out.numel())?;
    let grid = Grid::linear(total.div_ceil(wg) as u64, &target.profile.limits)?;
    let k = table.row_len();
    let mut w = KernelWriter::new(name, wg).fused(target);
    table.bind(&mut w, target, "quant_gather")?;
    let i = w.read(indices.dtype, indices.storage);
    let o = w.write(out.dtype, out.storage);
    w.constant("K", k.max(1) as u32);
    let last = table.w.shape[0].saturating_sub(1);
    let row = match indices.dtype {
        DType::I32 => format!("u32(clamp({}, 0i, {last}i))", i.load_raw("idx / K")),
        DType::U32 | DType::F32 | DType::F16 | DType::Bool => {
            format!("min({}, {last}u)", i.load_raw("idx / K"))
        }
    };
    let body = vec![
        format!("let row = {row};"),
        "let k = idx % K;".to_string(),
        "let word = load_w(row * WORDS + k / PER_WORD);".to_string(),
        "let g = row * ROW_GROUPS + k / GROUP;".to_string(),
        "let y = load_scale(g) * f32(extractBits(word, (k % PER_WORD) * BITS, BITS)) + load_bias(g);"
            .to_string(),
        o.store("idx", "y"),
    ];
    Ok(Launch { kernel: w.finish_per_element(total, grid.grid_x, &body), workgroups: grid.workgroups })
}
