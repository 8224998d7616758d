//! Rotary embedding: one invocation per element of `x`; each reads its partner in the pair and
//! the pair's cos/sin (broadcast to `x.shape[..-1] ++ [d/2]`).

use super::grid::Grid;
use super::index::{Affine, coalesce, coords};
use super::{KernelWriter, Launch, Target, Value};
use crate::CompileError;
use tessera_ir::RopeStyle;

/// `rope(x, cos, sin)`: `(x1 c - x2 s, x2 c + x1 s)` for each rotated pair `(x1, x2)`.
pub fn rope(
    target: &Target,
    style: RopeStyle,
    x: &Value,
    cos: &Value,
    sin: &Value,
    out: &Value,
) -> Result<Launch, CompileError> {
    let wg = target.workgroup_size();
    let name = format!("rope_{}_{}", style.name(), x.dtype.name());
    let n = target.check_numel(&name, x.numel())?;
    let grid = Grid::linear(n.div_ceil(wg) as u64, &target.profile.limits)?;
    let d = x.shape.last().copied().unwrap_or(0);
    let mut half = x.shape.clone();
    if let Some(last) = half.last_mut() {
        *last = d / 2;
    }
    // Iterate over x's shape; cos/sin strides are those of the half shape, the last coordinate
    // of which is the pair index `p` rather than the element's own position.
    let mut cos_at = Affine::broadcast(&cos.shape, &half);
    let mut sin_at = Affine::broadcast(&sin.shape, &half);
    let dims = coalesce(&x.shape, &mut [&mut cos_at, &mut sin_at], true);
    let mut w = KernelWriter::new(name, wg).fused(target);
    let xb = w.read(x.dtype, x.storage);
    let cb = w.read(cos.dtype, cos.storage);
    let sb = w.read(sin.dtype, sin.storage);
    let o = w.write(out.dtype, out.storage);
    w.constant("H", (d / 2) as u32);
    let (mut names, mut body) = coords("idx", &dims, "c");
    let last = names.len() - 1;
    body.extend(match style {
        RopeStyle::HalfSplit => [
            format!("let first = {} < H;", names[last]),
            format!("let p = select({} - H, {}, first);", names[last], names[last]),
            "let partner = select(idx - H, idx + H, first);".to_string(),
        ],
        RopeStyle::Interleaved => [
            format!("let first = ({} & 1u) == 0u;", names[last]),
            format!("let p = {} / 2u;", names[last]),
            "let partner = select(idx - 1u, idx + 1u, first);".to_string(),
        ],
    });
    names[last] = "p".into();
    body.extend([
        format!("let v = {};", xb.load("idx")),
        format!("let other = {};", xb.load("partner")),
        format!("let c = {};", cb.load(&cos_at.expr(&names))),
        format!("let s = {};", sb.load(&sin_at.expr(&names))),
        "let y = select(v * c + other * s, v * c - other * s, first);".to_string(),
        o.store("idx", "y"),
    ]);
    Ok(Launch { kernel: w.finish_per_element(n, grid.grid_x, &body), workgroups: grid.workgroups })
}
