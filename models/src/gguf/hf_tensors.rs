//! GGUF tensors seen as the Hugging Face checkpoint they were converted from: HF names, HF
//! shapes, and q/k rows back in HF order.

use std::borrow::Cow;

use super::error::{GgufError, Problem};
use super::hf_names::{QkPermutation, hf_tensor_name, unpermute_rows};
use super::{GgufFile, GgufTensor, dequantize_blocks};

/// A GGUF tensor under its Hugging Face name.
#[derive(Debug, Clone)]
pub struct HfTensor<'a> {
    /// `model.layers.0.self_attn.q_proj.weight`.
    pub hf_name: String,
    /// The GGUF tensor (data in GGUF row order).
    pub tensor: GgufTensor<'a>,
    /// For llama-arch q/k projections: the row permutation llama.cpp applied.
    pub permutation: Option<QkPermutation>,
}

impl<'a> HfTensor<'a> {
    /// The HF shape (`[out_features, in_features]` for a linear weight).
    pub fn shape(&self) -> Vec<usize> {
        self.tensor.info.shape()
    }

    /// The raw (still quantized) data with rows in HF order: borrowed when nothing moves.
    pub fn data_in_hf_order(&self) -> Result<Cow<'a, [u8]>, GgufError> {
        let Some(perm) = self.permutation else { return Ok(Cow::Borrowed(self.tensor.data)) };
        let info = self.tensor.info;
        unpermute_rows(self.tensor.data, info.row_bytes() as usize, perm.n_head).map(Cow::Owned).ok_or_else(
            || GgufError::Malformed {
                file: self.tensor.file.to_string(),
                subject: format!("tensor {:?}", info.name),
                offset: info.data_start,
                problem: Problem::BadValue(format!(
                    "{} rows do not split into {} heads of an even row count",
                    info.n_rows(),
                    perm.n_head
                )),
            },
        )
    }

    /// The values as f32 in HF order.
    pub fn to_f32(&self) -> Result<Vec<f32>, GgufError> {
        let data = self.data_in_hf_order()?;
        let mut out = Vec::new();
        dequantize_blocks(self.tensor.info.ggml_type, &data, &mut out).map_err(|problem| {
            GgufError::Malformed {
                file: self.tensor.file.to_string(),
                subject: format!("tensor {:?}", self.tensor.info.name),
                offset: self.tensor.info.data_start,
                problem,
            }
        })?;
        Ok(out)
    }
}

impl GgufFile {
    /// Every tensor that has a Hugging Face name, with the permutation to undo where llama.cpp
    /// applied one (head counts from [`GgufFile::llama_config`]). Tensors with no HF
    /// counterpart (`rope_freqs.weight`) are left out; [`GgufFile::tensor`] still has them.
    pub fn hf_tensors(&self) -> Result<Vec<HfTensor<'_>>, GgufError> {
        let config = self.llama_config()?;
        let arch = config.model_type.as_str();
        Ok(self
            .tensors()
            .filter_map(|tensor| {
                let hf_name = hf_tensor_name(&tensor.info.name)?;
                let permutation = QkPermutation::for_tensor(
                    arch,
                    &tensor.info.name,
                    config.num_attention_heads,
                    config.num_key_value_heads,
                );
                Some(HfTensor { hf_name, tensor, permutation })
            })
            .collect())
    }
}
