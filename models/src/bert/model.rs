//! A loaded BERT sentence encoder on the GPU: config, the sentence-transformers settings
//! (pooling, normalization, max_seq_length), a WordPiece tokenizer that truncates but never pads,
//! weights uploaded once into shared device buffers, and one plan per (batch, length) bucket,
//! compiled on first use, all binding the same weights.

use super::graph::{EncodeShape, Pooling, build_encoder, inputs};
use super::weights::BertWeights;
use crate::ModelError;
use crate::config::BertConfig;
use crate::safetensors::SafetensorsFile;
use crate::tokenizer::{ModelTokenizer, Tokenizer};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tessera_compiler::CompileOptions;
use tessera_runtime::{Executable, Gpu, SharedBuffers};
use tokenizers::TruncationParams;

/// Sentences are padded up to one of these lengths (capped at the model's maximum).
const LENGTH_BUCKETS: [usize; 6] = [16, 32, 64, 128, 256, 512];
/// Sentences per run are padded up to one of these.
const BATCH_BUCKETS: [usize; 3] = [1, 8, 32];

/// What the sentence-transformers files of a model directory say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentenceConfig {
    /// Pooling of token vectors (`1_Pooling/config.json`; mean when absent).
    pub pooling: Pooling,
    /// L2-normalize the pooled vector (`modules.json` lists a `Normalize` module).
    pub normalize: bool,
    /// Tokens kept per sentence, special tokens included (`sentence_bert_config.json`'s
    /// `max_seq_length`, else the model's positions).
    pub max_seq_length: usize,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    path: String,
}

#[derive(Deserialize, Default)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

