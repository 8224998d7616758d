//! `.tsr` artifacts of a tiny random Llama written as a Hugging Face directory: the artifact
//! generates exactly the tokens the JIT path does on the same tier (embedded and referenced
//! weights), keeps the tokenizer and chat template, and damaged, foreign or incomplete files are
//! refused with one-line errors.

mod common;
use common::gpu;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_compiler::DeviceProfile;
use tessera_ir::DType;
use tessera_models::artifact::tiers::{fits, tier_profile};
use tessera_models::artifact::{ArtifactOptions, WeightsMode, compile_artifact, format, read_manifest};
use tessera_models::llama::{GenerateOptions, LlamaModel, generate};
use tessera_models::safetensors::{Dtype, TensorView, write_safetensors};
use tessera_models::sample::SamplerConfig;
use tessera_models::tokenizer::{ChatMessage, ChatTemplate, ModelTokenizer, SpecialTokens};
use tessera_runtime::Gpu;

const CONFIG: &str = r#"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0, "max_position_embeddings": 32, "vocab_size": 101, "tie_word_embeddings": true}"#;
const TEMPLATE: &str = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
const PROMPT: [u32; 5] = [5, 17, 42, 99, 3];

/// A tiny Llama as a Hugging Face directory: config.json, f32 safetensors, a word-level
/// tokenizer `t0`..`t100` with EOS `t2` and a chat template.
fn tiny_model_dir(dir: &Path) -> PathBuf {
    let model = dir.join("tiny-llama");
    std::fs::create_dir_all(&model).expect("model dir");
    std::fs::write(model.join("config.json"), CONFIG).expect("config.json");
    let mut rng = StdRng::seed_from_u64(7);
    let (h, i, hq, hkv, d, vocab) = (64, 96, 4, 2, 16, 101);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut norms: Vec<String> = Vec::new();
    let mut random = |name: String, shape: Vec<usize>, scale: f32| {
        let n = shape.iter().product();
        let values = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
        tensors.push((name, shape, values));
    };
    random("model.embed_tokens.weight".into(), vec![vocab, h], 1.0);
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        random(format!("{p}.self_attn.q_proj.weight"), vec![hq * d, h], 0.2);
        random(format!("{p}.self_attn.k_proj.weight"), vec![hkv * d, h], 0.2);
        random(format!("{p}.self_attn.v_proj.weight"), vec![hkv * d, h], 0.2);
        random(format!("{p}.self_attn.o_proj.weight"), vec![h, hq * d], 0.2);
        random(format!("{p}.mlp.gate_proj.weight"), vec![i, h], 0.2);
        random(format!("{p}.mlp.up_proj.weight"), vec![i, h], 0.2);
        random(format!("{p}.mlp.down_proj.weight"), vec![h, i], 0.2);
        norms.push(format!("{p}.input_layernorm.weight"));
        norms.push(format!("{p}.post_attention_layernorm.weight"));
    }
    norms.push("model.norm.weight".into());
    tensors.extend(norms.into_iter().map(|name| (name, vec![h], vec![1.0; h])));
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| (name.as_str(), TensorView { dtype: Dtype::F32, shape, data }))
        .collect();
    write_safetensors(&model.join("model.safetensors"), &views, &BTreeMap::new()).expect("safetensors");

    let vocab = (0..101u32).map(|id| (format!("t{id}"), id)).collect();
    let word_level = tokenizers::models::wordlevel::WordLevel::builder()
        .vocab(vocab)
        .unk_token("t0".into())
        .build()
        .expect("vocab");
    let mut tokenizer = tokenizers::Tokenizer::new(word_level);
    tokenizer.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
    let special = SpecialTokens { eos: Some(2), eos_text: Some("t2".into()), ..SpecialTokens::default() };
    let chat_template = Some(ChatTemplate::new(TEMPLATE.into(), &special));
    ModelTokenizer { tokenizer, special, chat_template }.save_to_dir(&model).expect("tokenizer");
    model
}

fn gpu_arc() -> Option<Arc<Gpu>> {
    gpu().map(Arc::new)
}

