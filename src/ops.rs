//! Array operations as methods, with NumPy broadcasting and negative axes. Each returns a new
//! lazy array or an error naming the op and the shapes.

use crate::array::Array;
use crate::error::{Result, invalid};
use tessera_ir::{BinaryOp, DType, Op, ReduceKind, RopeStyle, Shape, SliceRange, UnaryOp, float};

macro_rules! unary_methods {
    ($($name:ident => $op:ident, $doc:literal;)*) => {
        impl Array {
            $(
                #[doc = $doc]
                pub fn $name(&self) -> Result<Array> {
                    Array::apply(Op::Unary(UnaryOp::$op), &[self])
                }
            )*
        }
    };
}

unary_methods! {
    neg => Neg, "Elementwise `-x`.";
    exp => Exp, "Elementwise `e^x`.";
    log => Log, "Elementwise natural log.";
    sqrt => Sqrt, "Elementwise square root.";
    rsqrt => Rsqrt, "Elementwise `1 / sqrt(x)`.";
    sin => Sin, "Elementwise sine.";
    cos => Cos, "Elementwise cosine.";
    tanh => Tanh, "Elementwise hyperbolic tangent.";
    sigmoid => Sigmoid, "Elementwise `1 / (1 + e^-x)`.";
    silu => Silu, "Elementwise `x * sigmoid(x)`.";
    gelu => Gelu, "Elementwise exact (erf) GELU.";
    gelu_tanh => GeluTanh, "Elementwise tanh-approximated GELU.";
    relu => Relu, "Elementwise `max(x, 0)`.";
    abs => Abs, "Elementwise `|x|`.";
    recip => Recip, "Elementwise `1 / x`.";
}

macro_rules! binary_methods {
    ($($name:ident => $op:ident, $doc:literal;)*) => {
        impl Array {
            $(
                #[doc = $doc]
                pub fn $name(&self, other: &Array) -> Result<Array> {
                    self.binary(BinaryOp::$op, other)
                }
            )*
        }
    };
}

binary_methods! {
    add => Add, "Elementwise `a + b` with broadcasting.";
    sub => Sub, "Elementwise `a - b` with broadcasting.";
    mul => Mul, "Elementwise `a * b` with broadcasting.";
    div => Div, "Elementwise `a / b` with broadcasting (integers truncate).";
    maximum => Max, "Elementwise maximum with broadcasting.";
    minimum => Min, "Elementwise minimum with broadcasting.";
    pow => Pow, "Elementwise `a ^ b` with broadcasting (floats).";
    equal => Eq, "Elementwise `a == b` (bool).";
    not_equal => Ne, "Elementwise `a != b` (bool).";
    less => Lt, "Elementwise `a < b` (bool).";
    less_equal => Le, "Elementwise `a <= b` (bool).";
    greater => Gt, "Elementwise `a > b` (bool).";
    greater_equal => Ge, "Elementwise `a >= b` (bool).";
}

impl Array {
    fn binary(&self, op: BinaryOp, other: &Array) -> Result<Array> {
        let (a, b) = promote_weak(self, other)?;
        Array::apply(Op::Binary(op), &[&a, &b])
    }

    /// `where(self, a, b)`: picks `a` where `self` is true, else `b` (broadcasting all three).
    pub fn where_(&self, a: &Array, b: &Array) -> Result<Array> {
        let (a, b) = promote_weak(a, b)?;
        Array::apply(Op::Where, &[self, &a, &b])
    }

    /// Converts elements to `dtype`.
    pub fn astype(&self, dtype: DType) -> Result<Array> {
        Array::apply(Op::Cast { to: dtype }, &[self])
    }

    /// Sum over `axes` (negative allowed; empty means every axis).
    pub fn sum(&self, axes: &[isize], keepdims: bool) -> Result<Array> {
        self.reduce(ReduceKind::Sum, axes, keepdims)
    }

    /// Maximum over `axes` (empty means every axis).
    pub fn max(&self, axes: &[isize], keepdims: bool) -> Result<Array> {
        self.reduce(ReduceKind::Max, axes, keepdims)
    }

