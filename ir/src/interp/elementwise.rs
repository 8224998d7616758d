//! Elementwise ops: unary functions, binary arithmetic and comparisons, select, casts.
//! Results are returned unrounded; `eval_op` rounds them to the result dtype.

use super::{Tensor, broadcast_offsets};
use crate::{BinaryOp, DType, Shape, UnaryOp};

/// Applies `op` to each element. Integer results (neg/abs/relu) are exact in f64 and wrap when
/// `eval_op` rounds them (e.g. `-i32::MIN` wraps to `i32::MIN`).
pub(super) fn unary(op: UnaryOp, x: &Tensor) -> Vec<f64> {
    x.data.iter().map(|&v| unary_scalar(op, v)).collect()
}

/// One unary function on one value, in f64.
pub(crate) fn unary_scalar(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Silu => x * sigmoid(x),
        // Written with erfc so that large negative x keeps its relative accuracy
        // (1 + erf(x) would cancel to zero long before the true value underflows).
        UnaryOp::Gelu => 0.5 * x * erfc(-x / std::f64::consts::SQRT_2),
        UnaryOp::GeluTanh => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        }
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Recip => 1.0 / x,
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Applies `op` with NumPy broadcasting into `out`.
pub(super) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, out: &Shape) -> Vec<f64> {
    let oa = broadcast_offsets(&a.shape, out);
    let ob = broadcast_offsets(&b.shape, out);
    oa.iter().zip(&ob).map(|(&i, &j)| binary_scalar(op, a.dtype, a.data[i], b.data[j])).collect()
}

/// One binary function on one pair of values of operand dtype `dtype`.
pub(crate) fn binary_scalar(op: BinaryOp, dtype: DType, a: f64, b: f64) -> f64 {
    let flag = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        // Integer sums and differences are exact in f64 and wrap when rounded.
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => {
            if dtype.is_int() {
                // A 32x32-bit product needs 64 bits; f64 would lose the low bits before wrapping.
                wrap32((a as i64).wrapping_mul(b as i64), dtype)
            } else {
                a * b
            }
        }
        BinaryOp::Div => {
            if dtype.is_int() {
                int_div(a as i64, b as i64, dtype)
            } else {
                a / b
            }
        }
        // IEEE maxNum/minNum: a NaN operand yields the other one.
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Eq => flag(a == b),
        BinaryOp::Ne => flag(a != b),
        BinaryOp::Lt => flag(a < b),
        BinaryOp::Le => flag(a <= b),
        BinaryOp::Gt => flag(a > b),
        BinaryOp::Ge => flag(a >= b),
    }
}

/// WGSL's integer division: truncating; `a / 0` and `i32::MIN / -1` return `a`.
fn int_div(a: i64, b: i64, dtype: DType) -> f64 {
    if b == 0 || (dtype == DType::I32 && a == i32::MIN as i64 && b == -1) { a as f64 } else { (a / b) as f64 }
}

/// The low 32 bits of `r`, read as the integer dtype.
fn wrap32(r: i64, dtype: DType) -> f64 {
    match dtype {
        DType::I32 => r as i32 as f64,
        DType::U32 => r as u32 as f64,
        DType::F32 | DType::F16 | DType::Bool => r as f64,
    }
}

/// `where(cond, a, b)` with broadcasting of all three.
pub(super) fn select(c: &Tensor, a: &Tensor, b: &Tensor, out: &Shape) -> Vec<f64> {
    let oc = broadcast_offsets(&c.shape, out);
    let oa = broadcast_offsets(&a.shape, out);
    let ob = broadcast_offsets(&b.shape, out);
    (0..out.numel()).map(|i| if c.data[oc[i]] != 0.0 { a.data[oa[i]] } else { b.data[ob[i]] }).collect()
}

/// Converts one value from `from` to `to`. Floats into integers truncate and then clamp
/// (NaN is 0); integers into integers wrap; anything into bool is `x != 0`.
pub(crate) fn cast(v: f64, from: DType, to: DType) -> f64 {
    match to {
        DType::I32 | DType::U32 if from.is_float() => {
            let (lo, hi) =
                if to == DType::I32 { (i32::MIN as f64, i32::MAX as f64) } else { (0.0, u32::MAX as f64) };
            if v.is_nan() { 0.0 } else { v.trunc().clamp(lo, hi) }
        }
        // Int and bool sources hold exact integers: rounding wraps them modulo 2^32.
        DType::I32 | DType::U32 | DType::F32 | DType::F16 | DType::Bool => to.round(v),
    }
}

/// The error function (gelu only needs erfc; this checks the series on its own in tests).
#[cfg(test)]
fn erf(x: f64) -> f64 {
    if x.abs() < 2.0 {
        erf_series(x)
    } else if x > 0.0 {
        1.0 - erfc_continued_fraction(x)
    } else {
        erfc_continued_fraction(-x) - 1.0
    }
}

/// The complementary error function `1 - erf(x)`, accurate in relative terms for large x.
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        x
    } else if x < 0.0 {
        2.0 - erfc(-x)
    } else if x < 2.0 {
        1.0 - erf_series(x)
    } else {
        erfc_continued_fraction(x)
    }
}

/// `erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n (2x^2)^n x / (1*3*...*(2n+1))`: every term is
/// positive, so unlike the Taylor series nothing cancels; for |x| < 2 it converges in ~40 terms.
fn erf_series(x: f64) -> f64 {
    let x2 = 2.0 * x * x;
    let (mut term, mut sum) = (x, x);
    let mut n = 0.0;
    while term.abs() > 1e-17 * sum.abs() {
        n += 1.0;
        term *= x2 / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

/// Laplace's continued fraction `erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + ...)))`,
/// evaluated backward from a fixed depth that converges to f64 precision for x >= 2.
fn erfc_continued_fraction(x: f64) -> f64 {
    let mut t = x;
    for n in (1..=ERFC_DEPTH).rev() {
        t = x + (n as f64 / 2.0) / t;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / t
}

const ERFC_DEPTH: u32 = 120;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        // Reference values from CPython's math.erf / math.erfc.
        let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs();
        for (x, e, c) in [
            (1e-5, 1.1283791670579e-05, 0.9999887162083294),
            (0.1, 0.1124629160182849, 0.8875370839817152),
            (0.5, 0.5204998778130465, 0.4795001221869535),
            (1.0, 0.8427007929497149, 0.15729920705028513),
            (1.5, 0.9661051464753108, 0.033894853524689274),
            (1.9, 0.9927904292352575, 0.0072095707647425325),
            (2.0, 0.9953222650189527, 0.004677734981047265),
            (2.5, 0.999593047982555, 0.0004069520174449589),
            (3.0, 0.9999779095030014, 2.2090496998585438e-05),
            (5.0, 0.9999999999984626, 1.5374597944280351e-12),
        ] {
            assert!(close(erf(x), e, 4e-16), "erf({x}) = {}", erf(x));
            assert!(close(erf(-x), -e, 4e-16), "erf(-{x})");
            // Below 2, erfc is 1 - erf and inherits its absolute error.
            assert!(close(erfc(x), c, 4e-14), "erfc({x}) = {}", erfc(x));
            assert!(close(erfc(-x), 2.0 - c, 4e-16), "erfc(-{x})");
        }
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(10.0), 1.0);
        assert!(erfc(f64::NAN).is_nan());
    }
}
