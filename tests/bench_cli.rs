//! CLI tier: `tessera bench` on dummy weights of a two-layer Llama (lavapipe on CI), so the
//! benchmark the results tables come from keeps running and reporting what it claims.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Two layers, GQA (8 query heads over 2), tied embeddings: seconds on lavapipe.
const TINY_LLAMA: &str = r#"{"model_type": "llama", "architectures": ["LlamaForCausalLM"],
 "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 8,
 "num_key_value_heads": 2, "head_dim": 32, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
 "max_position_embeddings": 4096, "vocab_size": 1024, "tie_word_embeddings": true}"#;

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-bench-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn bench(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("bench")
        .args(args)
        .env("TESSERA_HOME", home)
        .env_remove("TESSERA_PROFILE")
        .output()
        .expect("run tessera")
}

#[test]
fn bench_reports_decode_and_prefill_of_dummy_weights() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch_dir("report");
    let config = dir.join("config.json");
    std::fs::write(&config, TINY_LLAMA).expect("write config");
    let config = config.to_str().expect("utf-8 path");
    let common = ["--config", config, "--dummy-weights", "--no-kernels", "--warmup-ms", "0"];
    let run = |extra: &[&str]| bench(&[&common[..], extra].concat(), &dir);

    let out = run(&["--quant", "q4", "--prefill", "8", "--decode-tokens", "4", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let model = &report["model"];
    let decode = model["decode_tok_s"].as_f64().expect("decode_tok_s");
    assert!(decode.is_finite() && decode > 0.0, "{model}");
    assert_eq!(model["prefill"][0]["tokens"], 8);
    assert!(model["prefill"][0]["tok_s"].as_f64().is_some_and(|t| t > 0.0), "{model}");
    // The fused decode step: embedding gather, per layer qkv (writing v to its cache), the
    // key's cache write, attention, o, gate_up, down; logits and argmax. The rotary table is
    // recomputed inside the two kernels applying RoPE.
    assert_eq!(model["dispatches_per_token"], 6 * 2 + 3, "{model}");
    // q4 weights stream 0.5 byte per value plus an f16 scale and bias per 32: at least 0.625
    // byte per parameter of the two layers' seven projections.
    let per_layer = 2 * 256 * 256 + 2 * 256 * 64 + 3 * 256 * 512;
    let bytes = model["bytes_per_token"].as_u64().expect("bytes_per_token");
    assert!(bytes as f64 >= 0.625 * (2 * per_layer) as f64, "{bytes}");
    let gb_s = model["decode_gb_s"].as_f64().expect("decode_gb_s");
    assert!((gb_s - bytes as f64 * decode / 1e9).abs() <= 1e-9 * gb_s.max(1.0), "{model}");
    // Without the kernel rows there is no copy bandwidth to compare with.
    assert!(report.get("copy_gb_s").is_none() && model.get("percent_of_copy").is_none());

    // The human report names what it measured.
    let out = run(&["--quant", "f16", "--prefill", "4", "--decode-tokens", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(dummy f16)") && text.contains("decode ") && text.contains("dispatches/token"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_of_a_missing_config_fails_with_its_path() {
    let dir = scratch_dir("missing");
    let missing = dir.join("no-such-config.json");
    let out = bench(&["--config", missing.to_str().expect("utf-8"), "--dummy-weights", "--no-kernels"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-config.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
