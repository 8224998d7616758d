//! The manifest: everything in an artifact besides the weight bytes, as serde data (JSON in the
//! file): the model's config and tokenizer, how it was compiled, its weights (embedded or a
//! reference), and per capability tier the plan of every step shape.

use super::backends::BackendReport;
use crate::config::LlamaConfig;
use crate::llama::graph::StepShape;
use crate::tokenizer::{ChatTemplate, ModelTokenizer, SpecialTokens, Tokenizer};
use crate::{ModelError, tokenizer::TokenizerError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::str::FromStr;
use tessera_compiler::{DeviceProfile, Plan};
use tessera_ir::DType;

/// What a `.tsr` file describes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The tessera release that wrote it (also in the header).
    pub tessera_version: String,
    /// The layout version (also in the header).
    pub format_version: u32,
    /// Display name of the source model (file or directory name).
    pub model_name: String,
    /// The architecture.
    pub config: LlamaConfig,
    /// Tokenizer, special tokens and chat template.
    pub tokenizer: TokenizerRecord,
    /// Rows of the KV cache every plan was compiled for.
    pub max_context: usize,
    /// How the plans were compiled, for the record (`--no-fuse`, `--no-rules`, `--quantize`).
    pub compiled_with: CompiledWith,
    /// The prepared weights: embedded in the file or read from the source model.
    pub weights: WeightsRecord,
    /// Capability tiers, best first: the runtime takes the first one the adapter satisfies.
    pub tiers: Vec<TierRecord>,
}

/// The switches the plans were compiled with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledWith {
    /// Fusion on.
    pub fuse: bool,
    /// Rule sets switched off.
    pub no_rules: Vec<String>,
    /// Bits float linear layers were quantized to (`--quantize`), if any.
    pub quantize: Option<u32>,
}

/// The tokenizer as Hugging Face `tokenizer.json` text, with what `ModelTokenizer` keeps beside it.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenizerRecord {
    /// `tokenizer.json`.
    pub tokenizer_json: String,
    /// Special ids and texts (stored as top-level fields of the record).
    #[serde(flatten)]
    pub special: SpecialTokens,
    /// Chat template source (Jinja).
    pub chat_template: Option<String>,
}

impl TokenizerRecord {
    /// The record of `tokenizer`.
    pub fn of(tokenizer: &ModelTokenizer) -> Result<TokenizerRecord, ModelError> {
        let tokenizer_json = tokenizer
            .tokenizer
            .to_string(false)
            .map_err(|e| TokenizerError::Tokenizers { file: "<artifact>".into(), message: e.to_string() })?;
        Ok(TokenizerRecord {
            tokenizer_json,
            special: tokenizer.special.clone(),
            chat_template: tokenizer.chat_template.as_ref().map(|t| t.source().to_string()),
        })
    }

    /// The tokenizer back, as it was when recorded.
    pub fn to_model_tokenizer(&self, file: &str) -> Result<ModelTokenizer, ModelError> {
        let tokenizer = Tokenizer::from_str(&self.tokenizer_json)
            .map_err(|e| TokenizerError::Tokenizers { file: file.into(), message: e.to_string() })?;
        let special = self.special.clone();
        let chat_template = self.chat_template.clone().map(|source| ChatTemplate::new(source, &special));
        Ok(ModelTokenizer { tokenizer, special, chat_template })
    }
}

/// One prepared parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamRecord {
    /// Graph name (`model.layers.0.self_attn.qkv_proj.weight`).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte length.
    pub bytes: u64,
    /// Offset in the weights section (embedded weights only).
    pub offset: Option<u64>,
}

/// Where the weights are.
#[derive(Debug, Serialize, Deserialize)]
pub enum WeightsRecord {
    /// In this file's weights section.
    Embedded {
        /// BLAKE3 (hex) of the weights section.
        blake3: String,
        /// Every parameter, at its offset.
        params: Vec<ParamRecord>,
    },
    /// Read from the source model at load and prepared again (the same preparation as compile).
    Reference {
        /// The source model (absolute path when it could be resolved).
        source: PathBuf,
        /// BLAKE3 (hex) of the source's weight files, checked at load.
        blake3: String,
        /// Every parameter preparation must produce (names, types, shapes, lengths).
        params: Vec<ParamRecord>,
    },
}

/// One capability tier: the device profile its plans were compiled for, how its kernels fared
/// in translation to each backend, and the plan of every step shape.
#[derive(Debug, Serialize, Deserialize)]
pub struct TierRecord {
    /// `full`, `portable`, ...
    pub name: String,
    /// What the plans assume of the adapter.
    pub profile: DeviceProfile,
    /// naga's translation of every distinct kernel to SPIR-V, MSL and HLSL.
    pub backends: BackendReport,
    /// The plans.
    pub steps: Vec<StepRecord>,
}

/// The plan of one step shape.
#[derive(Debug, Serialize, Deserialize)]
pub struct StepRecord {
    /// Tokens per step (1: decode).
    pub seq: usize,
    /// Whether the step also outputs logits.
    pub logits: bool,
    /// Leading cache rows the step's attention reads, where fewer than all (a short decode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attend: Option<usize>,
    /// The compiled plan.
    pub plan: Plan,
}

impl StepRecord {
    /// The step shape, with the artifact's cache rows.
    pub fn shape(&self, max_context: usize) -> StepShape {
        let mut shape = StepShape::new(self.seq, max_context, self.logits);
        if let Some(attend) = self.attend {
            shape.attend = attend.min(max_context);
        }
        shape
    }
}
