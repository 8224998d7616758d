//! Decode steps at the first cache positions run the short decode plan (its attention reading
//! only those leading rows) and later ones the full plan: greedy decode chained across the
//! switch gives the tokens, and leaves the cache, that plain steps do.

mod common;
use common::gpu;

use std::sync::Arc;
use tessera_models::LlamaConfig;
use tessera_models::llama::LlamaModel;
use tessera_models::llama::dummy::{dummy_weights, placeholder_tokenizer};
use tessera_models::llama::graph::StepShape;

const CONFIG: &str = r#"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0, "max_position_embeddings": 1024, "vocab_size": 101, "tie_word_embeddings": true}"#;

/// Cache rows of the test model: more than the short decode plan's 256.
const ROWS: usize = 512;

fn model(gpu: &Arc<tessera_runtime::Gpu>) -> LlamaModel {
    let cfg: LlamaConfig = serde_json::from_str(CONFIG).expect("config parses");
    let weights = dummy_weights(&cfg, 4, 11).expect("dummy weights");
    let tokenizer = placeholder_tokenizer().expect("tokenizer");
    LlamaModel::from_parts("tiny".into(), cfg, tokenizer, weights, gpu.clone(), Some(ROWS)).expect("loads")
}

#[test]
fn greedy_decode_across_the_short_plan_matches_plain_steps() {
    let Some(gpu) = gpu() else { return };
    let gpu = Arc::new(gpu);
    let mut model = model(&gpu);
    assert!(tessera_models::llama::step_shapes(ROWS).contains(&StepShape::short_decode(ROWS, 256, false)));
    // One fewer dispatch per layer is not promised on every device (lavapipe never splits).
    assert!(
        model.dispatches_per_token(0).expect("short plan") <= model.dispatches_per_token(300).expect("full")
    );

    let prompt: Vec<u32> = (0..250).map(|i| 3 + (i * 7 % 90) as u32).collect();
    let (steps, from) = (12, prompt.len());
    let probe_pos = from + steps;
    // The steps start from another token than the prompt's greedy one: this random model soon
    // predicts one token over and over, so the token fed across the switch (the first step at
    // row 256) differs from the one the run started with only this way.
    let first = (model.prefill(&prompt, false).expect("prefill").next + 1) % 101;
    let mut chained = Vec::new();
    let done = model
        .decode_greedy(first, from, steps, |t| {
            chained.push(t);
            true
        })
        .expect("chained decode");
    assert_eq!(done, steps);
    assert_ne!(chained[255 - from], first, "the switch is fed the token the run started with");
    // Logits of a step after them, which attends to the rows they wrote.
    let chained_probe = model.decode(5, probe_pos, true).expect("probe").logits.expect("logits");

    model.prefill(&prompt, false).expect("prefill again");
    let (mut plain, mut token) = (Vec::new(), first);
    for k in 0..steps {
        token = model.decode(token, from + k, false).expect("plain step").next;
        plain.push(token);
    }
    assert_eq!(chained, plain, "chained vs plain greedy tokens across position 256");
    let plain_probe = model.decode(5, probe_pos, true).expect("probe").logits.expect("logits");
    let diff = plain_probe.iter().zip(&chained_probe).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff <= 1e-5, "the cache the chained steps wrote differs: max logit difference {diff}");

    // A stop inside the first plan's steps ends the whole run.
    model.prefill(&prompt, false).expect("prefill");
    let mut seen = 0;
    let done = model.decode_greedy(first, from, steps, |_| {
        seen += 1;
        seen < 3
    });
    assert_eq!(done.expect("stopped decode"), 3);
}
