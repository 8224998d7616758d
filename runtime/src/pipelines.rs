//! Compute pipelines keyed by (WGSL, entry point, override constants, binding access): one entry
//! is the shader module, its explicit bind group layout, the pipeline layout and the pipeline.
//! Where the backend supports it (Vulkan), the driver's compiled pipelines also persist in a
//! [`DiskCache`] file per adapter, so a warm process start skips driver shader compilation.

use crate::error::{RuntimeError, scoped};
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tessera_compiler::{Access, KernelSource};

/// Everything a dispatch of one kernel needs besides its bind group.
#[derive(Debug)]
pub struct KernelPipeline {
    /// Layout the kernel's bind groups are made from (group 0).
    pub bind_group_layout: wgpu::BindGroupLayout,
    /// The compiled pipeline.
    pub pipeline: wgpu::ComputePipeline,
}

/// Cache hits and misses, for tests and `TESSERA_DEBUG`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Loads that found the pipeline built.
    pub hits: u64,
    /// Loads that built it.
    pub misses: u64,
    /// Pipelines held.
    pub entries: usize,
}

/// What makes two kernels the same pipeline. Hashed for the map; compared in full, so a hash
/// collision cannot hand back the wrong shader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    wgsl: String,
    entry: String,
    /// Constant names with the bit patterns of their values (f64 is not `Hash`).
    constants: Vec<(String, u64)>,
    bindings: Vec<Access>,
}

impl PipelineKey {
    fn of(kernel: &KernelSource) -> PipelineKey {
        PipelineKey {
            wgsl: kernel.wgsl.clone(),
            entry: kernel.entry.clone(),
            constants: kernel.constants.iter().map(|(name, value)| (name.clone(), value.to_bits())).collect(),
            bindings: kernel.bindings.clone(),
        }
    }

