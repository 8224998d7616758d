//! The one operation enum. Every stage (inference, interpreter, text form, egg language, codegen,
//! cost) matches on it exhaustively, so a new op does not compile until each stage handles it.

use crate::{DType, Shape};
use ordered_float::NotNan;
use serde::{Deserialize, Serialize};

/// A float attribute that can be hashed and compared (NaN is not a valid attribute).
pub type Float = NotNan<f64>;

/// One graph operation with its typed attributes. Axes are stored normalized (non-negative).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    /// A value supplied at each evaluation (activations, token ids, positions).
    Input {
        /// Name the caller binds data to.
        name: String,
        /// Shape of the data.
        shape: Shape,
        /// Element type of the data.
        dtype: DType,
    },
    /// A weight: bound once when a plan is loaded, read-only afterwards.
    Param {
        /// Name the caller binds data to (Hugging Face tensor names for models).
        name: String,
        /// Shape of the weight.
        shape: Shape,
        /// Element type of the weight.
        dtype: DType,
    },
    /// A tensor whose every element equals `value` (rounded to `dtype`; ±inf allowed).
    Constant {
        /// The fill value.
        value: Float,
        /// Shape of the constant.
        shape: Shape,
        /// Element type of the constant.
        dtype: DType,
    },
    /// Elementwise function of one operand.
    Unary(UnaryOp),
    /// Elementwise function of two operands with NumPy broadcasting; equal dtypes.
    Binary(BinaryOp),
    /// `where(cond, a, b)`: elementwise select with broadcasting; `cond` is bool.
    Where,
    /// Elementwise conversion (floats truncate toward zero into integers; bool is `x != 0`).
    Cast {
        /// Target dtype.
        to: DType,
    },
    /// Reduction over `axes` (sorted, unique; empty means no reduction).
    Reduce {
        /// Which reduction.
        kind: ReduceKind,
        /// Axes reduced.
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keepdims: bool,
    },
    /// Index of the first maximum along `axis`, as u32.
    ArgMax {
        /// Axis searched.
        axis: usize,
        /// Keep the axis as size 1.
        keepdims: bool,
    },
    /// Batched matrix product `[..., m, k] x [..., k, n] -> [..., m, n]`, batch dims broadcast.
    MatMul,
    /// Same elements, new shape (same element count).
    Reshape {
        /// Target shape.
        shape: Shape,
    },
    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    Permute {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// NumPy broadcast to `shape`.
    Broadcast {
        /// Target shape.
        shape: Shape,
    },
    /// Strided slice, one range per axis.
    Slice {
        /// Per-axis `start..stop` with `step >= 1`, normalized so `start <= stop <= dim`.
        ranges: Vec<SliceRange>,
    },
    /// Concatenation of all inputs along `axis`.
    Concat {
        /// Axis joined.
        axis: usize,
    },
    /// `gather(table, indices)`: rows of `table` (axis 0) picked by integer `indices`;
    /// output shape is `indices.shape ++ table.shape[1..]`. Indices are clamped into range.
    Gather,
    /// Softmax along `axis` (composite: exp(x - max) / sum).
    Softmax {
        /// Axis normalized.
        axis: usize,
    },
    /// `rms_norm(x, weight)` over the last axis: `x / sqrt(mean(x^2) + eps) * weight`.
    RmsNorm {
        /// Added to the mean square.
        eps: Float,
    },
    /// `layer_norm(x, weight, bias)` over the last axis.
    LayerNorm {
        /// Added to the variance.
        eps: Float,
    },
    /// `rope(x, cos, sin)`: rotary embedding of the last axis of `x` (size `d`, even) with
    /// `cos`/`sin` of shape broadcastable to `x.shape[..-1] ++ [d/2]`.
    Rope {
        /// Which element pairs rotate together.
        style: RopeStyle,
    },
    /// A persistent tensor owned by the loaded plan (the KV cache): zero when the plan is
    /// loaded, kept across runs. Its only user is one `WriteSlice`, which updates it in place.
    State {
        /// Name the caller reads/writes it by.
        name: String,
        /// Shape.
        shape: Shape,
        /// Element type.
        dtype: DType,
    },
    /// `iota`: element value = its index along `axis` (arange broadcast over `shape`).
    Iota {
        /// Result shape.
        shape: Shape,
        /// Axis whose index is the value.
        axis: usize,
        /// Result dtype (numeric).
        dtype: DType,
    },
    /// `write_slice(dst, src, offset)`: `dst` with `src` written at `offset[0]` along `axis`
    /// (`offset` is u32 `[1]` data; rows past the end of `dst` are dropped). On a `State`
    /// the compiled plan updates it in place.
    WriteSlice {
        /// Axis the slice starts at `offset` on.
        axis: usize,
    },
    /// `attention(q, k, v, kv_len)`: softmax(q k^T * scale) v with grouped-query heads.
    /// `q [B, Hq, S, D]`, `k [B, Hkv, T, D]`, `v [B, Hkv, T, Dv]`, `kv_len` u32 `[B]`;
    /// query row `i` sees keys `j < kv_len[b]` (and `j <= kv_len[b] - S + i` when causal).
    Attention {
        /// Multiplies the scores (usually `1/sqrt(D)`).
        scale: Float,
        /// Queries are the last `S` positions and see no later key.
        causal: bool,
    },
    /// `round_int8(x)`: f32 `x` rounded to 8-bit integers per block of `block` values along the
    /// last axis, returned dequantized: with `a` the block's largest magnitude, each value
    /// becomes `q * a / 127` for `q = round_ties_even(x * 127 / a)` (zero where `a` is 0). The
    /// activations of an integer-dot gemv (llama.cpp's Q8_1 activations): a quantized matmul
    /// reading it may multiply the codes `q` exactly in integers.
    RoundInt8 {
        /// Values sharing one scale (the last axis is whole blocks).
        block: u32,
    },
    /// `quant_matmul(x, w, scales, biases)`: `x [..., K]` times affine-quantized weights
    /// `[N, K]` transposed, giving `[..., N]`. `w` is u32 `[N, K*bits/32]` (code `i` of a word
    /// in bits `bits*i`), `scales`/`biases` `[N, K/group_size]`; weight = scale * code + bias.
    /// The weights take x's dtype: with f16 x, each product is of two f16 values (what tensor
    /// cores multiply), summed at least in f32, and the result is f16.
    QuantMatMul {
        /// Bits per code (4 or 8).
        bits: u32,
        /// Codes sharing one scale and bias.
        group_size: u32,
    },
    /// `quant_gather(w, scales, biases, indices)`: rows of an affine-quantized table
    /// (layout as in `QuantMatMul`), dequantized to the scales' dtype; indices clamp.
    QuantGather {
        /// Bits per code (4 or 8).
        bits: u32,
        /// Codes sharing one scale and bias.
        group_size: u32,
    },
}

