//! Token sampling, as mlx-lm and llama.cpp do it: repetition penalty, then temperature, top-k,
//! top-p and min-p filtering, then a seeded draw. Temperature 0 is greedy.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the next token is chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens (0: off).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1: off).
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely one (0: off).
    pub min_p: f32,
    /// Divide positive logits of already seen tokens by this (multiply negative ones); 1: off.
    pub repetition_penalty: f32,
    /// Seed of the draw.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, repetition_penalty: 1.0, seed: 0 }
    }
}

impl SamplerConfig {
    /// True when the GPU's argmax is the answer (no logits needed on the host).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 && self.repetition_penalty == 1.0
    }

    /// Checks ranges, naming the flag at fault.
    pub fn validate(&self) -> Result<(), String> {
        // Written so NaN fails too.
        if self.temperature.is_nan() || self.temperature < 0.0 {
            return Err(format!("--temp must be >= 0, got {}", self.temperature));
        }
        if self.top_p.is_nan() || self.top_p <= 0.0 || self.top_p > 1.0 {
            return Err(format!("--top-p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("--min-p must be in [0, 1], got {}", self.min_p));
        }
        if self.repetition_penalty.is_nan() || self.repetition_penalty <= 0.0 {
            return Err(format!("--repetition-penalty must be > 0, got {}", self.repetition_penalty));
        }
        Ok(())
    }
}

/// A seeded sampler.
pub struct Sampler {
    config: SamplerConfig,
    rng: StdRng,
}

impl Sampler {
    /// A sampler with its own generator seeded from `config.seed`.
    pub fn new(config: SamplerConfig) -> Sampler {
        let rng = StdRng::seed_from_u64(config.seed);
        Sampler { config, rng }
    }

    /// The next token from `logits`, given the tokens seen so far (for the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let mut logits = logits.to_vec();
        let penalty = self.config.repetition_penalty;
        if penalty != 1.0 {
            for &t in history {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
                }
            }
        }
        if self.config.temperature <= 0.0 {
            return argmax(&logits);
        }
        let probs = filtered_probs(&logits, &self.config);
        let r: f32 = self.rng.random_range(0.0..1.0);
        let mut acc = 0.0;
        for &(id, p) in &probs {
            acc += p;
            if r < acc {
                return id;
            }
        }
        probs.last().map(|&(id, _)| id).unwrap_or_else(|| argmax(&logits))
    }
}

/// Index of the first maximum.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// `(token, probability)` after temperature, top-k, top-p and min-p, renormalized, most likely
/// first.
fn filtered_probs(logits: &[f32], c: &SamplerConfig) -> Vec<(u32, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f32)> =
        logits.iter().enumerate().map(|(i, &l)| (i as u32, ((l - max) / c.temperature).exp())).collect();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1));
    if c.top_k > 0 {
        probs.truncate(c.top_k);
    }
    let total: f32 = probs.iter().map(|p| p.1).sum();
    if c.top_p < 1.0 {
        let mut acc = 0.0;
        let keep = probs.iter().position(|p| {
            acc += p.1 / total;
            acc >= c.top_p
        });
        if let Some(k) = keep {
            probs.truncate(k + 1);
        }
    }
    if c.min_p > 0.0 {
        let floor = probs.first().map_or(0.0, |p| p.1) * c.min_p;
        probs.retain(|p| p.1 >= floor);
    }
    let total: f32 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= total);
    probs
}

/// The `k` most likely tokens with their log-probabilities.
pub fn top_logprobs(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_total = logits.iter().map(|&l| ((l - max) as f64).exp()).sum::<f64>().ln() as f32 + max;
    let mut all: Vec<(u32, f32)> =
        logits.iter().enumerate().map(|(i, &l)| (i as u32, l - log_total)).collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_penalty() {
        let mut s = Sampler::new(SamplerConfig::default());
        assert_eq!(s.sample(&[0.1, 3.0, 2.0], &[]), 1);
        let mut s = Sampler::new(SamplerConfig { repetition_penalty: 2.0, ..SamplerConfig::default() });
        assert_eq!(s.sample(&[0.1, 3.0, 2.0], &[1]), 2, "3.0 / 2 falls below 2.0");
    }

    #[test]
    fn filters_keep_the_right_tokens() {
        let logits = [0.0f32, 1.0, 2.0, 3.0];
        let c = SamplerConfig { temperature: 1.0, top_k: 2, ..SamplerConfig::default() };
        let ids: Vec<u32> = filtered_probs(&logits, &c).iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![3, 2]);
        let c = SamplerConfig { temperature: 1.0, min_p: 0.3, ..SamplerConfig::default() };
        let ids: Vec<u32> = filtered_probs(&logits, &c).iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![3, 2], "e^-2 = 0.135 < 0.3 drops token 1");
        let c = SamplerConfig { temperature: 1.0, top_p: 0.5, ..SamplerConfig::default() };
        let ids: Vec<u32> = filtered_probs(&logits, &c).iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![3], "the top token alone holds 64%");
    }

    #[test]
    fn seeded_draws_repeat_and_follow_the_distribution() {
        let logits = [0.0f32, 0.0, 0.0, 5.0];
        let c = SamplerConfig { temperature: 1.0, seed: 7, ..SamplerConfig::default() };
        let draw = |c: &SamplerConfig| {
            let mut s = Sampler::new(c.clone());
            (0..200).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        assert_eq!(draw(&c), draw(&c));
        let threes = draw(&c).iter().filter(|&&t| t == 3).count();
        assert!(threes > 180, "p(3) = 0.98, got {threes}/200");
    }

    #[test]
    fn logprobs_normalize() {
        let top = top_logprobs(&[0.0, (3.0f32).ln()], 2);
        assert_eq!(top[0].0, 1);
        assert!((top[0].1 - 0.75f32.ln()).abs() < 1e-6);
        assert!((top[1].1 - 0.25f32.ln()).abs() < 1e-6);
    }
}
