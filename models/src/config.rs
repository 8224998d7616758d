//! `config.json` as serde structs, as transformers' `LlamaConfig` (also read for SmolLM2, Qwen2
//! and Mistral checkpoints) and `BertConfig` define them, with transformers' defaults.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// An error reading a `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file's path.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The JSON does not match the config schema.
    #[error("{file}: {source}")]
    Json {
        /// The file's path.
        file: String,
        /// serde's message (line and column included).
        #[source]
        source: serde_json::Error,
    },
    /// Values that parse but cannot describe a model.
    #[error("{file}: {problem}")]
    Invalid {
        /// The file's path.
        file: String,
        /// What is wrong.
        problem: String,
    },
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: file.clone(), source })?;
    serde_json::from_str(&text).map_err(|source| ConfigError::Json { file, source })
}

/// One token id or several (`eos_token_id` is a list in Llama 3 configs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

impl TokenIds {
    /// The ids as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// `rope_scaling` in config.json. `rope_type` is also spelled `type` in older configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// `"llama3"`, `"linear"`, `"default"`, or a type tessera does not implement (`"yarn"`).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Scale factor.
    #[serde(default = "one")]
    pub factor: f64,
    /// llama3: wavelengths longer than `original_max_position_embeddings / low_freq_factor` are
    /// divided by `factor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    /// llama3: wavelengths shorter than `original_max_position_embeddings / high_freq_factor`
    /// are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    /// llama3: the context length the model was pre-trained with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<u64>,
}

/// MLX-style `quantization` block: affine quantization with a scale and bias per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantizationConfig {
    /// Weights per group sharing a scale and bias (32, 64, 128).
    pub group_size: u32,
    /// Bits per weight (4 or 8).
    pub bits: u32,
}

fn one() -> f64 {
    1.0
}
fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_max_position_embeddings() -> u64 {
    2048
}
fn default_hidden_act() -> String {
    "silu".into()
}
fn default_model_type() -> String {
    "llama".into()
}

/// config.json as read, before defaults that depend on other fields are filled in.
#[derive(Deserialize)]
struct LlamaConfigJson {
    #[serde(default = "default_model_type")]
    model_type: String,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    rope_theta: f64,
    #[serde(default)]
    rope_scaling: Option<RopeScaling>,
    #[serde(default = "default_max_position_embeddings")]
    max_position_embeddings: u64,
    vocab_size: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: Option<bool>,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    #[serde(default)]
    bos_token_id: Option<u32>,
    #[serde(default)]
    eos_token_id: Option<TokenIds>,
    #[serde(default)]
    pad_token_id: Option<u32>,
    #[serde(default)]
    torch_dtype: Option<String>,
    #[serde(default)]
    sliding_window: Option<u64>,
    #[serde(default)]
    quantization: Option<QuantizationConfig>,
}

/// A Llama-family decoder's config.json (Llama 2/3, SmolLM, Qwen2, Mistral), with every default
/// resolved: `num_key_value_heads` defaults to the head count, `head_dim` to
/// `hidden_size / num_attention_heads`, Qwen2's q/k/v bias is `attention_bias`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "LlamaConfigJson")]
pub struct LlamaConfig {
    /// `"llama"`, `"qwen2"`, `"mistral"`.
    pub model_type: String,
    /// `["LlamaForCausalLM"]` and the like.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// Residual stream width.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base (10000 for Llama 2, 500000 for Llama 3, 100000 for SmolLM2-135M).
    pub rope_theta: f64,
    /// RoPE scaling, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    /// Context length the model supports.
    pub max_position_embeddings: u64,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// `lm_head` shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// q/k/v projections have biases (Qwen2 always; Llama when `attention_bias` is set, which
    /// also gives o_proj a bias — see [`LlamaConfig::o_proj_bias`]).
    pub attention_bias: bool,
    /// MLP activation (`"silu"`).
    pub hidden_act: String,
    /// Beginning-of-sequence token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIds>,
    /// Padding token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// Checkpoint dtype (`"bfloat16"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
    /// Mistral's sliding attention window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<u64>,
    /// MLX-style quantization of the weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantizationConfig>,
}

impl From<LlamaConfigJson> for LlamaConfig {
    fn from(raw: LlamaConfigJson) -> Self {
        let qwen2 = raw.model_type == "qwen2";
        let head_dim =
            raw.head_dim.unwrap_or_else(|| raw.hidden_size.checked_div(raw.num_attention_heads).unwrap_or(0));
        LlamaConfig {
            attention_bias: raw.attention_bias.unwrap_or(qwen2),
            rope_theta: raw.rope_theta,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            head_dim,
            model_type: raw.model_type,
            architectures: raw.architectures,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            rms_norm_eps: raw.rms_norm_eps,
            rope_scaling: raw.rope_scaling,
            max_position_embeddings: raw.max_position_embeddings,
            vocab_size: raw.vocab_size,
            tie_word_embeddings: raw.tie_word_embeddings,
            hidden_act: raw.hidden_act,
            bos_token_id: raw.bos_token_id,
            eos_token_id: raw.eos_token_id,
            pad_token_id: raw.pad_token_id,
            torch_dtype: raw.torch_dtype,
            sliding_window: raw.sliding_window,
            quantization: raw.quantization,
        }
    }
}

