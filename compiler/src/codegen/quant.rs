//! Affine-quantized weights (the MLX layout: u32 words of `32 / bits` codes, low bits first,
//! weight = scale * code + bias per group along a row): a gemv for few rows of x (decode), a
//! tiled matmul that dequantizes the weight tile while loading it (prefill), the same on
//! cooperative matrices for f16 x where the device has them, and row gathers.

use super::gemv::{GEMV_MAX_ROWS, GemvWeights, fused_int8_block, gemv, int8_gemv};
use super::grid::Grid;
use super::matmul::Tile;
use super::writer::PRELUDE;
use super::{KernelWriter, Launch, Target, Value};
use crate::CompileError;
use tessera_ir::DType;

const IDS: &str = include_str!("../wgsl/ids.wgsl");
const IDS_SUBGROUP: &str = include_str!("../wgsl/ids_subgroup.wgsl");
const MATMUL: &str = include_str!("../wgsl/quant_matmul.wgsl");
const MATMUL_COOP: &str = include_str!("../wgsl/quant_matmul_coop.wgsl");

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
/// `round_int8`); otherwise the cooperative-matrix kernel for f16 x where the device has them,
/// the tiled kernel elsewhere.
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
    } else if let Some(tile) = CoopTile::for_target(target).filter(|_| x.dtype == DType::F16) {
        cooperative(target, tile.for_grid(rows, n), rows, n, k, x, weights, out)
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
    // Weights take x's dtype (Op::QuantMatMul): the products of f16 x are of two f16 values.
    let weight = if x.dtype == DType::F16 { "round_f16(v)" } else { "v" };
    w.function(&format!("fn weight(v: f32) -> f32 {{ return {weight}; }}"));
    w.workgroup_bytes(tile.workgroup_bytes());
    w.include(PRELUDE);
    w.include(IDS);
    w.include(MATMUL);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// Workgroups below which a cooperative-matrix product takes a narrower tile: about the SM
/// count of a large GPU (132 on the H200), where one workgroup per SM leaves most idle.
const FULL_GRID: usize = 128;

/// Tile of the cooperative-matrix kernel: `sgm x sgn` subgroups of `sg` lanes, each owning
/// `fm x fn_` accumulators of 16 x 16, stepping K by `bk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopTile {
    /// Lanes per subgroup (the device's one subgroup size).
    pub sg: u32,
    /// Subgroups along M.
    pub sgm: u32,
    /// Subgroups along N.
    pub sgn: u32,
    /// Accumulators per subgroup along M.
    pub fm: u32,
    /// Accumulators per subgroup along N.
    pub fn_: u32,
    /// Depth of one K step: a multiple of the 16-deep product and of whole words of codes.
    pub bk: u32,
    /// Named by `TESSERA_COOP_TILE`: used as it is, never narrowed for a short grid.
    pub named: bool,
}

impl CoopTile {
    fn bm(&self) -> u32 {
        self.sgm * self.fm * 16
    }

    fn bn(&self) -> u32 {
        self.sgn * self.fn_ * 16
    }

    fn threads(&self) -> u32 {
        self.sgm * self.sgn * self.sg
    }

    /// The x and W tiles in f16 (rows padded by 8) and one f32 fragment per subgroup.
    fn workgroup_bytes(&self) -> u32 {
        2 * (self.bm() + self.bn()) * (self.bk + 8) + 4 * 256 * self.sgm * self.sgn
    }

