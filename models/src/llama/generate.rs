//! The generation loop: prefill the prompt, then one decode step per token until an end token,
//! the token limit or the end of the context, streaming text as it becomes complete UTF-8.

use super::model::LlamaModel;
use crate::ModelError;
use crate::sample::{Sampler, SamplerConfig, top_logprobs};
use crate::tokenizer::StreamingDecoder;
use std::time::{Duration, Instant};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// How tokens are chosen.
    pub sampler: SamplerConfig,
    /// Per generated token, the k most likely tokens with log-probabilities (0: none).
    pub top_logprobs: usize,
    /// Tokens that end generation (EOS, chat end-of-turn).
    pub stop_ids: Vec<u32>,
}

/// What came out, with timings.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// Generated ids (the stop token included when one ended generation).
    pub generated_ids: Vec<u32>,
    /// Decoded text of the generated ids (special tokens skipped).
    pub text: String,
    /// Time of the prefill step (first token included).
    pub prefill_time: Duration,
    /// Time of the decode steps after the first token.
    pub decode_time: Duration,
    /// Per generated token, `(id, logprob)` of the most likely tokens.
    pub top_logprobs: Vec<Vec<(u32, f32)>>,
}

impl Generation {
    /// Prompt tokens per second.
    pub fn prompt_tps(&self) -> f64 {
        self.prompt_ids.len() as f64 / self.prefill_time.as_secs_f64().max(1e-9)
    }

    /// Generated tokens per second over the decode steps (the first token comes from prefill).
    pub fn generation_tps(&self) -> f64 {
        let n = self.generated_ids.len().saturating_sub(1);
        if n == 0 {
            return 0.0;
        }
        n as f64 / self.decode_time.as_secs_f64().max(1e-9)
    }
}

/// Generates from `prompt_ids`, calling `on_text` with each complete piece of text.
pub fn generate(
    model: &mut LlamaModel,
    prompt_ids: &[u32],
    options: &GenerateOptions,
    mut on_text: impl FnMut(&str),
) -> Result<Generation, ModelError> {
    options.sampler.validate().map_err(ModelError::Invalid)?;
    let mut sampler = Sampler::new(options.sampler.clone());
    let want_logits = !options.sampler.is_greedy() || options.top_logprobs > 0;
    let tokenizer = model.tokenizer.tokenizer.clone();
    let mut stream = StreamingDecoder::new(&tokenizer, true);
    let mut out = Generation { prompt_ids: prompt_ids.to_vec(), ..Generation::default() };
    if options.max_tokens == 0 {
        return Ok(out);
    }

    model.prepare(prompt_ids.len(), options.max_tokens, want_logits)?;
    let start = Instant::now();
    let mut step = model.prefill(prompt_ids, want_logits)?;
    out.prefill_time = start.elapsed();
    let decode_start = Instant::now();
    let mut history = prompt_ids.to_vec();
    // Takes a generated token: records and streams it; false once generation should stop.
    let mut accept = |token: u32, out: &mut Generation, history: &mut Vec<u32>| -> Result<bool, ModelError> {
        out.generated_ids.push(token);
        history.push(token);
        if options.stop_ids.contains(&token) {
            return Ok(false);
        }
        if let Some(piece) = stream.push(token)? {
            on_text(&piece);
            out.text.push_str(&piece);
        }
        Ok(out.generated_ids.len() < options.max_tokens)
    };
    loop {
        let token = match &step.logits {
            Some(logits) if !options.sampler.is_greedy() => sampler.sample(logits, &history),
            _ => step.next,
        };
        if let (Some(logits), k) = (&step.logits, options.top_logprobs) {
            if k > 0 {
                out.top_logprobs.push(top_logprobs(logits, k));
            }
        }
        if !accept(token, &mut out, &mut history)? {
            break;
        }
        let pos = history.len() - 1;
        if pos >= model.max_context() {
            break;
        }
        if !want_logits {
            // Greedy without logits: the rest runs chained on the GPU (step n's token feeds step
            // n+1 there), one step behind on the host.
            let remaining = options.max_tokens - out.generated_ids.len();
            let mut failed = None;
            model.decode_greedy(token, pos, remaining, |t| match accept(t, &mut out, &mut history) {
                Ok(more) => more,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            break;
        }
        step = model.decode(token, pos, want_logits)?;
    }
    if let Some(piece) = stream.finish()? {
        on_text(&piece);
        out.text.push_str(&piece);
    }
    out.decode_time = decode_start.elapsed();
    Ok(out)
}
