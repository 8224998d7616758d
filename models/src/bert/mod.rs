//! The BERT family as sentence encoders (all-MiniLM-L6-v2, BGE, E5, GTE and the like) on
//! tessera: safetensors weights with Hugging Face names, the encoder built in the IR with pooling
//! and normalization on the GPU, batched by (batch, length) buckets. Mirrors transformers'
//! `modeling_bert.py` (Devlin et al. 2018, "BERT") and sentence-transformers' `Transformer`,
//! `Pooling` and `Normalize` modules (Reimers & Gurevych 2019, "Sentence-BERT").

pub mod graph;
mod model;
pub mod weights;

pub use graph::{Activation, EncodeShape, Pooling, build_encoder};
pub use model::{BertModel, Embeddings, SentenceConfig, cosine};
pub use weights::BertWeights;
