//! Llama weights from a Hugging Face directory (float safetensors, single or sharded) or an
//! mlx-community directory (MLX affine-quantized `weight`/`scales`/`biases` triples, which
//! `tessera convert` also writes). Tensor names are Hugging Face's, verbatim.

use super::weights::{QuantMatrix, WeightIndex};
use crate::ModelError;
use crate::config::LlamaConfig;
use crate::safetensors::{Dtype, ShardedSafetensors, TensorView};
use tessera_ir::DType;

impl WeightIndex {
    /// Prepares every tensor of a Llama-family checkpoint directory.
    pub fn from_safetensors(st: &ShardedSafetensors, cfg: &LlamaConfig) -> Result<WeightIndex, ModelError> {
        let mut w = WeightIndex::default();
        let names: Vec<String> = st.names().map(str::to_string).collect();
        for name in &names {
            let file = st.shard_for(name).map(|f| f.file_name().to_string()).unwrap_or_default();
            let err =
                |reason: String| ModelError::Tensor { file: file.clone(), tensor: name.clone(), reason };
            let view = st.tensor(name).ok_or_else(|| err("listed but not readable".into()))?;
            if name.ends_with(".scales")
                || (name.ends_with(".biases") && st.tensor(&scales_of(name)).is_some())
            {
                continue; // read with their weight
            }
            if name.contains("rotary_emb.inv_freq") {
                continue; // recomputed from the config
            }
            let Some(prefix) = name.strip_suffix(".weight").or_else(|| name.strip_suffix(".bias")) else {
                return Err(err("unexpected tensor name".into()));
            };
            if name.ends_with(".bias") {
                w.insert_bias(prefix, &floats(&view).map_err(err)?);
                continue;
            }
            let scales = st.tensor(&format!("{prefix}.scales"));
            match (view.shape, scales) {
                ([n], None) => w.insert_f32(name, vec![*n], &floats(&view).map_err(err)?),
                ([n, words], Some(scales)) => {
                    let biases = st
                        .tensor(&format!("{prefix}.biases"))
                        .ok_or_else(|| err("quantized weight without biases".into()))?;
                    let k = in_features(prefix, cfg).ok_or_else(|| err("unknown quantized module".into()))?;
                    let q = quant_matrix(*n, *words, k, &view, &scales, &biases).map_err(err)?;
                    w.insert_quant_linear(prefix, q);
                }
                ([n, k], None) => {
                    // f16 stays f16 (half the bytes decode streams); bf16 widens to f32 exactly.
                    let dtype = if view.dtype == Dtype::F16 { DType::F16 } else { DType::F32 };
                    w.insert_dense_linear(prefix, *n, *k, &floats(&view).map_err(err)?, dtype)
                }
                (shape, _) => return Err(err(format!("unexpected shape {shape:?} ({:?})", view.dtype))),
            }
        }
        if !w.has("model.embed_tokens") {
            return Err(ModelError::Tensor {
                file: String::new(),
                tensor: "model.embed_tokens.weight".into(),
                reason: "missing".into(),
            });
        }
        Ok(w)
    }
}

fn scales_of(biases: &str) -> String {
    format!("{}.scales", biases.trim_end_matches(".biases"))
}

/// Input features of a linear module, from its role in the decoder.
fn in_features(prefix: &str, cfg: &LlamaConfig) -> Option<usize> {
    let last = prefix.rsplit('.').next()?;
    match last {
        "q_proj" | "k_proj" | "v_proj" | "gate_proj" | "up_proj" | "embed_tokens" | "lm_head" => {
            Some(cfg.hidden_size)
        }
        "o_proj" => Some(cfg.num_attention_heads * cfg.head_dim),
        "down_proj" => Some(cfg.intermediate_size),
        _ => None,
    }
}

fn floats(view: &TensorView<'_>) -> Result<Vec<f32>, String> {
    view.to_f32().ok_or_else(|| format!("{:?} is not a float dtype", view.dtype))
}

/// An MLX triple: u32 codes `[n, words]`, scales and biases `[n, groups]` for rows of `k`.
fn quant_matrix(
    n: usize,
    words: usize,
    k: usize,
    w: &TensorView<'_>,
    scales: &TensorView<'_>,
    biases: &TensorView<'_>,
) -> Result<QuantMatrix, String> {
    if w.dtype != Dtype::U32 || k == 0 || !(words * 32).is_multiple_of(k) {
        return Err(format!("{:?} codes [{n}, {words}] do not pack rows of {k}", w.dtype));
    }
    let bits = (words * 32 / k) as u32;
    let groups = scales.shape.get(1).copied().unwrap_or(0);
    if !matches!(bits, 4 | 8)
        || groups == 0
        || !k.is_multiple_of(groups)
        || scales.shape != [n, groups]
        || biases.shape != scales.shape
    {
        return Err(format!(
            "unsupported quantization: {bits} bits, scales {:?} for rows of {k}",
            scales.shape
        ));
    }
    Ok(QuantMatrix {
        rows: n,
        cols: k,
        bits,
        group_size: (k / groups) as u32,
        words: w.data.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        scales: floats(scales)?,
        biases: floats(biases)?,
    })
}
