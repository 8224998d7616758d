//! A loaded Llama-family model on the GPU: config, tokenizer, weights uploaded once into shared
//! device buffers, a KV cache preallocated to the maximum context, and step plans (one per
//! prefill bucket, one for decode) that all bind the same weights and cache. Plans are compiled
//! on first use, or taken ready-made from a `.tsr` artifact written by `compile-model`.

use super::graph::{StepShape, build_step_for, inputs};
use super::weights::WeightIndex;
use crate::ModelError;
use crate::config::LlamaConfig;
use crate::gguf::GgufFile;
use crate::safetensors::ShardedSafetensors;
use crate::tokenizer::ModelTokenizer;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tessera_compiler::{CompileOptions, Plan};
use tessera_ir::DType;
use tessera_runtime::{Executable, Gpu, SharedBuffers};

/// Prefill lengths are padded up to one of these, so a handful of plans serve every prompt.
const PREFILL_BUCKETS: [usize; 9] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// The padded length a prompt of `len` tokens runs at with a cache of `max_context` rows.
fn prefill_bucket(len: usize, max_context: usize) -> usize {
    PREFILL_BUCKETS.iter().copied().find(|&b| b >= len).unwrap_or(len).min(max_context)
}

/// Cache positions below which decode steps run a plan whose attention reads only that many
/// leading rows ([`StepShape::short_decode`]), which one kernel per layer scores, where the
/// plan of a longer cache splits each row's keys over workgroups and folds the parts in a
/// second dispatch. H100, dummy q4 decode tok/s with a 4096-row cache, short plan against the
/// split one: after 3 / 100 / 240 cached tokens 1B 1085 / 1074 / 1034 vs 1051 / 1020 / 1016,
/// SmolLM2 1013 / 980 / 924 vs 899 / 929 / 925, 8B 323.8 / - / 307.7 vs 309.8 / - / 302.1. With
/// 512 rows the short plan still split, in 2 parts, and lost after 400 tokens (1B 974 vs 1055).
const SHORT_DECODE_ROWS: usize = 256;

/// The shape of the decode step at cache position `pos`.
fn decode_shape(max_context: usize, pos: usize, logits: bool) -> StepShape {
    if max_context > SHORT_DECODE_ROWS && pos < SHORT_DECODE_ROWS {
        StepShape::short_decode(max_context, SHORT_DECODE_ROWS, logits)
    } else {
        StepShape::new(1, max_context, logits)
    }
}

/// Every step shape a model with `max_context` cache rows runs for prompts up to the largest
/// bucket: each prefill bucket, then decode (with its short form where the cache is longer),
/// each with and without logits (what an artifact holds).
pub fn step_shapes(max_context: usize) -> Vec<StepShape> {
    let mut seqs: Vec<usize> = PREFILL_BUCKETS.iter().map(|&b| b.min(max_context)).collect();
    seqs.dedup();
    if !seqs.contains(&1) {
        seqs.push(1);
    }
    let mut shapes = Vec::new();
    for seq in seqs {
        for logits in [false, true] {
            shapes.push(StepShape::new(seq, max_context, logits));
        }
    }
    for logits in [false, true] {
        let short = decode_shape(max_context, 0, logits);
        if short.is_short() {
            shapes.push(short);
        }
    }
    shapes
}

/// What a model file holds, read and prepared on the host before any GPU work: `load` uploads
/// it, `compile-model` packs it into an artifact.
pub struct ModelParts {
    /// Display name (file or directory name).
    pub name: String,
    /// The architecture.
    pub config: LlamaConfig,
    /// Tokenizer, special tokens and chat template.
    pub tokenizer: ModelTokenizer,
    /// Parameters as read from the file (not yet prepared, see [`prepare_weights`]).
    pub weights: WeightIndex,
}