/// Elementwise functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// natural log
    Log,
    /// square root
    Sqrt,
    /// `1 / sqrt(x)`
    Rsqrt,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// hyperbolic tangent
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `x * sigmoid(x)`
    Silu,
    /// exact GELU, `x/2 * (1 + erf(x / sqrt 2))` (BERT)
    Gelu,
    /// tanh-approximated GELU (GPT-2 "gelu_new")
    GeluTanh,
    /// `max(x, 0)`
    Relu,
    /// `|x|`
    Abs,
    /// `1 / x`
    Recip,
}

/// Elementwise functions of two operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (integers: truncating; division by zero returns a)
    Div,
    /// larger of the two
    Max,
    /// smaller of the two
    Min,
    /// `a ^ b` (floats)
    Pow,
    /// `a == b` (bool result)
    Eq,
    /// `a != b` (bool result)
    Ne,
    /// `a < b` (bool result)
    Lt,
    /// `a <= b` (bool result)
    Le,
    /// `a > b` (bool result)
    Gt,
    /// `a >= b` (bool result)
    Ge,
}

/// Reductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReduceKind {
    /// Sum (0 over an empty set).
    Sum,
    /// Maximum (-inf, or the dtype's minimum, over an empty set).
    Max,
    /// Minimum (+inf, or the dtype's maximum, over an empty set).
    Min,
    /// Arithmetic mean (floats only).
    Mean,
}