    /// Minimum over `axes` (empty means every axis).
    pub fn min(&self, axes: &[isize], keepdims: bool) -> Result<Array> {
        self.reduce(ReduceKind::Min, axes, keepdims)
    }

    /// Mean over `axes` (empty means every axis).
    pub fn mean(&self, axes: &[isize], keepdims: bool) -> Result<Array> {
        self.reduce(ReduceKind::Mean, axes, keepdims)
    }

    fn reduce(&self, kind: ReduceKind, axes: &[isize], keepdims: bool) -> Result<Array> {
        let axes = if axes.is_empty() {
            (0..self.ndim()).collect()
        } else {
            let mut v = axes.iter().map(|&a| self.axis(kind.name(), a)).collect::<Result<Vec<_>>>()?;
            v.sort_unstable();
            if v.windows(2).any(|w| w[0] == w[1]) {
                return Err(invalid(
                    "reduce",
                    format!("axes {axes:?} repeat an axis of shape {:?}", self.shape()),
                ));
            }
            v
        };
        Array::apply(Op::Reduce { kind, axes, keepdims }, &[self])
    }

    /// Index of the first maximum along `axis`, as u32.
    pub fn argmax(&self, axis: isize, keepdims: bool) -> Result<Array> {
        let axis = self.axis("argmax", axis)?;
        Array::apply(Op::ArgMax { axis, keepdims }, &[self])
    }

    /// Matrix product with NumPy semantics: batch dims broadcast; 1-D operands are promoted
    /// to a row (left) or a column (right) and the added axis is removed again.
    pub fn matmul(&self, other: &Array) -> Result<Array> {
        if self.ndim() == 0 || other.ndim() == 0 {
            return Err(invalid(
                "matmul",
                format!("operands must have rank >= 1, got {:?} and {:?}", self.shape(), other.shape()),
            ));
        }
        let a = if self.ndim() == 1 { self.reshape_exact(&[1, self.shape()[0]])? } else { self.clone() };
        let b = if other.ndim() == 1 { other.reshape_exact(&[other.shape()[0], 1])? } else { other.clone() };
        let out = Array::apply(Op::MatMul, &[&a, &b])?;
        let mut dims = out.shape().to_vec();
        if other.ndim() == 1 {
            dims.pop();
        }
        if self.ndim() == 1 {
            let n = dims.len();
            dims.remove(n - if other.ndim() == 1 { 1 } else { 2 });
        }
        if dims == out.shape() { Ok(out) } else { out.reshape_exact(&dims) }
    }

    /// Softmax along `axis`.
    pub fn softmax(&self, axis: isize) -> Result<Array> {
        let axis = self.axis("softmax", axis)?;
        Array::apply(Op::Softmax { axis }, &[self])
    }

    /// RMS normalization over the last axis, scaled by `weight`.
    pub fn rms_norm(&self, weight: &Array, eps: f64) -> Result<Array> {
        let eps = float(eps).ok_or_else(|| invalid("rms_norm", "eps is NaN"))?;
        Array::apply(Op::RmsNorm { eps }, &[self, weight])
    }

    /// Layer normalization over the last axis, then `* weight + bias`.
    pub fn layer_norm(&self, weight: &Array, bias: &Array, eps: f64) -> Result<Array> {
        let eps = float(eps).ok_or_else(|| invalid("layer_norm", "eps is NaN"))?;
        Array::apply(Op::LayerNorm { eps }, &[self, weight, bias])
    }

    /// Rotary position embedding of the last axis with precomputed `cos`/`sin`.
    pub fn rope(&self, cos: &Array, sin: &Array, style: RopeStyle) -> Result<Array> {
        Array::apply(Op::Rope { style }, &[self, cos, sin])
    }

    /// New shape with the same elements; one dimension may be -1 (inferred).
    pub fn reshape(&self, shape: &[isize]) -> Result<Array> {
        let known: usize = shape.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
        let holes = shape.iter().filter(|&&d| d == -1).count();
        if holes > 1 || shape.iter().any(|&d| d < -1) {
            return Err(invalid("reshape", format!("bad target shape {shape:?}")));
        }
        let fill = if holes == 1 {
            if known == 0 || !self.size().is_multiple_of(known) {
                return Err(invalid("reshape", format!("cannot reshape {:?} into {shape:?}", self.shape())));
            }
            self.size() / known
        } else {
            0
        };
        let dims = shape.iter().map(|&d| if d == -1 { fill } else { d as usize }).collect::<Vec<_>>();
        self.reshape_exact(&dims)
    }

