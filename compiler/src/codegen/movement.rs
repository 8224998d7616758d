//! Data movement as strided copies: broadcast, permute, slice, output copies, concat (grouped to
//! respect the binding limit), gather and write_slice. Values are copied as stored, never converted.

use super::elementwise::{Mode, per_element};
use super::grid::Grid;
use super::index::{Affine, coords, row_major};
use super::{KernelWriter, Launch, Target, Value};
use crate::CompileError;
use tessera_ir::{DType, SliceRange};

/// A copy of `x` laid out as `out`, reading `x` through `access` (iteration space = `out.shape`).
pub fn strided_copy(
    target: &Target,
    kind: &str,
    x: &Value,
    access: Affine,
    out: &Value,
) -> Result<Launch, CompileError> {
    let name = format!("{kind}_{}", out.dtype.name());
    per_element(
        target,
        name,
        &out.shape,
        &[(x, access)],
        (out, Affine::contiguous(&out.shape)),
        Mode::Raw,
        |v| v[0].clone(),
    )
}

/// NumPy broadcast of `x` to `out.shape`.
pub fn broadcast(target: &Target, x: &Value, out: &Value) -> Result<Launch, CompileError> {
    strided_copy(target, "broadcast", x, Affine::broadcast(&x.shape, &out.shape), out)
}

/// Axis permutation.
pub fn permute(target: &Target, x: &Value, perm: &[usize], out: &Value) -> Result<Launch, CompileError> {
    strided_copy(target, "permute", x, Affine::permuted(&x.shape, perm), out)
}

/// Strided slice.
pub fn slice(target: &Target, x: &Value, ranges: &[SliceRange], out: &Value) -> Result<Launch, CompileError> {
    strided_copy(target, "slice", x, Affine::sliced(&x.shape, ranges), out)
}

/// Plain copy (distinct output buffers, outputs that are inputs, params or reshapes).
pub fn copy(target: &Target, x: &Value, out: &Value) -> Result<Launch, CompileError> {
    strided_copy(target, "copy", x, Affine::contiguous(&x.shape), out)
}

/// Concatenation along `axis`, split into kernels of at most `max_bindings - 1` operands, each
/// writing its slice of the output. Returns each launch with the operand indices it binds.
pub fn concat(
    target: &Target,
    parts: &[&Value],
    axis: usize,
    out: &Value,
) -> Result<Vec<(Vec<usize>, Launch)>, CompileError> {
    let max_bindings = target.profile.limits.max_storage_buffers_per_shader_stage as usize;
    if max_bindings < 2 {
        return Err(CompileError::Limit {
            what: "concat: storage bindings per kernel".into(),
            value: 2,
            limit: max_bindings as u64,
        });
    }
    // Empty parts (size 0 along `axis`, since the output is not empty) need no kernel.
    let nonempty: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].numel() > 0).collect();
    let mut launches = Vec::new();
    for group in nonempty.chunks(max_bindings - 1) {
        let start: usize = parts[..group[0]].iter().map(|v| v.shape[axis]).sum();
        let members: Vec<&Value> = group.iter().map(|&i| parts[i]).collect();
        launches.push((group.to_vec(), concat_group(target, &members, axis, start, out)?));
    }
    Ok(launches)
}

/// One kernel writing `parts` (consecutive along `axis`) into the output from position `start`.
fn concat_group(
    target: &Target,
    parts: &[&Value],
    axis: usize,
    start: usize,
    out: &Value,
) -> Result<Launch, CompileError> {
    let mut region = out.shape.clone();
    region[axis] = parts.iter().map(|v| v.shape[axis]).sum();
    let wg = target.workgroup_size();
    let name = format!("concat{}_{}", parts.len(), out.dtype.name());
    let n = target.check_numel(&name, region.iter().product())?;
    let grid = Grid::linear(n.div_ceil(wg) as u64, &target.profile.limits)?;
    let mut w = KernelWriter::new(name, wg).fused(target);
    let inputs: Vec<_> = parts.iter().map(|v| w.read(v.dtype, v.storage)).collect();
    let o = w.write(out.dtype, out.storage);
    let out_strides = row_major(&out.shape);
    let (names, mut body) = coords("idx", &region, "c");
    let out_at = Affine { offset: start * out_strides[axis], strides: out_strides }.expr(&names);
    body.push(format!("let at = {out_at};"));
    let mut lo = 0;
    for (i, (b, v)) in inputs.iter().zip(parts).enumerate() {
        let hi = lo + v.shape[axis];
        let mut local = names.clone();
        local[axis] = format!("({} - {lo}u)", names[axis]);
        let src = b.load_raw(&Affine::contiguous(&v.shape).expr(&local));
        let guard = if i + 1 == parts.len() {
            "} else {".to_string()
        } else if i == 0 {
            format!("if ({} < {hi}u) {{", names[axis])
        } else {
            format!("}} else if ({} < {hi}u) {{", names[axis])
        };
        if parts.len() > 1 {
            body.push(guard);
        }
        body.push(format!("    {}", o.store_raw("at", &src)));
        lo = hi;
    }
    if parts.len() > 1 {
        body.push("}".into());
    }
    Ok(Launch { kernel: w.finish_per_element(n, grid.grid_x, &body), workgroups: grid.workgroups })
}

