//! The model layer's one error type: every way loading or running a model can fail, each naming
//! the file, tensor or cause.

/// Everything that can fail while loading, converting or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The GGUF file is malformed or unsupported.
    #[error(transparent)]
    Gguf(#[from] crate::gguf::GgufError),
    /// A safetensors file is malformed.
    #[error(transparent)]
    Safetensors(#[from] crate::safetensors::SafetensorsError),
    /// config.json is malformed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The tokenizer could not be built or used.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// A tensor the model needs is missing or has an unexpected shape or type.
    #[error("{file}: tensor {tensor}: {reason}")]
    Tensor {
        /// File name.
        file: String,
        /// Tensor name (Hugging Face naming).
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The model graph is invalid (a bug or an unsupported configuration).
    #[error(transparent)]
    Ir(#[from] tessera_ir::IrError),
    /// The compiler could not fit the model to the device.
    #[error(transparent)]
    Compile(#[from] tessera_compiler::CompileError),
    /// The GPU failed.
    #[error(transparent)]
    Runtime(#[from] tessera_runtime::RuntimeError),
    /// Anything else, with its cause.
    #[error("{0}")]
    Invalid(String),
}
