//! The optimizer on the real SmolLM2-135M decode graph (null tier: no GPU needed): dispatches per
//! token before and after fusion, and the time the e-graph step takes on the whole 30-layer graph.
//! Needs the GGUF from scripts/fetch-models.sh (a failure under CI when missing).

use std::time::Instant;
use tessera_compiler::{CompileOptions, DeviceProfile, compile, pipeline};
use tessera_models::gguf::GgufFile;
use tessera_models::llama::graph::{StepShape, build_step};
use tessera_models::llama::weights::WeightIndex;

fn model_path() -> Option<std::path::PathBuf> {
    let p =
        tessera_models::tessera_home().join("models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.is_file() {
        return Some(p);
    }
    assert!(std::env::var_os("CI").is_none(), "{} is missing under CI", p.display());
    eprintln!("SKIPPED: {} not found; run scripts/fetch-models.sh", p.display());
    None
}

#[test]
fn smollm2_decode_dispatches_and_optimize_time() {
    let Some(path) = model_path() else { return };
    let gguf = GgufFile::open(&path).expect("gguf opens");
    let cfg = gguf.llama_config().expect("config");
    let mut weights = WeightIndex::from_gguf(&gguf).expect("weights");
    // As loading does: q/k/v and gate/up stacked into one matrix each.
    tessera_models::llama::prepare_weights(&cfg, &mut weights).expect("prepared");
    assert!(
        weights.has("model.layers.0.self_attn.qkv_proj") && weights.has("model.layers.0.mlp.gate_up_proj")
    );
    let shape = StepShape::new(1, 1024, false);
    let graph = build_step(&cfg, &weights, shape).expect("decode graph");
    let profile = DeviceProfile::full();

    let before = compile(&graph, &profile, &CompileOptions::unoptimized()).expect("unoptimized plan");
    let options = CompileOptions::default();
    let start = Instant::now();
    let (_, report) = pipeline::optimize(&graph, &options).expect("optimizes");
    let optimize_ms = start.elapsed().as_secs_f64() * 1e3;
    let report = report.expect("rules on");
    let after = compile(&graph, &profile, &options).expect("optimized plan");
    let layers = cfg.num_hidden_layers;
    eprintln!(
        "SmolLM2-135M decode: {} -> {} dispatches/token ({:.1} -> {:.1} per layer); e-graph {} nodes, \
         {} iterations, stop: {}, rules fired {:?}; optimize {optimize_ms:.0} ms",
        before.dispatches.len(),
        after.dispatches.len(),
        before.dispatches.len() as f64 / layers as f64,
        after.dispatches.len() as f64 / layers as f64,
        report.egraph_nodes,
        report.iterations,
        report.stop_reason,
        report.rules_fired,
    );
    let bytes = |p: &tessera_compiler::Plan| p.report.iter().map(|r| r.bytes).sum::<u64>();
    eprintln!("bytes bound per token: {} -> {}", bytes(&before), bytes(&after));
    assert!(before.dispatches.len() > 20 * layers, "the unfused decode graph: {}", before.dispatches.len());
    // 7 per layer (qkv with RMSNorm, also writing v into its cache; k rope + cache write;
    // attention in two, its keys split over workgroups and the parts combined, as a GPU profile
    // does over a 1024-row cache; o + residual; gate_up with RMSNorm; down with SwiGLU + residual)
    // and 3 outside (embedding gather, logits, argmax: the rotary table is recomputed inline).
    assert!(after.dispatches.len() <= 7 * layers + 3, "{} dispatches", after.dispatches.len());
    let attention = |p: &tessera_compiler::Plan, suffix: &str| {
        p.dispatches.iter().filter(|d| p.kernels[d.kernel].name.ends_with(suffix)).count()
    };
    assert_eq!(attention(&after, "_parts_sg"), layers);
    assert_eq!(attention(&after, "_combine_sg"), layers);
    // A CPU adapter of 2 threads keeps one attention kernel per layer: 6 per layer.
    let cpu = DeviceProfile { parallelism: 2, ..profile.clone() };
    let on_cpu = compile(&graph, &cpu, &options).expect("optimized plan for a CPU adapter");
    assert!(on_cpu.dispatches.len() <= 6 * layers + 3, "{} dispatches", on_cpu.dispatches.len());
    assert!(optimize_ms < 2000.0, "optimize took {optimize_ms:.0} ms");

    // Decode steps at the first 256 positions attend to a view of those rows only: one attention
    // kernel per layer again, over the same cache.
    let short = build_step(&cfg, &weights, StepShape::short_decode(1024, 256, false)).expect("short decode");
    let short = compile(&short, &profile, &options).expect("short decode plan");
    assert_eq!(short.dispatches.len(), after.dispatches.len() - layers);
    assert_eq!(attention(&short, "_parts_sg") + attention(&short, "_combine_sg"), 0);
    assert_eq!(attention(&short, "_subgroups_sg"), layers);
}