    fn hash64(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

/// Built pipelines, shared by every plan loaded on the device.
#[derive(Debug, Default)]
pub struct PipelineCache {
    state: Mutex<CacheState>,
    disk: Option<DiskCache>,
}

#[derive(Debug, Default)]
struct CacheState {
    pipelines: HashMap<u64, Vec<(PipelineKey, Arc<KernelPipeline>)>>,
    stats: CacheStats,
}

impl PipelineCache {
    /// A cache whose pipelines are also compiled through `disk` (when given).
    pub(crate) fn new(disk: Option<DiskCache>) -> PipelineCache {
        PipelineCache { state: Mutex::default(), disk }
    }

    /// The file the driver's pipelines persist in, when there is one.
    pub fn disk_file(&self) -> Option<&Path> {
        self.disk.as_ref().map(|d| d.path.as_path())
    }

    /// Writes the driver's pipeline cache to its file if it changed since it was read or last
    /// written (a failure is logged: the cache only saves time).
    pub(crate) fn save(&self) {
        if let Some(disk) = &self.disk {
            disk.save();
        }
    }

    /// The pipeline for `kernel`, built on first use.
    pub fn get_or_build(
        &self,
        device: &wgpu::Device,
        kernel: &KernelSource,
    ) -> Result<Arc<KernelPipeline>, RuntimeError> {
        let key = PipelineKey::of(kernel);
        let hash = key.hash64();
        if let Some(found) = self.lookup(hash, &key) {
            return Ok(found);
        }
        // Built outside the lock: shader compilation is slow and other threads may load too.
        let built = Arc::new(build(device, kernel, self.disk.as_ref().map(|d| &d.cache))?);
        let mut state = self.lock();
        state.stats.misses += 1;
        state.stats.entries += 1;
        state.pipelines.entry(hash).or_default().push((key, Arc::clone(&built)));
        Ok(built)
    }

    /// Hits, misses and entries so far.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }

    fn lookup(&self, hash: u64, key: &PipelineKey) -> Option<Arc<KernelPipeline>> {
        let mut state = self.lock();
        let found = state.pipelines.get(&hash)?.iter().find(|(k, _)| k == key).map(|(_, p)| Arc::clone(p))?;
        state.stats.hits += 1;
        Some(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Shader module, bind group layout, pipeline layout, pipeline: each inside error scopes so an
/// invalid shader is an `Err`, never a panic.
fn build(
    device: &wgpu::Device,
    kernel: &KernelSource,
    cache: Option<&wgpu::PipelineCache>,
) -> Result<KernelPipeline, RuntimeError> {
    let label = Some(kernel.name.as_str());
    // wgpu's default adds a counter to every loop (against infinite loops), which stops the
    // driver from unrolling the tile loops and keeps register tiles in memory (the f32 GEMM
    // ran at 0.5% of the H200's peak). Bounds and integer-division checks stay on.
    let mut checks = wgpu::ShaderRuntimeChecks::checked();
    checks.force_loop_bounding = false;
    let module = scoped(device, || {
        let desc = wgpu::ShaderModuleDescriptor {
            label,
            source: wgpu::ShaderSource::Wgsl(kernel.wgsl.as_str().into()),
        };
        // SAFETY: the compiler emits only `for` loops over u32 counters that step up by a
        // positive constant to a bound that fits u32 (element counts are checked to), so every
        // loop terminates; no other check is relaxed.
        unsafe { device.create_shader_module_trusted(desc, checks) }
    })
    .map_err(|error| in_kernel(error, kernel))?;

    let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
        .bindings
        .iter()
        .enumerate()
        .map(|(slot, access)| wgpu::BindGroupLayoutEntry {
            binding: slot as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: *access == Access::Read },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let constants: Vec<(&str, f64)> =
        kernel.constants.iter().map(|(name, value)| (name.as_str(), *value)).collect();

    scoped(device, || {
        let bind_group_layout =
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label, entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label,
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label,
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(&kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: true,
            },
            cache,
        });
        KernelPipeline { bind_group_layout, pipeline }
    })
    .map_err(|error| in_kernel(error, kernel))
}

/// Names the kernel in a validation error.
fn in_kernel(error: RuntimeError, kernel: &KernelSource) -> RuntimeError {
    match error {
        RuntimeError::Validation(message) => {
            RuntimeError::Validation(format!("kernel {}: {message}", kernel.name))
        }
        other => other,
    }
}

/// wgpu's pipeline cache backed by a file: `<dir>/<backend>_<vendor>_<device>_<driver>.bin`,
/// holding a BLAKE3 of the data then the data. A missing, foreign or corrupt file is ignored
/// (wgpu's `fallback`) and rewritten on the next save.
#[derive(Debug)]
pub(crate) struct DiskCache {
    cache: wgpu::PipelineCache,
    path: PathBuf,
    /// Hash of what the file holds, so an unchanged cache is not rewritten.
    saved: Mutex<Option<[u8; 32]>>,
}

impl DiskCache {
    /// The cache for `info`'s adapter under `dir`; `None` when the backend has no pipeline cache.
    pub(crate) fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo, dir: &Path) -> Option<DiskCache> {
        if !device.features().contains(wgpu::Features::PIPELINE_CACHE) {
            return None;
        }
        let key = wgpu::util::pipeline_cache_key(info)?;
        // The driver version is in the name too: a driver update starts a new file.
        let driver: String = format!("{}_{}", info.driver, info.driver_info)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .take(64)
            .collect();
        let path = dir.join(format!("{key}_{driver}.bin"));
        let data = read_checked(&path);
        let saved = data.as_ref().map(|d| *blake3::hash(d).as_bytes());
        // SAFETY: the data is what `get_data` returned on an adapter with this cache key (the
        // file name), unaltered (its checksum matched); wgpu checks its own header (adapter,
        // driver, wgpu version) and falls back to an empty cache when it does not match.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("tessera pipeline cache"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        tracing::debug!(file = %path.display(), bytes = data.as_ref().map_or(0, Vec::len), "pipeline cache");
        Some(DiskCache { cache, path, saved: Mutex::new(saved) })
    }

    fn save(&self) {
        let Some(data) = self.cache.get_data() else { return };
        let hash = *blake3::hash(&data).as_bytes();
        let mut saved = self.saved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *saved == Some(hash) {
            return;
        }
        // A temporary file renamed into place: readers never see half a file.
        let tmp = self.path.with_extension(format!("tmp{}", std::process::id()));
        let written = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, [hash.as_slice(), &data].concat()))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        match written {
            Ok(()) => *saved = Some(hash),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!("pipeline cache {}: not saved: {e}", self.path.display());
            }
        }
    }
}

/// The data of a cache file whose checksum matches, else `None` (missing or corrupt).
fn read_checked(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let (hash, data) = bytes.split_at_checked(32)?;
    if blake3::hash(data).as_bytes() != hash {
        tracing::warn!("pipeline cache {}: checksum mismatch, ignored", path.display());
        return None;
    }
    Some(data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_file_is_read_only_when_its_checksum_matches() {
        let dir = std::env::temp_dir().join(format!("tessera-pipeline-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("cache.bin");
        let data = b"driver pipeline bytes".to_vec();
        std::fs::write(&path, [blake3::hash(&data).as_bytes().as_slice(), &data].concat()).expect("write");
        assert_eq!(read_checked(&path), Some(data.clone()));
        let mut corrupt = std::fs::read(&path).expect("read");
        corrupt[40] ^= 1;
        std::fs::write(&path, &corrupt).expect("write");
        assert_eq!(read_checked(&path), None);
        std::fs::write(&path, &corrupt[..10]).expect("write");
        assert_eq!(read_checked(&path), None);
        assert_eq!(read_checked(&dir.join("missing.bin")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
