//! A tiny random-weight Llama (2 layers, GQA, odd vocabulary, quantized and dense weights mixed)
//! built in the IR: prefill then decode steps through the KV cache on the GPU, compared with the
//! reference interpreter step by step.

mod common;
use common::gpu;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use tessera_compiler::CompileOptions;
use tessera_ir::interp::{self, Tensor};
use tessera_ir::{DType, Op};
use tessera_models::LlamaConfig;
use tessera_models::llama::graph::{StepShape, build_step, build_step_for, inputs, merge_projections};
use tessera_models::llama::weights::{QuantMatrix, WeightIndex};
use tessera_runtime::{Gpu, GpuOptions, SharedBuffers};

fn tiny_config() -> LlamaConfig {
    serde_json::from_str(
        r#"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "max_position_embeddings": 32, "vocab_size": 101, "tie_word_embeddings": true}"#,
    )
    .expect("tiny config parses")
}

fn random_quant(rng: &mut StdRng, rows: usize, cols: usize, bits: u32) -> QuantMatrix {
    let groups = rows * cols / 32;
    QuantMatrix {
        rows,
        cols,
        bits,
        group_size: 32,
        words: (0..rows * cols * bits as usize / 32).map(|_| rng.random()).collect(),
        scales: (0..groups).map(|_| rng.random_range(0.005..0.02)).collect(),
        biases: (0..groups).map(|_| rng.random_range(-0.05..0.05)).collect(),
    }
}

/// Random weights: quantized attention and embedding, dense MLP down projection (f32 in layer
/// 0, f16 in layer 1: the gemv reads both as rows).
fn tiny_weights(cfg: &LlamaConfig, rng: &mut StdRng) -> WeightIndex {
    let mut w = WeightIndex::default();
    let (h, i, d) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (hq, hkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
    w.insert_quant_linear("model.embed_tokens", random_quant(rng, cfg.vocab_size, h, 8));
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        let ones =
            |rng: &mut StdRng, n: usize| (0..n).map(|_| rng.random_range(0.8..1.2)).collect::<Vec<f32>>();
        w.insert_f32(&format!("{p}.input_layernorm.weight"), vec![h], &ones(rng, h));
        w.insert_f32(&format!("{p}.post_attention_layernorm.weight"), vec![h], &ones(rng, h));
        w.insert_quant_linear(&format!("{p}.self_attn.q_proj"), random_quant(rng, hq * d, h, 4));
        w.insert_quant_linear(&format!("{p}.self_attn.k_proj"), random_quant(rng, hkv * d, h, 4));
        // Layer 0's projections share their storage and get merged; layer 1's v and up differ.
        let bits = if l == 0 { 4 } else { 8 };
        w.insert_quant_linear(&format!("{p}.self_attn.v_proj"), random_quant(rng, hkv * d, h, bits));
        w.insert_quant_linear(&format!("{p}.self_attn.o_proj"), random_quant(rng, h, hq * d, 4));
        w.insert_quant_linear(&format!("{p}.mlp.gate_proj"), random_quant(rng, i, h, 4));
        w.insert_quant_linear(&format!("{p}.mlp.up_proj"), random_quant(rng, i, h, bits));
        let down: Vec<f32> = (0..h * i).map(|_| rng.random_range(-0.1..0.1)).collect();
        let dtype = if l == 0 { DType::F32 } else { DType::F16 };
        w.insert_dense_linear(&format!("{p}.mlp.down_proj"), h, i, &down, dtype);
    }
    let norm: Vec<f32> = vec![1.0; h];
    w.insert_f32("model.norm.weight", vec![h], &norm);
    let inv: Vec<f32> = cfg.rope_inv_freq().expect("rope").iter().map(|&x| x as f32).collect();
    w.insert_f32(tessera_models::llama::graph::INV_FREQ, vec![1, inv.len()], &inv);
    w
}

