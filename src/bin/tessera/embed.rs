//! `tessera embed`: sentence embeddings from a BERT-family sentence-transformers model, pooled
//! and normalized as its folder says; a cosine-similarity matrix when several texts are given.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tessera::layers::runtime::Gpu;
use tessera_models::bert::{BertModel, cosine};

/// Where `embed` looks when `--model` is not given.
const DEFAULT_MODEL: &str = "models/all-MiniLM-L6-v2";
/// Leading values shown per vector in the human-readable output.
const SHOWN_VALUES: usize = 6;

#[derive(clap::Args)]
pub struct Args {
    /// A model directory: config.json, model.safetensors, tokenizer.json and the
    /// sentence-transformers files (default: all-MiniLM-L6-v2 from the model cache).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print one JSON object: model, adapter, dim, token_ids, embeddings.
    #[arg(long)]
    json: bool,
    /// Texts to embed (default: one per line of stdin).
    texts: Vec<String>,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let dir = match &args.model {
        Some(p) => p.clone(),
        None => {
            let p = tessera_models::tessera_home().join(DEFAULT_MODEL);
            if !p.join("model.safetensors").is_file() {
                return Err(format!(
                    "default model not found at {}; fetch it with: scripts/fetch-models.sh",
                    p.display()
                )
                .into());
            }
            p
        }
    };
    let texts = if args.texts.is_empty() { stdin_lines()? } else { args.texts.clone() };
    if texts.is_empty() {
        return Err("no text to embed: give TEXT arguments or lines on stdin".into());
    }
    let gpu = Arc::new(Gpu::from_env()?);
    let mut model = BertModel::load(&dir, gpu.clone())?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let token_ids = model.tokenize(&refs)?;
    let compile_start = Instant::now();
    model.prepare(&token_ids)?;
    let compile_s = compile_start.elapsed().as_secs_f64();
    let run_start = Instant::now();
    let vectors = model.embed_ids(&token_ids)?;
    let run_s = run_start.elapsed().as_secs_f64();

    if args.json {
        let report = serde_json::json!({
            "model": model.name,
            "adapter": gpu.report().name,
            "dim": model.dim(),
            "token_ids": token_ids,
            "embeddings": vectors,
        });
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&texts, &token_ids, &vectors, model.dim());
    }
    let runs = model.batches(&token_ids)?.len();
    eprintln!(
        "{} texts, {} tokens in {runs} runs: {:.1} ms, {:.1} sentences/s | compile {:.1} s | peak memory: {:.1} MB",
        texts.len(),
        token_ids.iter().map(Vec::len).sum::<usize>(),
        run_s * 1e3,
        texts.len() as f64 / run_s.max(1e-9),
        compile_s,
        gpu.memory().peak_bytes as f64 / 1e6
    );
    Ok(())
}

fn stdin_lines() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut lines = Vec::new();
    for line in std::io::stdin().lock().lines() {
        lines.push(line.map_err(|e| format!("reading stdin: {e}"))?);
    }
    Ok(lines)
}

fn print_human(texts: &[String], token_ids: &[Vec<u32>], vectors: &[Vec<f32>], dim: usize) {
    for (i, (text, v)) in texts.iter().zip(vectors).enumerate() {
        let shown: Vec<String> = v.iter().take(SHOWN_VALUES).map(|x| format!("{x:+.4}")).collect();
        let tokens = token_ids.get(i).map_or(0, Vec::len);
        println!("[{i}] {text:?}");
        println!("    dim {dim}, {tokens} tokens: [{} ...]", shown.join(", "));
    }
    if vectors.len() > 1 {
        println!("cosine similarity:");
        let header: Vec<String> = (0..vectors.len()).map(|j| format!("{:>7}", format!("[{j}]"))).collect();
        println!("     {}", header.join(""));
        for (i, a) in vectors.iter().enumerate() {
            let row: Vec<String> = vectors.iter().map(|b| format!("{:>7.3}", cosine(a, b))).collect();
            println!("{:<5}{}", format!("[{i}]"), row.join(""));
        }
    }
}
