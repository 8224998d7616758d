//! Loading an artifact: verify the file, pick the best tier the adapter satisfies, upload the
//! weights (straight from the mapped file, or prepared again from the referenced source), and hand
//! the tier's plans to the model. No graph is built and nothing is compiled.

use super::backends::Backend;
use super::compile::{quantize_float_linears, source_hash};
use super::format::{self, FORMAT_VERSION, TESSERA_VERSION};
use super::manifest::{Manifest, ParamRecord, WeightsRecord};
use super::tiers::fits;
use crate::ModelError;
use crate::llama::{LlamaModel, ModelParts, prepare_weights, stored_bytes, upload_weights};
use std::path::Path;
use std::sync::Arc;
use tessera_compiler::DeviceProfile;
use tessera_runtime::{Gpu, SharedBuffers};

/// True when `path` is an artifact: a `.tsr` extension, or a file starting with the magic bytes.
pub fn is_artifact(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsr")) {
        return true;
    }
    let mut magic = [0u8; format::MAGIC.len()];
    path.is_file()
        && std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok()
        && magic == format::MAGIC
}

/// The verified manifest of the artifact at `path` (for inspection; loading reads it too).
pub fn read_manifest(path: &Path) -> Result<Manifest, ModelError> {
    let file = format::open(path)?;
    parse_manifest(path, file.manifest())
}

fn parse_manifest(path: &Path, json: &[u8]) -> Result<Manifest, ModelError> {
    let fail = |cause: String| ModelError::Invalid(format!("{}: {cause}", path.display()));
    let manifest: Manifest = serde_json::from_slice(json).map_err(|e| fail(format!("manifest: {e}")))?;
    if manifest.tessera_version != TESSERA_VERSION || manifest.format_version != FORMAT_VERSION {
        return Err(fail(format!(
            "the manifest says tessera {} format {}, the header this release; the file was altered",
            manifest.tessera_version, manifest.format_version
        )));
    }
    Ok(manifest)
}

/// The index of the first (best) tier whose plans `adapter` can run on `backend`, or why none.
pub fn choose_tier(manifest: &Manifest, adapter: &DeviceProfile, backend: &str) -> Result<usize, String> {
    let mut reasons = Vec::new();
    for (index, tier) in manifest.tiers.iter().enumerate() {
        let translated = match Backend::of_wgpu(backend) {
            Some(b) if !tier.backends.clean_for(b) => {
                Err(format!("{} of its kernels failed translation to {}", tier.backends.failed(b), b.name()))
            }
            _ => Ok(()),
        };
        match fits(&tier.profile, adapter).and(translated) {
            Ok(()) => return Ok(index),
            Err(why) => reasons.push(format!("{}: {why}", tier.name)),
        }
    }
    if reasons.is_empty() {
        return Err("the artifact holds no tier".into());
    }
    Err(format!("no tier fits this adapter ({})", reasons.join("; ")))
}

/// Loads the artifact at `path` onto `gpu`. `requested_context`, when given, must be the
/// artifact's: its plans were compiled for that many cache rows.
pub(crate) fn load_model(
    path: &Path,
    gpu: Arc<Gpu>,
    requested_context: Option<usize>,
) -> Result<LlamaModel, ModelError> {
    let shown = path.display().to_string();
    let fail = |cause: String| ModelError::Invalid(format!("{shown}: {cause}"));
    let file = format::open(path)?;
    let mut manifest = parse_manifest(path, file.manifest())?;
    let max_context = manifest.max_context;
    if let Some(requested) = requested_context.filter(|&r| r != max_context) {
        return Err(fail(format!(
            "compiled for a context of {max_context} rows, {requested} requested; drop --max-context \
             or recompile with compile-model --max-context {requested}"
        )));
    }
    let tier = choose_tier(&manifest, gpu.profile(), &gpu.report().backend).map_err(fail)?;
    let tokenizer = manifest.tokenizer.to_model_tokenizer(&shown)?;
    let f16 = manifest.tiers[tier].profile.f16;
    let shared = match &manifest.weights {
        WeightsRecord::Embedded { params, .. } => {
            upload_embedded(&gpu, file.weights(), params, f16).map_err(fail)?
        }
        WeightsRecord::Reference { source, blake3, params } => {
            upload_referenced(&gpu, &manifest, source, blake3, params, f16).map_err(|e| match e {
                ModelError::Invalid(cause) => fail(cause),
                other => other,
            })?
        }
    };
    drop(file);
    let tier = manifest.tiers.swap_remove(tier);
    tracing::info!(tier = %tier.name, plans = tier.steps.len(), file = %shown, "artifact loaded");
    let plans = tier.steps.into_iter().map(|s| (s.shape(max_context), s.plan)).collect();
    let parts = (manifest.model_name, manifest.config, tokenizer);
    Ok(LlamaModel::from_plans(parts, gpu, shared, max_context, shown, tier.name, plans))
}

/// Each parameter straight from the mapped file into its device buffer (f16 widened to f32 for a
/// tier compiled without f16).
fn upload_embedded(
    gpu: &Gpu,
    weights: &[u8],
    params: &[ParamRecord],
    f16: bool,
) -> Result<SharedBuffers, String> {
    let shared = SharedBuffers::new();
    for p in params {
        let start = p.offset.ok_or_else(|| format!("embedded parameter {} has no offset", p.name))?;
        let bytes = start
            .checked_add(p.bytes)
            .and_then(|end| weights.get(start as usize..end as usize))
            .ok_or_else(|| format!("parameter {} lies outside the weights section", p.name))?;
        let bytes = stored_bytes(p.dtype, bytes, f16);
        gpu.write_shared(&shared, &p.name, &bytes).map_err(|e| format!("parameter {}: {e}", p.name))?;
    }
    Ok(shared)
}

/// The source read and prepared again as at compile time, after checking it is the same file.
fn upload_referenced(
    gpu: &Gpu,
    manifest: &Manifest,
    source: &Path,
    blake3: &str,
    params: &[ParamRecord],
    f16: bool,
) -> Result<SharedBuffers, ModelError> {
    if source_hash(source)? != blake3 {
        return Err(ModelError::Invalid(format!(
            "the referenced model {} changed since the artifact was compiled (content hash differs); recompile",
            source.display()
        )));
    }
    let mut parts = ModelParts::read(source)?;
    if let Some(bits) = manifest.compiled_with.quantize {
        quantize_float_linears(&mut parts.weights, bits)?;
    }
    prepare_weights(&manifest.config, &mut parts.weights)?;
    let prepared = &parts.weights.params;
    let differs = params.len() != prepared.len()
        || params.iter().any(|r| {
            prepared
                .get(&r.name)
                .is_none_or(|p| p.dtype != r.dtype || p.shape != r.shape || p.bytes.len() as u64 != r.bytes)
        });
    if differs {
        return Err(ModelError::Invalid(format!(
            "{}: preparing its weights gives other parameters than at compile time; recompile",
            source.display()
        )));
    }
    upload_weights(gpu, &mut parts.weights, f16)
}
