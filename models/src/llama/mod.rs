//! The Llama family (Llama 2/3, SmolLM2, Qwen2, Mistral) on tessera: weights from GGUF (kept
//! quantized on the GPU), the decoder built in the IR, and generation. Mirrors transformers'
//! `modeling_llama.py`; the model card of each checkpoint cites its paper.

mod checkpoint;
pub mod dummy;
mod generate;
pub mod graph;
mod model;
pub mod weights;

pub use crate::ModelError;
pub use generate::{GenerateOptions, Generation, generate};
pub use model::{LlamaModel, ModelParts, StepOutput, prepare_weights, step_shapes};
pub(crate) use model::{cache_rows, stored_bytes, upload_weights};