/// Greedy tokens after `PROMPT`, through `generate`.
fn greedy(model: &mut LlamaModel, tokens: usize) -> Vec<u32> {
    let options = GenerateOptions {
        max_tokens: tokens,
        sampler: SamplerConfig::default(),
        top_logprobs: 0,
        stop_ids: Vec::new(),
    };
    generate(model, &PROMPT, &options, |_| {}).expect("generates").generated_ids
}

fn compile(source: &Path, out: &Path, weights: WeightsMode, tiers: &[&str]) {
    let options = ArtifactOptions {
        weights,
        tiers: tiers.iter().map(|t| t.to_string()).collect(),
        ..ArtifactOptions::default()
    };
    let report = compile_artifact(source, out, &options).expect("artifact compiles");
    assert_eq!(report.max_context, 32);
    assert_eq!(report.shapes, 6, "seq 16, 32 and 1, each with and without logits");
    for (tier, backends) in &report.tiers {
        assert!(backends.kernels > 0 && backends.failures.is_empty(), "tier {tier}: {backends:?}");
    }
}

/// The first of `tiers` whose profile `adapter` satisfies.
fn best_fitting<'a>(tiers: &[&'a str], adapter: &DeviceProfile) -> &'a str {
    let fitting = tiers.iter().find(|t| fits(&tier_profile(t).expect("known tier"), adapter).is_ok());
    fitting.expect("portable fits every adapter")
}

/// The JIT model on a device narrowed to the tier the artifact model runs, so both compile the
/// same plans and must agree token for token.
fn jit_tokens(source: &Path, tier: &str, tokens: usize) -> Vec<u32> {
    let mut device = gpu().expect("gpu");
    device.restrict_to(&tier_profile(tier).expect("known tier"));
    let mut jit = LlamaModel::load(source, Arc::new(device), None).expect("JIT model loads");
    assert_eq!(jit.artifact_tier(), None);
    greedy(&mut jit, tokens)
}

#[test]
fn artifacts_generate_the_jit_tokens_with_embedded_and_referenced_weights() {
    let Some(device) = gpu_arc() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let source = tiny_model_dir(dir.path());
    let mut jit_by_tier = HashMap::new();
    for (mode, tiers) in [
        (WeightsMode::Embed, vec!["subgroup32", "full", "portable"]),
        (WeightsMode::Reference, vec!["full", "portable"]),
        (WeightsMode::Embed, vec!["portable"]),
    ] {
        let out = dir.path().join(format!("tiny-{mode:?}-{}.tsr", tiers.len()));
        compile(&source, &out, mode, &tiers);
        let mut model = LlamaModel::load(&out, device.clone(), None).expect("artifact loads");
        let tier = model.artifact_tier().expect("runs the artifact's plans").to_string();
        assert_eq!(tier, best_fitting(&tiers, device.profile()), "{mode:?}: best tier that fits");
        assert_eq!(model.max_context(), 32);
        let ours = greedy(&mut model, 12);
        let theirs = jit_by_tier.entry(tier.clone()).or_insert_with(|| jit_tokens(&source, &tier, 12));
        assert_eq!(&ours, theirs, "{mode:?} artifact vs JIT on tier {tier}");
        assert_eq!(ours.len(), 12);

        // Tokenizer, special tokens and chat template come back as they were.
        assert_eq!(model.tokenizer.encode("t5 t17 nope").expect("encodes"), [5, 17, 0]);
        assert_eq!(model.tokenizer.special.eos, Some(2));
        let template = model.tokenizer.chat_template.as_ref().expect("chat template kept");
        assert_eq!(template.render(&[ChatMessage::new("user", "hi")], false).expect("renders"), "<user>hi");
    }

    // A referenced source that changed is refused.
    let out = dir.path().join("tiny-Reference-2.tsr");
    let config = source.join("config.json");
    std::fs::write(&config, CONFIG.replace("1e-5", "1e-6")).expect("edit config");
    let err = LlamaModel::load(&out, device.clone(), None).err().expect("changed source refused").to_string();
    assert!(err.contains("changed since the artifact was compiled"), "{err}");
}

