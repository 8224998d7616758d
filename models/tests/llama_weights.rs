//! GGUF blocks repacked into the MLX affine layout dequantize to exactly what ggml's own
//! dequantization gives, for every type the quantized kernels read.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_models::gguf::{GgmlType, dequantize_blocks};
use tessera_models::llama::weights::QuantMatrix;

/// Random blocks with finite f16 scales (ggml block layout).
fn random_blocks(ty: GgmlType, rows: usize, cols: usize, rng: &mut StdRng) -> Vec<u8> {
    let (scale_bytes, block) = match ty {
        GgmlType::Q4_0 => (2, 18),
        GgmlType::Q4_1 => (4, 20),
        _ => (2, 34),
    };
    let mut data = Vec::new();
    for _ in 0..rows * cols / 32 {
        for _ in 0..scale_bytes / 2 {
            let v = half::f16::from_f32(rng.random_range(-0.1..0.1));
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.extend((scale_bytes..block).map(|_| rng.random::<u8>()));
    }
    data
}

fn mlx_dequant(q: &QuantMatrix) -> Vec<f32> {
    let per_word = 32 / q.bits as usize;
    let groups = q.cols / q.group_size as usize;
    let mut out = Vec::new();
    for r in 0..q.rows {
        for c in 0..q.cols {
            let word = q.words[(r * q.cols + c) / per_word];
            let code = (word >> (q.bits as usize * (c % per_word))) & ((1 << q.bits) - 1);
            let g = r * groups + c / q.group_size as usize;
            out.push(q.scales[g] * code as f32 + q.biases[g]);
        }
    }
    out
}

#[test]
fn repacked_blocks_dequantize_like_ggml() {
    let mut rng = StdRng::seed_from_u64(3);
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
        let (rows, cols) = (5, 96);
        let data = random_blocks(ty, rows, cols, &mut rng);
        let mut want = Vec::new();
        dequantize_blocks(ty, &data, &mut want).expect("ggml dequantizes");
        let q = QuantMatrix::from_ggml(ty, rows, cols, &data).expect("repacks");
        let got = mlx_dequant(&q);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            // ggml computes `q*d + m` and `(q - 8)*d` in f32; the affine form may round once more.
            assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "{ty}: element {i}: {g} vs {w}");
        }
    }
}

#[test]
fn malformed_blocks_are_refused() {
    let err = QuantMatrix::from_ggml(GgmlType::Q4_1, 2, 32, &[0u8; 39]).expect_err("one byte short");
    assert!(err.contains("40"), "{err}");
    let err = QuantMatrix::from_ggml(GgmlType::Q4_1, 1, 48, &[0u8; 30]).expect_err("not a multiple of 32");
    assert!(err.contains("48"), "{err}");
    assert!(QuantMatrix::from_ggml(GgmlType::F16, 1, 32, &[0u8; 64]).is_err());
}
