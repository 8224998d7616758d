// tessera WGSL prelude: every elementwise function, written once. Floats (f32, and f16 widened to
// f32) compute in f32; integers wrap; comparisons return bool. Generated kernels call
// `op_<name>_<type>`. Non-finite constants come from bit patterns at run time because naga
// rejects NaN/inf literals.

fn f32_bits(b: u32) -> f32 { return bitcast<f32>(b); }
fn f32_nan() -> f32 { return f32_bits(0x7fc00000u); }
fn f32_inf() -> f32 { return f32_bits(0x7f800000u); }
fn f32_neg_inf() -> f32 { return f32_bits(0xff800000u); }
fn is_nan_f32(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

// Round to the nearest f16 value, kept in f32 (f16 tensors stored as f32 without SHADER_F16).
fn round_f16(x: f32) -> f32 {
    if (is_nan_f32(x)) { return x; }
    if (abs(x) >= 65520.0) { return select(f32_neg_inf(), f32_inf(), x > 0.0); }
    return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;
}

// Float -> integer conversion: truncate toward zero, saturate, NaN -> 0.
fn f32_to_i32(x: f32) -> i32 {
    if (is_nan_f32(x)) { return 0i; }
    if (x >= 2147483648.0) { return 2147483647i; }
    if (x <= -2147483648.0) { return -2147483647i - 1i; }
    return i32(x);
}
fn f32_to_u32(x: f32) -> u32 {
    if (is_nan_f32(x) || x <= 0.0) { return 0u; }
    if (x >= 4294967296.0) { return 4294967295u; }
    return u32(x);
}

// ---- unary, floats ----
fn op_neg_f32(x: f32) -> f32 { return -x; }
fn op_exp_f32(x: f32) -> f32 { return exp(x); }
fn op_log_f32(x: f32) -> f32 { return log(x); }
fn op_sqrt_f32(x: f32) -> f32 { return sqrt(x); }
fn op_rsqrt_f32(x: f32) -> f32 { return inverseSqrt(x); }
fn op_sin_f32(x: f32) -> f32 { return sin(x); }
fn op_cos_f32(x: f32) -> f32 { return cos(x); }
// tanh(|x| >= 10) is +-1 in f32; clamping keeps (e^2x - 1)/(e^2x + 1) style lowerings finite.
fn op_tanh_f32(x: f32) -> f32 {
    if (is_nan_f32(x)) { return x; }
    return tanh(clamp(x, -10.0, 10.0));
}
// Two branches so exp never overflows into inf/inf.
fn op_sigmoid_f32(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}
fn op_silu_f32(x: f32) -> f32 { return x * op_sigmoid_f32(x); }
// erfc with fractional error < 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit, erfcc).
fn erfc_f32(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(-z * z + p);
    return select(2.0 - r, r, x >= 0.0);
}
// Exact GELU x/2 (1 + erf(x/sqrt 2)), written as x/2 erfc(-x/sqrt 2) to keep accuracy for x < 0.
fn op_gelu_f32(x: f32) -> f32 { return 0.5 * x * erfc_f32(-x * 0.70710678118654752); }
fn op_gelu_tanh_f32(x: f32) -> f32 {
    return 0.5 * x * (1.0 + op_tanh_f32(0.79788456080286536 * (x + 0.044715 * x * x * x)));
}
fn op_relu_f32(x: f32) -> f32 { return select(0.0, x, x > 0.0); }
fn op_abs_f32(x: f32) -> f32 { return abs(x); }
fn op_recip_f32(x: f32) -> f32 { return 1.0 / x; }

// ---- unary, integers (wrapping) ----
fn op_neg_i32(x: i32) -> i32 { return -x; }
fn op_abs_i32(x: i32) -> i32 { return abs(x); }
fn op_relu_i32(x: i32) -> i32 { return max(x, 0i); }
fn op_neg_u32(x: u32) -> u32 { return 0u - x; }
fn op_abs_u32(x: u32) -> u32 { return x; }
fn op_relu_u32(x: u32) -> u32 { return x; }

// ---- binary, floats ----
fn op_add_f32(a: f32, b: f32) -> f32 { return a + b; }
fn op_sub_f32(a: f32, b: f32) -> f32 { return a - b; }
fn op_mul_f32(a: f32, b: f32) -> f32 { return a * b; }
fn op_div_f32(a: f32, b: f32) -> f32 { return a / b; }
// max/min ignore a NaN operand (IEEE maxNum, like Rust's f32::max); WGSL leaves it undefined.
fn op_max_f32(a: f32, b: f32) -> f32 {
    if (is_nan_f32(a)) { return b; }
    if (is_nan_f32(b)) { return a; }
    return max(a, b);
}
fn op_min_f32(a: f32, b: f32) -> f32 {
    if (is_nan_f32(a)) { return b; }
    if (is_nan_f32(b)) { return a; }
    return min(a, b);
}
// C pow: WGSL's pow is undefined for a < 0, so integral exponents of negative bases are handled here.
fn op_pow_f32(a: f32, b: f32) -> f32 {
    if (b == 0.0 || a == 1.0) { return 1.0; }
    if (is_nan_f32(a) || is_nan_f32(b)) { return f32_nan(); }
    let integral = b == trunc(b);
    let odd = integral && abs(b) < 16777216.0 && (u32(abs(b)) & 1u) == 1u;
    if (a == 0.0) {
        let m = select(f32_inf(), 0.0, b > 0.0);
        return select(m, -m, odd && bitcast<u32>(a) == 0x80000000u);
    }
    if (a < 0.0) {
        if (!integral && abs(b) != f32_inf()) { return f32_nan(); }
        let m = exp2(b * log2(-a));
        return select(m, -m, odd);
    }
    return exp2(b * log2(a));
}
fn op_eq_f32(a: f32, b: f32) -> bool { return a == b; }
fn op_ne_f32(a: f32, b: f32) -> bool { return a != b; }
fn op_lt_f32(a: f32, b: f32) -> bool { return a < b; }
fn op_le_f32(a: f32, b: f32) -> bool { return a <= b; }
fn op_gt_f32(a: f32, b: f32) -> bool { return a > b; }
fn op_ge_f32(a: f32, b: f32) -> bool { return a >= b; }

// ---- binary, i32 (wrapping; x / 0 and MIN / -1 give x, WGSL's rule) ----
fn op_add_i32(a: i32, b: i32) -> i32 { return a + b; }
fn op_sub_i32(a: i32, b: i32) -> i32 { return a - b; }
fn op_mul_i32(a: i32, b: i32) -> i32 { return a * b; }
fn op_div_i32(a: i32, b: i32) -> i32 { return a / b; }
fn op_max_i32(a: i32, b: i32) -> i32 { return max(a, b); }
fn op_min_i32(a: i32, b: i32) -> i32 { return min(a, b); }
fn op_eq_i32(a: i32, b: i32) -> bool { return a == b; }
fn op_ne_i32(a: i32, b: i32) -> bool { return a != b; }
fn op_lt_i32(a: i32, b: i32) -> bool { return a < b; }
fn op_le_i32(a: i32, b: i32) -> bool { return a <= b; }
fn op_gt_i32(a: i32, b: i32) -> bool { return a > b; }
fn op_ge_i32(a: i32, b: i32) -> bool { return a >= b; }

// ---- binary, u32 ----
fn op_add_u32(a: u32, b: u32) -> u32 { return a + b; }
fn op_sub_u32(a: u32, b: u32) -> u32 { return a - b; }
fn op_mul_u32(a: u32, b: u32) -> u32 { return a * b; }
fn op_div_u32(a: u32, b: u32) -> u32 { return a / b; }
fn op_max_u32(a: u32, b: u32) -> u32 { return max(a, b); }
fn op_min_u32(a: u32, b: u32) -> u32 { return min(a, b); }
fn op_eq_u32(a: u32, b: u32) -> bool { return a == b; }
fn op_ne_u32(a: u32, b: u32) -> bool { return a != b; }
fn op_lt_u32(a: u32, b: u32) -> bool { return a < b; }
fn op_le_u32(a: u32, b: u32) -> bool { return a <= b; }
fn op_gt_u32(a: u32, b: u32) -> bool { return a > b; }
fn op_ge_u32(a: u32, b: u32) -> bool { return a >= b; }

// ---- binary, bool ----
fn op_eq_bool(a: bool, b: bool) -> bool { return a == b; }
fn op_ne_bool(a: bool, b: bool) -> bool { return a != b; }

// ---- argmax keys: u32 keys ordered like the values; NaN is the largest (NumPy), -0 == +0 ----
fn argmax_key_f32(x: f32) -> u32 {
    if (is_nan_f32(x)) { return 0xffffffffu; }
    let b = select(bitcast<u32>(x), 0u, x == 0.0);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
fn argmax_key_i32(x: i32) -> u32 { return bitcast<u32>(x) ^ 0x80000000u; }
fn argmax_key_u32(x: u32) -> u32 { return x; }