/// An artifact for more than 256 cache rows carries the short decode plans too (their `attend`
/// recorded) and decodes across position 256 exactly as the JIT model does.
#[test]
fn long_context_artifacts_carry_the_short_decode_plans() {
    let Some(device) = gpu_arc() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let source = tiny_model_dir(dir.path());
    let config = CONFIG.replace("\"max_position_embeddings\": 32", "\"max_position_embeddings\": 512");
    std::fs::write(source.join("config.json"), config).expect("longer context");
    let out = dir.path().join("long.tsr");
    let options = ArtifactOptions {
        max_context: Some(300),
        tiers: vec!["portable".into()],
        ..ArtifactOptions::default()
    };
    let report = compile_artifact(&source, &out, &options).expect("artifact compiles");
    assert_eq!(report.shapes, 16, "seq 16 to 256 and 300, decode and short decode, with and without logits");
    let manifest = read_manifest(&out).expect("manifest");
    let short: Vec<_> = manifest.tiers[0].steps.iter().filter_map(|s| s.attend.map(|a| (s.seq, a))).collect();
    assert_eq!(short, [(1, 256), (1, 256)]);

    let prompt: Vec<u32> = (0..250).map(|i| 3 + (i * 7 % 90) as u32).collect();
    let decode = |model: &mut LlamaModel| -> Vec<u32> {
        let first = model.prefill(&prompt, false).expect("prefill").next;
        let mut tokens = Vec::new();
        let on_token = |t| {
            tokens.push(t);
            true
        };
        model.decode_greedy(first, prompt.len(), 12, on_token).expect("decodes");
        tokens
    };
    let mut artifact = LlamaModel::load(&out, device, None).expect("artifact loads");
    assert_eq!(artifact.max_context(), 300);
    let mut restricted = gpu().expect("gpu");
    restricted.restrict_to(&tier_profile("portable").expect("known tier"));
    let mut jit = LlamaModel::load(&source, Arc::new(restricted), Some(300)).expect("JIT model loads");
    let ours = decode(&mut artifact);
    assert_eq!(ours.len(), 12);
    assert_eq!(ours, decode(&mut jit), "artifact vs JIT greedy tokens across position 256");
}

#[test]
fn quantize_turns_float_linears_into_affine_codes() {
    let Some(device) = gpu_arc() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let source = tiny_model_dir(dir.path());
    let out = dir.path().join("q8.tsr");
    let options =
        ArtifactOptions { quantize: Some(8), tiers: vec!["portable".into()], ..ArtifactOptions::default() };
    compile_artifact(&source, &out, &options).expect("quantized artifact compiles");
    let manifest = read_manifest(&out).expect("manifest");
    let tessera_models::artifact::manifest::WeightsRecord::Embedded { params, .. } = &manifest.weights else {
        panic!("weights embedded by default")
    };
    let dtype_of = |name: &str| params.iter().find(|p| p.name == name).map(|p| p.dtype);
    assert_eq!(dtype_of("model.layers.0.mlp.down_proj.weight"), Some(DType::U32));
    let float_matrices: Vec<&str> = params
        .iter()
        .filter(|p| p.dtype.is_float() && p.shape.len() == 2 && p.shape[0] > 1)
        .filter(|p| !p.name.ends_with(".scales") && !p.name.ends_with(".biases"))
        .map(|p| p.name.as_str())
        .collect();
    assert!(float_matrices.is_empty(), "every float matrix is quantized: {float_matrices:?}");
    assert_eq!(dtype_of("model.embed_tokens.weight"), Some(DType::U32));
    // 8-bit codes of these weights stay close: the first greedy token agrees with the float JIT.
    let mut model = LlamaModel::load(&out, device, None).expect("loads");
    let ours = greedy(&mut model, 4);
    assert_eq!(ours.len(), 4);
    assert_eq!(ours[0], jit_tokens(&source, "portable", 1)[0]);
}

