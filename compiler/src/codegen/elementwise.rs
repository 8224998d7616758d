//! One-invocation-per-element kernels: unary, binary, where, cast, constant fill. Operands are
//! read through [`Affine`] maps (NumPy broadcasting is a stride of 0) and the math is a call into
//! the prelude, so this file only writes glue.

use super::grid::Grid;
use super::index::{Affine, coalesce, coords};
use super::{Launch, Scalar, Target, Value};
use crate::CompileError;
use tessera_ir::{BinaryOp, UnaryOp};

/// How element values travel through a per-element kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Loaded as the compute type, stored with conversion (f16 rounding, bool as 0/1).
    Compute,
    /// Copied as stored (data movement between buffers of one storage type).
    Raw,
}

/// A kernel with one invocation per element of `space`: operand `i` is loaded as `x{i}` at its
/// access, `expr` combines the loads, and the result is stored into `out` at `out_access`.
pub fn per_element(
    target: &Target,
    name: String,
    space: &[usize],
    reads: &[(&Value, Affine)],
    out: (&Value, Affine),
    mode: Mode,
    expr: impl FnOnce(&[String]) -> String,
) -> Result<Launch, CompileError> {
    let wg = target.workgroup_size();
    let n = target.check_numel(&name, space.iter().product())?;
    let grid = Grid::linear(n.div_ceil(wg) as u64, &target.profile.limits)?;
    let mut w = super::KernelWriter::new(name, wg).fused(target);
    let bindings: Vec<_> = reads.iter().map(|(v, _)| w.read(v.dtype, v.storage)).collect();
    let out_binding = w.write(out.0.dtype, out.0.storage);

    let mut accesses: Vec<Affine> = reads.iter().map(|(_, a)| a.clone()).collect();
    accesses.push(out.1);
    let dims = {
        let mut refs: Vec<&mut Affine> = accesses.iter_mut().collect();
        coalesce(space, &mut refs, false)
    };
    let mut body = Vec::new();
    let names = if accesses.iter().all(|a| a.is_identity(&dims)) {
        Vec::new()
    } else {
        let (names, lines) = coords("idx", &dims, "c");
        body.extend(lines);
        names
    };
    let at = |a: &Affine| if a.is_identity(&dims) { "idx".to_string() } else { a.expr(&names) };
    let mut loads = Vec::new();
    for (i, (b, a)) in bindings.iter().zip(&accesses).enumerate() {
        let load = match mode {
            Mode::Compute => b.load(&at(a)),
            Mode::Raw => b.load_raw(&at(a)),
        };
        body.push(format!("let x{i} = {load};"));
        loads.push(format!("x{i}"));
    }
    body.push(format!("let y = {};", expr(&loads)));
    let out_at = at(&accesses[accesses.len() - 1]);
    body.push(match mode {
        Mode::Compute => out_binding.store(&out_at, "y"),
        Mode::Raw => out_binding.store_raw(&out_at, "y"),
    });
    Ok(Launch { kernel: w.finish_per_element(n, grid.grid_x, &body), workgroups: grid.workgroups })
}

/// `op(x)` elementwise.
pub fn unary(target: &Target, op: UnaryOp, x: &Value, out: &Value) -> Result<Launch, CompileError> {
    let name = format!("unary_{}_{}", op.name(), x.dtype.name());
    let fun = format!("op_{}_{}", op.name(), Scalar::of(x.dtype).wgsl());
    let reads = [(x, Affine::contiguous(&x.shape))];
    per_element(target, name, &out.shape, &reads, (out, Affine::contiguous(&out.shape)), Mode::Compute, |v| {
        format!("{fun}({})", v[0])
    })
}

/// `op(a, b)` elementwise with broadcasting.
pub fn binary(
    target: &Target,
    op: BinaryOp,
    a: &Value,
    b: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    let name = format!("binary_{}_{}", op.name(), a.dtype.name());
    let fun = format!("op_{}_{}", op.name(), Scalar::of(a.dtype).wgsl());
    let reads = [(a, Affine::broadcast(&a.shape, &out.shape)), (b, Affine::broadcast(&b.shape, &out.shape))];
    per_element(target, name, &out.shape, &reads, (out, Affine::contiguous(&out.shape)), Mode::Compute, |v| {
        format!("{fun}({}, {})", v[0], v[1])
    })
}

