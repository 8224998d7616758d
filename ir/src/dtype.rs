//! Element types.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Element type of a tensor.
///
/// Quantized weights are not a dtype: like MLX, they are `U32` tensors of packed codes plus
/// scale/bias tensors, consumed by a quantized matmul op (added with the model layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// Two's complement 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// Boolean (stored as one `u32` per element on the GPU).
    Bool,
}

impl DType {
    /// Every dtype, in a fixed order (used by test sweeps).
    pub const ALL: [DType; 5] = [DType::F32, DType::F16, DType::I32, DType::U32, DType::Bool];

    /// Bytes per element in host buffers passed to and from the runtime.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 | DType::U32 | DType::Bool => 4,
            DType::F16 => 2,
        }
    }

    /// True for F32 and F16.
    pub fn is_float(self) -> bool {
        match self {
            DType::F32 | DType::F16 => true,
            DType::I32 | DType::U32 | DType::Bool => false,
        }
    }

    /// True for I32 and U32.
    pub fn is_int(self) -> bool {
        match self {
            DType::I32 | DType::U32 => true,
            DType::F32 | DType::F16 | DType::Bool => false,
        }
    }

    /// Short lowercase name used by the text form (`f32`, `f16`, `i32`, `u32`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::Bool => "bool",
        }
    }

    /// Rounds an f64 value to what this dtype can hold (the interpreter's storage semantics):
    /// floats round to nearest, integers truncate toward zero and wrap, bool is `x != 0`.
    pub fn round(self, x: f64) -> f64 {
        match self {
            DType::F32 => x as f32 as f64,
            DType::F16 => half::f16::from_f64(x).to_f64(),
            DType::I32 => wrap_int(x, 1u64 << 32, true),
            DType::U32 => wrap_int(x, 1u64 << 32, false),
            DType::Bool => {
                if x != 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// Truncates toward zero and wraps into the range of a 32-bit integer (NaN becomes 0).
fn wrap_int(x: f64, modulus: u64, signed: bool) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    let t = x.trunc();
    let m = modulus as f64;
    let mut r = t.rem_euclid(m);
    if signed && r >= m / 2.0 {
        r -= m;
    }
    r
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DType::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| format!("unknown dtype `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_matches_storage_semantics() {
        assert_eq!(DType::I32.round(-3.7), -3.0);
        assert_eq!(DType::I32.round(2147483648.0), -2147483648.0);
        assert_eq!(DType::U32.round(-1.0), 4294967295.0);
        assert_eq!(DType::Bool.round(-0.5), 1.0);
        assert_eq!(DType::F16.round(1.0 / 3.0), 0.333251953125);
        assert_eq!(DType::F32.round(0.1), 0.1f32 as f64);
    }

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>(), Ok(d));
        }
    }
}
