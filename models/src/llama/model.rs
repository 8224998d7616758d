//! A loaded Llama-family model on the GPU: config, tokenizer, weights uploaded once into shared
//! device buffers, a KV cache preallocated to the maximum context, and step plans compiled on
//! first use (one per prefill bucket, one for decode) that all bind the same weights and cache.

use super::graph::{StepShape, build_step, inputs};
use super::weights::WeightIndex;
use crate::ModelError;
use crate::config::LlamaConfig;
use crate::gguf::GgufFile;
use crate::safetensors::ShardedSafetensors;
use crate::tokenizer::ModelTokenizer;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tessera_compiler::CompileOptions;
use tessera_runtime::{Executable, Gpu, SharedBuffers};

/// Prefill lengths are padded up to one of these, so a handful of plans serve every prompt.
const PREFILL_BUCKETS: [usize; 9] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// What one step returns.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    /// The greedy next token (argmax on the GPU).
    pub next: u32,
    /// The logits of that row, when asked for.
    pub logits: Option<Vec<f32>>,
}

/// A Llama-family model ready to generate.
pub struct LlamaModel {
    /// The architecture.
    pub config: LlamaConfig,
    /// Tokenizer, special tokens and chat template.
    pub tokenizer: ModelTokenizer,
    /// Display name (file or directory name).
    pub name: String,
    weights: WeightIndex,
    gpu: Arc<Gpu>,
    shared: SharedBuffers,
    max_context: usize,
    options: CompileOptions,
    steps: HashMap<StepShape, Executable>,
}

