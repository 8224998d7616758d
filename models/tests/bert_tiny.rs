//! A tiny random-weight BERT (2 layers, odd widths, 3 heads of 11) built in the IR: a batch of
//! three sentences of different lengths (right padding, masked in attention and pooling) on the
//! GPU against the reference interpreter, for every pooling mode; and each sentence's vector does
//! not depend on its batch-mates or on the padded length.

mod common;
use common::gpu;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use tessera_compiler::CompileOptions;
use tessera_ir::DType;
use tessera_ir::interp::{self, Tensor};
use tessera_models::BertConfig;
use tessera_models::bert::graph::inputs;
use tessera_models::bert::weights::TensorSpec;
use tessera_models::bert::{
    BertModel, BertWeights, EncodeShape, Pooling, SentenceConfig, build_encoder, cosine,
};
use tessera_runtime::SharedBuffers;

fn tiny_config() -> BertConfig {
    serde_json::from_str(
        r#"{"hidden_size": 33, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 47,
            "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 20,
            "type_vocab_size": 2, "vocab_size": 53, "pad_token_id": 0}"#,
    )
    .expect("tiny config parses")
}

fn tiny_weights(cfg: &BertConfig, seed: u64) -> BertWeights {
    let mut rng = StdRng::seed_from_u64(seed);
    BertWeights::from_fn(cfg, |spec: &TensorSpec| {
        let n: usize = spec.shape.iter().product();
        let norm_weight = spec.name.contains("LayerNorm.weight");
        Ok((0..n)
            .map(|_| if norm_weight { rng.random_range(0.8..1.2) } else { rng.random_range(-0.3..0.3) })
            .collect())
    })
    .expect("weights fill")
}

fn tensor_of(p: &tessera_models::llama::weights::HostParam) -> Tensor {
    let values =
        p.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect();
    Tensor::new(p.shape.clone(), p.dtype, values)
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Sentences of 5, 12 (the full bucket) and 1 tokens.
fn sentences() -> Vec<Vec<u32>> {
    vec![vec![2, 17, 40, 9, 3], vec![2, 5, 6, 7, 8, 9, 10, 11, 12, 50, 52, 3], vec![2]]
}

#[test]
fn tiny_bert_batch_with_padding_matches_the_interpreter() {
    let Some(gpu) = gpu() else { return };
    let cfg = tiny_config();
    let weights = tiny_weights(&cfg, 7);
    let shared = SharedBuffers::new();
    for (name, p) in &weights.params {
        gpu.write_shared(&shared, name, &p.bytes).expect("upload");
    }
    let shape = EncodeShape { batch: 3, seq: 12 };
    let mut tokens = vec![0u32; shape.batch * shape.seq];
    let mut lengths = Vec::new();
    for (row, s) in sentences().iter().enumerate() {
        tokens[row * shape.seq..row * shape.seq + s.len()].copy_from_slice(s);
        lengths.push(s.len() as u32);
    }
    let feeds = [
        (inputs::TOKENS, Tensor::new([tokens.len()], DType::U32, tokens.iter().map(|&t| t as f64).collect())),
        (inputs::LENGTHS, Tensor::new([3], DType::U32, lengths.iter().map(|&t| t as f64).collect())),
    ];
    let mut bindings: Vec<(&str, Tensor)> = feeds.iter().map(|(n, t)| (*n, t.clone())).collect();
    bindings.extend(weights.params.iter().map(|(n, p)| (n.as_str(), tensor_of(p))));

    for (pooling, normalize) in
        [(Pooling::Mean, true), (Pooling::Mean, false), (Pooling::Cls, false), (Pooling::Max, true)]
    {
        let graph = build_encoder(&cfg, shape, pooling, normalize).expect("graph builds");
        graph.verify().expect("graph verifies");
        let plan =
            tessera_compiler::compile(&graph, gpu.profile(), &CompileOptions::default()).expect("compiles");
        let mut exe = gpu.load_shared(&plan, &shared).expect("loads");
        exe.write_input(inputs::TOKENS, &u32s(&tokens)).expect("tokens");
        exe.write_input(inputs::LENGTHS, &u32s(&lengths)).expect("lengths");
        let got = exe.run().expect("runs");
        let got: Vec<f32> =
            got[0].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let want = interp::run(&graph, &bindings).expect("interpreter");
        assert_eq!(want[0].shape.dims(), &[3, cfg.hidden_size], "{pooling:?}: output shape");
        let mut worst = 0f64;
        for (i, (&g, &w)) in got.iter().zip(&want[0].data).enumerate() {
            let err = (g as f64 - w).abs();
            worst = worst.max(err);
            assert!(
                err <= 2e-4 + 2e-4 * w.abs(),
                "{pooling:?} normalize={normalize}: [{i}] got {g}, want {w}"
            );
        }
        eprintln!("{pooling:?} normalize={normalize}: largest difference {worst:.2e}");
        if normalize {
            for row in got.chunks_exact(cfg.hidden_size) {
                let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-4, "{pooling:?}: normalized row has norm {norm}");
            }
        }
    }
}

#[test]
fn tiny_bert_vectors_do_not_depend_on_batch_or_padding() {
    let Some(gpu) = gpu() else { return };
    let cfg = tiny_config();
    let sentence = SentenceConfig { pooling: Pooling::Mean, normalize: true, max_seq_length: 20 };
    let tokenizer =
        tessera_models::tokenizer::Tokenizer::new(tokenizers::models::wordpiece::WordPiece::default());
    let mut model = BertModel::from_parts(
        "tiny".into(),
        cfg.clone(),
        sentence,
        tokenizer,
        tiny_weights(&cfg, 11),
        Arc::new(gpu),
    )
    .expect("model");
    let all = sentences();
    let batched = model
        .run_batch(EncodeShape { batch: 8, seq: 16 }, &all.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .expect("batch");
    let by_buckets = model.embed_ids(&all).expect("embed_ids");
    for (i, s) in all.iter().enumerate() {
        let alone = model.run_batch(EncodeShape { batch: 1, seq: 20 }, &[s.as_slice()]).expect("alone");
        for (what, v) in [("batch of 8 at 16", &batched[i]), ("embed_ids", &by_buckets[i])] {
            let c = cosine(v, &alone[0]);
            assert!(c >= 0.99999, "sentence {i}: {what} vs alone at 20 tokens: cosine {c}");
        }
    }
    assert!(model.embed_ids(&[vec![1; 21]]).is_err(), "over max_seq_length is an error");
    assert!(model.embed_ids(&[vec![53]]).is_err(), "a token outside the vocabulary is an error");
}
