//! tessera's model layer: loading Hugging Face and llama.cpp model files, tokenizers and chat
//! templates, the Llama family built in the IR, sampling and generation (BERT comes next).
//!
//! What each module mirrors:
//! - [`gguf`]: ggml's `gguf.cpp` and GGUF spec (v2/v3), `ggml-quants.c` dequantization, and
//!   llama.cpp's `convert_hf_to_gguf.py` tensor naming and q/k row permutation (undone here).
//! - [`safetensors`]: Hugging Face's `safetensors` format and its reader's validation rules.
//! - [`config`]: transformers' `LlamaConfig` / `BertConfig` (config.json) and its RoPE
//!   initialisation (`_compute_llama3_parameters`).
//! - [`artifact`]: nothing upstream; a `.tsr` file is tessera's own compiled model (see its docs).
//! - [`tokenizer`]: Hugging Face `tokenizers`; GGUF vocabularies as llama.cpp's
//!   `llama-vocab.cpp` reads them; chat templates as transformers' `apply_chat_template`.
//!
//! ```no_run
//! use tessera_models::{gguf::GgufFile, tokenizer::ModelTokenizer};
//! let gguf = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf".as_ref())?;
//! let config = gguf.llama_config()?;
//! let tokenizer = ModelTokenizer::from_gguf(&gguf)?;
//! let ids = tokenizer.encode("Hello")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifact;
pub mod bert;
pub mod config;
pub mod convert;
mod error;
mod file_bytes;
pub mod gguf;
pub mod llama;
pub mod safetensors;
pub mod sample;
pub mod tokenizer;

pub use config::{BertConfig, ConfigError, LlamaConfig};
pub use error::ModelError;
pub use file_bytes::FileBytes;

/// `$TESSERA_HOME`, or `~/.cache/tessera` when unset: where models are cached.
pub fn tessera_home() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("TESSERA_HOME") {
        return home.into();
    }
    let user_home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    std::path::PathBuf::from(user_home).join(".cache").join("tessera")
}