/// Which elements rotate together in RoPE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RopeStyle {
    /// Pairs `(i, i + d/2)`: Hugging Face `rotate_half` (GPT-NeoX style).
    HalfSplit,
    /// Pairs `(2i, 2i + 1)`: GPT-J / original Meta style.
    Interleaved,
}

/// One axis of a strided slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SliceRange {
    /// First index taken.
    pub start: usize,
    /// One past the last index considered.
    pub stop: usize,
    /// Distance between taken indices (>= 1).
    pub step: usize,
}

impl SliceRange {
    /// The whole axis of size `dim`.
    pub fn full(dim: usize) -> SliceRange {
        SliceRange { start: 0, stop: dim, step: 1 }
    }

    /// Number of indices taken.
    pub fn len(&self) -> usize {
        if self.stop <= self.start || self.step == 0 {
            0
        } else {
            (self.stop - self.start).div_ceil(self.step)
        }
    }

    /// True when no index is taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl UnaryOp {
    /// Every unary op (for sweeps).
    pub const ALL: [UnaryOp; 15] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Silu,
        UnaryOp::Gelu,
        UnaryOp::GeluTanh,
        UnaryOp::Relu,
        UnaryOp::Abs,
        UnaryOp::Recip,
    ];

    /// Lowercase name (text form, WGSL prelude function suffix).
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Silu => "silu",
            UnaryOp::Gelu => "gelu",
            UnaryOp::GeluTanh => "gelu_tanh",
            UnaryOp::Relu => "relu",
            UnaryOp::Abs => "abs",
            UnaryOp::Recip => "recip",
        }
    }

    /// True when the op is defined on integer operands too (otherwise floats only).
    pub fn accepts_int(self) -> bool {
        match self {
            UnaryOp::Neg | UnaryOp::Relu | UnaryOp::Abs => true,
            UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Sin
            | UnaryOp::Cos
            | UnaryOp::Tanh
            | UnaryOp::Sigmoid
            | UnaryOp::Silu
            | UnaryOp::Gelu
            | UnaryOp::GeluTanh
            | UnaryOp::Recip => false,
        }
    }
}

impl BinaryOp {
    /// Every binary op (for sweeps).
    pub const ALL: [BinaryOp; 13] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Pow,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
    ];

    /// Lowercase name (text form, WGSL prelude function suffix).
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
            BinaryOp::Pow => "pow",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
        }
    }

    /// True for comparisons, whose result is bool.
    pub fn is_comparison(self) -> bool {
        match self {
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => true,
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Max
            | BinaryOp::Min
            | BinaryOp::Pow => false,
        }
    }

    /// Which operand dtypes the op accepts.
    pub fn accepts(self, dtype: DType) -> bool {
        match self {
            BinaryOp::Pow => dtype.is_float(),
            BinaryOp::Eq | BinaryOp::Ne => true,
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Max
            | BinaryOp::Min
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => dtype != DType::Bool,
        }
    }
}

impl ReduceKind {
    /// Every reduction (for sweeps).
    pub const ALL: [ReduceKind; 4] = [ReduceKind::Sum, ReduceKind::Max, ReduceKind::Min, ReduceKind::Mean];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "sum",
            ReduceKind::Max => "max",
            ReduceKind::Min => "min",
            ReduceKind::Mean => "mean",
        }
    }
}

impl RopeStyle {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            RopeStyle::HalfSplit => "half_split",
            RopeStyle::Interleaved => "interleaved",
        }
    }
}

/// Broad classes of ops, for passes that treat a whole class alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// Input, Param, Constant, State, Iota: no operands.
    Leaf,
    /// One output element from the same-index elements of the operands (with broadcasting).
    Elementwise,
    /// Reduce, ArgMax, and RoundInt8 (each result depends on a block of its operand).
    Reduction,
    /// MatMul, QuantMatMul.
    Contraction,
    /// Reshape, Permute, Broadcast, Slice, Concat, Gather, WriteSlice, QuantGather: data movement.
    Movement,
    /// Softmax, RmsNorm, LayerNorm, Rope, Attention: have a decomposition into primitives.
    Composite,
}

