//! Building an artifact: read and prepare the model exactly as loading does, compile the plan of
//! every step shape for every tier, check the kernels against each backend, write one file.

use super::backends::{Backend, BackendReport, check_plans};
use super::format;
use super::manifest::{
    CompiledWith, Manifest, ParamRecord, StepRecord, TierRecord, TokenizerRecord, WeightsRecord,
};
use super::tiers::{TIER_NAMES, tier_profile};
use crate::ModelError;
use crate::convert::quantize_affine;
use crate::llama::graph::{StepShape, build_step_for};
use crate::llama::weights::{Linear, WeightIndex};
use crate::llama::{ModelParts, cache_rows, prepare_weights, step_shapes};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tessera_compiler::{CompileOptions, DeviceProfile, Plan};

/// How an artifact carries its weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightsMode {
    /// Prepared weights inside the file: one self-contained file, the fastest load.
    #[default]
    Embed,
    /// The source model's path and content hash: a small file; loading reads the source and
    /// prepares its weights again.
    Reference,
}

/// What to compile.
#[derive(Clone, Debug)]
pub struct ArtifactOptions {
    /// KV cache rows (default: min(model context, 4096)); prefill buckets up to it are compiled.
    pub max_context: Option<usize>,
    /// Tier names, best first (default: every tier).
    pub tiers: Vec<String>,
    /// Quantize float linear layers to 4 or 8 bits (group 32) before compiling.
    pub quantize: Option<u32>,
    /// Compile switches.
    pub compile: CompileOptions,
    /// Rule sets switched off (recorded in the manifest).
    pub no_rules: Vec<String>,
    /// Embedded weights or a reference to the source.
    pub weights: WeightsMode,
    /// Refuse to write the file when a backend (SPIR-V, MSL, HLSL) has no tier whose kernels all
    /// translate: such an artifact would not run on that platform at all.
    pub require_every_backend: bool,
}