impl ModelParts {
    /// Reads a `.gguf` file, or a Hugging Face / mlx-community directory (config.json,
    /// safetensors, tokenizer.json).
    pub fn read(path: &Path) -> Result<ModelParts, ModelError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            let config = LlamaConfig::from_file(&path.join("config.json"))?;
            let tokenizer = ModelTokenizer::from_dir(path)?;
            let st = ShardedSafetensors::open_dir(path)
                .map_err(|e| ModelError::Invalid(format!("{}: {e}", path.display())))?;
            let weights = WeightIndex::from_safetensors(&st, &config)?;
            return Ok(ModelParts { name, config, tokenizer, weights });
        }
        if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            return Err(ModelError::Invalid(format!(
                "{}: expected a .gguf file, a .tsr artifact or a model directory with config.json",
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
        Ok(ModelParts { name, config, tokenizer, weights })
    }
}

/// Brings weights into the form the step graphs bind (RoPE inverse frequencies, merged
/// projections). The JIT path and `compile-model` both call this, so an artifact holds exactly
/// what loading the source file uploads.
pub fn prepare_weights(config: &LlamaConfig, weights: &mut WeightIndex) -> Result<(), ModelError> {
    config.validate().map_err(ModelError::Invalid)?;
    if !weights.params.contains_key(super::graph::INV_FREQ) {
        let inv_freq = config.rope_inv_freq().map_err(ModelError::Invalid)?;
        let inv_freq: Vec<f32> = inv_freq.iter().map(|&f| f as f32).collect();
        weights.insert_f32(super::graph::INV_FREQ, vec![1, inv_freq.len()], &inv_freq);
    }
    super::graph::merge_projections(config, weights);
    Ok(())
}

/// The KV cache rows a model gets: `requested`, else min(model context, 4096), within the model's.
pub(crate) fn cache_rows(config: &LlamaConfig, requested: Option<usize>) -> usize {
    let model_context = config.max_position_embeddings as usize;
    requested.unwrap_or(model_context.min(4096)).clamp(1, model_context.max(1))
}

/// What one step returns.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    /// The greedy next token (argmax on the GPU).
    pub next: u32,
    /// The logits of that row, when asked for.
    pub logits: Option<Vec<f32>>,
}

/// What one chain of decode steps did.
struct Chain {
    /// Tokens passed on.
    done: usize,
    /// Steps submitted (one may have run past a stop).
    submitted: usize,
    /// CPU time encoding and submitting them.
    encode: std::time::Duration,
}

/// Where a model's step plans come from.
enum StepSource {
    /// Built from the weights' layout and compiled on first use.
    Jit { weights: WeightIndex, options: CompileOptions },
    /// Compiled ahead of time: the plans of the artifact's tier for this adapter.
    Artifact { file: String, tier: String, plans: HashMap<StepShape, Plan> },
}

/// A Llama-family model ready to generate.
pub struct LlamaModel {
    /// The architecture.
    pub config: LlamaConfig,
    /// Tokenizer, special tokens and chat template.
    pub tokenizer: ModelTokenizer,
    /// Display name (file or directory name).
    pub name: String,
    gpu: Arc<Gpu>,
    shared: SharedBuffers,
    max_context: usize,
    source: StepSource,
    steps: HashMap<StepShape, Executable>,
    /// CPU time the last step spent encoding and submitting.
    last_encode: std::time::Duration,
}

impl LlamaModel {
    /// Loads a `.gguf` file, a Hugging Face / mlx-community directory (config.json,
    /// safetensors, tokenizer.json) or a `.tsr` artifact from `compile-model` onto `gpu` with a
    /// KV cache of `max_context` rows (default: min(model context, 4096); an artifact's own).
    pub fn load(path: &Path, gpu: Arc<Gpu>, max_context: Option<usize>) -> Result<LlamaModel, ModelError> {
        if crate::artifact::is_artifact(path) {
            return crate::artifact::load_model(path, gpu, max_context);
        }
        let parts = ModelParts::read(path)?;
        LlamaModel::from_parts(parts.name, parts.config, parts.tokenizer, parts.weights, gpu, max_context)
    }