    /// The tile for this target: the first of 64 x 256, 64 x 128 and 64 x 64 (2 x 8, 2 x 4 or
    /// 2 x 2 subgroups of 2 x 2 accumulators, K steps of 32) the limits allow, or the one
    /// `TESSERA_COOP_TILE=sgm,sgn,fm,fn,bk` names (for tuning); `None` without cooperative
    /// matrices or one fixed subgroup size.
    pub fn for_target(target: &Target) -> Option<CoopTile> {
        let p = &target.profile;
        let sg = p.subgroup_min_size;
        if !(p.cooperative_matrix && target.subgroups && sg >= 16 && sg == p.subgroup_max_size) {
            return None;
        }
        let tile = |[sgm, sgn, fm, fn_, bk]: [u32; 5]| CoopTile { sg, sgm, sgn, fm, fn_, bk, named: false };
        let chosen = std::env::var("TESSERA_COOP_TILE").ok().and_then(|v| {
            let d: Vec<u32> = v.split(',').filter_map(|d| d.trim().parse().ok()).collect();
            let d = <[u32; 5]>::try_from(d).ok()?;
            (d[..4].iter().all(|&x| (1..=8).contains(&x)) && [16, 32, 64, 128].contains(&d[4])).then_some(d)
        });
        let candidates = match chosen {
            Some(d) => vec![CoopTile { named: true, ..tile(d) }],
            None => vec![tile([2, 8, 2, 2, 32]), tile([2, 4, 2, 2, 32]), tile([2, 2, 2, 2, 32])],
        };
        let l = &p.limits;
        let threads_cap = l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x);
        candidates.into_iter().find(|t| {
            t.threads() <= threads_cap && t.workgroup_bytes() <= l.max_compute_workgroup_storage_size
        })
    }

    /// This tile, or the one with half its accumulators along N (half as wide, as many
    /// subgroups), when this one leaves an `m x n` product fewer than [`FULL_GRID`] workgroups.
    /// On the H200 the 64 x 128 tile (2 x 8 subgroups of 2 x 1) ran a `[128, 4096] x [4096,
    /// 4096]^T` q4 product at 28 TFLOP/s against 18 for 64 x 256 (32 workgroups), and an 8B
    /// prefill of 128 tokens 21% faster; at 512 rows (128 workgroups) 64 x 256 was 18% faster.
    pub fn for_grid(self, m: usize, n: usize) -> CoopTile {
        let tiles = m.div_ceil(self.bm() as usize) * n.div_ceil(self.bn() as usize);
        if !self.named && self.fn_.is_multiple_of(2) && tiles < FULL_GRID {
            CoopTile { fn_: self.fn_ / 2, ..self }
        } else {
            self
        }
    }

    /// The WGSL lines that declare, multiply into and store the accumulators.
    fn accumulator_lines(&self) -> [String; 3] {
        let (mut decl, mut products, mut stores) = (String::new(), String::new(), String::new());
        let pairs = (0..self.fm).flat_map(|i| (0..self.fn_).map(move |j| (i, j)));
        for (i, j) in pairs.clone() {
            decl += &format!("    var acc_{i}_{j} = coop_mat16x16<f32, C>();\n");
            stores += &format!(
                "    store_frag(acc_{i}_{j}, ids, in_range, row0 + sr + {}u, col0 + sc + {}u);\n",
                16 * i,
                16 * j
            );
        }
        for i in 0..self.fm {
            products += &format!("            let a{i} = x_frag(sr + {}u, kk);\n", 16 * i);
        }
        for j in 0..self.fn_ {
            products += &format!("            let b{j} = w_frag(sc + {}u, kk);\n", 16 * j);
        }
        for (i, j) in pairs {
            products += &format!("            acc_{i}_{j} = coopMultiplyAdd(a{i}, b{j}, acc_{i}_{j});\n");
        }
        [decl, products, stores]
    }
}

#[allow(clippy::too_many_arguments)]
fn cooperative(
    target: &Target,
    tile: CoopTile,
    m: usize,
    n: usize,
    k: usize,
    x: &Value,
    weights: &Packed,
    out: &Value,
) -> Result<Launch, CompileError> {
    let name = format!(
        "quant_matmul_coop_q{}g{}_{}_{}x{}",
        weights.bits,
        weights.group_size,
        x.dtype.name(),
        tile.bm(),
        tile.bn()
    );
    let tiles_n = n.div_ceil(tile.bn() as usize);
    let tiles = (m.div_ceil(tile.bm() as usize) * tiles_n) as u64;
    let grid = Grid::linear(tiles, &target.profile.limits)?;
    let mut w = KernelWriter::new(name, tile.threads()).fused(target);
    w.uses_cooperative_matrix();
    for (c, v) in [("M", m), ("N", n), ("K", k), ("TILES_N", tiles_n)] {
        w.constant(c, target.check_numel("quant_matmul", v)?);
    }
    for (c, v) in [
        ("BM", tile.bm()),
        ("BN", tile.bn()),
        ("BK", tile.bk),
        ("SG", tile.sg),
        ("SGN", tile.sgn),
        ("FM", tile.fm),
        ("FN", tile.fn_),
        ("TILES", tiles as u32),
        ("GRID_X", grid.grid_x),
    ] {
        w.constant(c, v);
    }
    let xb = w.read(x.dtype, x.storage);
    w.load_fn("load_x", &xb);
    weights.bind(&mut w, target, "quant_matmul")?;
    let yb = w.write(out.dtype, out.storage);
    w.store_fn("store_y", &yb);
    if w.has_norm() {
        return Err(CompileError::Unsupported {
            op: "quant_matmul".into(),
            reason: "a fused RMSNorm prologue needs the gemv (the tiled kernels do not scale rows)".into(),
        });
    }
    w.workgroup_bytes(tile.workgroup_bytes());
    let [decl, products, stores] = tile.accumulator_lines();
    w.include(PRELUDE);
    w.include(IDS_SUBGROUP);
    w.include_template(
        MATMUL_COOP,
        &[("$ACCUMULATORS", &decl), ("$PRODUCTS", &products), ("$STORES", &stores)],
    );
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
