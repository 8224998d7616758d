//! Batched matmul with broadcast batch dimensions: the tiled hand kernel `wgsl/matmul.wgsl`,
//! specialised by tile sizes that fit the device's invocation and workgroup-memory limits.
//! A right operand that is the transpose of an `[N, K]` matrix (linear weights, f32 or f16) is
//! read as rows: a few rows of x run the gemv, more load the B tile along K.
//! The register-block loop is where a cooperative-matrix micro-kernel can be swapped in later.

use super::gemv::{GEMV_MAX_ROWS, GemvWeights, gemv};
use super::grid::Grid;
use super::index::{Affine, offset_fn};
use super::writer::PRELUDE;
use super::{KernelWriter, Launch, Target, Value};
use crate::CompileError;
use tessera_ir::{DType, Op};

const MATMUL: &str = include_str!("../wgsl/matmul.wgsl");
const IDS: &str = include_str!("../wgsl/ids.wgsl");

/// Tile shape: a BM x BN output tile per workgroup, TM x TN per invocation, K in steps of BK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Rows of C per workgroup.
    pub bm: u32,
    /// Columns of C per workgroup.
    pub bn: u32,
    /// Depth of one K step.
    pub bk: u32,
    /// Rows per invocation.
    pub tm: u32,
    /// Columns per invocation.
    pub tn: u32,
}

impl Tile {
    /// Invocations per workgroup.
    pub fn threads(&self) -> u32 {
        (self.bm / self.tm) * (self.bn / self.tn)
    }

    /// Workgroup memory of the A and B tiles (f32), unpadded as `quant_matmul.wgsl` keeps them.
    pub fn workgroup_bytes(&self) -> u32 {
        4 * self.bk * (self.bm + self.bn)
    }

    /// Workgroup memory of `matmul.wgsl`'s tiles, each row padded by one element.
    pub fn padded_workgroup_bytes(&self) -> u32 {
        4 * self.bk * (self.bm + self.bn + 2)
    }

    /// True when the device's invocation and workgroup-memory limits allow the tile.
    fn fits(&self, target: &Target) -> bool {
        let l = &target.profile.limits;
        let threads_cap = l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x);
        self.threads() <= threads_cap && self.padded_workgroup_bytes() <= l.max_compute_workgroup_storage_size
    }

    /// The tile for `m` rows of C: the largest the device allows, or a 16- or 32-row tile as
    /// wide when `m` is that short (a short prompt), so the tile does not compute padding rows.
    /// Each element of C sums over K in the same order whatever the tile.
    pub fn for_rows(target: &Target, m: usize) -> Result<Tile, CompileError> {
        let full = Tile::for_target(target)?;
        let short =
            [Tile { bm: 16, bn: 64, bk: 16, tm: 1, tn: 4 }, Tile { bm: 32, bn: 64, bk: 16, tm: 2, tn: 4 }]
                .into_iter()
                .find(|t| m <= t.bm as usize && t.bm < full.bm && t.fits(target));
        Ok(short.unwrap_or(full))
    }

    /// The largest tile the device allows (64x64 with 4x4 per invocation on the portable floor).
    pub fn for_target(target: &Target) -> Result<Tile, CompileError> {
        let l = &target.profile.limits;
        let candidates = [
            Tile { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
            Tile { bm: 32, bn: 32, bk: 16, tm: 4, tn: 4 },
            Tile { bm: 16, bn: 16, bk: 16, tm: 4, tn: 4 },
            Tile { bm: 8, bn: 8, bk: 8, tm: 4, tn: 4 },
        ];
        candidates.into_iter().find(|t| t.fits(target)).ok_or(CompileError::Limit {
            what: "matmul: workgroup memory for the smallest tile (bytes)".into(),
            value: 512,
            limit: l.max_compute_workgroup_storage_size as u64,
        })
    }
}

/// The `[N, K]` matrix a 2-D right operand reads as its transpose: the only leaf of a fused
/// prologue that is one `[1, 0]` permute and at most a widening cast to f32.
pub fn transposed_rows(target: &Target) -> Option<Value> {
    let fusion = target.fusion.as_ref()?;
    let p = fusion.prologues.get(1)?.as_ref()?;
    let [leaf] = p.leaves.as_slice() else { return None };
    let permutes = p.ops.iter().filter(|o| matches!(&o.op, Op::Permute { perm } if perm == &[1, 0])).count();
    let only_views = p.ops.iter().all(|o| match &o.op {
        Op::Permute { perm } => perm == &[1, 0],
        Op::Cast { to } => *to == DType::F32,
        _ => false,
    });
    (leaf.shape.len() == 2 && leaf.dtype.is_float() && permutes == 1 && only_views).then(|| leaf.clone())
}

/// `[..., m, k] x [..., k, n] -> [..., m, n]` with broadcast batch dimensions.
pub fn matmul(target: &Target, a: &Value, b: &Value, out: &Value) -> Result<Launch, CompileError> {
    let (ra, rb, ro) = (a.shape.len(), b.shape.len(), out.shape.len());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    let rows = transposed_rows(target).filter(|_| rb == 2);
    if let Some(w) = &rows {
        let x_rows = a.numel() / k.max(1);
        let weights = GemvWeights::Dense(w);
        if x_rows <= GEMV_MAX_ROWS && weights.has_chunks() {
            return gemv(target, x_rows, k, a, weights, out);
        }
    }
    let tile = Tile::for_rows(target, m)?;
    let batch_shape = &out.shape[..ro - 2];
    let batch: usize = batch_shape.iter().product();
    let name = format!("matmul_{}_{}x{}", a.dtype.name(), tile.bm, tile.bn);
    for (what, numel) in [("a", a.numel()), ("b", b.numel()), ("c", out.numel())] {
        target.check_numel(&format!("matmul {what}"), numel)?;
    }
    let tiles_m = m.div_ceil(tile.bm as usize);
    let tiles_n = n.div_ceil(tile.bn as usize);
    let groups = (tiles_m * tiles_n * batch) as u64;
    let grid = Grid::linear(groups, &target.profile.limits)?;
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
        w.constant(c, target.check_numel("matmul", v)?);
    }
    w.constant("GROUPS", groups as u32);
    w.constant("GRID_X", grid.grid_x);
    let scaled = |v: &Value, rank: usize, matrix: usize| {
        let mut a = Affine::broadcast(&v.shape[..rank - 2], batch_shape);
        a.strides.iter_mut().for_each(|s| *s *= matrix);
        a
    };
    // B read as rows loads its tile along K (coalesced in the [N, K] matrix).
    w.constant("B_KMAJOR", u32::from(rows.is_some()));
    w.function(&offset_fn("a_batch", batch_shape, &scaled(a, ra, m * k)));
    w.function(&offset_fn("b_batch", batch_shape, &scaled(b, rb, k * n)));
    let ab = w.read(a.dtype, a.storage);
    let bb = w.read(b.dtype, b.storage);
    let cb = w.write(out.dtype, out.storage);
    w.load_fn("load_a", &ab);
    w.load_fn("load_b", &bb);
    if w.has_norm() {
        return Err(CompileError::Unsupported {
            op: "matmul".into(),
            reason: "a fused RMSNorm prologue needs the gemv (the tiled kernel does not scale rows)".into(),
        });
    }
    w.store_fn("store_c", &cb);
    w.workgroup_bytes(tile.padded_workgroup_bytes());
    w.include(PRELUDE);
    w.include(IDS);
    w.include(MATMUL);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}