impl Default for ArtifactOptions {
    fn default() -> ArtifactOptions {
        ArtifactOptions {
            max_context: None,
            tiers: TIER_NAMES.iter().map(|t| t.to_string()).collect(),
            quantize: None,
            compile: CompileOptions::default(),
            no_rules: Vec::new(),
            weights: WeightsMode::Embed,
            require_every_backend: true,
        }
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct ArtifactReport {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub file_bytes: u64,
    /// Bytes of prepared weights (embedded or referenced).
    pub weight_bytes: u64,
    /// KV cache rows.
    pub max_context: usize,
    /// Step shapes compiled per tier.
    pub shapes: usize,
    /// Per tier: name, plans' kernels and their translation to each backend.
    pub tiers: Vec<(String, BackendReport)>,
    /// Time spent compiling plans.
    pub compile_time: Duration,
}

/// Compiles the model at `source` (GGUF, HF or mlx-community directory) into the artifact `out`.
pub fn compile_artifact(
    source: &Path,
    out: &Path,
    options: &ArtifactOptions,
) -> Result<ArtifactReport, ModelError> {
    // Fail before minutes of compiling, not after.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        return Err(ModelError::Invalid(format!("{}: no such directory", dir.display())));
    }
    let mut parts = ModelParts::read(source)?;
    if let Some(bits) = options.quantize {
        quantize_float_linears(&mut parts.weights, bits)?;
    }
    prepare_weights(&parts.config, &mut parts.weights)?;
    let max_context = cache_rows(&parts.config, options.max_context);
    let shapes = step_shapes(max_context);
    if options.tiers.is_empty() {
        return Err(ModelError::Invalid("no tier to compile".into()));
    }
    let start = Instant::now();
    let mut tiers = Vec::new();
    for name in &options.tiers {
        let profile = tier_profile(name).ok_or_else(|| {
            ModelError::Invalid(format!("unknown tier `{name}` (expected one of: {})", TIER_NAMES.join(", ")))
        })?;
        let plans = compile_steps(&parts, &shapes, &profile, &options.compile)?;
        let backends = check_plans(&plans, &profile)
            .map_err(|e| ModelError::Invalid(format!("{}: tier {name}: {e}", source.display())))?;
        let steps = shapes
            .iter()
            .zip(plans)
            .map(|(shape, plan)| StepRecord {
                seq: shape.seq,
                logits: shape.logits,
                attend: shape.is_short().then_some(shape.attend),
                plan,
            })
            .collect();
        tiers.push(TierRecord { name: name.clone(), profile, backends, steps });
    }
    let compile_time = start.elapsed();
    if options.require_every_backend {
        let uncovered: Vec<String> = Backend::ALL
            .iter()
            .filter(|b| !tiers.iter().any(|t| t.backends.clean_for(**b)))
            .map(|b| {
                let first = tiers.iter().flat_map(|t| &t.backends.failures).find(|f| f.backend == *b);
                let detail =
                    first.map(|f| format!(" (kernel {}: {})", f.kernel, f.message)).unwrap_or_default();
                format!("{}{detail}", b.name())
            })
            .collect();
        if !uncovered.is_empty() {
            return Err(ModelError::Invalid(format!(
                "{}: no tier translates for {}; nothing written (--allow-backend-failures writes it anyway)",
                source.display(),
                uncovered.join(", ")
            )));
        }
    }

    let mut names: Vec<&String> = parts.weights.params.keys().collect();
    names.sort();
    let params: Vec<&crate::llama::weights::HostParam> =
        names.iter().map(|n| &parts.weights.params[*n]).collect();
    let offsets = format::weight_offsets(params.iter().map(|p| p.bytes.len() as u64));
    let records = |embedded: bool| -> Vec<ParamRecord> {
        names
            .iter()
            .zip(&params)
            .zip(&offsets)
            .map(|((name, p), offset)| ParamRecord {
                name: name.to_string(),
                dtype: p.dtype,
                shape: p.shape.clone(),
                bytes: p.bytes.len() as u64,
                offset: embedded.then_some(*offset),
            })
            .collect()
    };
    let slices: Vec<&[u8]> = params.iter().map(|p| p.bytes.as_slice()).collect();
    let weight_bytes = slices.iter().map(|s| s.len() as u64).sum();
    let (weights, embedded) = match options.weights {
        WeightsMode::Embed => {
            let blake3 = weights_section_hash(&slices);
            (WeightsRecord::Embedded { blake3, params: records(true) }, slices)
        }
        WeightsMode::Reference => {
            let absolute = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
            let blake3 = source_hash(source)?;
            (WeightsRecord::Reference { source: absolute, blake3, params: records(false) }, Vec::new())
        }
    };
    let manifest = Manifest {
        tessera_version: format::TESSERA_VERSION.to_string(),
        format_version: format::FORMAT_VERSION,
        model_name: parts.name.clone(),
        config: parts.config.clone(),
        tokenizer: TokenizerRecord::of(&parts.tokenizer)?,
        max_context,
        compiled_with: CompiledWith {
            fuse: options.compile.fuse,
            no_rules: options.no_rules.clone(),
            quantize: options.quantize,
        },
        weights,
        tiers,
    };
    let json = serde_json::to_vec(&manifest).map_err(|e| ModelError::Invalid(format!("manifest: {e}")))?;
    let file_bytes = format::write(out, &json, &embedded)?;
    let tiers = manifest.tiers.iter().map(|t| (t.name.clone(), t.backends.clone())).collect();
    Ok(ArtifactReport {
        path: out.to_path_buf(),
        file_bytes,
        weight_bytes,
        max_context,
        shapes: shapes.len(),
        tiers,
        compile_time,
    })
}

/// The plan of every shape for `profile`, compiled on every core (shapes are independent).
fn compile_steps(
    parts: &ModelParts,
    shapes: &[StepShape],
    profile: &DeviceProfile,
    options: &CompileOptions,
) -> Result<Vec<Plan>, ModelError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Plan, ModelError>>>> =
        Mutex::new((0..shapes.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(shapes.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&shape) = shapes.get(i) else { break };
                    let plan = build_step_for(&parts.config, &parts.weights, shape, profile, options)
                        .map_err(ModelError::from)
                        .and_then(|graph| Ok(tessera_compiler::compile(&graph, profile, options)?));
                    if let Ok(mut results) = results.lock() {
                        results[i] = Some(plan);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    shapes
        .iter()
        .zip(results)
        .map(|(shape, plan)| {
            plan.unwrap_or_else(|| {
                Err(ModelError::Invalid(format!(
                    "step seq={} logits={}: compile did not finish",
                    shape.seq, shape.logits
                )))
            })
        })
        .collect()
}

/// BLAKE3 of the weights section as [`format::write`] lays it out (padding included).
fn weights_section_hash(slices: &[&[u8]]) -> String {
    let mut hasher = blake3::Hasher::new();
    let zeros = [0u8; format::WEIGHT_ALIGN as usize];
    for s in slices {
        hasher.update(s);
        let pad = (s.len() as u64).next_multiple_of(format::WEIGHT_ALIGN) - s.len() as u64;
        hasher.update(&zeros[..pad as usize]);
    }
    hasher.finalize().to_hex().to_string()
}

/// BLAKE3 over the files weights are prepared from: a GGUF file, or a directory's config.json,
/// safetensors files and shard index (each name, length and content, in name order).
pub(crate) fn source_hash(source: &Path) -> Result<String, ModelError> {
    let fail = |e: std::io::Error| ModelError::Invalid(format!("{}: {e}", source.display()));
    let mut files = Vec::new();
    if source.is_dir() {
        for entry in std::fs::read_dir(source).map_err(fail)? {
            let path = entry.map_err(fail)?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let weights = name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json");
            if path.is_file() && (weights || name == "config.json") {
                files.push((name, path));
            }
        }
        files.sort();
    } else {
        files.push((String::new(), source.to_path_buf()));
    }
    let mut hasher = blake3::Hasher::new();
    for (name, path) in files {
        let bytes = crate::FileBytes::map(&path)
            .map_err(|e| ModelError::Invalid(format!("{}: cannot read: {e}", path.display())))?;
        hasher.update(name.as_bytes());
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// `--quantize`: every float linear layer (and a float embedding) whose input features are a
/// multiple of 32 becomes affine-quantized to `bits`, group 32, as MLX quantizes. Returns how
/// many layers changed.
pub(crate) fn quantize_float_linears(weights: &mut WeightIndex, bits: u32) -> Result<usize, ModelError> {
    if !matches!(bits, 4 | 8) {
        return Err(ModelError::Invalid(format!("--quantize q{bits}: expected q4 or q8")));
    }
    const GROUP: u32 = 32;
    let mut changed = 0;
    // Float weights (an untied float embedding among them) are `[n, k]` rows: groups run along them.
    for prefix in weights.dense_linears() {
        let Ok(Linear::Dense { k, n, .. }) = weights.linear(&prefix) else { continue };
        let Some(rows) = weights.params.get(&format!("{prefix}.weight")).and_then(|p| p.to_f32()) else {
            continue;
        };
        if !k.is_multiple_of(GROUP as usize) || rows.len() != k * n {
            continue;
        }
        weights.insert_quant_linear(&prefix, quantize_affine(&rows, n, k, bits, GROUP));
        changed += 1;
    }
    Ok(changed)
}