/// `where(cond, a, b)` with broadcasting.
pub fn select(
    target: &Target,
    cond: &Value,
    a: &Value,
    b: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    let name = format!("where_{}", out.dtype.name());
    let reads = [
        (cond, Affine::broadcast(&cond.shape, &out.shape)),
        (a, Affine::broadcast(&a.shape, &out.shape)),
        (b, Affine::broadcast(&b.shape, &out.shape)),
    ];
    per_element(target, name, &out.shape, &reads, (out, Affine::contiguous(&out.shape)), Mode::Compute, |v| {
        format!("select({}, {}, {})", v[2], v[1], v[0])
    })
}

/// Conversion to `out.dtype`: floats truncate and saturate into integers, integers wrap into
/// each other, anything to bool is `x != 0`, bool to numbers is 0/1.
pub fn cast(target: &Target, x: &Value, out: &Value) -> Result<Launch, CompileError> {
    let name = format!("cast_{}_{}", x.dtype.name(), out.dtype.name());
    let reads = [(x, Affine::contiguous(&x.shape))];
    let (from, to) = (Scalar::of(x.dtype), Scalar::of(out.dtype));
    per_element(target, name, &out.shape, &reads, (out, Affine::contiguous(&out.shape)), Mode::Compute, |v| {
        convert(from, to, &v[0])
    })
}

/// WGSL expression converting `x` between compute types.
pub fn convert(from: Scalar, to: Scalar, x: &str) -> String {
    match (from, to) {
        (Scalar::F32, Scalar::F32) | (Scalar::I32, Scalar::I32) | (Scalar::U32, Scalar::U32) => x.into(),
        (Scalar::Bool, Scalar::Bool) => x.into(),
        (Scalar::F32, Scalar::I32) => format!("f32_to_i32({x})"),
        (Scalar::F32, Scalar::U32) => format!("f32_to_u32({x})"),
        (Scalar::F32, Scalar::Bool) => format!("({x} != 0.0)"),
        (Scalar::I32, Scalar::F32) | (Scalar::U32, Scalar::F32) => format!("f32({x})"),
        (Scalar::I32, Scalar::U32) => format!("bitcast<u32>({x})"),
        (Scalar::U32, Scalar::I32) => format!("bitcast<i32>({x})"),
        (Scalar::I32, Scalar::Bool) => format!("({x} != 0i)"),
        (Scalar::U32, Scalar::Bool) => format!("({x} != 0u)"),
        (Scalar::Bool, Scalar::F32) => format!("select(0.0, 1.0, {x})"),
        (Scalar::Bool, Scalar::I32) => format!("select(0i, 1i, {x})"),
        (Scalar::Bool, Scalar::U32) => format!("select(0u, 1u, {x})"),
    }
}

/// A constant tensor: every element is `value` rounded to the dtype.
pub fn fill(target: &Target, value: f64, out: &Value) -> Result<Launch, CompileError> {
    let name = format!("fill_{}", out.dtype.name());
    let literal = Scalar::of(out.dtype).literal(out.dtype.round(value));
    per_element(target, name, &out.shape, &[], (out, Affine::contiguous(&out.shape)), Mode::Compute, |_| {
        literal
    })
}

/// `iota`: each element's index along `axis`, converted to `out.dtype`.
pub fn iota(target: &Target, axis: usize, out: &Value) -> Result<Launch, CompileError> {
    let name = format!("iota_{}", out.dtype.name());
    let inner: usize = out.shape[axis + 1..].iter().product();
    let index = format!("(idx / {}u) % {}u", inner.max(1), out.shape[axis].max(1));
    let value = convert(Scalar::U32, Scalar::of(out.dtype), &index);
    per_element(target, name, &out.shape, &[], (out, Affine::contiguous(&out.shape)), Mode::Compute, |_| {
        value
    })
}
