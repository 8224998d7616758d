//! Reductions: one workgroup per output element. Each invocation folds a strided share of the
//! reduced elements (found by index math over the reduced axes), then the workgroup combines
//! the partials with subgroup operations where available, else a tree in workgroup memory.

use super::grid::Grid;
use super::index::{Affine, offset_fn, row_major};
use super::writer::PRELUDE;
use super::{KernelWriter, Launch, Scalar, Target, Value};
use crate::CompileError;
use tessera_ir::ReduceKind;

const IDS: &str = include_str!("../wgsl/ids.wgsl");
const IDS_SUBGROUP: &str = include_str!("../wgsl/ids_subgroup.wgsl");
const BLOCK: &str = include_str!("../wgsl/block_reduce.wgsl");
const BLOCK_SUBGROUP: &str = include_str!("../wgsl/block_reduce_subgroup.wgsl");
const BLOCK_ARGMAX: &str = include_str!("../wgsl/block_argmax.wgsl");
const BLOCK_ARGMAX_SUBGROUP: &str = include_str!("../wgsl/block_argmax_subgroup.wgsl");
const REDUCE: &str = include_str!("../wgsl/reduce.wgsl");
const ARGMAX: &str = include_str!("../wgsl/argmax.wgsl");

/// Workgroup size for rows of `len` elements: a power of two, at least 64 (a few subgroups)
/// unless the device allows less, at most the target's size.
pub fn row_workgroup_size(target: &Target, len: usize) -> u32 {
    let cap = target.workgroup_size();
    let want = len.clamp(64, 1 << 16).next_power_of_two() as u32;
    want.min(cap)
}

/// The largest power-of-two workgroup the limits allow (up to 1024).
fn largest_workgroup(target: &Target) -> u32 {
    let l = &target.profile.limits;
    let cap = l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x).min(1024);
    if cap == 0 { 1 } else { 1 << (31 - cap.leading_zeros()) }
}

/// A writer for a one-workgroup-per-row kernel over `rows` rows: constants, prelude and the
/// `Ids` struct of the chosen variant. Returns the writer and the grid.
pub fn row_kernel(
    target: &Target,
    name: String,
    rows: usize,
    len: usize,
) -> Result<(KernelWriter, Grid), CompileError> {
    target.check_numel(&name, len)?;
    row_kernel_sized(target, name, rows, row_workgroup_size(target, len))
}

/// As [`row_kernel`], with `wg` invocations per workgroup.
pub fn row_kernel_sized(
    target: &Target,
    name: String,
    rows: usize,
    wg: u32,
) -> Result<(KernelWriter, Grid), CompileError> {
    let suffix = if target.subgroups { "_sg" } else { "" };
    let rows32 = target.check_numel(&name, rows)?;
    let grid = Grid::linear(rows as u64, &target.profile.limits)?;
    let mut w = KernelWriter::new(format!("{name}{suffix}"), wg).fused(target);
    w.constant("ROWS", rows32);
    w.constant("GRID_X", grid.grid_x);
    w.include(PRELUDE);
    if target.subgroups {
        w.uses_subgroups();
        w.include(IDS_SUBGROUP);
    } else {
        w.include(IDS);
    }
    Ok((w, grid))
}

/// Adds `fn block_NAME(v: T, ids: Ids) -> T`, the workgroup-wide fold with `combine` (a prelude
/// function) and, on the subgroup variant, the matching subgroup builtin.
pub fn block_reduce(
    w: &mut KernelWriter,
    target: &Target,
    name: &str,
    scalar: Scalar,
    combine: &str,
    subgroup_op: &str,
) {
    let template = if target.subgroups { BLOCK_SUBGROUP } else { BLOCK };
    w.include_template(
        template,
        &[("$NAME", name), ("$T", scalar.wgsl()), ("$COMBINE", combine), ("$SUBGROUP", subgroup_op)],
    );
    let wg = w.workgroup_size_x();
    w.workgroup_bytes(4 * wg);
}

/// Row offsets (kept axes) and reduced-element offsets (reduced axes) of a row-major `shape`.
fn split_axes(w: &mut KernelWriter, shape: &[usize], axes: &[usize]) -> (usize, usize) {
    let strides = row_major(shape);
    let (mut kept, mut kept_strides, mut red, mut red_strides) = (vec![], vec![], vec![], vec![]);
    for (d, (&size, &stride)) in shape.iter().zip(&strides).enumerate() {
        if axes.contains(&d) {
            red.push(size);
            red_strides.push(stride);
        } else {
            kept.push(size);
            kept_strides.push(stride);
        }
    }
    w.function(&offset_fn("row_base", &kept, &Affine { offset: 0, strides: kept_strides }));
    w.function(&offset_fn("red_offset", &red, &Affine { offset: 0, strides: red_strides }));
    (kept.iter().product(), red.iter().product())
}

