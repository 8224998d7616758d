//! tessera's model layer: loading Hugging Face and llama.cpp model files, tokenizers and chat
//! templates, the Llama and BERT families built in the IR, and generation (KV cache, sampling,
//! streaming). Filled in by the Llama and BERT issues.
