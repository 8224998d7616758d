//! Compute pipelines keyed by (WGSL, entry point, override constants, binding access): one entry
//! is the shader module, its explicit bind group layout, the pipeline layout and the pipeline.

use crate::error::{RuntimeError, scoped};
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
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
}

#[derive(Debug, Default)]
struct CacheState {
    pipelines: HashMap<u64, Vec<(PipelineKey, Arc<KernelPipeline>)>>,
    stats: CacheStats,
}

impl PipelineCache {
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
        let built = Arc::new(build(device, kernel)?);
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
fn build(device: &wgpu::Device, kernel: &KernelSource) -> Result<KernelPipeline, RuntimeError> {
    let label = Some(kernel.name.as_str());
    let module = scoped(device, || {
        device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label,
            source: wgpu::ShaderSource::Wgsl(kernel.wgsl.as_str().into()),
        })
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
            cache: None,
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