fn tensor_of(p: &tessera_models::llama::weights::HostParam) -> Tensor {
    let values = match p.to_f32() {
        Some(floats) => floats.into_iter().map(f64::from).collect(),
        None => {
            p.bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()
        }
    };
    Tensor::new(p.shape.clone(), p.dtype, values)
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn tiny_llama_prefill_and_decode_match_the_interpreter() {
    let Some(gpu) = gpu() else { return };
    check_against_interpreter(&gpu, 0, &CompileOptions::default());
    // The staging path too (lavapipe otherwise takes the unified-memory path), with each run
    // submitted in pieces of 3 dispatches.
    let options = GpuOptions { no_uma: true, ..GpuOptions::from_env().expect("env") };
    let staging = Gpu::new(&options).expect("a device without unified memory");
    assert!(!staging.has_unified_memory());
    check_against_interpreter(&staging, 3, &CompileOptions::default());
}

/// Decode steps with int8 activations (`TESSERA_INT8_ACTIVATIONS`): on lavapipe (subgroups of
/// 8) the quantized gemvs round x themselves, and the interpreter runs the same graph's
/// `round_int8`; the fallback device (no subgroups) runs the graph as built for it.
#[test]
fn tiny_llama_with_int8_activations_matches_the_interpreter() {
    let Some(gpu) = gpu() else { return };
    let int8 = CompileOptions { int8_activations: true, ..CompileOptions::default() };
    assert!(tessera_compiler::int8_activations(gpu.profile(), &int8), "lavapipe takes the integer-dot gemv");
    check_against_interpreter(&gpu, 0, &int8);
    let options = GpuOptions { no_subgroups: true, ..GpuOptions::from_env().expect("env") };
    let fallback = Gpu::new(&options).expect("a device without subgroups");
    assert!(!tessera_compiler::int8_activations(fallback.profile(), &int8));
    check_against_interpreter(&fallback, 0, &int8);
}

/// Greedy steps chained on the GPU (each step's token copied into the next step's input there,
/// read back one step behind) give the tokens of plain steps fed by the host, on the unified-
/// memory device and on one forced to staging; plain runs are refused while a chain is in flight.
#[test]
fn chained_decode_steps_match_plain_steps() {
    let Some(gpu) = gpu() else { return };
    check_chained_against_plain(&gpu);
    let options = GpuOptions { no_uma: true, ..GpuOptions::from_env().expect("env") };
    check_chained_against_plain(&Gpu::new(&options).expect("a device without unified memory"));
}

/// The tiny model's weights (projections merged), uploaded once, and the step plans loaded on them.
struct TinySteps {
    cfg: LlamaConfig,
    weights: WeightIndex,
    shared: SharedBuffers,
}

impl TinySteps {
    fn new(gpu: &Gpu, seed: u64) -> TinySteps {
        let cfg = tiny_config();
        let mut weights = tiny_weights(&cfg, &mut StdRng::seed_from_u64(seed));
        merge_projections(&cfg, &mut weights);
        let shared = SharedBuffers::new();
        for (name, p) in &weights.params {
            gpu.write_shared(&shared, name, &p.bytes).expect("upload");
        }
        TinySteps { cfg, weights, shared }
    }

    fn load(&self, gpu: &Gpu, shape: StepShape) -> tessera_runtime::Executable {
        let graph = build_step(&self.cfg, &self.weights, shape).expect("graph builds");
        let plan =
            tessera_compiler::compile(&graph, gpu.profile(), &CompileOptions::default()).expect("compiles");
        gpu.load_shared(&plan, &self.shared).expect("loads")
    }
}

/// A short decode step (its attention reading a view of the first 12 cache rows) gives the
/// logits of the full step at every position below 12, the last one included.
#[test]
fn short_decode_steps_match_full_decode_steps() {
    let Some(gpu) = gpu() else { return };
    let tiny = TinySteps::new(&gpu, 3);
    let load = |shape| tiny.load(&gpu, shape);
    let max_context = 24;
    let mut prefill = load(StepShape::new(16, max_context, false));
    let mut full = load(StepShape::new(1, max_context, true));
    let mut short = load(StepShape::short_decode(max_context, 12, true));
    let run = |exe: &mut tessera_runtime::Executable, tokens: &[u32], pos: u32, last: u32| {
        let positions: Vec<u32> = (pos..pos + tokens.len() as u32).collect();
        exe.write_input(inputs::TOKENS, &u32s(tokens)).expect("tokens");
        exe.write_input(inputs::POSITIONS, &u32s(&positions)).expect("positions");
        let kv_len = pos + tokens.len() as u32;
        for (name, v) in [(inputs::KV_LEN, kv_len), (inputs::OFFSET, pos), (inputs::LAST, last)] {
            exe.write_input(name, &u32s(&[v])).expect("input");
        }
        exe.run().expect("runs")
    };
    let mut prompt = vec![5u32, 17, 99, 100, 3];
    prompt.resize(16, 0);
    run(&mut prefill, &prompt, 0, 4);
    for pos in 5..12u32 {
        let token = 7 + 13 * pos;
        let logits = |out: Vec<Vec<u8>>| -> Vec<f32> {
            out[1].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        };
        // Both write the same row for this position, then attend to rows 0..=pos.
        let want = logits(run(&mut full, &[token], pos, 0));
        let got = logits(run(&mut short, &[token], pos, 0));
        let scale = want.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let diff = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff <= 1e-5 * (1.0 + scale), "position {pos}: max logit difference {diff}");
    }
}

