//! Any bytes: parse as GGUF, then touch everything a loader would (metadata accessors, config
//! mapping, tensor data, dequantization, HF names and row unpermuting, tokenizer building).
//! Must never panic, read out of bounds or allocate beyond the input's size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_models::gguf::{dequantize, hf_tensor_name, unpermute_rows, GgufFile};
use tessera_models::tokenizer::ModelTokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(gguf) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else { return };
    for entry in gguf.metadata() {
        let _ = gguf.get_u64(&entry.key);
        let _ = gguf.get_f64(&entry.key);
        let _ = gguf.get_str_array(&entry.key);
        let _ = gguf.get_int_array(&entry.key);
    }
    let config = gguf.llama_config();
    for tensor in gguf.tensors() {
        assert_eq!(tensor.data.len() as u64, tensor.info.byte_len);
        if let Ok(values) = dequantize(&tensor) {
            assert_eq!(values.len() as u64, tensor.info.n_elements());
        }
        let _ = hf_tensor_name(&tensor.info.name);
        if let Ok(config) = &config {
            let _ = unpermute_rows(tensor.data, tensor.info.row_bytes() as usize, config.num_attention_heads);
        }
    }
    let _ = gguf.hf_tensors();
    let _ = ModelTokenizer::from_gguf(&gguf);
});