/// `gather(table, indices)`: row `clamp(index, 0, rows - 1)` of the table for each index.
pub fn gather(target: &Target, table: &Value, indices: &Value, out: &Value) -> Result<Launch, CompileError> {
    let wg = target.workgroup_size();
    let name = format!("gather_{}_{}", table.dtype.name(), indices.dtype.name());
    let n = target.check_numel(&name, out.numel())?;
    let grid = Grid::linear(n.div_ceil(wg) as u64, &target.profile.limits)?;
    let rows = table.shape[0];
    let row_len: usize = table.shape[1..].iter().product();
    let mut w = KernelWriter::new(name, wg).fused(target);
    let t = w.read(table.dtype, table.storage);
    let i = w.read(indices.dtype, indices.storage);
    let o = w.write(out.dtype, out.storage);
    let last = rows.saturating_sub(1);
    let clamped = match indices.dtype {
        DType::I32 => format!("u32(clamp({}, 0i, {last}i))", i.load_raw("idx / ROW")),
        DType::U32 | DType::F32 | DType::F16 | DType::Bool => {
            format!("min({}, {last}u)", i.load_raw("idx / ROW"))
        }
    };
    w.constant("ROW", row_len.max(1) as u32);
    let at = "row * ROW + idx % ROW";
    // A fused epilogue (a cast of the rows) takes the compute type; a plain gather copies bits.
    let store = if o.call { o.store("idx", &t.load(at)) } else { o.store_raw("idx", &t.load_raw(at)) };
    let body = vec![format!("let row = {clamped};"), store];
    Ok(Launch { kernel: w.finish_per_element(n, grid.grid_x, &body), workgroups: grid.workgroups })
}

/// `write_slice(dst, src, offset)` into a new buffer: one invocation per element of `out`, taking
/// `src` on rows `offset[0] ..` along `axis` (those that fit) and `dst` elsewhere.
pub fn write_slice(
    target: &Target,
    axis: usize,
    dst: &Value,
    src: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    let wg = target.workgroup_size();
    let name = format!("write_slice_{}", out.dtype.name());
    let n = target.check_numel(&name, out.numel())?;
    let grid = Grid::linear(n.div_ceil(wg) as u64, &target.profile.limits)?;
    let mut w = KernelWriter::new(name, wg).fused(target);
    let d = w.read(dst.dtype, dst.storage);
    let s = w.read(src.dtype, src.storage);
    let offset = w.read(DType::U32, super::Storage::U32);
    let o = w.write(out.dtype, out.storage);
    slice_constants(&mut w, axis, &dst.shape, src.shape[axis]);
    let mut body = vec![
        "let r = idx % INNER;".to_string(),
        "let pos = (idx / INNER) % ROWS;".to_string(),
        "let outer = idx / (INNER * ROWS);".to_string(),
        format!("let start = {};", offset.load_raw("0")),
        "if (pos >= start && pos - start < SRC_ROWS) {".to_string(),
    ];
    body.push(format!(
        "    {}",
        o.store_raw("idx", &s.load_raw("(outer * SRC_ROWS + pos - start) * INNER + r"))
    ));
    body.push("} else {".into());
    body.push(format!("    {}", o.store_raw("idx", &d.load_raw("idx"))));
    body.push("}".into());
    Ok(Launch { kernel: w.finish_per_element(n, grid.grid_x, &body), workgroups: grid.workgroups })
}

/// `write_slice` into `out`'s own buffer (a state updated in place): one invocation per element
/// of `src`, rows past the end of `out` dropped. Binds `src`, `offset`, then `out`.
pub fn write_slice_in_place(
    target: &Target,
    axis: usize,
    src: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    let wg = target.workgroup_size();
    let name = format!("write_slice_in_place_{}", out.dtype.name());
    let n = target.check_numel(&name, src.numel())?;
    target.check_numel(&name, out.numel())?;
    let grid = Grid::linear(n.div_ceil(wg) as u64, &target.profile.limits)?;
    let mut w = KernelWriter::new(name, wg).fused(target);
    let s = w.read(src.dtype, src.storage);
    let offset = w.read(DType::U32, super::Storage::U32);
    let o = w.write(out.dtype, out.storage);
    slice_constants(&mut w, axis, &out.shape, src.shape[axis]);
    // `a < ROWS - start` rather than `start + a < ROWS`: the sum may wrap for a huge offset.
    let body = vec![
        "let r = idx % INNER;".to_string(),
        "let a = (idx / INNER) % SRC_ROWS;".to_string(),
        "let outer = idx / (INNER * SRC_ROWS);".to_string(),
        format!("let start = {};", offset.load_raw("0")),
        "if (start < ROWS && a < ROWS - start) {".to_string(),
        format!("    {}", o.store_raw("(outer * ROWS + start + a) * INNER + r", &s.load_raw("idx"))),
        "}".to_string(),
    ];
    Ok(Launch { kernel: w.finish_per_element(n, grid.grid_x, &body), workgroups: grid.workgroups })
}

/// `INNER` (elements per row along `axis`), `ROWS` (rows of `dst`) and `SRC_ROWS` (may be 0).
fn slice_constants(w: &mut KernelWriter, axis: usize, dst: &[usize], src_rows: usize) {
    let inner: usize = dst[axis + 1..].iter().product();
    w.constant("INNER", inner.max(1) as u32);
    w.constant("ROWS", dst[axis].max(1) as u32);
    w.constant("SRC_ROWS", src_rows as u32);
}
