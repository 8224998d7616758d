//! `tessera generate`: stream a completion from a Llama-family model, with mlx-lm's statistics.

use crate::process_start;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tessera::layers::runtime::Gpu;
use tessera_models::llama::{GenerateOptions, LlamaModel, generate};
use tessera_models::sample::SamplerConfig;
use tessera_models::tokenizer::ChatMessage;

/// Where `generate` looks when `--model` is not given.
const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(clap::Args)]
pub struct Args {
    /// A .gguf file, model directory or .tsr artifact (default: SmolLM2-135M-Instruct from the
    /// model cache).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The prompt (raw text unless --chat).
    #[arg(long, default_value = "hello")]
    prompt: String,
    /// Use the model's chat template with the prompt as the user message.
    #[arg(long)]
    chat: bool,
    /// A system message for --chat.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long = "temp", default_value_t = 0.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling threshold (1: off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Drop tokens below min-p times the top probability (0: off).
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    /// Penalize tokens already present (1: off).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Random seed for sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// KV cache rows (default: min(model context, 4096)).
    #[arg(long)]
    max_context: Option<usize>,
    /// Report the k most likely tokens with log-probabilities for each generated token.
    #[arg(long, default_value_t = 0)]
    top_logprobs: usize,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Compile without fusion (one kernel per op), to bisect a wrong result.
    #[arg(long)]
    no_fuse: bool,
    /// Switch off e-graph rule sets: algebra, layout or all (comma-separated).
    #[arg(long, value_delimiter = ',')]
    no_rules: Vec<String>,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => {
            let p = tessera_models::tessera_home().join(DEFAULT_MODEL);
            if !p.is_file() {
                return Err(format!(
                    "default model not found at {}; fetch it with: scripts/fetch-models.sh",
                    p.display()
                )
                .into());
            }
            p
        }
    };
    let options = tessera::compile_options(args.no_fuse, &args.no_rules)?;
    let gpu = Arc::new(Gpu::from_env()?);
    let mut model = LlamaModel::load(&path, gpu.clone(), args.max_context)?;
    model.set_compile_options(options)?;
    let load_time = process_start().elapsed().as_secs_f64();
    // Weights are uploaded during load: twice through staging, once on unified memory.
    let bytes_copied_at_load = gpu.memory().copied_bytes;
    let prompt_ids = prompt_ids(&model, args)?;
    let options = GenerateOptions {
        max_tokens: args.max_tokens,
        sampler: SamplerConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            min_p: args.min_p,
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
        },
        top_logprobs: args.top_logprobs,
        stop_ids: model.stop_ids(),
    };
    let mut first_token_at = None;
    let mut stdout = std::io::stdout();
    let result = generate(&mut model, &prompt_ids, &options, |piece| {
        first_token_at.get_or_insert_with(|| process_start().elapsed());
        if !args.json {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }
    })?;
    let ttft = first_token_at.unwrap_or_else(|| process_start().elapsed()).as_secs_f64();
    // Those of the last decode step's plan (the short decode's below its rows).
    let last_pos = result.prompt_ids.len() + result.generated_ids.len().saturating_sub(2);
    let dispatches = model.dispatches_per_token(last_pos)?;
    let peak = gpu.memory().peak_bytes;
    if args.json {
        let report = serde_json::json!({
            "model": model.name,
            "adapter": gpu.report().name,
            "backend": gpu.report().backend,
            "prompt_ids": result.prompt_ids,
            "generated_ids": result.generated_ids,
            "text": result.text,
            "prompt_tokens": result.prompt_ids.len(),
            "generated_tokens": result.generated_ids.len(),
            "prompt_tps": result.prompt_tps(),
            "generation_tps": result.generation_tps(),
            "time_to_first_token_s": ttft,
            "peak_memory_bytes": peak,
            "dispatches_per_token": dispatches,
            "bytes_copied_at_load": bytes_copied_at_load,
            "unified_memory": gpu.has_unified_memory(),
            "load_time_s": load_time,
            "artifact_tier": model.artifact_tier(),
            "top_logprobs": (args.top_logprobs > 0).then_some(&result.top_logprobs),
        });
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!();
    }
    // A line of its own: the summary line below keeps the format INTERFACE.md gives.
    let path_taken = if gpu.has_unified_memory() { "unified memory" } else { "staging" };
    eprintln!("load: {:.1} MB copied ({path_taken}), {load_time:.2} s", bytes_copied_at_load as f64 / 1e6);
    eprintln!(
        "prompt: {} tokens, {:.1} tok/s | generation: {} tokens, {:.1} tok/s | peak memory: {:.1} MB | {} dispatches/token",
        result.prompt_ids.len(),
        result.prompt_tps(),
        result.generated_ids.len(),
        result.generation_tps(),
        peak as f64 / 1e6,
        dispatches
    );
    Ok(())
}

/// Token ids of the prompt: raw text (special tokens in it recognized), or the chat template.
fn prompt_ids(model: &LlamaModel, args: &Args) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
    if !args.chat {
        if args.system.is_some() {
            return Err("--system needs --chat".into());
        }
        return Ok(model.tokenizer.encode(&args.prompt)?);
    }
    let template =
        model.tokenizer.chat_template.as_ref().ok_or("this model has no chat template; drop --chat")?;
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(ChatMessage::new("system", system));
    }
    messages.push(ChatMessage::new("user", &args.prompt));
    let text = template.render(&messages, true)?;
    // The template writes BOS and role markers itself: add nothing more.
    let encoding = model.tokenizer.tokenizer.encode(text, false).map_err(|e| e.to_string())?;
    Ok(encoding.get_ids().to_vec())
}