/// Rewrites the artifact at `path` with `edit` applied to its bytes and the checksum made valid
/// again, as a file written by another build would be.
fn rewrite_with_valid_checksum(path: &Path, out: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).expect("read artifact");
    edit(&mut bytes);
    let body = bytes.len() - format::CHECKSUM_LEN;
    let sum = *blake3::hash(&bytes[..body]).as_bytes();
    bytes[body..].copy_from_slice(&sum);
    std::fs::write(out, bytes).expect("write artifact");
}

#[test]
fn damaged_foreign_and_incomplete_artifacts_are_refused_with_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = tiny_model_dir(dir.path());
    let good = dir.path().join("good.tsr");
    let options = ArtifactOptions { tiers: vec!["portable".into()], ..ArtifactOptions::default() };
    compile_artifact(&source, &good, &options).expect("compiles");
    let bytes = std::fs::read(&good).expect("read");
    let variant = |name: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let path = dir.path().join(name);
        let mut b = bytes.clone();
        edit(&mut b);
        std::fs::write(&path, b).expect("write");
        path
    };
    let middle = bytes.len() / 2;
    let other_version = dir.path().join("other-version.tsr");
    rewrite_with_valid_checksum(&good, &other_version, |b| {
        b[16..48].fill(0);
        b[16..23].copy_from_slice(b"0.0.0-x");
    });
    let other_format = dir.path().join("other-format.tsr");
    rewrite_with_valid_checksum(&good, &other_format, |b| b[8..12].copy_from_slice(&99u32.to_le_bytes()));
    let cases = [
        (variant("flipped.tsr", &|b| b[middle] ^= 0x40), "checksum mismatch"),
        (variant("truncated.tsr", &|b| b.truncate(b.len() - 1000)), "truncated"),
        (variant("header-only.tsr", &|b| b.truncate(40)), "truncated"),
        (variant("not-tsr.tsr", &|b| b[0] = b'G'), "not a tessera artifact"),
        (variant("empty.tsr", &|b| b.clear()), "not a tessera artifact"),
        (other_version, "compiled by tessera 0.0.0-x, this is tessera"),
        (other_format, "artifact format 99"),
    ];
    assert!(read_manifest(&good).is_ok());
    for (path, want) in &cases {
        let err =
            read_manifest(path).err().unwrap_or_else(|| panic!("{} accepted", path.display())).to_string();
        assert!(err.contains(want), "{}: {err}", path.display());
        assert!(
            err.starts_with(&path.display().to_string()) && !err.contains('\n'),
            "one line naming the file: {err}"
        );
    }
    // The model loader goes through the same checks.
    if let Some(device) = gpu_arc() {
        let err = LlamaModel::load(&cases[0].0, device, None).err().expect("refused").to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }
}

#[test]
fn a_step_shape_outside_the_artifact_is_an_error_naming_it() {
    let Some(device) = gpu_arc() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let source = tiny_model_dir(dir.path());
    let full = dir.path().join("full.tsr");
    let options = ArtifactOptions { tiers: vec!["portable".into()], ..ArtifactOptions::default() };
    compile_artifact(&source, &full, &options).expect("compiles");

    // The same artifact without its decode-with-logits plan, written as compile-model would.
    let mut manifest = read_manifest(&full).expect("manifest");
    manifest.tiers[0].steps.retain(|s| !(s.seq == 1 && s.logits));
    let bytes = std::fs::read(&full).expect("read");
    let sections = format::open(&full).expect("verified").sections;
    let weights = &bytes[sections.weights.0..sections.weights.1];
    let partial = dir.path().join("partial.tsr");
    let json = serde_json::to_vec(&manifest).expect("json");
    format::write(&partial, &json, &[weights]).expect("write");

    let mut model = LlamaModel::load(&partial, device.clone(), None).expect("loads");
    model.prefill(&PROMPT, true).expect("prefill plan present");
    let err = model.decode(7, PROMPT.len(), true).expect_err("decode with logits missing").to_string();
    assert!(err.contains("seq=1 logits=true") && err.contains("max context 32"), "{err}");
    assert!(err.starts_with(&partial.display().to_string()), "{err}");

    let err = LlamaModel::load(&full, device, Some(16)).err().expect("other context refused").to_string();
    assert!(err.contains("compiled for a context of 32 rows, 16 requested"), "{err}");
}