impl LlamaConfig {
    /// Reads and validates a config.json.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let config: Self = read_json(path)?;
        config
            .validate()
            .map_err(|problem| ConfigError::Invalid { file: path.display().to_string(), problem })?;
        Ok(config)
    }

    /// Checks the sizes describe a buildable model (heads divide evenly, nothing zero).
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", self.vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0"));
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return Err(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!("head_dim {} is odd; RoPE rotates pairs", self.head_dim));
        }
        Ok(())
    }

    /// Whether `o_proj` has a bias (Llama's `attention_bias`; Qwen2 has none on o_proj).
    pub fn o_proj_bias(&self) -> bool {
        self.attention_bias && self.model_type != "qwen2"
    }

    /// The end-of-sequence ids (empty when the config names none).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        self.eos_token_id.as_ref().map(TokenIds::to_vec).unwrap_or_default()
    }

    /// RoPE inverse frequencies for the `head_dim / 2` rotated pairs, as transformers'
    /// `ROPE_INIT_FUNCTIONS` compute them: `theta^(-2i/d)`, then `linear` divides by the
    /// factor and `llama3` applies `_compute_llama3_parameters`. Computed in f64.
    pub fn rope_inv_freq(&self) -> Result<Vec<f64>, String> {
        let dim = self.head_dim as f64;
        let base: Vec<f64> =
            (0..self.head_dim / 2).map(|i| 1.0 / self.rope_theta.powf((2 * i) as f64 / dim)).collect();
        let Some(scaling) = &self.rope_scaling else {
            return Ok(base);
        };
        match scaling.rope_type.as_str() {
            "default" => Ok(base),
            "linear" => Ok(base.iter().map(|f| f / scaling.factor).collect()),
            "llama3" => llama3_inv_freq(&base, scaling),
            other => Err(format!("rope_scaling type {other:?} is not supported (default, linear, llama3)")),
        }
    }
}

/// transformers' `_compute_llama3_parameters`.
fn llama3_inv_freq(inv_freq: &[f64], scaling: &RopeScaling) -> Result<Vec<f64>, String> {
    let missing = |k: &str| format!("llama3 rope_scaling needs {k}");
    let factor = scaling.factor;
    let low_freq_factor = scaling.low_freq_factor.ok_or_else(|| missing("low_freq_factor"))?;
    let high_freq_factor = scaling.high_freq_factor.ok_or_else(|| missing("high_freq_factor"))?;
    let old_context_len = scaling
        .original_max_position_embeddings
        .ok_or_else(|| missing("original_max_position_embeddings"))? as f64;
    let low_freq_wavelen = old_context_len / low_freq_factor;
    let high_freq_wavelen = old_context_len / high_freq_factor;
    Ok(inv_freq
        .iter()
        .map(|&freq| {
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            if wavelen < high_freq_wavelen {
                freq
            } else if wavelen > low_freq_wavelen {
                freq / factor
            } else {
                let smooth =
                    (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                (1.0 - smooth) * freq / factor + smooth * freq
            }
        })
        .collect())
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_bert_act() -> String {
    "gelu".into()
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_bert_positions() -> usize {
    512
}

/// A BERT encoder's config.json (all-MiniLM-L6-v2 and the like), as transformers' `BertConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Hidden width.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward inner width.
    pub intermediate_size: usize,
    /// Feed-forward activation (`"gelu"`: the erf form).
    #[serde(default = "default_bert_act")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Learned position embeddings.
    #[serde(default = "default_bert_positions")]
    pub max_position_embeddings: usize,
    /// Token type (segment) embeddings.
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: u32,
}

impl BertConfig {
    /// Reads a config.json.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        read_json(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LlamaConfig {
        serde_json::from_str(json).expect("valid config")
    }

    #[test]
    fn defaults_follow_transformers() {
        let c = parse(
            r#"{"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
            "num_attention_heads":4,"vocab_size":100,"eos_token_id":[1,2]}"#,
        );
        assert_eq!((c.num_key_value_heads, c.head_dim), (4, 16));
        assert_eq!((c.rope_theta, c.rms_norm_eps), (10_000.0, 1e-6));
        assert!(!c.tie_word_embeddings && !c.attention_bias);
        assert_eq!(c.eos_token_ids(), vec![1, 2]);
        let q = parse(
            r#"{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,
            "eos_token_id":7}"#,
        );
        assert!(q.attention_bias && !q.o_proj_bias());
        assert_eq!(q.eos_token_ids(), vec![7]);
    }

    #[test]
    fn serialization_round_trips() {
        let c = parse(
            r#"{"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
            "num_attention_heads":4,"vocab_size":100,"quantization":{"group_size":64,"bits":4},
            "rope_scaling":{"type":"linear","factor":2.0}}"#,
        );
        let again: LlamaConfig =
            serde_json::from_str(&serde_json::to_string(&c).expect("serializes")).expect("parses");
        assert_eq!(c, again);
        assert_eq!(c.quantization, Some(QuantizationConfig { group_size: 64, bits: 4 }));
        assert_eq!(c.rope_inv_freq().expect("linear")[0], 0.5);
    }

    /// Llama 3.1 8B's rope: values from transformers' `_compute_llama3_parameters` (float32).
    #[test]
    fn llama3_rope_matches_transformers() {
        let c = parse(
            r#"{"hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
            "num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"rope_theta":500000.0,
            "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
            "original_max_position_embeddings":8192,"rope_type":"llama3"}}"#,
        );
        let f = c.rope_inv_freq().expect("llama3");
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0);
        // High frequencies kept, low ones divided by 8, the middle smoothed.
        let base = |i: usize| 1.0 / 500000f64.powf(2.0 * i as f64 / 128.0);
        assert!((f[10] - base(10)).abs() < 1e-12);
        assert!((f[63] - base(63) / 8.0).abs() < 1e-15);
        let wavelen = 2.0 * std::f64::consts::PI / base(30);
        assert!(wavelen > 2048.0 && wavelen < 8192.0, "index 30 is in the smoothed band");
        let smooth = (8192.0 / wavelen - 1.0) / 3.0;
        assert!((f[30] - ((1.0 - smooth) * base(30) / 8.0 + smooth * base(30))).abs() < 1e-15);
    }
}
