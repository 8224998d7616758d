//! `tessera bench`: kernel and model throughput on the selected GPU. GEMM in GFLOP/s, quantized
//! GEMV in GB/s as a share of a measured device copy bandwidth, and model prefill/decode tok/s.
//! GPU times come from timestamp queries when the adapter has them, else from wall time.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::layers::compiler::{self, CompileOptions};
use tessera::layers::ir::{BinaryOp, DType, Graph, Op};
use tessera::layers::runtime::{Executable, Gpu};
use tessera_models::llama::LlamaModel;

#[derive(clap::Args)]
pub struct Args {
    /// A .gguf, model directory or .tsr artifact to time prefill and decode on (default: SmolLM2
    /// from the cache, if present).
    #[arg(long, conflicts_with = "config")]
    model: Option<PathBuf>,
    /// A Llama config.json to time with random weights (needs --dummy-weights).
    #[arg(long, requires = "dummy_weights")]
    config: Option<PathBuf>,
    /// Random weights in the config's shapes (timing only).
    #[arg(long, requires = "config")]
    dummy_weights: bool,
    /// Format of the dummy weights: q4 or q8 (affine, group 32, f16 scales) or f16.
    #[arg(long, default_value = "q4", value_parser = ["q4", "q8", "f16"])]
    quant: String,
    /// Square f32 GEMM sizes to time.
    #[arg(long, value_delimiter = ',', default_value = "1024")]
    gemm: Vec<usize>,
    /// Rows of x of the timed prefill-shaped quantized GEMMs (`[M, 4096] x [4096, 4096]^T`, q4
    /// group 32): f16 x on cooperative matrices where the device has them, f32 x elsewhere.
    #[arg(long, value_delimiter = ',', default_value = "512")]
    qgemm: Vec<usize>,
    /// Skip the kernel benchmarks.
    #[arg(long)]
    no_kernels: bool,
    /// Decode steps to time.
    #[arg(long, default_value_t = 32)]
    decode_tokens: usize,
    /// Tokens in the KV cache when the timed decode starts (a prompt of that length first):
    /// every decode step's attention reads them all.
    #[arg(long, default_value_t = 3)]
    decode_context: usize,
    /// KV cache rows (default: the fewest the timed prompts and decode steps need, rounded up
    /// to a power of two); `generate` gives a model min(its context, 4096).
    #[arg(long)]
    max_context: Option<usize>,
    /// Prompt lengths to time prefill at.
    #[arg(long, value_delimiter = ',', default_value = "128")]
    prefill: Vec<usize>,
    /// Milliseconds of GPU work run before anything is timed, so clocks have ramped up: before
    /// the kernel rows, and the model's own decode steps again before the model is timed (on
    /// the H200 the first 1B prefills of a process measured 5x slow without it).
    #[arg(long, default_value_t = 1500)]
    warmup_ms: u64,
    /// Timed repetitions per kernel.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let gpu = Arc::new(Gpu::from_env()?);
    let report = gpu.report();
    let mut out = json!({ "adapter": report.name, "backend": report.backend });
    if !args.no_kernels {
        warm_up(&gpu, Duration::from_millis(args.warmup_ms))?;
        // The reference is the fastest of the elementwise kernel, the copy command and a vec4 copy.
        let shader_copy = copy_bandwidth(&gpu, args.reps)?;
        let buffer_copy = gpu.copy_bandwidth(COPY_BYTES, args.reps)? / 1e9;
        let copy = shader_copy.max(buffer_copy);
        out["copy_gb_s"] = json!(copy);
        out["elementwise_copy_gb_s"] = json!(shader_copy);
        out["device_copy_gb_s"] = json!(buffer_copy);
        out["gemm"] =
            Value::Array(args.gemm.iter().map(|&n| gemm(&gpu, n, args.reps)).collect::<Result<_, _>>()?);
        out["quant_gemm_q4"] = Value::Array(
            args.qgemm.iter().map(|&m| quant_gemm(&gpu, m, args.reps)).collect::<Result<_, _>>()?,
        );
        let shapes = [(576, 1536), (2048, 8192), (4096, 14336)];
        let kinds = [
            ("quant_gemv_q4", GemvKind::Q4),
            ("quant_gemv_q4_int8_x", GemvKind::Q4Int8),
            ("gemv_f16", GemvKind::F16),
        ];
        for (key, kind) in kinds {
            let rows = shapes.iter().map(|&(k, n)| gemv(&gpu, kind, k, n, copy, args.reps));
            out[key] = Value::Array(rows.collect::<Result<_, _>>()?);
        }
    }
    // The model's peak memory is its own, not the kernel rows' (their buffers are dropped).
    gpu.trim_pool();
    gpu.reset_memory_peak();
    if let Some(config) = &args.config {
        out["model"] = dummy_bench(&gpu, config, args, out["copy_gb_s"].as_f64())?;
    } else {
        let model = args.model.clone().or_else(|| {
            let p = tessera_models::tessera_home()
                .join("models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
            p.is_file().then_some(p)
        });
        if let Some(path) = model {
            // An artifact's plans fix its context; prefill lengths must fit its buckets.
            let context = (!tessera_models::artifact::is_artifact(&path)).then(|| context_for(args));
            let model = LlamaModel::load(&path, gpu.clone(), context)?;
            out["model"] = model_bench(&gpu, model, args)?;
        }
    }
    // Under TESSERA_PROFILE every run above was timed per dispatch: the kernels that took longest.
    let kernels = tessera::layers::runtime::kernel_times();
    if !kernels.is_empty() {
        let top = kernels.iter().take(TOP_KERNELS);
        let top =
            top.map(|k| json!({ "name": k.name, "count": k.count, "gpu_ms": k.total.as_secs_f64() * 1e3 }));
        out["top_kernels"] = Value::Array(top.collect());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_human(&out);
    }
    Ok(())
}

/// Median of `reps` (at least one) timings by `run`.
fn median_time(
    reps: usize,
    mut run: impl FnMut() -> Result<Duration, Box<dyn std::error::Error>>,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        times.push(run()?);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// GPU work each kernel row runs right before it is timed: building and compiling the row's
/// graph leaves the GPU idle: on one H100 the same f16 GEMV read 643 to 1721 GB/s at
/// 2048 x 8192 in four processes after one warm-up run each.
const KERNEL_WARM_UP: Duration = Duration::from_millis(200);

/// Median GPU time of `reps` runs after `KERNEL_WARM_UP` of the same runs.
fn time_runs(exe: &mut Executable, reps: usize) -> Result<Duration, Box<dyn std::error::Error>> {
    repeat_for(KERNEL_WARM_UP, || Ok(exe.run_without_readback()?))?;
    median_time(reps, || {
        let start = Instant::now();
        exe.run_without_readback()?;
        Ok(exe.last_gpu_time().unwrap_or_else(|| start.elapsed()))
    })
}

fn load(gpu: &Gpu, g: &Graph) -> Result<Executable, Box<dyn std::error::Error>> {
    let plan = compiler::compile(g, gpu.profile(), &CompileOptions::default())?;
    Ok(gpu.load(&plan)?)
}

/// Runs a 64 MiB elementwise kernel back to back for `length` of wall time.
fn warm_up(gpu: &Gpu, length: Duration) -> Result<(), Box<dyn std::error::Error>> {
    if length.is_zero() {
        return Ok(());
    }
    let mut g = Graph::new();
    let x = g.input("x", [16 << 20], DType::F32);
    let y = g.add(Op::Unary(tessera::layers::ir::UnaryOp::Neg), &[x])?;
    g.add_output(y)?;
    let mut exe = load(gpu, &g)?;
    repeat_for(length, || Ok(exe.run_without_readback()?))
}

/// Runs `work` once, then again until `length` has passed.
fn repeat_for(
    length: Duration,
    mut work: impl FnMut() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    loop {
        work()?;
        if start.elapsed() >= length {
            return Ok(());
        }
    }
}

/// Bytes of the buffer-to-buffer copy that measures the device's copy bandwidth.
const COPY_BYTES: u64 = 256 << 20;

/// Read + write bytes per second of an elementwise copy of 64 MiB.
fn copy_bandwidth(gpu: &Gpu, reps: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let n = 16 << 20;
    let mut g = Graph::new();
    let x = g.input("x", [n], DType::F32);
    let y = g.add(Op::Unary(tessera::layers::ir::UnaryOp::Neg), &[x])?;
    g.add_output(y)?;
    let mut exe = load(gpu, &g)?;
    let t = time_runs(&mut exe, reps)?;
    Ok(2.0 * 4.0 * n as f64 / t.as_secs_f64() / 1e9)
}

fn gemm(gpu: &Gpu, n: usize, reps: usize) -> Result<Value, Box<dyn std::error::Error>> {
    let mut g = Graph::new();
    let a = g.input("a", [n, n], DType::F32);
    let b = g.input("b", [n, n], DType::F32);
    let c = g.add(Op::MatMul, &[a, b])?;
    g.add_output(c)?;
    let mut exe = load(gpu, &g)?;
    let ones: Vec<u8> = (0..n * n).flat_map(|i| ((i % 7) as f32 * 0.1).to_le_bytes()).collect();
    exe.write_input("a", &ones)?;
    exe.write_input("b", &ones)?;
    let t = time_runs(&mut exe, reps)?;
    let gflops = 2.0 * (n as f64).powi(3) / t.as_secs_f64() / 1e9;
    Ok(json!({ "n": n, "dtype": "f32", "ms": t.as_secs_f64() * 1e3, "gflop_s": gflops }))
}

/// The K and N of the timed quantized GEMM: an 8B attention projection.
const QGEMM_K: usize = 4096;
const QGEMM_N: usize = 4096;

/// Times `[m, 4096] x dequant(q4)[4096, 4096]^T` as a model's prefill runs it: x cast to f16 and
/// the result back where the compiler would give the projection f16 x (cooperative matrices).
fn quant_gemm(gpu: &Gpu, m: usize, reps: usize) -> Result<Value, Box<dyn std::error::Error>> {
    let (k, n) = (QGEMM_K, QGEMM_N);
    let options = CompileOptions::default();
    let f16 = compiler::f16_matmul_rows(gpu.profile(), &options).is_some_and(|from| m >= from);
    let mut g = Graph::new();
    let x = g.input("x", [m, k], DType::F32);
    let w = g.param("w", [n, k / 8], DType::U32);
    let s = g.param("s", [n, k / 32], DType::F16);
    let b = g.param("b", [n, k / 32], DType::F16);
    let x = if f16 { g.add(Op::Cast { to: DType::F16 }, &[x])? } else { x };
    let y = g.add(Op::QuantMatMul { bits: 4, group_size: 32 }, &[x, w, s, b])?;
    let y = if f16 { g.add(Op::Cast { to: DType::F32 }, &[y])? } else { y };
    g.add_output(y)?;
    let plan = compiler::compile(&g, gpu.profile(), &options)?;
    let kernel = plan.kernels.iter().find(|k| k.name.starts_with("quant")).map(|k| k.name.clone());
    let mut exe = gpu.load(&plan)?;
    let half = stored_size(gpu, DType::F16);
    // Codes 0x5a with scales of 1/64 (f16 0x2400) and zero biases: finite, timing only.
    let scale: Vec<u8> = match half {
        2 => (0..n * k / 32).flat_map(|_| 0x2400u16.to_le_bytes()).collect(),
        _ => (0..n * k / 32).flat_map(|_| (1.0f32 / 64.0).to_le_bytes()).collect(),
    };
    exe.write_param("w", &vec![0x5a; n * k / 2])?;
    exe.write_param("s", &scale)?;
    exe.write_param("b", &vec![0; n * k / 32 * half])?;
    let x: Vec<u8> = (0..m * k).flat_map(|i| ((i % 7) as f32 * 0.1).to_le_bytes()).collect();
    exe.write_input("x", &x)?;
    let t = time_runs(&mut exe, reps)?;
    let gflops = 2.0 * (m * k * n) as f64 / t.as_secs_f64() / 1e9;
    Ok(json!({
        "m": m, "k": k, "n": n, "x": if f16 { "f16" } else { "f32" }, "kernel": kernel,
        "ms": t.as_secs_f64() * 1e3, "gflop_s": gflops,
    }))
}

/// Weights of a timed batch-1 GEMV `[1, k] x [n, k]^T`, stored as models load them.
#[derive(Clone, Copy)]
enum GemvKind {
    /// 4-bit codes with group-32 f16 scales and biases.
    Q4,
    /// The same, x rounded to int8 first (`round_int8`, as decode steps do where the gemv
    /// multiplies in integers; elsewhere a kernel of its own).
    Q4Int8,
    /// Dense f16 rows, widened per load.
    F16,
}

/// Weight bytes the timed GEMV copies add up to, so that each run reads them from memory: H200's
/// L2 (about 50 MB) would otherwise hold a 4096 x 14336 q4 matrix (37 MB) between runs.
const GEMV_STREAM_BYTES: usize = 256 << 20;

/// Most GEMV copies in one timed run (small matrices stay in L2 regardless).
const GEMV_MAX_COPIES: usize = 64;

/// Times `y + y` for one GEMV, as the mean over a run of copies of it on distinct weights
/// (dispatch gaps included, as in a decode step); GB/s counts the weight bytes, what a decode
/// step streams for the matrix.
fn gemv(
    gpu: &Gpu,
    kind: GemvKind,
    k: usize,
    n: usize,
    copy: f64,
    reps: usize,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut g = Graph::new();
    let x = g.input("x", [1, k], DType::F32);
    let half = stored_size(gpu, DType::F16);
    let matrix_bytes = match kind {
        GemvKind::Q4 | GemvKind::Q4Int8 => n * k / 2 + 2 * n * k / 32 * half,
        GemvKind::F16 => n * k * half,
    };
    let copies = GEMV_STREAM_BYTES.div_ceil(matrix_bytes).clamp(1, GEMV_MAX_COPIES);
    // Every copy holds the same bytes (timing only): q4 codes 0x5a with zero scales and biases,
    // or zero f16 rows.
    let (weights, scales) = match kind {
        GemvKind::Q4 | GemvKind::Q4Int8 => (vec![0x5a; n * k / 2], vec![0; n * k / 32 * half]),
        GemvKind::F16 => (vec![0; n * k * half], Vec::new()),
    };
    let x = match kind {
        GemvKind::Q4Int8 => g.add(Op::RoundInt8 { block: 32 }, &[x])?,
        GemvKind::Q4 | GemvKind::F16 => x,
    };
    let mut params: Vec<(String, &[u8])> = Vec::new();
    for c in 0..copies {
        let y = match kind {
            GemvKind::Q4 | GemvKind::Q4Int8 => {
                let w = g.param(&format!("w{c}"), [n, k / 8], DType::U32);
                let s = g.param(&format!("s{c}"), [n, k / 32], DType::F16);
                let b = g.param(&format!("b{c}"), [n, k / 32], DType::F16);
                params.extend([
                    (format!("w{c}"), &weights[..]),
                    (format!("s{c}"), &scales),
                    (format!("b{c}"), &scales),
                ]);
                g.add(Op::QuantMatMul { bits: 4, group_size: 32 }, &[x, w, s, b])?
            }
            GemvKind::F16 => {
                let w = g.param(&format!("w{c}"), [n, k], DType::F16);
                params.push((format!("w{c}"), &weights));
                let w = g.add(Op::Cast { to: DType::F32 }, &[w])?;
                let wt = g.add(Op::Permute { perm: vec![1, 0] }, &[w])?;
                g.add(Op::MatMul, &[x, wt])?
            }
        };
        let y = g.add(Op::Binary(BinaryOp::Add), &[y, y])?;
        g.add_output(y)?;
    }
    let mut exe = load(gpu, &g)?;
    for (name, bytes) in &params {
        exe.write_param(name, bytes)?;
    }
    let t = time_runs(&mut exe, reps)?.div_f64(copies as f64);
    let gb_s = matrix_bytes as f64 / t.as_secs_f64() / 1e9;
    Ok(json!({
        "k": k, "n": n, "copies": copies, "ms": t.as_secs_f64() * 1e3, "gb_s": gb_s,
        "percent_of_copy": 100.0 * gb_s / copy,
    }))
}

/// Bytes per element of `dtype` as plans on `gpu` store it (f16 is f32 without SHADER_F16).
fn stored_size(gpu: &Gpu, dtype: DType) -> usize {
    if dtype == DType::F16 && !gpu.profile().f16 { 4 } else { dtype.size_bytes() }
}

/// KV cache rows the timed prompts and decode steps need.
fn context_for(args: &Args) -> usize {
    if let Some(rows) = args.max_context {
        return rows;
    }
    let prompts = args.prefill.iter().copied().max().unwrap_or(128);
    let max = prompts.max(args.decode_context + args.decode_tokens + 1) + args.decode_tokens;
    max.next_power_of_two()
}

/// Decode and prefill of random weights in `config`'s shapes, with the bytes a decode step
/// streams and their share of the measured copy bandwidth.
fn dummy_bench(
    gpu: &Arc<Gpu>,
    config: &std::path::Path,
    args: &Args,
    copy_gb_s: Option<f64>,
) -> Result<Value, Box<dyn std::error::Error>> {
    let cfg = tessera_models::LlamaConfig::from_file(config)?;
    let bits = match args.quant.as_str() {
        "q8" => 8,
        "f16" => 16,
        _ => 4,
    };
    let weights = tessera_models::llama::dummy::dummy_weights(&cfg, bits, 0)?;
    // Decode streams every weight once, except an untied embedding, of which it reads one row.
    let embedding =
        if cfg.tie_word_embeddings { 0 } else { weights.params_bytes_with_prefix("model.embed_tokens.") };
    let streamed = weights.bytes().saturating_sub(embedding);
    let tokenizer = tessera_models::llama::dummy::placeholder_tokenizer()?;
    let name = format!("{} (dummy {})", config.display(), args.quant);
    let model = LlamaModel::from_parts(name, cfg, tokenizer, weights, gpu.clone(), Some(context_for(args)))?;
    let mut report = model_bench(gpu, model, args)?;
    let gb_s = streamed as f64 * report["decode_tok_s"].as_f64().unwrap_or(0.0) / 1e9;
    report["bytes_per_token"] = json!(streamed);
    report["decode_gb_s"] = json!(gb_s);
    if let Some(copy) = copy_gb_s {
        report["percent_of_copy"] = json!(100.0 * gb_s / copy);
    }
    Ok(report)
}

/// Timed prefills per prompt length; the median is reported (single runs varied 3x on the H200).
const PREFILL_RUNS: usize = 3;

/// Untimed decode steps before the timed ones.
const DECODE_WARMUP: usize = 8;

fn model_bench(
    gpu: &Arc<Gpu>,
    mut model: LlamaModel,
    args: &Args,
) -> Result<Value, Box<dyn std::error::Error>> {
    let prompts: Vec<Vec<u32>> =
        args.prefill.iter().map(|&len| (0..len as u32).map(|i| 100 + i % 1000).collect()).collect();
    let prompt: Vec<u32> = (0..args.decode_context.max(1)).map(|i| 1 + (i % 64) as u32).collect();
    let warm_steps = DECODE_WARMUP.min(args.decode_tokens);
    // Every step is compiled and run once before anything is timed, then the model itself runs
    // for --warmup-ms: building the model and compiling its steps leave the GPU idle long enough
    // for its clocks to drop (H200, 1B q4: the first prefills of a process 535 tok/s, later
    // ones 2700 in the same process).
    for ids in &prompts {
        model.prepare(ids.len(), 0, false)?;
        model.prefill(ids, false)?;
    }
    model.prepare(prompt.len(), args.decode_tokens, false)?;
    let token = model.prefill(&prompt, false)?.next;
    let at = prompt.len();
    repeat_for(Duration::from_millis(args.warmup_ms), || {
        model.decode_greedy(token, at, warm_steps.max(1), |_| true)?;
        Ok(())
    })?;
    let mut prefill = Vec::new();
    for ids in &prompts {
        let len = ids.len();
        let t = median_time(PREFILL_RUNS, || {
            let start = Instant::now();
            model.prefill(ids, false)?;
            Ok(start.elapsed())
        })?;
        prefill.push(json!({ "tokens": len, "tok_s": len as f64 / t.as_secs_f64(), "x": model.step_x(len) }));
    }
    // Greedy decode as `generate` runs it: steps chained on the GPU, tokens read one step behind.
    // A few untimed steps first, so caches hold the decode step's data, not the prompts'.
    let token = model.prefill(&prompt, false)?.next;
    model.decode_greedy(token, at, warm_steps, |_| true)?;
    let start = Instant::now();
    let steps = model.decode_greedy(token, at, args.decode_tokens, |_| true)?;
    let decode = steps as f64 / start.elapsed().as_secs_f64();
    let encode_us = model.last_encode_time().as_secs_f64() * 1e6;
    let dispatches = model.dispatches_per_token(at)?;
    Ok(json!({
        "name": model.name,
        "prefill": prefill,
        "decode_tok_s": decode,
        "decode_context": at,
        "decode_x": model.step_x(1),
        "dispatches_per_token": dispatches,
        "encode_us_per_token": encode_us,
        "encode_us_per_dispatch": encode_us / dispatches.max(1) as f64,
        "peak_memory_bytes": gpu.memory().peak_bytes,
    }))
}

/// Kernels listed by GPU time when `TESSERA_PROFILE` is set.
const TOP_KERNELS: usize = 10;

fn print_human(v: &Value) {
    println!("{} ({})", v["adapter"].as_str().unwrap_or("?"), v["backend"]);
    if let Some(c) = v["copy_gb_s"].as_f64() {
        let shader = v["elementwise_copy_gb_s"].as_f64().unwrap_or(0.0);
        let buffer = v["device_copy_gb_s"].as_f64().unwrap_or(0.0);
        println!(
            "copy bandwidth: {c:.1} GB/s (elementwise kernel {shader:.1}, copy command or vec4 kernel {buffer:.1})"
        );
    }
    for g in v["gemm"].as_array().into_iter().flatten() {
        println!(
            "gemm f32 {}^3: {:.2} ms, {:.1} GFLOP/s",
            g["n"],
            g["ms"].as_f64().unwrap_or(0.0),
            g["gflop_s"].as_f64().unwrap_or(0.0)
        );
    }
    for g in v["quant_gemm_q4"].as_array().into_iter().flatten() {
        println!(
            "quant gemm q4 {}x{}x{} ({} x, {}): {:.2} ms, {:.1} GFLOP/s",
            g["m"],
            g["k"],
            g["n"],
            g["x"].as_str().unwrap_or("?"),
            g["kernel"].as_str().unwrap_or("?"),
            g["ms"].as_f64().unwrap_or(0.0),
            g["gflop_s"].as_f64().unwrap_or(0.0)
        );
    }
    for (key, label) in [("quant_gemv_q4", "q4"), ("quant_gemv_q4_int8_x", "q4, int8 x"), ("gemv_f16", "f16")]
    {
        for g in v[key].as_array().into_iter().flatten() {
            println!(
                "gemv {label} {}x{}: {:.3} ms, {:.1} GB/s ({:.0}% of copy)",
                g["k"],
                g["n"],
                g["ms"].as_f64().unwrap_or(0.0),
                g["gb_s"].as_f64().unwrap_or(0.0),
                g["percent_of_copy"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let m = &v["model"];
    if !m.is_null() {
        for p in m["prefill"].as_array().into_iter().flatten() {
            let x = p["x"].as_str().map(|x| format!(" ({x} x)")).unwrap_or_default();
            println!(
                "{}: prefill {} tokens: {:.1} tok/s{x}",
                m["name"],
                p["tokens"],
                p["tok_s"].as_f64().unwrap_or(0.0)
            );
        }
        let x = m["decode_x"].as_str().map(|x| format!(" ({x} x)")).unwrap_or_default();
        println!(
            "{}: decode {:.1} tok/s{x} after {} cached tokens, {} dispatches/token, peak memory {:.1} MB",
            m["name"],
            m["decode_tok_s"].as_f64().unwrap_or(0.0),
            m["decode_context"],
            m["dispatches_per_token"],
            m["peak_memory_bytes"].as_f64().unwrap_or(0.0) / 1e6
        );
        if let Some(us) = m["encode_us_per_token"].as_f64() {
            println!(
                "{}: CPU encode + submit {:.1} us/token, {:.2} us/dispatch",
                m["name"],
                us,
                m["encode_us_per_dispatch"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(gb_s) = m["decode_gb_s"].as_f64() {
            // Without the kernel rows (--no-kernels) there is no copy reference to compare with.
            let of_copy = match m["percent_of_copy"].as_f64() {
                Some(p) => format!(" ({p:.0}% of copy)"),
                None => String::new(),
            };
            println!(
                "{}: {:.1} MB/token streamed, {:.1} GB/s{of_copy}",
                m["name"],
                m["bytes_per_token"].as_f64().unwrap_or(0.0) / 1e6,
                gb_s,
            );
        }
    }
    if let Some(top) = v["top_kernels"].as_array() {
        println!("top kernels by GPU time (TESSERA_PROFILE, every run above):");
        for k in top {
            println!(
                "  {:<44} {:>7} dispatches {:>10.2} ms",
                k["name"].as_str().unwrap_or("?"),
                k["count"].as_u64().unwrap_or(0),
                k["gpu_ms"].as_f64().unwrap_or(0.0)
            );
        }
    }
}