    /// A model from parts as read (tests build tiny random ones this way): weights prepared as
    /// [`prepare_weights`] says, then uploaded.
    pub fn from_parts(
        name: String,
        config: LlamaConfig,
        tokenizer: ModelTokenizer,
        mut weights: WeightIndex,
        gpu: Arc<Gpu>,
        max_context: Option<usize>,
    ) -> Result<LlamaModel, ModelError> {
        prepare_weights(&config, &mut weights)?;
        let shared = upload_weights(&gpu, &mut weights, gpu.profile().f16)?;
        let max_context = cache_rows(&config, max_context);
        let source = StepSource::Jit { weights, options: CompileOptions::default() };
        Ok(LlamaModel::with_source((name, config, tokenizer), gpu, shared, max_context, source))
    }

    /// A model whose weights are already in `shared` and whose steps run `plans` (an artifact's).
    pub(crate) fn from_plans(
        parts: (String, LlamaConfig, ModelTokenizer),
        gpu: Arc<Gpu>,
        shared: SharedBuffers,
        max_context: usize,
        file: String,
        tier: String,
        plans: HashMap<StepShape, Plan>,
    ) -> LlamaModel {
        // The precision switches act when plans are compiled: compile-model fixed this one's.
        for var in ["TESSERA_INT8_ACTIVATIONS", "TESSERA_F16_PREFILL"] {
            if std::env::var_os(var).is_some() {
                tracing::warn!(
                    "{file}: {var} does not change an artifact's plans (set it for compile-model)"
                );
            }
        }
        let source = StepSource::Artifact { file, tier, plans };
        LlamaModel::with_source(parts, gpu, shared, max_context, source)
    }

    fn with_source(
        (name, config, tokenizer): (String, LlamaConfig, ModelTokenizer),
        gpu: Arc<Gpu>,
        shared: SharedBuffers,
        max_context: usize,
        source: StepSource,
    ) -> LlamaModel {
        let last_encode = std::time::Duration::ZERO;
        LlamaModel {
            config,
            tokenizer,
            name,
            gpu,
            shared,
            max_context,
            source,
            steps: HashMap::new(),
            last_encode,
        }
    }

    /// Compile options for plans built from now on (switches to bisect a wrong result). An
    /// artifact's plans are already compiled: anything but the defaults is an error for them.
    pub fn set_compile_options(&mut self, new_options: CompileOptions) -> Result<(), ModelError> {
        match &mut self.source {
            StepSource::Jit { options, .. } => *options = new_options,
            StepSource::Artifact { .. } if new_options == CompileOptions::default() => return Ok(()),
            StepSource::Artifact { file, .. } => {
                return Err(ModelError::Invalid(format!(
                    "{file}: an artifact's plans are compiled ahead of time; pass --no-fuse / \
                     --no-rules to compile-model instead"
                )));
            }
        }
        self.steps.clear();
        Ok(())
    }

    /// CPU time the last prefill or decode step spent encoding and submitting its dispatches.
    pub fn last_encode_time(&self) -> std::time::Duration {
        self.last_encode
    }

    /// Rows of the KV cache.
    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// The GPU the model runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Dispatches of the decode step at cache position `pos` (compiles its plan if needed).
    pub fn dispatches_per_token(&mut self, pos: usize) -> Result<usize, ModelError> {
        let shape = decode_shape(self.max_context, pos, false);
        Ok(self.step(shape)?.dispatch_count())
    }

    /// Compiles and loads the plans a prompt of `prompt_len` tokens and up to `steps` decode steps
    /// after it will use (the full decode plan too where they pass the short one's rows), so that
    /// timing a generation measures running, not compiling.
    pub fn prepare(&mut self, prompt_len: usize, steps: usize, logits: bool) -> Result<(), ModelError> {
        let seq = self.prefill_bucket(prompt_len);
        self.step(StepShape::new(seq, self.max_context, logits))?;
        if steps > 0 {
            let last = (prompt_len.saturating_add(steps) - 1).min(self.max_context.saturating_sub(1));
            for pos in [prompt_len.min(last), last] {
                self.step(decode_shape(self.max_context, pos, logits))?;
            }
        }
        Ok(())
    }

