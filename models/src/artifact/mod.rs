//! Ahead-of-time artifacts (`.tsr`): one versioned, checksummed file holding a Llama-family
//! model's config, tokenizer and chat template, its prepared weights (or a hash-checked reference
//! to the source model), and the compiled [`Plan`](tessera_compiler::Plan) of every step shape
//! for each capability tier. `compile-model --model` writes one; [`LlamaModel::load`] runs it
//! with no graph building, e-graph or codegen work, on the best tier the adapter satisfies.
//!
//! [`LlamaModel::load`]: crate::llama::LlamaModel::load
//!
//! ```no_run
//! use tessera_models::artifact::{ArtifactOptions, compile_artifact};
//! let report = compile_artifact(
//!     "SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(),
//!     "smollm2.tsr".as_ref(),
//!     &ArtifactOptions { max_context: Some(256), ..ArtifactOptions::default() },
//! )?;
//! println!("{} bytes, {} step shapes per tier", report.file_bytes, report.shapes);
//! # Ok::<(), tessera_models::ModelError>(())
//! ```

pub mod backends;
mod compile;
pub mod format;
mod load;
pub mod manifest;
pub mod tiers;

pub use compile::{ArtifactOptions, ArtifactReport, WeightsMode, compile_artifact};
pub(crate) use load::load_model;
pub use load::{choose_tier, is_artifact, read_manifest};
pub use manifest::Manifest;
