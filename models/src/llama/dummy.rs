//! Random weights in a Llama architecture's shapes (`tessera bench --config --dummy-weights`):
//! decode is bound by the bytes it streams and the kernels it launches, not by the values, so
//! 1B- and 8B-shaped models can be timed on a GPU without shipping their weights.

use super::weights::{QuantMatrix, WeightIndex};
use crate::ModelError;
use crate::config::LlamaConfig;
use crate::tokenizer::{ModelTokenizer, SpecialTokens};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Random weights for every linear layer and the embedding, unit norms: affine-quantized for
/// `bits` = 4 or 8 (group 32, f16 scales), dense f16 for 16. Scales keep activations in a sane
/// range so no value overflows.
pub fn dummy_weights(cfg: &LlamaConfig, bits: u32, seed: u64) -> Result<WeightIndex, ModelError> {
    if !matches!(bits, 4 | 8 | 16) {
        return Err(ModelError::Invalid(format!("dummy weights are 4- or 8-bit or f16, not {bits}")));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = WeightIndex::default();
    let (h, i, d) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (hq, hkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
    let mut quant = |w: &mut WeightIndex, name: &str, rows: usize, cols: usize| -> Result<(), ModelError> {
        if !cols.is_multiple_of(32) {
            return Err(ModelError::Invalid(format!(
                "{name}: {cols} input features are not a multiple of 32"
            )));
        }
        if bits == 16 {
            // Each random byte picks one of 256 uniform values: an 8B model's 8e9 weights then
            // take seconds, not the minutes of a random float and an f16 conversion apiece.
            let bound = 1.0 / (cols as f32).sqrt();
            let table: Vec<[u8; 2]> = (0..256)
                .map(|_| half::f16::from_f32(rng.random_range(-bound..bound)).to_le_bytes())
                .collect();
            let mut bytes = Vec::with_capacity(2 * rows * cols);
            for _ in 0..rows * cols / 8 {
                for b in rng.random::<u64>().to_le_bytes() {
                    bytes.extend_from_slice(&table[b as usize]);
                }
            }
            w.insert_f16_linear_bytes(name, rows, cols, bytes);
            return Ok(());
        }
        let groups = rows * cols / 32;
        // Powers of two keep the scales exact in f16, as GGUF's are.
        let scale = (2.0 / ((cols as f32).sqrt() * ((1u32 << bits) - 1) as f32)).log2().round().exp2();
        let q = QuantMatrix {
            rows,
            cols,
            bits,
            group_size: 32,
            words: (0..rows * cols * bits as usize / 32).map(|_| rng.random()).collect(),
            scales: vec![scale; groups],
            biases: vec![-scale * ((1u32 << bits) - 1) as f32 / 2.0; groups],
        };
        w.insert_quant_linear(name, q);
        Ok(())
    };
    quant(&mut w, "model.embed_tokens", cfg.vocab_size, h)?;
    if !cfg.tie_word_embeddings {
        quant(&mut w, "lm_head", cfg.vocab_size, h)?;
    }
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        w.insert_f32(&format!("{p}.input_layernorm.weight"), vec![h], &vec![1.0; h]);
        w.insert_f32(&format!("{p}.post_attention_layernorm.weight"), vec![h], &vec![1.0; h]);
        quant(&mut w, &format!("{p}.self_attn.q_proj"), hq * d, h)?;
        quant(&mut w, &format!("{p}.self_attn.k_proj"), hkv * d, h)?;
        quant(&mut w, &format!("{p}.self_attn.v_proj"), hkv * d, h)?;
        quant(&mut w, &format!("{p}.self_attn.o_proj"), h, hq * d)?;
        quant(&mut w, &format!("{p}.mlp.gate_proj"), i, h)?;
        quant(&mut w, &format!("{p}.mlp.up_proj"), i, h)?;
        quant(&mut w, &format!("{p}.mlp.down_proj"), h, i)?;
    }
    w.insert_f32("model.norm.weight", vec![h], &vec![1.0; h]);
    Ok(w)
}

/// A tokenizer with no vocabulary, for models that are only timed on token ids.
pub fn placeholder_tokenizer() -> Result<ModelTokenizer, ModelError> {
    let model = tokenizers::models::wordlevel::WordLevel::builder()
        .build()
        .map_err(|e| ModelError::Invalid(format!("placeholder tokenizer: {e}")))?;
    Ok(ModelTokenizer {
        tokenizer: tokenizers::Tokenizer::new(model),
        special: SpecialTokens::default(),
        chat_template: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama::weights::Linear;
    use tessera_ir::DType;

    fn tiny() -> LlamaConfig {
        let json = r#"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 16, "rms_norm_eps": 1e-5, "vocab_size": 40, "tie_word_embeddings": false}"#;
        serde_json::from_str(json).expect("tiny config")
    }

    #[test]
    fn f16_weights_are_bounded_varied_and_shaped() {
        let w = dummy_weights(&tiny(), 16, 7).expect("dummy weights");
        assert!(matches!(w.linear("model.layers.1.mlp.down_proj"), Ok(Linear::Dense { k: 96, n: 64, .. })));
        let down = &w.params["model.layers.1.mlp.down_proj.weight"];
        assert_eq!((down.dtype, &down.shape[..], down.bytes.len()), (DType::F16, &[64, 96][..], 2 * 64 * 96));
        let values = down.to_f32().expect("f16 values");
        let bound = 1.0 / 96f32.sqrt();
        assert!(values.iter().all(|v| v.abs() <= bound * 1.001), "values within +-1/sqrt(k)");
        let mut distinct: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 100, "only {} distinct values", distinct.len());
        let lm_head = &w.params["lm_head.weight"];
        assert_eq!(lm_head.bytes.len(), 2 * 40 * 64);
        // Another seed gives other weights.
        let other = dummy_weights(&tiny(), 16, 8).expect("dummy weights");
        assert_ne!(other.params["lm_head.weight"].bytes, lm_head.bytes);
    }

    #[test]
    fn quantized_weights_keep_their_layout() {
        let w = dummy_weights(&tiny(), 4, 7).expect("dummy weights");
        let q = &w.params["model.layers.0.self_attn.q_proj.weight"];
        assert_eq!((q.dtype, &q.shape[..]), (DType::U32, &[64, 8][..]));
        assert_eq!(w.params["model.layers.0.self_attn.q_proj.scales"].shape, vec![64, 2]);
        assert!(dummy_weights(&tiny(), 3, 7).is_err());
    }
}
