//! CPU dequantization of ggml tensor types to f32, transcribed from ggml's `ggml-quants.c`
//! (`dequantize_row_*`). The test oracle for GPU kernels and a fallback for unsupported types.

use half::{bf16, f16};

use super::GgufTensor;
use super::error::{GgufError, Problem};
use super::ggml_type::GgmlType;

/// Decodes a whole tensor to f32 in ggml's element order (row-major in the HF shape).
pub fn dequantize(tensor: &GgufTensor<'_>) -> Result<Vec<f32>, GgufError> {
    let info = tensor.info;
    let mut out = Vec::new();
    dequantize_blocks(info.ggml_type, tensor.data, &mut out).map_err(|problem| GgufError::Malformed {
        file: tensor.file.to_string(),
        subject: format!("tensor {:?}", info.name),
        offset: info.data_start,
        problem,
    })?;
    Ok(out)
}

/// Decodes whole blocks of `ty` from `data`, appending to `out` (rows of a quantized tensor,
/// after a row reordering, for instance). `data` must hold a whole number of blocks.
pub fn dequantize_blocks(ty: GgmlType, data: &[u8], out: &mut Vec<f32>) -> Result<(), Problem> {
    let type_size = ty.type_size() as usize;
    if !data.len().is_multiple_of(type_size) {
        let what = format!("{} bytes are not whole {} blocks of {type_size} bytes", data.len(), ty);
        return Err(Problem::BadValue(what));
    }
    let n_blocks = data.len() / type_size;
    out.reserve(n_blocks * ty.block_size() as usize);
    let blocks = data.chunks_exact(type_size);
    match ty {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16_at(b, 0))),
        GgmlType::BF16 => out.extend(blocks.map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::F64 => out.extend(blocks.map(|b| f64_at(b) as f32)),
        GgmlType::I8 => out.extend(blocks.map(|b| f32::from(b[0] as i8))),
        GgmlType::I16 => out.extend(blocks.map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))),
        GgmlType::I32 => out.extend(blocks.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)),
        GgmlType::Q4_0 => blocks.for_each(|b| q4_0(b, out)),
        GgmlType::Q4_1 => blocks.for_each(|b| q4_1(b, out)),
        GgmlType::Q5_0 => blocks.for_each(|b| q5_0(b, out)),
        GgmlType::Q5_1 => blocks.for_each(|b| q5_1(b, out)),
        GgmlType::Q8_0 => blocks.for_each(|b| q8_0(b, out)),
        GgmlType::Q8_1 => blocks.for_each(|b| q8_1(b, out)),
        GgmlType::Q4_K => blocks.for_each(|b| q4_k(b, out)),
        GgmlType::Q5_K => blocks.for_each(|b| q5_k(b, out)),
        GgmlType::Q6_K => blocks.for_each(|b| q6_k(b, out)),
        GgmlType::Q8_K => blocks.for_each(|b| q8_k(b, out)),
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::I64 => {
            return Err(Problem::NoDequantizer(ty.name()));
        }
    }
    Ok(())
}

fn f16_at(block: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

fn f32_at(block: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]])
}

fn f64_at(block: &[u8]) -> f64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&block[..8]);
    f64::from_le_bytes(bytes)
}

/// `d: f16, qs: [u8; 16]`; element j is the low nibble of `qs[j]`, element j+16 the high one.
fn q4_0(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let qs = &block[2..18];
    out.extend(qs.iter().map(|&q| (f32::from(q & 0x0F) - 8.0) * d));
    out.extend(qs.iter().map(|&q| (f32::from(q >> 4) - 8.0) * d));
}

/// `d: f16, m: f16, qs: [u8; 16]`; `x = q * d + m`.
fn q4_1(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let qs = &block[4..20];
    out.extend(qs.iter().map(|&q| f32::from(q & 0x0F) * d + m));
    out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
}

/// The fifth bits of Q5_0/Q5_1: bit j of `qh` for element j, bit j+16 for element j+16.
fn q5_values(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut q = [0u8; 32];
    for j in 0..16 {
        let high_lo = (((qh >> j) << 4) & 0x10) as u8;
        let high_hi = ((qh >> (j + 12)) & 0x10) as u8;
        q[j] = (qs[j] & 0x0F) | high_lo;
        q[j + 16] = (qs[j] >> 4) | high_hi;
    }
    q
}

/// `d: f16, qh: [u8; 4], qs: [u8; 16]`; `x = (q - 16) * d`.
fn q5_0(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let q = q5_values(&block[2..6], &block[6..22]);
    out.extend(q.iter().map(|&q| (f32::from(q) - 16.0) * d));
}

/// `d: f16, m: f16, qh: [u8; 4], qs: [u8; 16]`; `x = q * d + m`.
fn q5_1(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let q = q5_values(&block[4..8], &block[8..24]);
    out.extend(q.iter().map(|&q| f32::from(q) * d + m));
}

/// `d: f16, qs: [i8; 32]`; `x = q * d`.
fn q8_0(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    out.extend(block[2..34].iter().map(|&q| f32::from(q as i8) * d));
}

/// `d: f32, s: f32, qs: [i8; 32]`; `x = q * d`.
fn q8_1(block: &[u8], out: &mut Vec<f32>) {
    let d = f32_at(block, 0);
    out.extend(block[8..40].iter().map(|&q| f32::from(q as i8) * d));
}

/// `d: f32, qs: [i8; 256], bsums: [i16; 16]`; `x = q * d`.
fn q8_k(block: &[u8], out: &mut Vec<f32>) {
    let d = f32_at(block, 0);
    out.extend(block[4..260].iter().map(|&q| f32::from(q as i8) * d));
}

/// ggml's `get_scale_min_k4`: the j-th 6-bit scale and min packed in the 12 scale bytes.
fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    let (scale, min) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    };
    (f32::from(scale), f32::from(min))
}

/// `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`; eight sub-blocks of 32.
fn q4_k(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let scales = &block[4..16];
    let qs = &block[16..144];
    for (chunk, q) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        out.extend(q.iter().map(|&q| d * sc1 * f32::from(q & 0x0F) - dmin * m1));
        out.extend(q.iter().map(|&q| d * sc2 * f32::from(q >> 4) - dmin * m2));
    }
}

/// `d: f16, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]`.
fn q5_k(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let scales = &block[4..16];
    let qh = &block[16..48];
    let qs = &block[48..176];
    for (chunk, ql) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        for (l, &q) in ql.iter().enumerate() {
            let high = if qh[l] & u1 != 0 { 16.0 } else { 0.0 };
            out.push(d * sc1 * (f32::from(q & 0x0F) + high) - dmin * m1);
        }
        for (l, &q) in ql.iter().enumerate() {
            let high = if qh[l] & u2 != 0 { 16.0 } else { 0.0 };
            out.push(d * sc2 * (f32::from(q >> 4) + high) - dmin * m2);
        }
    }
}

/// `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`; two halves of 128.
fn q6_k(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 208);
    let mut y = [0f32; 256];
    for half in 0..2 {
        let ql = &block[64 * half..64 * half + 64];
        let qh = &block[128 + 32 * half..128 + 32 * half + 32];
        let sc = &block[192 + 8 * half..192 + 8 * half + 8];
        let y = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            let scale = |k: usize| d * f32::from(sc[is + k] as i8);
            y[l] = scale(0) * q1 as f32;
            y[l + 32] = scale(2) * q2 as f32;
            y[l + 64] = scale(4) * q3 as f32;
            y[l + 96] = scale(6) * q4 as f32;
        }
    }
    out.extend_from_slice(&y);
}
