//! Index math: an [`Affine`] map takes the coordinates of an iteration space to an element
//! index of one buffer. Broadcasting (stride 0), permutation, slicing and concatenation are all
//! affine; adjacent dimensions that every access walks contiguously are merged before emitting.

use std::fmt::Write;

/// `offset + sum(coord[d] * strides[d])`: where element `coord` of an iteration space lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affine {
    /// Element index of coordinate zero.
    pub offset: usize,
    /// Elements per unit step of each iteration dimension.
    pub strides: Vec<usize>,
}

/// Row-major strides of `shape`.
pub fn row_major(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

impl Affine {
    /// A row-major buffer of `shape` walked in its own order.
    pub fn contiguous(shape: &[usize]) -> Affine {
        Affine { offset: 0, strides: row_major(shape) }
    }

    /// A row-major `operand` read at the coordinates of `space` under NumPy broadcasting
    /// (right-aligned; size-1 dimensions get stride 0).
    pub fn broadcast(operand: &[usize], space: &[usize]) -> Affine {
        let own = row_major(operand);
        let lead = space.len() - operand.len().min(space.len());
        let strides = (0..space.len())
            .map(|d| match d.checked_sub(lead) {
                Some(i) if operand[i] != 1 => own[i],
                _ => 0,
            })
            .collect();
        Affine { offset: 0, strides }
    }

    /// A row-major `operand` whose axis `perm[i]` becomes iteration dimension `i`.
    pub fn permuted(operand: &[usize], perm: &[usize]) -> Affine {
        let own = row_major(operand);
        Affine { offset: 0, strides: perm.iter().map(|&p| own[p]).collect() }
    }

    /// Elements `start + i * step` of each axis of a row-major `operand`.
    pub fn sliced(operand: &[usize], ranges: &[tessera_ir::SliceRange]) -> Affine {
        let own = row_major(operand);
        let offset = ranges.iter().zip(&own).map(|(r, s)| r.start * s).sum();
        let strides = ranges.iter().zip(&own).map(|(r, s)| r.step * s).collect();
        Affine { offset, strides }
    }

    /// True when this is the row-major walk of `space` itself (index == flat position).
    pub fn is_identity(&self, space: &[usize]) -> bool {
        self.offset == 0 && (space.iter().product::<usize>() <= 1 || self.strides == row_major(space))
    }

    /// WGSL expression of the element index, given a WGSL expression for each coordinate.
    pub fn expr(&self, coords: &[String]) -> String {
        let mut terms = Vec::new();
        if self.offset != 0 {
            terms.push(format!("{}u", self.offset));
        }
        for (c, &s) in coords.iter().zip(&self.strides) {
            match s {
                0 => {}
                1 => terms.push(c.clone()),
                s => terms.push(format!("{c} * {s}u")),
            }
        }
        if terms.is_empty() { "0u".into() } else { terms.join(" + ") }
    }
}

/// Drops size-1 dimensions and merges neighbours that every access walks contiguously
/// (`stride[d] == stride[d + 1] * dims[d + 1]`); rewrites the accesses in place. With
/// `keep_last`, the last dimension is kept apart (its coordinate has its own meaning).
pub fn coalesce(dims: &[usize], accesses: &mut [&mut Affine], keep_last: bool) -> Vec<usize> {
    let n = dims.len();
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); accesses.len()];
    for (d, &size) in dims.iter().enumerate() {
        let last = keep_last && d + 1 == n;
        if size == 1 && !last {
            continue;
        }
        let mergeable = !last
            && !out_dims.is_empty()
            && accesses
                .iter()
                .zip(&out_strides)
                .all(|(a, s)| s.last().is_some_and(|&prev| prev == a.strides[d] * size));
        if mergeable {
            if let Some(merged) = out_dims.last_mut() {
                *merged *= size;
            }
            for (a, s) in accesses.iter().zip(out_strides.iter_mut()) {
                if let Some(prev) = s.last_mut() {
                    *prev = a.strides[d];
                }
            }
        } else {
            out_dims.push(size);
            for (a, s) in accesses.iter().zip(out_strides.iter_mut()) {
                s.push(a.strides[d]);
            }
        }
    }
    for (a, s) in accesses.iter_mut().zip(out_strides) {
        a.strides = s;
    }
    out_dims
}

/// WGSL lines binding `{prefix}0..` to the coordinates of flat index `flat` over `dims`
/// (row-major; `flat` is assumed in range, so the first coordinate needs no modulo).
pub fn coords(flat: &str, dims: &[usize], prefix: &str) -> (Vec<String>, Vec<String>) {
    let names: Vec<String> = (0..dims.len()).map(|d| format!("{prefix}{d}")).collect();
    let mut lines = Vec::new();
    let mut rest = flat.to_string();
    for d in (0..dims.len()).rev() {
        if d == 0 {
            lines.push(format!("let {} = {rest};", names[d]));
        } else {
            lines.push(format!("let {} = {rest} % {}u;", names[d], dims[d]));
            let next = format!("{prefix}q{d}");
            lines.push(format!("let {next} = {rest} / {}u;", dims[d]));
            rest = next;
        }
    }
    (names, lines)
}

/// `fn NAME(flat: u32) -> u32`: the element index of position `flat` of `dims` under `access`.
pub fn offset_fn(name: &str, dims: &[usize], access: &Affine) -> String {
    let mut access = access.clone();
    let dims = coalesce(dims, &mut [&mut access], false);
    let (names, lines) = coords("flat", &dims, "c");
    let mut text = format!("fn {name}(flat: u32) -> u32 {{\n");
    for l in lines {
        let _ = writeln!(text, "    {l}");
    }
    let _ = writeln!(text, "    return {};\n}}", access.expr(&names));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_and_coalesce() {
        let mut a = Affine::broadcast(&[3, 1], &[2, 3, 4]);
        assert_eq!(a.strides, vec![0, 1, 0]);
        let mut out = Affine::contiguous(&[2, 3, 4]);
        let dims = coalesce(&[2, 3, 4], &mut [&mut a, &mut out], false);
        assert_eq!(dims, vec![2, 3, 4]);
        let mut c = Affine::contiguous(&[2, 3, 4]);
        assert_eq!(coalesce(&[2, 3, 4], &mut [&mut c], false), vec![24]);
        assert_eq!(c.expr(&["i".into()]), "i");
        let mut p = Affine::permuted(&[2, 3, 4], &[0, 2, 1]);
        assert_eq!(p.strides, vec![12, 1, 4]);
        assert_eq!(coalesce(&[2, 4, 3], &mut [&mut p], false), vec![2, 4, 3]);
    }

    #[test]
    fn coords_unravel() {
        let (names, lines) = coords("idx", &[5, 7], "c");
        assert_eq!(names, vec!["c0", "c1"]);
        assert_eq!(lines, vec!["let c1 = idx % 7u;", "let cq1 = idx / 7u;", "let c0 = cq1;"]);
    }
}
