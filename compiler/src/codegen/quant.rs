//! Affine-quantized weights (the MLX layout: u32 words of `32 / bits` codes, low bits first,
//! weight = scale * code + bias per group along a row): a gemv for few rows of x (decode), a
//! tiled matmul that dequantizes the weight tile while loading it (prefill), and row gathers.

use super::gemv::{GEMV_MAX_ROWS, GemvWeights, fused_int8_block, gemv, int8_gemv};
use super::grid::Grid;
use super::matmul::Tile;
use super::writer::PRELUDE;
use super::{KernelWriter, Launch, Target, Value};
use crate::CompileError;
use tessera_ir::DType;

const IDS: &str = include_str!("../wgsl/ids.wgsl");
const MATMUL: &str = include_str!("../wgsl/quant_matmul.wgsl");

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
    pub(super) fn per_word(&self) -> usize {
        (32 / self.bits) as usize
    }

    /// Dequantized row length K.
    fn row_len(&self) -> usize {
        self.w.shape[1] * self.per_word()
    }

    /// True when every row is whole 16-byte chunks of codes that each lie in one group, so the
    /// gemv can read the codes as `vec4<u32>`.
    pub(super) fn chunks_fit(&self) -> bool {
        let codes = 4 * self.per_word();
        self.w.shape[1].is_multiple_of(4) && (self.group_size as usize).is_multiple_of(codes)
    }

    /// Binds w, scales and biases (in that order, after whatever is bound already), declares the
    /// layout constants and the loads `load_w` (`load_w4` over vec4 chunks when `chunks`),
    /// `load_scale`, `load_bias`.
    fn bind(&self, w: &mut KernelWriter, target: &Target, what: &str) -> Result<(), CompileError> {
        self.bind_as(w, target, what, false)
    }

    pub(super) fn bind_as(
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
/// [`GEMV_MAX_ROWS`] rows of x (or the integer-dot gemv's rows, where x is a fused
/// `round_int8`), the tiled kernel otherwise.
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
    let int8 = fused_int8_block(target)
        .is_some_and(|block| int8_gemv(target, rows, n, k, weights.bits, weights.group_size, block));
    if rows <= GEMV_MAX_ROWS || int8 {
        gemv(target, rows, k, x, GemvWeights::Packed(weights), out)
    } else {
        tiled(target, rows, n, k, x, weights, out)
    }
}

/// `round_int8(x)` on its own (where no integer-dot gemv takes it): one invocation per block
/// finds its largest magnitude, then rounds and stores the block.
pub fn round_int8(target: &Target, block: u32, x: &Value, out: &Value) -> Result<Launch, CompileError> {
    let wg = target.workgroup_size();
    let blocks = target.check_numel("round_int8", x.numel())? / block.max(1);
    let grid = Grid::linear(blocks.div_ceil(wg) as u64, &target.profile.limits)?;
    let mut w = KernelWriter::new(format!("round_int8_b{block}"), wg);
    w.constant("BLOCK", block);
    let xb = w.read(x.dtype, x.storage);
    w.load_fn("load_x", &xb);
    let yb = w.write(out.dtype, out.storage);
    w.store_fn("store_y", &yb);
    let body: Vec<String> = [
        "let base = idx * BLOCK;",
        "var a = 0.0;",
        "for (var i = 0u; i < BLOCK; i = i + 1u) { a = max(a, abs(load_x(base + i))); }",
        "let inv = select(127.0 / a, 0.0, a == 0.0);",
        "for (var i = 0u; i < BLOCK; i = i + 1u) {",
        "    store_y(base + i, clamp(round(load_x(base + i) * inv), -127.0, 127.0) * (a / 127.0));",
        "}",
    ]
    .map(String::from)
    .into();
    Ok(Launch { kernel: w.finish_per_element(blocks, grid.grid_x, &body), workgroups: grid.workgroups })
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
    let tile = Tile::for_rows(target, m)?;
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