/// Sum, max, min or mean over `axes` (floats accumulate in f32, integers in their own type).
pub fn reduce(
    target: &Target,
    kind: ReduceKind,
    axes: &[usize],
    x: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    let acc = Scalar::of(x.dtype);
    let unsupported = || CompileError::Unsupported {
        op: format!("reduce.{}", kind.name()),
        reason: format!("no reduction on {}", x.dtype),
    };
    let rows: usize = out.numel();
    let rlen: usize = axes.iter().map(|&a| x.shape[a]).product();
    let name = format!("reduce_{}_{}", kind.name(), x.dtype.name());
    let (mut w, grid) = row_kernel(target, name, rows, rlen)?;
    w.alias("Acc", acc);
    split_axes(&mut w, &x.shape, axes);
    w.constant("RLEN", target.check_numel("reduce", rlen)?);
    let xb = w.read(x.dtype, x.storage);
    let ob = w.write(out.dtype, out.storage);
    w.load_fn("load_x", &xb);
    w.store_fn("store_y", &ob);
    let t = acc.wgsl();
    let (identity, combine, subgroup_op) = match (kind, acc) {
        (ReduceKind::Sum | ReduceKind::Mean, Scalar::F32 | Scalar::I32 | Scalar::U32) => {
            (acc.literal(0.0), format!("op_add_{t}"), "subgroupAdd")
        }
        (ReduceKind::Max, Scalar::F32) => ("f32_neg_inf()".into(), format!("op_max_{t}"), "subgroupMax"),
        (ReduceKind::Max, Scalar::I32) => {
            (acc.literal(i32::MIN as f64), format!("op_max_{t}"), "subgroupMax")
        }
        (ReduceKind::Max, Scalar::U32) => (acc.literal(0.0), format!("op_max_{t}"), "subgroupMax"),
        (ReduceKind::Min, Scalar::F32) => ("f32_inf()".into(), format!("op_min_{t}"), "subgroupMin"),
        (ReduceKind::Min, Scalar::I32) => {
            (acc.literal(i32::MAX as f64), format!("op_min_{t}"), "subgroupMin")
        }
        (ReduceKind::Min, Scalar::U32) => {
            (acc.literal(u32::MAX as f64), format!("op_min_{t}"), "subgroupMin")
        }
        (ReduceKind::Sum | ReduceKind::Mean | ReduceKind::Max | ReduceKind::Min, Scalar::Bool) => {
            return Err(unsupported());
        }
    };
    let finish = match kind {
        ReduceKind::Mean if rlen == 0 => "f32_nan()".to_string(),
        ReduceKind::Mean => "a / f32(RLEN)".to_string(),
        ReduceKind::Sum | ReduceKind::Max | ReduceKind::Min => "a".to_string(),
    };
    w.function(&format!("fn identity() -> Acc {{ return {identity}; }}"));
    w.function(&format!("fn combine(a: Acc, b: Acc) -> Acc {{ return {combine}(a, b); }}"));
    w.function(&format!("fn finish(a: Acc) -> Acc {{ return {finish}; }}"));
    block_reduce(&mut w, target, "combine", acc, &combine, subgroup_op);
    w.include(REDUCE);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}

/// Index (u32) of the first maximum along `axis`; NaN counts as the largest value.
pub fn argmax(target: &Target, axis: usize, x: &Value, out: &Value) -> Result<Launch, CompileError> {
    let scalar = Scalar::of(x.dtype);
    let rows = out.numel();
    let rlen = x.shape[axis];
    let name = format!("argmax_{}", x.dtype.name());
    target.check_numel(&name, rlen)?;
    // A few long rows (greedy sampling over a vocabulary) get the largest workgroup the device
    // allows: one workgroup per row is all the parallelism there is (66 us over 128k logits at
    // 256 invocations on the H200).
    let wg = match rows {
        0..=8 => largest_workgroup(target).min(rlen.clamp(64, 1 << 16).next_power_of_two() as u32),
        _ => row_workgroup_size(target, rlen),
    };
    let (mut w, grid) = row_kernel_sized(target, name, rows, wg)?;
    split_axes(&mut w, &x.shape, &[axis]);
    w.constant("RLEN", target.check_numel("argmax", rlen)?);
    let xb = w.read(x.dtype, x.storage);
    let ob = w.write(out.dtype, out.storage);
    w.load_fn("load_x", &xb);
    w.store_fn("store_y", &ob);
    let key = match scalar {
        Scalar::F32 | Scalar::I32 | Scalar::U32 => format!("argmax_key_{}", scalar.wgsl()),
        Scalar::Bool => {
            return Err(CompileError::Unsupported { op: "argmax".into(), reason: "bool operand".into() });
        }
    };
    w.function(&format!("fn load_key(i: u32) -> u32 {{ return {key}(load_x(i)); }}"));
    let wg = w.workgroup_size_x();
    w.workgroup_bytes(8 * wg);
    w.include(if target.subgroups { BLOCK_ARGMAX_SUBGROUP } else { BLOCK_ARGMAX });
    w.include(ARGMAX);
    Ok(Launch { kernel: w.finish(), workgroups: grid.workgroups })
}