    fn reshape_exact(&self, dims: &[usize]) -> Result<Array> {
        Array::apply(Op::Reshape { shape: Shape::from(dims) }, &[self])
    }

    /// Permutes axes (negative allowed); an empty `axes` reverses them, like NumPy.
    pub fn transpose(&self, axes: &[isize]) -> Result<Array> {
        let perm = if axes.is_empty() {
            (0..self.ndim()).rev().collect()
        } else {
            axes.iter().map(|&a| self.axis("transpose", a)).collect::<Result<Vec<_>>>()?
        };
        Array::apply(Op::Permute { perm }, &[self])
    }

    /// Broadcasts to `shape` under NumPy rules.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Array> {
        Array::apply(Op::Broadcast { shape: Shape::from(shape) }, &[self])
    }

    /// NumPy-style slice: one `(start, stop, step)` per leading axis (negative indices count
    /// from the end, out-of-range bounds clamp, `step >= 1`); later axes are taken whole.
    pub fn slice(&self, ranges: &[(isize, isize, isize)]) -> Result<Array> {
        if ranges.len() > self.ndim() {
            return Err(invalid("slice", format!("{} ranges for shape {:?}", ranges.len(), self.shape())));
        }
        let mut out = Vec::with_capacity(self.ndim());
        for (axis, &dim) in self.shape().iter().enumerate() {
            let Some(&(start, stop, step)) = ranges.get(axis) else {
                out.push(SliceRange::full(dim));
                continue;
            };
            if step < 1 {
                return Err(invalid("slice", format!("axis {axis}: step {step} must be >= 1")));
            }
            let clamp = |i: isize| -> usize {
                let i = if i < 0 { i + dim as isize } else { i };
                i.clamp(0, dim as isize) as usize
            };
            let (start, stop) = (clamp(start), clamp(stop));
            out.push(SliceRange { start, stop: stop.max(start), step: step as usize });
        }
        Array::apply(Op::Slice { ranges: out }, &[self])
    }

    /// Concatenates `arrays` along `axis`.
    pub fn concat(arrays: &[&Array], axis: isize) -> Result<Array> {
        let first = arrays.first().ok_or_else(|| invalid("concat", "no arrays given"))?;
        let axis = first.axis("concat", axis)?;
        Array::apply(Op::Concat { axis }, arrays)
    }

    /// Rows of `self` (axis 0) picked by integer `indices`; out-of-range indices clamp.
    pub fn gather(&self, indices: &Array) -> Result<Array> {
        Array::apply(Op::Gather, &[self, indices])
    }

    fn axis(&self, op: &'static str, axis: isize) -> Result<usize> {
        self.node
            .ty
            .shape
            .normalize_axis(axis)
            .ok_or_else(|| invalid(op, format!("axis {axis} is out of range for shape {:?}", self.shape())))
    }
}

/// A weak scalar takes the other operand's dtype (`x_f16 * 2.0` stays f16).
fn promote_weak(a: &Array, b: &Array) -> Result<(Array, Array)> {
    let retype = |weak: &Array, dtype: DType| -> Result<Array> {
        match &weak.node.op {
            Op::Constant { value, shape, .. } => {
                let v = if dtype.is_float() { value.into_inner() } else { dtype.round(value.into_inner()) };
                Array::full(v, shape.dims(), dtype, weak.device())
            }
            _ => Ok(weak.clone()),
        }
    };
    match (a.node.weak, b.node.weak) {
        (true, false) if a.dtype() != b.dtype() => Ok((retype(a, b.dtype())?, b.clone())),
        (false, true) if a.dtype() != b.dtype() => Ok((a.clone(), retype(b, a.dtype())?)),
        _ => Ok((a.clone(), b.clone())),
    }
}
