//! Affine-quantized weights (the MLX layout): u32 words of `32 / bits` codes, code `i` of a word
//! in bits `bits * i`; weight = scale * code + bias per group of `group_size` codes along a row.

use super::Tensor;

/// Dequantized row `r` of a `[rows, K]` table (`K = words_per_row * 32 / bits`).
pub(super) fn dequant_row(
    bits: u32,
    group: u32,
    w: &Tensor,
    scales: &Tensor,
    biases: &Tensor,
    r: usize,
) -> Vec<f64> {
    let words = w.shape.dims()[1];
    let per_word = (32 / bits) as usize;
    let k = words * per_word;
    let groups = k / group as usize;
    let mask = (1u64 << bits) - 1;
    let mut row = Vec::with_capacity(k);
    for word in 0..words {
        let bitsword = w.data[r * words + word] as u64;
        for i in 0..per_word {
            let code = ((bitsword >> (bits as usize * i)) & mask) as f64;
            let g = (word * per_word + i) / group as usize;
            row.push(scales.data[r * groups + g] * code + biases.data[r * groups + g]);
        }
    }
    row
}

/// `x [..., K] @ dequant(w)[N, K]^T`, f64 accumulation; with f16 x the dequantized weights are
/// rounded to f16 as well (an f16 product: both factors f16).
pub(super) fn quant_matmul(
    bits: u32,
    group: u32,
    x: &Tensor,
    w: &Tensor,
    scales: &Tensor,
    biases: &Tensor,
) -> Vec<f64> {
    let n = w.shape.dims()[0];
    let k = x.shape.dims().last().copied().unwrap_or(0);
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|r| {
            dequant_row(bits, group, w, scales, biases, r).into_iter().map(|v| x.dtype.round(v)).collect()
        })
        .collect();
    let mut out = Vec::with_capacity(x.data.len() / k.max(1) * n);
    for xrow in x.data.chunks(k.max(1)) {
        for wrow in &rows {
            out.push(xrow.iter().zip(wrow).map(|(a, b)| a * b).sum());
        }
    }
    out
}

/// `x` rounded to int8 codes per block of `block` values, dequantized (see `Op::RoundInt8`).
pub(super) fn round_int8(block: u32, x: &Tensor) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.data.len());
    for b in x.data.chunks(block.max(1) as usize) {
        let amax = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if amax == 0.0 {
            out.extend(std::iter::repeat_n(0.0, b.len()));
            continue;
        }
        out.extend(
            b.iter().map(|v| (v * 127.0 / amax).round_ties_even().clamp(-127.0, 127.0) * amax / 127.0),
        );
    }
    out
}

/// Rows of the dequantized table picked by `indices` (clamped into range).
pub(super) fn quant_gather(
    bits: u32,
    group: u32,
    w: &Tensor,
    scales: &Tensor,
    biases: &Tensor,
    indices: &Tensor,
) -> Vec<f64> {
    let rows = w.shape.dims()[0];
    let mut out = Vec::new();
    for &i in &indices.data {
        let r = (i.max(0.0) as usize).min(rows - 1);
        out.extend(dequant_row(bits, group, w, scales, biases, r));
    }
    out
}