fn check_chained_against_plain(gpu: &Gpu) {
    let tiny = TinySteps::new(gpu, 7);
    let load = |shape| tiny.load(gpu, shape);
    let max_context = 24;
    let mut prefill = load(StepShape::new(16, max_context, false));
    let mut decode = load(StepShape::new(1, max_context, false));
    let mut probe = load(StepShape::new(1, max_context, true));
    let write = |exe: &mut tessera_runtime::Executable, name: &str, v: &[u32]| {
        exe.write_input(name, &u32s(v)).expect("write input");
    };
    let prompt = [5u32, 17, 99, 100, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut run_prefill = || {
        write(&mut prefill, inputs::TOKENS, &prompt);
        write(&mut prefill, inputs::POSITIONS, &(0..16).collect::<Vec<u32>>());
        for (name, v) in [(inputs::KV_LEN, 16), (inputs::OFFSET, 0), (inputs::LAST, 4)] {
            write(&mut prefill, name, &[v]);
        }
        let out = prefill.run().expect("prefill runs");
        u32::from_le_bytes([out[0][0], out[0][1], out[0][2], out[0][3]])
    };
    let steps = 7;
    // Logits of one more step, which attends to the cache rows the steps wrote (so to the
    // tokens they were fed: this random model's greedy token hardly depends on its input).
    let mut run_probe = || {
        let pos = 5 + steps as u32;
        write(&mut probe, inputs::TOKENS, &[11]);
        for (name, v) in
            [(inputs::POSITIONS, pos), (inputs::KV_LEN, pos + 1), (inputs::OFFSET, pos), (inputs::LAST, 0)]
        {
            write(&mut probe, name, &[v]);
        }
        let out = probe.run().expect("probe runs");
        out[1].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>()
    };
    let first = run_prefill();
    let mut plain = Vec::new();
    let mut token = first;
    for k in 0..steps {
        let pos = 5 + k as u32;
        write(&mut decode, inputs::TOKENS, &[token]);
        for (name, v) in
            [(inputs::POSITIONS, pos), (inputs::KV_LEN, pos + 1), (inputs::OFFSET, pos), (inputs::LAST, 0)]
        {
            write(&mut decode, name, &[v]);
        }
        let out = decode.run().expect("decode runs");
        token = u32::from_le_bytes([out[0][0], out[0][1], out[0][2], out[0][3]]);
        plain.push(token);
    }
    let plain_probe = run_probe();
    // The same steps again from a fresh prefill (it rewrites every cache row they read).
    assert_eq!(run_prefill(), first);
    write(&mut decode, inputs::TOKENS, &[first]);
    let mut chained = Vec::new();
    let mut collect = |decode: &mut tessera_runtime::Executable| {
        let bytes = decode.collect_chained().expect("collects").expect("a run in flight");
        chained.push(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
    };
    for k in 0..steps {
        let pos = 5 + k as u32;
        for (name, v) in
            [(inputs::POSITIONS, pos), (inputs::KV_LEN, pos + 1), (inputs::OFFSET, pos), (inputs::LAST, 0)]
        {
            write(&mut decode, name, &[v]);
        }
        if k > 0 {
            // The GPU's copy of the previous token must win over what the host wrote last.
            write(&mut decode, inputs::TOKENS, &[k as u32]);
        }
        decode.submit_chained(inputs::TOKENS, k > 0).expect("submits");
        if k > 0 {
            collect(&mut decode);
        }
        // A plain run is refused while chained runs are in flight.
        assert!(decode.run().is_err());
    }
    collect(&mut decode);
    assert!(decode.collect_chained().expect("nothing left").is_none());
    assert_eq!(chained, plain, "chained vs plain greedy tokens");
    let chained_probe = run_probe();
    let diff = plain_probe.iter().zip(&chained_probe).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff <= 1e-5, "the cache the chained steps wrote differs: max logit difference {diff}");
    // With the chain drained, plain runs work again.
    decode.run().expect("a plain run after the chain");
}

fn check_against_interpreter(gpu: &Gpu, submit_chunk: usize, options: &CompileOptions) {
    let cfg = tiny_config();
    let mut rng = StdRng::seed_from_u64(42);
    let mut weights = tiny_weights(&cfg, &mut rng);
    merge_projections(&cfg, &mut weights);
    assert!(
        weights.has("model.layers.0.self_attn.qkv_proj") && weights.has("model.layers.0.mlp.gate_up_proj")
    );
    assert!(weights.has("model.layers.1.self_attn.q_proj") && weights.has("model.layers.1.mlp.up_proj"));
    let max_context = 24;
    let shared = SharedBuffers::new();
    for (name, p) in &weights.params {
        gpu.write_shared(&shared, name, &p.bytes).expect("upload");
    }
    let params: Vec<(String, Tensor)> =
        weights.params.iter().map(|(n, p)| (n.clone(), tensor_of(p))).collect();
    let mut states = HashMap::new();

    let prompt = [5u32, 17, 99, 100, 3];
    let prefill = StepShape::new(16, max_context, true);
    let decode = StepShape::new(1, max_context, true);
    // Decode steps below 12 cache rows may attend to a view of those rows alone: alternated with
    // full steps, which read the rows the short ones wrote and the other way round.
    let short = StepShape::short_decode(max_context, 12, true);
    let mut steps = Vec::new();
    let mut tokens: Vec<u32> = prompt.to_vec();
    tokens.resize(16, 0);
    steps.push((prefill, tokens, (0..16u32).collect::<Vec<_>>(), 16u32, 0u32, prompt.len() as u32 - 1));
    for (k, tok) in [7u32, 88, 1, 40, 9].into_iter().enumerate() {
        let pos = (prompt.len() + k) as u32;
        let shape = if k % 2 == 0 { short } else { decode };
        steps.push((shape, vec![tok], vec![pos], pos + 1, pos, 0));
    }
    let mut exes = HashMap::new();
    for (shape, tokens, positions, kv_len, offset, last) in steps {
        let graph = build_step_for(&cfg, &weights, shape, gpu.profile(), options).expect("graph builds");
        graph.verify().expect("graph verifies");
        let rounds = graph.nodes().iter().any(|n| matches!(n.op, Op::RoundInt8 { .. }));
        let int8 = shape.seq <= tessera_compiler::int8_activation_rows(gpu.profile(), options);
        assert_eq!(rounds, int8, "round_int8 in the {shape:?} graph");
        let exe = exes.entry(shape).or_insert_with(|| {
            let plan = tessera_compiler::compile(&graph, gpu.profile(), options).expect("compiles");
            let mut exe = gpu.load_shared(&plan, &shared).expect("loads");
            exe.set_submit_chunk(submit_chunk);
            exe
        });
        let feeds = [
            (
                inputs::TOKENS,
                Tensor::new([tokens.len()], DType::U32, tokens.iter().map(|&t| t as f64).collect()),
            ),
            (
                inputs::POSITIONS,
                Tensor::new([positions.len()], DType::U32, positions.iter().map(|&t| t as f64).collect()),
            ),
            (inputs::KV_LEN, Tensor::new([1], DType::U32, vec![kv_len as f64])),
            (inputs::OFFSET, Tensor::new([1], DType::U32, vec![offset as f64])),
            (inputs::LAST, Tensor::new([1], DType::U32, vec![last as f64])),
        ];
        for (name, t) in &feeds {
            let v: Vec<u32> = t.data.iter().map(|&x| x as u32).collect();
            exe.write_input(name, &u32s(&v)).expect("write input");
        }
        let got = exe.run().expect("runs");
        let mut bindings: Vec<(&str, Tensor)> = feeds.iter().map(|(n, t)| (*n, t.clone())).collect();
        bindings.extend(params.iter().map(|(n, t)| (n.as_str(), t.clone())));
        let want = interp::run_with_states(&graph, &bindings, &mut states).expect("interpreter");
        let logits: Vec<f32> =
            got[1].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let max_err =
            logits.iter().zip(&want[1].data).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
        let scale = want[1].data.iter().map(|w| w.abs()).fold(0.0, f64::max);
        assert!(max_err <= 2e-3 * (1.0 + scale), "step {shape:?}: max logit error {max_err} (scale {scale})");
        let token = u32::from_le_bytes([got[0][0], got[0][1], got[0][2], got[0][3]]);
        let mut sorted = want[1].data.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        // Compare argmax only where the top two logits are not within rounding of each other.
        if sorted[0] - sorted[1] > 1e-3 * (1.0 + scale) {
            assert_eq!(token as f64, want[0].data[0], "greedy token at {shape:?}");
        }
    }
    // The graph really holds the model ops.
    let g = build_step(&cfg, &weights, decode).expect("graph");
    assert!(g.nodes().iter().any(|n| matches!(n.op, Op::Attention { .. })));
    assert_eq!(g.states().len(), 2 * cfg.num_hidden_layers);
}
