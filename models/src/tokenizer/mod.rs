//! Tokenizers and chat templates: Hugging Face `tokenizers` loaded from `tokenizer.json` or built
//! from a GGUF's `tokenizer.ggml.*` metadata (as llama.cpp's `llama-vocab.cpp` reads it), chat
//! templates rendered with minijinja the way transformers' `apply_chat_template` renders them, and
//! a streaming detokenizer that only emits complete UTF-8.

mod chat_template;
mod from_gguf;
mod streaming;

use std::path::Path;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use from_gguf::{PreTokenizerKind, pre_tokenizer_for, tokenizer_json_from_gguf};
pub use streaming::StreamingDecoder;
pub use tokenizers::Tokenizer;

use crate::gguf::{GgufError, GgufFile};

/// An error loading a tokenizer or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file's path.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The GGUF's metadata is malformed or lacks what a tokenizer needs.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The `tokenizers` library rejected the tokenizer or an encode/decode call.
    #[error("{file}: tokenizer: {message}")]
    Tokenizers {
        /// The file the tokenizer came from.
        file: String,
        /// The library's message.
        message: String,
    },
    /// A config file is not valid JSON of the expected shape.
    #[error("{file}: {message}")]
    Config {
        /// The file's path.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The chat template failed to compile or render.
    #[error("chat template: {0}")]
    Template(String),
}

/// The ids a generator needs besides the tokenizer itself.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpecialTokens {
    /// Beginning-of-sequence id.
    pub bos: Option<u32>,
    /// End-of-sequence id.
    pub eos: Option<u32>,
    /// Padding id.
    pub pad: Option<u32>,
    /// Whether encoding prepends BOS (already configured in the tokenizer's post-processor).
    pub add_bos: bool,
    /// The BOS token's text (for chat templates).
    pub bos_text: Option<String>,
    /// The EOS token's text (for chat templates).
    pub eos_text: Option<String>,
}

/// A tokenizer with its special ids and chat template, from a model directory or a GGUF.
#[derive(Debug, Clone)]
pub struct ModelTokenizer {
    /// The Hugging Face tokenizer.
    pub tokenizer: Tokenizer,
    /// BOS/EOS/PAD ids and texts.
    pub special: SpecialTokens,
    /// The chat template, when the model has one.
    pub chat_template: Option<ChatTemplate>,
}

impl ModelTokenizer {
    /// Builds the tokenizer a GGUF describes (`tokenizer.ggml.model` = `gpt2`), with its special
    /// tokens and `tokenizer.chat_template`.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, TokenizerError> {
        from_gguf::model_tokenizer_from_gguf(gguf)
    }

    /// Loads `tokenizer.json` from a model directory, with special tokens and the chat template
    /// from `tokenizer_config.json` or `chat_template.jinja` when present.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let json_path = dir.join("tokenizer.json");
        let file = json_path.display().to_string();
        let tokenizer = Tokenizer::from_file(&json_path)
            .map_err(|e| TokenizerError::Tokenizers { file: file.clone(), message: e.to_string() })?;
        let config = read_tokenizer_config(&dir.join("tokenizer_config.json"))?;
        let token_text = |key: &str| -> Option<String> {
            match config.get(key)? {
                serde_json::Value::String(s) => Some(s.clone()),
                // `{"content": "<s>", ...}` (AddedToken form).
                serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
                _ => None,
            }
        };
        let bos_text = token_text("bos_token");
        let eos_text = token_text("eos_token");
        let pad_text = token_text("pad_token");
        let id = |text: &Option<String>| text.as_deref().and_then(|t| tokenizer.token_to_id(t));
        let special = SpecialTokens {
            bos: id(&bos_text),
            eos: id(&eos_text),
            pad: id(&pad_text),
            add_bos: config.get("add_bos_token").and_then(|v| v.as_bool()).unwrap_or(false),
            bos_text,
            eos_text,
        };
        let jinja_path = dir.join("chat_template.jinja");
        let template_source =
            if jinja_path.is_file() {
                Some(std::fs::read_to_string(&jinja_path).map_err(|source| TokenizerError::Io {
                    file: jinja_path.display().to_string(),
                    source,
                })?)
            } else {
                config.get("chat_template").and_then(|v| v.as_str()).map(str::to_string)
            };
        let chat_template = template_source.map(|source| ChatTemplate::new(source, &special));
        Ok(ModelTokenizer { tokenizer, special, chat_template })
    }

    /// `tokenizer_config.json` for this tokenizer: special token texts, `add_bos_token` and the
    /// chat template (what a converted model directory carries beside tokenizer.json).
    pub fn tokenizer_config_json(&self) -> serde_json::Value {
        let pad_text = self.special.pad.and_then(|id| self.tokenizer.id_to_token(id));
        let mut config = serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": self.special.add_bos,
            "bos_token": self.special.bos_text,
            "eos_token": self.special.eos_text,
            "pad_token": pad_text,
        });
        if let (Some(template), Some(object)) = (&self.chat_template, config.as_object_mut()) {
            object.insert("chat_template".into(), template.source().into());
        }
        config
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` into `dir`, which
    /// [`ModelTokenizer::from_dir`] reads back to the same tokenizer.
    pub fn save_to_dir(&self, dir: &Path) -> Result<(), TokenizerError> {
        let json_path = dir.join("tokenizer.json");
        self.tokenizer.save(&json_path, false).map_err(|e| TokenizerError::Tokenizers {
            file: json_path.display().to_string(),
            message: e.to_string(),
        })?;
        let config_path = dir.join("tokenizer_config.json");
        let text = serde_json::to_string_pretty(&self.tokenizer_config_json()).map_err(|e| {
            TokenizerError::Config { file: config_path.display().to_string(), message: e.to_string() }
        })?;
        std::fs::write(&config_path, text)
            .map_err(|source| TokenizerError::Io { file: config_path.display().to_string(), source })
    }

    /// Encodes `text`; special tokens written in the text (`<|im_start|>`) are recognized, and
    /// BOS is added when the model asks for it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| TokenizerError::Tokenizers { file: "<encode>".into(), message: e.to_string() })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes `ids` to text, dropping special tokens when `skip_special` is set.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, TokenizerError> {
        self.tokenizer
            .decode(ids, skip_special)
            .map_err(|e| TokenizerError::Tokenizers { file: "<decode>".into(), message: e.to_string() })
    }
}

/// `tokenizer_config.json` as a JSON object; empty when the file does not exist.
fn read_tokenizer_config(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>, TokenizerError> {
    if !path.is_file() {
        return Ok(serde_json::Map::new());
    }
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| TokenizerError::Io { file: file.clone(), source })?;
    serde_json::from_str(&text).map_err(|e| TokenizerError::Config { file, message: e.to_string() })
}