impl Op {
    /// The op's class.
    pub fn class(&self) -> OpClass {
        match self {
            Op::Input { .. }
            | Op::Param { .. }
            | Op::Constant { .. }
            | Op::State { .. }
            | Op::Iota { .. } => OpClass::Leaf,
            Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast { .. } => OpClass::Elementwise,
            Op::Reduce { .. } | Op::ArgMax { .. } | Op::RoundInt8 { .. } => OpClass::Reduction,
            Op::MatMul | Op::QuantMatMul { .. } => OpClass::Contraction,
            Op::Reshape { .. }
            | Op::Permute { .. }
            | Op::Broadcast { .. }
            | Op::Slice { .. }
            | Op::Concat { .. }
            | Op::Gather
            | Op::WriteSlice { .. }
            | Op::QuantGather { .. } => OpClass::Movement,
            Op::Softmax { .. }
            | Op::RmsNorm { .. }
            | Op::LayerNorm { .. }
            | Op::Rope { .. }
            | Op::Attention { .. } => OpClass::Composite,
        }
    }

    /// True for ops with no operands.
    pub fn is_leaf(&self) -> bool {
        self.class() == OpClass::Leaf
    }

    /// True for elementwise ops.
    pub fn is_elementwise(&self) -> bool {
        self.class() == OpClass::Elementwise
    }

    /// Number of operands the op takes; `None` for variadic (Concat, at least one).
    pub fn arity(&self) -> Option<usize> {
        match self {
            Op::Input { .. }
            | Op::Param { .. }
            | Op::Constant { .. }
            | Op::State { .. }
            | Op::Iota { .. } => Some(0),
            Op::Unary(_)
            | Op::Cast { .. }
            | Op::Reduce { .. }
            | Op::ArgMax { .. }
            | Op::Reshape { .. }
            | Op::Permute { .. }
            | Op::Broadcast { .. }
            | Op::Slice { .. }
            | Op::Softmax { .. }
            | Op::RoundInt8 { .. } => Some(1),
            Op::Binary(_) | Op::MatMul | Op::Gather | Op::RmsNorm { .. } => Some(2),
            Op::Where | Op::LayerNorm { .. } | Op::Rope { .. } | Op::WriteSlice { .. } => Some(3),
            Op::Attention { .. } | Op::QuantMatMul { .. } | Op::QuantGather { .. } => Some(4),
            Op::Concat { .. } => None,
        }
    }

    /// Short name of the op kind (`matmul`, `exp`, `reduce.sum`), used in errors and reports.
    pub fn mnemonic(&self) -> String {
        match self {
            Op::Input { .. } => "input".into(),
            Op::Param { .. } => "param".into(),
            Op::Constant { .. } => "constant".into(),
            Op::Unary(u) => u.name().into(),
            Op::Binary(b) => b.name().into(),
            Op::Where => "where".into(),
            Op::Cast { .. } => "cast".into(),
            Op::Reduce { kind, .. } => format!("reduce.{}", kind.name()),
            Op::ArgMax { .. } => "argmax".into(),
            Op::MatMul => "matmul".into(),
            Op::Reshape { .. } => "reshape".into(),
            Op::Permute { .. } => "permute".into(),
            Op::Broadcast { .. } => "broadcast".into(),
            Op::Slice { .. } => "slice".into(),
            Op::Concat { .. } => "concat".into(),
            Op::Gather => "gather".into(),
            Op::Softmax { .. } => "softmax".into(),
            Op::RmsNorm { .. } => "rms_norm".into(),
            Op::LayerNorm { .. } => "layer_norm".into(),
            Op::Rope { .. } => "rope".into(),
            Op::State { .. } => "state".into(),
            Op::Iota { .. } => "iota".into(),
            Op::WriteSlice { .. } => "write_slice".into(),
            Op::Attention { .. } => "attention".into(),
            Op::RoundInt8 { .. } => "round_int8".into(),
            Op::QuantMatMul { .. } => "quant_matmul".into(),
            Op::QuantGather { .. } => "quant_gather".into(),
        }
    }
}

/// A float attribute from an f64; `None` for NaN.
pub fn float(x: f64) -> Option<Float> {
    NotNan::new(x).ok()
}
