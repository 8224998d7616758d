//! GGUF architecture metadata (`{arch}.block_count`, ...) to the same [`LlamaConfig`] that
//! config.json gives, following llama.cpp's `llama-model.cpp` key names and defaults.

use super::GgufFile;
use super::error::{GgufError, Problem};
use crate::config::{LlamaConfig, RopeScaling, TokenIds};

/// Architectures that use the Llama key scheme and tensor layout.
const LLAMA_FAMILY: [(&str, &str); 3] =
    [("llama", "LlamaForCausalLM"), ("qwen2", "Qwen2ForCausalLM"), ("mistral", "MistralForCausalLM")];

impl GgufFile {
    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        let key = "general.architecture";
        self.get_str(key)?.ok_or_else(|| self.metadata_error(key, Problem::MissingKey))
    }

    /// The model's [`LlamaConfig`] from `{arch}.*` metadata (`llama`, `qwen2`, `mistral`).
    /// Embeddings are tied when the file has no `output.weight`.
    pub fn llama_config(&self) -> Result<LlamaConfig, GgufError> {
        let arch = self.architecture()?;
        let Some(&(_, hf_class)) = LLAMA_FAMILY.iter().find(|(name, _)| *name == arch) else {
            let problem = Problem::BadValue(format!("architecture {arch:?} is not in the Llama family"));
            return Err(self.metadata_error("general.architecture", problem));
        };
        let key = |suffix: &str| format!("{arch}.{suffix}");
        let required = |suffix: &str| -> Result<usize, GgufError> {
            let k = key(suffix);
            let value = self.get_u64(&k)?.ok_or_else(|| self.metadata_error(&k, Problem::MissingKey))?;
            usize::try_from(value).map_err(|_| self.metadata_error(&k, Problem::Overflow("value")))
        };
        let optional = |suffix: &str| -> Result<Option<usize>, GgufError> {
            let k = key(suffix);
            match self.get_u64(&k)? {
                None => Ok(None),
                Some(v) => usize::try_from(v)
                    .map(Some)
                    .map_err(|_| self.metadata_error(&k, Problem::Overflow("value"))),
            }
        };

        let hidden_size = required("embedding_length")?;
        let num_attention_heads = required("attention.head_count")?;
        let head_dim = match optional("attention.key_length")? {
            Some(d) => d,
            None => match optional("rope.dimension_count")? {
                Some(d) => d,
                None => hidden_size.checked_div(num_attention_heads).unwrap_or(0),
            },
        };
        let vocab_size = match optional("vocab_size")? {
            Some(v) => v,
            None => self.token_count()?,
        };
        let rope_scaling = self.rope_scaling(arch)?;
        let eps_key = key("attention.layer_norm_rms_epsilon");
        let config = LlamaConfig {
            model_type: arch.to_string(),
            architectures: Some(vec![hf_class.to_string()]),
            hidden_size,
            intermediate_size: required("feed_forward_length")?,
            num_hidden_layers: required("block_count")?,
            num_attention_heads,
            num_key_value_heads: optional("attention.head_count_kv")?.unwrap_or(num_attention_heads),
            head_dim,
            rms_norm_eps: self.get_f64(&eps_key)?.unwrap_or(1e-5),
            rope_theta: self.get_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0),
            rope_scaling,
            max_position_embeddings: self.get_u64(&key("context_length"))?.unwrap_or(2048),
            vocab_size,
            tie_word_embeddings: self.tensor("output.weight").is_none(),
            attention_bias: self.tensor("blk.0.attn_q.bias").is_some(),
            hidden_act: "silu".into(),
            bos_token_id: self.token_id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: self.token_id("tokenizer.ggml.eos_token_id")?.map(TokenIds::One),
            pad_token_id: self.token_id("tokenizer.ggml.padding_token_id")?,
            torch_dtype: None,
            sliding_window: optional("attention.sliding_window")?.map(|w| w as u64),
            quantization: None,
        };
        config
            .validate()
            .map_err(|problem| self.metadata_error(&key("block_count"), Problem::BadValue(problem)))?;
        Ok(config)
    }

    /// Number of entries in `tokenizer.ggml.tokens`.
    fn token_count(&self) -> Result<usize, GgufError> {
        let key = "tokenizer.ggml.tokens";
        let value = self.get(key).ok_or_else(|| self.metadata_error(key, Problem::MissingKey))?;
        let items = value
            .as_array()
            .ok_or_else(|| self.metadata_error(key, Problem::BadValue("expected an array".into())))?;
        Ok(items.len())
    }

    fn token_id(&self, key: &str) -> Result<Option<u32>, GgufError> {
        match self.get_u64(key)? {
            None => Ok(None),
            Some(id) => u32::try_from(id)
                .map(Some)
                .map_err(|_| self.metadata_error(key, Problem::Overflow("token id"))),
        }
    }

    /// `{arch}.rope.scaling.type` (`none`, `linear`, `yarn`), `.factor`,
    /// `.original_context_length`. llama3-style scaling is stored by llama.cpp as the
    /// `rope_freqs.weight` tensor instead, which this does not turn back into parameters.
    fn rope_scaling(&self, arch: &str) -> Result<Option<RopeScaling>, GgufError> {
        let type_key = format!("{arch}.rope.scaling.type");
        let factor = self.get_f64(&format!("{arch}.rope.scaling.factor"))?;
        let original = self.get_u64(&format!("{arch}.rope.scaling.original_context_length"))?;
        let rope_type = match self.get_str(&type_key)? {
            Some("none") | None => return Ok(None),
            Some(t) => t.to_string(),
        };
        Ok(Some(RopeScaling {
            rope_type,
            factor: factor.unwrap_or(1.0),
            low_freq_factor: None,
            high_freq_factor: None,
            original_max_position_embeddings: original,
        }))
    }
}