    /// The padded length a prompt of `len` tokens runs at.
    fn prefill_bucket(&self, len: usize) -> usize {
        prefill_bucket(len, self.max_context)
    }

    /// How a step of `seq` tokens rounds the x of quantized projections: "int8" (decode and
    /// short prompts where the gemvs multiply in integers), "f16" (prefill on cooperative
    /// matrices, [`tessera_compiler::f16_matmul_rows`]) or "f32"; `None` for an artifact.
    pub fn step_x(&self, seq: usize) -> Option<&'static str> {
        let StepSource::Jit { options, .. } = &self.source else { return None };
        let profile = self.gpu.profile();
        Some(if seq <= tessera_compiler::int8_activation_rows(profile, options) {
            "int8"
        } else if tessera_compiler::f16_matmul_rows(profile, options).is_some_and(|from| seq >= from) {
            "f16"
        } else {
            "f32"
        })
    }

    /// The artifact tier the step plans come from (`None`: compiled on first use).
    pub fn artifact_tier(&self) -> Option<&str> {
        match &self.source {
            StepSource::Jit { .. } => None,
            StepSource::Artifact { tier, .. } => Some(tier),
        }
    }

    fn step(&mut self, shape: StepShape) -> Result<&mut Executable, ModelError> {
        if !self.steps.contains_key(&shape) {
            let exe = match &self.source {
                StepSource::Jit { weights, options } => {
                    let graph = build_step_for(&self.config, weights, shape, self.gpu.profile(), options)?;
                    let plan = tessera_compiler::compile(&graph, self.gpu.profile(), options)?;
                    self.gpu.load_shared(&plan, &self.shared)?
                }
                StepSource::Artifact { file, plans, .. } => {
                    let plan = plans.get(&shape).ok_or_else(|| {
                        ModelError::Invalid(format!(
                            "{file}: no plan for step shape seq={} logits={} attend={} (the artifact was \
                             compiled for max context {}; recompile with a larger --max-context)",
                            shape.seq, shape.logits, shape.attend, self.max_context
                        ))
                    })?;
                    self.gpu.load_shared(plan, &self.shared)?
                }
            };
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
            StepShape::new(seq, self.max_context, logits),
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
        self.run_step(decode_shape(self.max_context, pos, logits), &[token], &[pos as u32], pos + 1, pos, 0)
    }

    /// Greedy decode from `token` at cache row `pos`, each step's argmax fed to the next step on
    /// the GPU: the host submits step n+1 before reading step n's token, so neither the read-back
    /// nor the encoding of the next step stalls the GPU. `on_token` gets each generated token in
    /// order and returns false to stop; at most `max_steps` steps run, and none past the context.
    /// Returns the number of tokens passed to `on_token`. One step may run past a stop (its cache
    /// row is rewritten before anything reads it). Steps below [`SHORT_DECODE_ROWS`] chain on
    /// the short decode plan, later ones on the full plan (the chain restarts once, from the
    /// last token read back). Afterwards `last_encode_time` is the mean over the chained steps.
    /// Under `TESSERA_PROFILE` the steps run one by one instead.
    pub fn decode_greedy(
        &mut self,
        token: u32,
        pos: usize,
        max_steps: usize,
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Result<usize, ModelError> {
        let steps = max_steps.min(self.max_context.saturating_sub(pos));
        if steps == 0 {
            return Ok(0);
        }
        if self.step(decode_shape(self.max_context, pos, false))?.is_profiled() {
            let (mut token, mut done) = (token, 0);
            while done < steps {
                token = self.decode(token, pos + done, false)?.next;
                done += 1;
                if !on_token(token) {
                    break;
                }
            }
            return Ok(done);
        }
        let (mut token, mut done, mut submitted) = (token, 0, 0);
        let mut encode = std::time::Duration::ZERO;
        while done < steps {
            let at = pos + done;
            let shape = decode_shape(self.max_context, at, false);
            let run = if shape.is_short() { shape.attend - at } else { steps - done };
            let run = run.min(steps - done);
            let mut stopped = false;
            let chain = self.chain(shape, token, at, run, |t| {
                token = t;
                stopped = !on_token(t);
                !stopped
            })?;
            done += chain.done;
            submitted += chain.submitted;
            encode += chain.encode;
            if stopped || chain.done < run {
                break;
            }
        }
        // The mean over the chained steps (each encoded exactly like a plain step).
        self.last_encode = encode / submitted.max(1) as u32;
        Ok(done)
    }

    /// `steps` greedy decode steps of `shape` chained on the GPU from `token` at cache row `pos`
    /// (see [`LlamaModel::decode_greedy`]).
    fn chain(
        &mut self,
        shape: StepShape,
        token: u32,
        pos: usize,
        steps: usize,
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Result<Chain, ModelError> {
        let exe = self.step(shape)?;
        let write = |exe: &mut Executable, input: &str, v: u32| exe.write_input(input, &v.to_le_bytes());
        let submit = |exe: &mut Executable, p: usize, feed: bool| -> Result<(), ModelError> {
            write(exe, inputs::POSITIONS, p as u32)?;
            write(exe, inputs::KV_LEN, p as u32 + 1)?;
            write(exe, inputs::OFFSET, p as u32)?;
            write(exe, inputs::LAST, 0)?;
            exe.submit_chained(inputs::TOKENS, feed)?;
            Ok(())
        };
        write(exe, inputs::TOKENS, token)?;
        let mut encode = std::time::Duration::ZERO;
        let mut run = || -> Result<(usize, usize), ModelError> {
            submit(exe, pos, false)?;
            encode += exe.last_encode_time();
            let (mut submitted, mut done) = (1, 0);
            loop {
                if submitted < steps {
                    submit(exe, pos + submitted, true)?;
                    encode += exe.last_encode_time();
                    submitted += 1;
                }
                let bytes =
                    exe.collect_chained()?.ok_or_else(|| ModelError::Invalid("no step in flight".into()))?;
                let next = bytes
                    .get(..4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| ModelError::Invalid("step returned no token".into()))?;
                done += 1;
                if !on_token(next) || done == steps {
                    return Ok((done, submitted));
                }
            }
        };
        let run = run();
        // Whatever is still in flight (a step past a stop, or after an error) is waited for.
        while exe.collect_chained()?.is_some() {}
        let (done, submitted) = run?;
        Ok(Chain { done, submitted, encode })
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
        let encode = exe.last_encode_time();
        self.last_encode = encode;
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

/// Uploads every prepared parameter into new shared buffers; the index keeps only the layout the
/// step graphs need.
/// `f16`: the plans store f16 as f16 (compiled for a profile with `SHADER_F16`).
pub(crate) fn upload_weights(
    gpu: &Gpu,
    weights: &mut WeightIndex,
    f16: bool,
) -> Result<SharedBuffers, ModelError> {
    let shared = SharedBuffers::new();
    for (name, p) in std::mem::take(&mut weights.params) {
        gpu.write_shared(&shared, &name, &stored_bytes(p.dtype, &p.bytes, f16))?;
    }
    Ok(shared)
}

/// A parameter's bytes as plans store them: plans compiled without f16 keep f16 values as f32.
pub(crate) fn stored_bytes(dtype: DType, bytes: &[u8], f16: bool) -> std::borrow::Cow<'_, [u8]> {
    if dtype != DType::F16 || f16 {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let widened =
        bytes.chunks_exact(2).flat_map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32().to_le_bytes());
    std::borrow::Cow::Owned(widened.collect())
}
