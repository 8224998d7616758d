//! The real SmolLM2-135M-Instruct Q4_1 GGUF from `$TESSERA_HOME`, and dequantization against
//! gguf-py (llama.cpp's Python package) via the golden file from scripts/golden_dequant.py.

mod common;

use serde_json::Value;
use tessera_models::gguf::{
    GgmlType, GgufFile, QkPermutation, dequantize, dequantize_blocks, hf_tensor_name, unpermute_rows,
};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/dequant.json")).expect("golden JSON")
}

fn type_named(name: &str) -> GgmlType {
    (0..40).filter_map(GgmlType::from_id).find(|t| t.name() == name).expect("known type")
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

#[test]
fn block_dequantization_matches_gguf_py() {
    let golden = golden();
    let blocks = golden["blocks"].as_array().expect("blocks");
    assert!(blocks.len() >= 11);
    for case in blocks {
        let ty = type_named(case["type"].as_str().expect("type"));
        let mut out = Vec::new();
        dequantize_blocks(ty, &hex_bytes(case["bytes"].as_str().expect("hex")), &mut out)
            .expect("dequantizes");
        let expected = floats(&case["values"]);
        assert_eq!(out.len(), expected.len(), "{ty}");
        for (i, (&got, &want)) in out.iter().zip(&expected).enumerate() {
            let tolerance = 1e-6 * want.abs().max(1e-3);
            assert!((f64::from(got) - want).abs() <= tolerance, "{ty}[{i}]: {got} vs {want}");
        }
    }
}

#[test]
fn smollm2_metadata_maps_to_its_config() {
    let Some(path) = common::real_model(common::SMOLLM2_GGUF) else { return };
    let gguf = GgufFile::open(&path).expect("opens");
    assert_eq!(gguf.version(), 3);
    assert_eq!(gguf.architecture().expect("arch"), "llama");
    let c = gguf.llama_config().expect("config");
    assert_eq!(c.num_hidden_layers, 30);
    assert_eq!(c.hidden_size, 576);
    assert_eq!(c.intermediate_size, 1536);
    assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.head_dim), (9, 3, 64));
    assert_eq!(c.vocab_size, 49152);
    assert_eq!(c.max_position_embeddings, 8192);
    assert_eq!(c.rope_theta, 100_000.0);
    assert!((c.rms_norm_eps - 1e-5).abs() < 1e-12);
    assert!(c.tie_word_embeddings, "SmolLM2 has no output.weight");
    assert!(!c.attention_bias);
    assert_eq!((c.bos_token_id, c.eos_token_ids()), (Some(1), vec![2]));

    let infos = gguf.tensor_infos();
    assert_eq!(infos.len(), 272);
    let count = |ty| infos.iter().filter(|t| t.ggml_type == ty).count();
    assert_eq!((count(GgmlType::Q4_1), count(GgmlType::F32), count(GgmlType::Q8_0)), (210, 61, 1));
    let embed = gguf.tensor("token_embd.weight").expect("embedding");
    assert_eq!(embed.info.ggml_type, GgmlType::Q8_0);
    assert_eq!(embed.info.shape(), vec![49152, 576]);
    let k = gguf.tensor("blk.0.attn_k.weight").expect("k");
    assert_eq!(k.info.shape(), vec![192, 576]);
    for info in infos {
        assert!(hf_tensor_name(&info.name).is_some(), "{} has an HF name", info.name);
    }
}

#[test]
fn smollm2_tensors_dequantize_like_gguf_py() {
    let Some(path) = common::real_model(common::SMOLLM2_GGUF) else { return };
    let gguf = GgufFile::open(&path).expect("opens");
    for case in golden()["smollm2_tensors"].as_array().expect("tensors") {
        let name = case["name"].as_str().expect("name");
        let values = dequantize(&gguf.tensor(name).expect("present")).expect("dequantizes");
        assert_eq!(values.len() as u64, case["n_elements"].as_u64().expect("count"), "{name}");
        for (got, want) in values.iter().zip(floats(&case["first"])) {
            assert!((f64::from(*got) - want).abs() <= 1e-6 * want.abs().max(1e-3), "{name}: {got} vs {want}");
        }
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let abs_sum: f64 = values.iter().map(|&v| f64::from(v).abs()).sum();
        let want_abs = case["abs_sum"].as_f64().expect("abs sum");
        assert!((abs_sum - want_abs).abs() <= 1e-6 * want_abs, "{name}: abs sum {abs_sum} vs {want_abs}");
        assert!((sum - case["sum"].as_f64().expect("sum")).abs() <= 1e-6 * want_abs, "{name}: sum");
    }
}

/// Unpermuting whole quantized rows then dequantizing equals dequantizing then unpermuting
/// f32 rows: the row mapping works on Q4_1 data without decoding it.
#[test]
fn smollm2_q_rows_unpermute_without_dequantizing() {
    let Some(path) = common::real_model(common::SMOLLM2_GGUF) else { return };
    let gguf = GgufFile::open(&path).expect("opens");
    let c = gguf.llama_config().expect("config");
    for name in ["blk.0.attn_q.weight", "blk.0.attn_k.weight"] {
        let t = gguf.tensor(name).expect("present");
        let perm = QkPermutation::for_tensor("llama", name, c.num_attention_heads, c.num_key_value_heads)
            .expect("llama q/k are permuted");
        let row_bytes = t.info.row_bytes() as usize;
        let quantized = unpermute_rows(t.data, row_bytes, perm.n_head).expect("divisible");
        let mut via_quantized = Vec::new();
        dequantize_blocks(t.info.ggml_type, &quantized, &mut via_quantized).expect("dequantizes");

        let f32_rows: Vec<u8> =
            dequantize(&t).expect("dequantizes").iter().flat_map(|v| v.to_le_bytes()).collect();
        let via_f32 =
            unpermute_rows(&f32_rows, t.info.row_len() as usize * 4, perm.n_head).expect("divisible");
        let via_f32: Vec<f32> =
            via_f32.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        assert_eq!(via_quantized, via_f32, "{name}");
    }
    assert!(QkPermutation::for_tensor("llama", "blk.0.attn_v.weight", 9, 3).is_none());
    assert!(QkPermutation::for_tensor("qwen2", "blk.0.attn_q.weight", 9, 3).is_none());
}

#[test]
fn smollm2_tensors_under_hugging_face_names() {
    let Some(path) = common::real_model(common::SMOLLM2_GGUF) else { return };
    let gguf = GgufFile::open(&path).expect("opens");
    let tensors = gguf.hf_tensors().expect("maps");
    assert_eq!(tensors.len(), 272);
    let find = |name: &str| tensors.iter().find(|t| t.hf_name == name).expect(name);
    assert_eq!(find("model.embed_tokens.weight").shape(), vec![49152, 576]);
    assert_eq!(find("model.layers.29.mlp.down_proj.weight").shape(), vec![576, 1536]);
    assert_eq!(find("model.layers.0.self_attn.q_proj.weight").permutation, Some(QkPermutation { n_head: 9 }));
    assert_eq!(find("model.layers.0.self_attn.k_proj.weight").permutation, Some(QkPermutation { n_head: 3 }));
    assert_eq!(find("model.layers.0.self_attn.v_proj.weight").permutation, None);
    assert!(tensors.iter().all(|t| t.hf_name != "lm_head.weight"), "tied embeddings");
    let norm = find("model.norm.weight").to_f32().expect("f32");
    assert_eq!(norm.len(), 576);
}