impl LlamaModel {
    /// Loads a `.gguf` file, or a Hugging Face / mlx-community directory (config.json,
    /// safetensors, tokenizer.json), onto `gpu` with a KV cache of `max_context` rows (default:
    /// min(model context, 4096)).
    pub fn load(path: &Path, gpu: Arc<Gpu>, max_context: Option<usize>) -> Result<LlamaModel, ModelError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            let config = LlamaConfig::from_file(&path.join("config.json"))?;
            let tokenizer = ModelTokenizer::from_dir(path)?;
            let st = ShardedSafetensors::open_dir(path)
                .map_err(|e| ModelError::Invalid(format!("{}: {e}", path.display())))?;
            let weights = WeightIndex::from_safetensors(&st, &config)?;
            return LlamaModel::from_parts(name, config, tokenizer, weights, gpu, max_context);
        }
        if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            return Err(ModelError::Invalid(format!(
                "{}: expected a .gguf file or a model directory with config.json",
                path.display()
            )));
        }
        let gguf = GgufFile::open(path)?;
        let config = gguf.llama_config()?;
        let tokenizer = ModelTokenizer::from_gguf(&gguf)?;
        let mut weights = WeightIndex::from_gguf(&gguf)?;
        // llama.cpp stores llama3-style RoPE scaling as per-frequency factors that divide the
        // base frequencies (`rope_freqs.weight`, `[head_dim / 2]`).
        if let Some(t) = gguf.tensor("rope_freqs.weight") {
            let factors = crate::gguf::dequantize(&t)?;
            let base = config.rope_inv_freq().map_err(ModelError::Invalid)?;
            if factors.len() != base.len() || factors.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
                return Err(ModelError::Invalid(format!(
                    "{}: rope_freqs.weight has {} factors for {} frequencies, or a non-positive one",
                    path.display(),
                    factors.len(),
                    base.len()
                )));
            }
            let inv_freq: Vec<f32> =
                base.iter().zip(&factors).map(|(b, f)| (*b / f64::from(*f)) as f32).collect();
            weights.insert_f32(super::graph::INV_FREQ, vec![1, inv_freq.len()], &inv_freq);
        }
        LlamaModel::from_parts(name, config, tokenizer, weights, gpu, max_context)
    }

    /// A model from already prepared parts (tests build tiny random ones this way).
    pub fn from_parts(
        name: String,
        config: LlamaConfig,
        tokenizer: ModelTokenizer,
        mut weights: WeightIndex,
        gpu: Arc<Gpu>,
        max_context: Option<usize>,
    ) -> Result<LlamaModel, ModelError> {
        config.validate().map_err(ModelError::Invalid)?;
        let model_context = config.max_position_embeddings as usize;
        let max_context = max_context.unwrap_or(model_context.min(4096)).clamp(1, model_context.max(1));
        if !weights.params.contains_key(super::graph::INV_FREQ) {
            let inv_freq = config.rope_inv_freq().map_err(ModelError::Invalid)?;
            let inv_freq: Vec<f32> = inv_freq.iter().map(|&f| f as f32).collect();
            weights.insert_f32(super::graph::INV_FREQ, vec![1, inv_freq.len()], &inv_freq);
        }
        let shared = SharedBuffers::new();
        for (name, p) in std::mem::take(&mut weights.params) {
            gpu.write_shared(&shared, &name, &p.bytes)?;
        }
        Ok(LlamaModel {
            config,
            tokenizer,
            name,
            weights,
            gpu,
            shared,
            max_context,
            options: CompileOptions::default(),
            steps: HashMap::new(),
        })
    }

    /// Compile options for plans built from now on (switches to bisect a wrong result).
    pub fn set_compile_options(&mut self, options: CompileOptions) {
        self.options = options;
        self.steps.clear();
    }

    /// Rows of the KV cache.
    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// The GPU the model runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Dispatches of one decode step (compiles the decode plan if needed).
    pub fn dispatches_per_token(&mut self) -> Result<usize, ModelError> {
        let shape = StepShape { seq: 1, max_context: self.max_context, logits: false };
        Ok(self.step(shape)?.dispatch_count())
    }

    /// Compiles and loads the plans a prompt of `prompt_len` tokens and the decode steps after it
    /// will use, so that timing a generation measures running, not compiling.
    pub fn prepare(&mut self, prompt_len: usize, logits: bool) -> Result<(), ModelError> {
        let seq = self.prefill_bucket(prompt_len);
        self.step(StepShape { seq, max_context: self.max_context, logits })?;
        self.step(StepShape { seq: 1, max_context: self.max_context, logits })?;
        Ok(())
    }

    /// The padded length a prompt of `len` tokens runs at.
    fn prefill_bucket(&self, len: usize) -> usize {
        PREFILL_BUCKETS.iter().copied().find(|&b| b >= len).unwrap_or(len).min(self.max_context)
    }

    fn step(&mut self, shape: StepShape) -> Result<&mut Executable, ModelError> {
        if !self.steps.contains_key(&shape) {
            let graph = build_step(&self.config, &self.weights, shape)?;
            let plan = tessera_compiler::compile(&graph, self.gpu.profile(), &self.options)?;
            let exe = self.gpu.load_shared(&plan, &self.shared)?;
            self.steps.insert(shape, exe);
        }
        self.steps.get_mut(&shape).ok_or_else(|| ModelError::Invalid("step plan vanished".into()))
    }

    /// Runs the prompt `ids` from cache row 0 (padded to a bucket) and returns the next token.
    pub fn prefill(&mut self, ids: &[u32], logits: bool) -> Result<StepOutput, ModelError> {
        if ids.is_empty() {
            return Err(ModelError::Invalid("the prompt has no tokens".into()));
        }
        if ids.len() > self.max_context {
            return Err(ModelError::Invalid(format!(
                "the prompt has {} tokens but the context holds {} (raise --max-context)",
                ids.len(),
                self.max_context
            )));
        }
        let seq = self.prefill_bucket(ids.len());
        let mut tokens = ids.to_vec();
        tokens.resize(seq, 0);
        let positions: Vec<u32> = (0..seq as u32).collect();
        // Padded rows are computed too (they only see earlier rows), and later decode steps
        // overwrite their cache rows before anything reads them.
        self.run_step(
            StepShape { seq, max_context: self.max_context, logits },
            &tokens,
            &positions,
            seq,
            0,
            ids.len() - 1,
        )
    }

    /// Runs one token at cache row `pos` and returns the next token.
    pub fn decode(&mut self, token: u32, pos: usize, logits: bool) -> Result<StepOutput, ModelError> {
        if pos >= self.max_context {
            return Err(ModelError::Invalid(format!(
                "position {pos} is past the context of {}",
                self.max_context
            )));
        }
        self.run_step(
            StepShape { seq: 1, max_context: self.max_context, logits },
            &[token],
            &[pos as u32],
            pos + 1,
            pos,
            0,
        )
    }

    fn run_step(
        &mut self,
        shape: StepShape,
        tokens: &[u32],
        positions: &[u32],
        kv_len: usize,
        offset: usize,
        last: usize,
    ) -> Result<StepOutput, ModelError> {
        let exe = self.step(shape)?;
        let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        exe.write_input(inputs::TOKENS, &u32s(tokens))?;
        exe.write_input(inputs::POSITIONS, &u32s(positions))?;
        exe.write_input(inputs::KV_LEN, &u32s(&[kv_len as u32]))?;
        exe.write_input(inputs::OFFSET, &u32s(&[offset as u32]))?;
        exe.write_input(inputs::LAST, &u32s(&[last as u32]))?;
        let outs = exe.run()?;
        let next = outs
            .first()
            .and_then(|b| b.get(..4))
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| ModelError::Invalid("step returned no token".into()))?;
        let logits = outs
            .get(1)
            .map(|b| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
        Ok(StepOutput { next, logits })
    }
}

impl LlamaModel {
    /// Token ids that end generation: the config's and tokenizer's EOS, and the end-of-turn
    /// markers of common chat templates when the vocabulary has them.
    pub fn stop_ids(&self) -> Vec<u32> {
        let mut ids = self.config.eos_token_ids();
        ids.extend(self.tokenizer.special.eos);
        for marker in ["<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>", "<|end|>"] {
            if let Some(id) = self.tokenizer.tokenizer.token_to_id(marker) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