#[derive(Deserialize)]
struct SentenceBertFile {
    max_seq_length: Option<usize>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ModelError> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ModelError::Invalid(format!("{file}: cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Invalid(format!("{file}: {e}")))
}

impl SentenceConfig {
    /// Reads `modules.json`, the pooling module's `config.json` and `sentence_bert_config.json`
    /// from `dir`; a plain Hugging Face BERT directory gets mean pooling without normalization.
    pub fn from_dir(dir: &Path, cfg: &BertConfig) -> Result<SentenceConfig, ModelError> {
        let modules_path = dir.join("modules.json");
        let modules: Vec<ModuleEntry> =
            if modules_path.is_file() { read_json(&modules_path)? } else { Vec::new() };
        let normalize = modules.iter().any(|m| m.kind.ends_with("Normalize"));
        let pooling_dir = modules.iter().find(|m| m.kind.ends_with("Pooling")).map(|m| m.path.as_str());
        let pooling_path = dir.join(pooling_dir.unwrap_or("1_Pooling")).join("config.json");
        let pooling = if pooling_path.is_file() {
            let file: PoolingFile = read_json(&pooling_path)?;
            pooling_mode(&file)
                .map_err(|e| ModelError::Invalid(format!("{}: {e}", pooling_path.display())))?
        } else {
            Pooling::Mean
        };
        let st_path = dir.join("sentence_bert_config.json");
        let st_max =
            if st_path.is_file() { read_json::<SentenceBertFile>(&st_path)?.max_seq_length } else { None };
        let positions = cfg.max_position_embeddings;
        let max_seq_length = st_max.unwrap_or(positions).min(positions);
        if max_seq_length == 0 {
            return Err(ModelError::Invalid(format!("{}: max_seq_length is 0", dir.display())));
        }
        Ok(SentenceConfig { pooling, normalize, max_seq_length })
    }
}

fn pooling_mode(file: &PoolingFile) -> Result<Pooling, String> {
    if let Some(mode) = &file.pooling_mode {
        return match mode.as_str() {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "max" => Ok(Pooling::Max),
            "mean_sqrt_len_tokens" => Ok(Pooling::MeanSqrtLen),
            other => Err(format!("pooling_mode {other:?} is not supported (mean, cls, max)")),
        };
    }
    if file.pooling_mode_weightedmean_tokens || file.pooling_mode_lasttoken {
        return Err("weighted-mean and last-token pooling are not supported (mean, cls, max)".into());
    }
    let modes = [
        (file.pooling_mode_mean_tokens, Pooling::Mean),
        (file.pooling_mode_cls_token, Pooling::Cls),
        (file.pooling_mode_max_tokens, Pooling::Max),
        (file.pooling_mode_mean_sqrt_len_tokens, Pooling::MeanSqrtLen),
    ];
    let on: Vec<Pooling> = modes.iter().filter(|(set, _)| *set).map(|&(_, p)| p).collect();
    match on.as_slice() {
        [one] => Ok(*one),
        [] => Err("no pooling mode is set".into()),
        _ => Err("several pooling modes at once (concatenated) are not supported".into()),
    }
}

/// Token ids and sentence embeddings, one per input text, in input order.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// Token ids of each text after truncation (special tokens included).
    pub token_ids: Vec<Vec<u32>>,
    /// One `dim`-long vector per text.
    pub vectors: Vec<Vec<f32>>,
}

/// A BERT sentence encoder ready to embed.
pub struct BertModel {
    /// The architecture.
    pub config: BertConfig,
    /// Pooling, normalization and truncation.
    pub sentence: SentenceConfig,
    /// WordPiece tokenizer, truncating at `sentence.max_seq_length`, never padding.
    pub tokenizer: Tokenizer,
    /// Display name (directory name).
    pub name: String,
    gpu: Arc<Gpu>,
    shared: SharedBuffers,
    pad_id: u32,
    options: CompileOptions,
    plans: HashMap<EncodeShape, Executable>,
}

impl BertModel {
    /// Loads a sentence-transformers or Hugging Face BERT directory (config.json,
    /// model.safetensors, tokenizer.json) onto `gpu`.
    pub fn load(dir: &Path, gpu: Arc<Gpu>) -> Result<BertModel, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::Invalid(format!("{}: not a model directory", dir.display())));
        }
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let sentence = SentenceConfig::from_dir(dir, &config)?;
        let tokenizer = ModelTokenizer::from_dir(dir)?.tokenizer;
        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() {
            return Err(ModelError::Invalid(format!("{}: not found", weights_path.display())));
        }
        let file = SafetensorsFile::open(&weights_path)?;
        let weights = BertWeights::from_safetensors(&file, &config)?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        BertModel::from_parts(name, config, sentence, tokenizer, weights, gpu)
    }

    /// A model from already prepared parts (tests build tiny random ones this way).
    pub fn from_parts(
        name: String,
        config: BertConfig,
        sentence: SentenceConfig,
        mut tokenizer: Tokenizer,
        weights: BertWeights,
        gpu: Arc<Gpu>,
    ) -> Result<BertModel, ModelError> {
        // Batches are padded here, per bucket; tokenizer.json's own padding/truncation settings
        // (often a fixed 128) are replaced by sentence-transformers' max_seq_length.
        tokenizer.with_padding(None);
        let truncation =
            TruncationParams { max_length: sentence.max_seq_length, ..TruncationParams::default() };
        tokenizer
            .with_truncation(Some(truncation))
            .map_err(|e| ModelError::Invalid(format!("{name}: tokenizer truncation: {e}")))?;
        let shared = SharedBuffers::new();
        for (param, p) in &weights.params {
            gpu.write_shared(&shared, param, &p.bytes)?;
        }
        let pad_id = config.pad_token_id;
        Ok(BertModel {
            config,
            sentence,
            tokenizer,
            name,
            gpu,
            shared,
            pad_id,
            options: CompileOptions::default(),
            plans: HashMap::new(),
        })
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// The GPU the model runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Compile options for plans built from now on (switches to bisect a wrong result).
    pub fn set_compile_options(&mut self, options: CompileOptions) {
        self.options = options;
        self.plans.clear();
    }

    /// Token ids of each text: WordPiece with `[CLS]`/`[SEP]`, truncated to `max_seq_length`.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, ModelError> {
        texts
            .iter()
            .map(|t| {
                let enc = self
                    .tokenizer
                    .encode(*t, true)
                    .map_err(|e| ModelError::Invalid(format!("{}: tokenizer: {e}", self.name)))?;
                Ok(enc.get_ids().to_vec())
            })
            .collect()
    }

    /// Tokenizes and embeds `texts`, batching them by length.
    pub fn embed(&mut self, texts: &[&str]) -> Result<Embeddings, ModelError> {
        let token_ids = self.tokenize(texts)?;
        let vectors = self.embed_ids(&token_ids)?;
        Ok(Embeddings { token_ids, vectors })
    }

    /// Embeds already tokenized sentences in the runs [`BertModel::batches`] plans; vectors come
    /// back in input order.
    pub fn embed_ids(&mut self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut vectors = vec![Vec::new(); ids.len()];
        for (shape, rows) in self.batches(ids)? {
            let group: Vec<&[u32]> = rows.iter().map(|&i| ids[i].as_slice()).collect();
            for (&i, v) in rows.iter().zip(self.run_batch(shape, &group)?) {
                vectors[i] = v;
            }
        }
        Ok(vectors)
    }

    /// How `ids` are run: sorted by length, grouped into runs of one length bucket and at most
    /// the largest batch bucket; each run's bucket and the input indices it holds.
    pub fn batches(&self, ids: &[Vec<u32>]) -> Result<Vec<(EncodeShape, Vec<usize>)>, ModelError> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let max_batch = BATCH_BUCKETS[BATCH_BUCKETS.len() - 1];
        let mut runs: Vec<(EncodeShape, Vec<usize>)> = Vec::new();
        for i in order {
            let seq = self.length_bucket(ids[i].len())?;
            match runs.last_mut() {
                Some((shape, rows)) if shape.seq == seq && rows.len() < max_batch => rows.push(i),
                _ => runs.push((EncodeShape { batch: 0, seq }, vec![i])),
            }
        }
        for (shape, rows) in &mut runs {
            shape.batch = BATCH_BUCKETS.iter().copied().find(|&b| b >= rows.len()).unwrap_or(max_batch);
        }
        Ok(runs)
    }

    /// The padded length a sentence of `len` tokens runs at.
    pub fn length_bucket(&self, len: usize) -> Result<usize, ModelError> {
        let max = self.sentence.max_seq_length;
        if len > max {
            return Err(ModelError::Invalid(format!(
                "a sentence of {len} tokens is over max_seq_length {max}"
            )));
        }
        Ok(LENGTH_BUCKETS.iter().copied().find(|&b| b >= len).unwrap_or(len).min(max))
    }

    /// Compiles and loads the plans embedding `ids` will use, so that timing measures running,
    /// not compiling.
    pub fn prepare(&mut self, ids: &[Vec<u32>]) -> Result<(), ModelError> {
        for (shape, _) in self.batches(ids)? {
            self.plan(shape)?;
        }
        Ok(())
    }

    fn plan(&mut self, shape: EncodeShape) -> Result<&mut Executable, ModelError> {
        if !self.plans.contains_key(&shape) {
            let graph = build_encoder(&self.config, shape, self.sentence.pooling, self.sentence.normalize)?;
            let plan = tessera_compiler::compile(&graph, self.gpu.profile(), &self.options)?;
            let exe = self.gpu.load_shared(&plan, &self.shared)?;
            self.plans.insert(shape, exe);
        }
        self.plans.get_mut(&shape).ok_or_else(|| ModelError::Invalid("encoder plan vanished".into()))
    }

    /// Runs up to `shape.batch` sentences of at most `shape.seq` tokens in one plan; unused
    /// batch rows hold one pad token and are dropped.
    pub fn run_batch(
        &mut self,
        shape: EncodeShape,
        sentences: &[&[u32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if sentences.len() > shape.batch {
            return Err(ModelError::Invalid(format!(
                "{} sentences in a batch of {}",
                sentences.len(),
                shape.batch
            )));
        }
        let vocab = self.config.vocab_size;
        let mut tokens = vec![self.pad_id; shape.batch * shape.seq];
        let mut lengths = vec![1u32; shape.batch];
        for (row, ids) in sentences.iter().enumerate() {
            if ids.len() > shape.seq {
                return Err(ModelError::Invalid(format!(
                    "{} tokens in a bucket of {}",
                    ids.len(),
                    shape.seq
                )));
            }
            if let Some(&bad) = ids.iter().find(|&&t| t as usize >= vocab) {
                return Err(ModelError::Invalid(format!(
                    "token id {bad} is outside the vocabulary of {vocab}"
                )));
            }
            tokens[row * shape.seq..row * shape.seq + ids.len()].copy_from_slice(ids);
            lengths[row] = ids.len() as u32;
        }
        let dim = self.dim();
        let exe = self.plan(shape)?;
        let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        exe.write_input(inputs::TOKENS, &u32s(&tokens))?;
        exe.write_input(inputs::LENGTHS, &u32s(&lengths))?;
        let outs = exe.run()?;
        let bytes = outs.first().ok_or_else(|| ModelError::Invalid("the encoder returned nothing".into()))?;
        let values: Vec<f32> =
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if values.len() < sentences.len() * dim {
            return Err(ModelError::Invalid(format!("the encoder returned {} values", values.len())));
        }
        Ok(values.chunks_exact(dim).take(sentences.len()).map(<[f32]>::to_vec).collect())
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}
