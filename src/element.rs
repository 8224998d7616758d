//! Host element types that `Array::from_vec` accepts and `to_vec` returns.

use crate::DType;

/// A Rust scalar type that maps to a tessera dtype.
pub trait Element: Copy + Send + Sync + 'static {
    /// The dtype arrays built from this type get.
    const DTYPE: DType;
    /// Converts to f64 (exact for every supported type).
    fn to_f64(self) -> f64;
    /// Converts from f64 with the dtype's storage semantics.
    fn from_f64(x: f64) -> Self;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn from_f64(x: f64) -> Self {
        half::f16::from_f64(x)
    }
}

impl Element for i32 {
    const DTYPE: DType = DType::I32;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(x: f64) -> Self {
        DType::I32.round(x) as i32
    }
}

impl Element for u32 {
    const DTYPE: DType = DType::U32;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(x: f64) -> Self {
        DType::U32.round(x) as u32
    }
}

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn to_f64(self) -> f64 {
        if self { 1.0 } else { 0.0 }
    }
    fn from_f64(x: f64) -> Self {
        x != 0.0
    }
}

/// Encodes values as little-endian elements of `dtype` (Bool as u32 0/1).
pub fn encode(values: impl Iterator<Item = f64>, dtype: DType) -> Vec<u8> {
    let mut out = Vec::new();
    for x in values {
        match dtype {
            DType::F32 => out.extend_from_slice(&(x as f32).to_le_bytes()),
            DType::F16 => out.extend_from_slice(&half::f16::from_f64(x).to_le_bytes()),
            DType::I32 => out.extend_from_slice(&(DType::I32.round(x) as i32).to_le_bytes()),
            DType::U32 => out.extend_from_slice(&(DType::U32.round(x) as u32).to_le_bytes()),
            DType::Bool => out.extend_from_slice(&u32::from(x != 0.0).to_le_bytes()),
        }
    }
    out
}

/// Decodes little-endian elements of `dtype` into f64 values.
pub fn decode(bytes: &[u8], dtype: DType) -> Vec<f64> {
    let size = dtype.size_bytes();
    bytes
        .chunks_exact(size)
        .map(|c| match dtype {
            DType::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            DType::F16 => half::f16::from_le_bytes([c[0], c[1]]).to_f64(),
            DType::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            DType::U32 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            DType::Bool => f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) != 0),
        })
        .collect()
}

/// Re-encodes bytes from one element type to another (F16 data on devices that store it as F32).
pub fn convert(bytes: &[u8], from: DType, to: DType) -> Vec<u8> {
    if from == to {
        return bytes.to_vec();
    }
    encode(decode(bytes, from).into_iter(), to)
}
