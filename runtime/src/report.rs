//! What an adapter is and offers, as plain data for `tessera devices` (text or `--json`).

use serde::Serialize;
use std::fmt;

/// One adapter: identity, the features tessera cares about, and the limits that decide kernel
/// legality.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdapterReport {
    /// Adapter name (`llvmpipe (LLVM 15.0.6, 256 bits)`, `NVIDIA H100`, `Apple M2`).
    pub name: String,
    /// `vulkan`, `metal`, `dx12` or `gl`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version and details.
    pub driver_info: String,
    /// Backend-specific vendor id (PCI vendor id on Vulkan).
    pub vendor: u32,
    /// Backend-specific device id.
    pub device: u32,
    /// Features tessera uses.
    pub features: FeatureReport,
    /// Limits that decide kernel legality.
    pub limits: LimitReport,
}

/// Features tessera uses, as booleans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FeatureReport {
    /// `SHADER_F16`.
    pub f16: bool,
    /// `SUBGROUP`.
    pub subgroups: bool,
    /// Smallest subgroup size (0 without subgroups).
    pub subgroup_min_size: u32,
    /// Largest subgroup size (0 without subgroups).
    pub subgroup_max_size: u32,
    /// `TIMESTAMP_QUERY`.
    pub timestamp_query: bool,
    /// `MAPPABLE_PRIMARY_BUFFERS` (the unified-memory path).
    pub mappable_primary_buffers: bool,
    /// `PIPELINE_CACHE`.
    pub pipeline_cache: bool,
    /// `EXPERIMENTAL_COOPERATIVE_MATRIX`.
    pub cooperative_matrix: bool,
}

/// Limits that decide kernel legality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LimitReport {
    /// Largest storage buffer binding in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer in bytes.
    pub max_buffer_size: u64,
    /// Storage buffers per shader stage.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Workgroup memory in bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Invocations per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroup count per dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
}

impl AdapterReport {
    /// Describes an adapter (or a device made from it) from its info, features and limits.
    pub(crate) fn new(
        info: &wgpu::AdapterInfo,
        features: wgpu::Features,
        limits: &wgpu::Limits,
    ) -> AdapterReport {
        let subgroups = features.contains(wgpu::Features::SUBGROUP);
        AdapterReport {
            name: info.name.clone(),
            backend: info.backend.to_str().to_string(),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            vendor: info.vendor,
            device: info.device,
            features: FeatureReport {
                f16: features.contains(wgpu::Features::SHADER_F16),
                subgroups,
                subgroup_min_size: if subgroups { info.subgroup_min_size } else { 0 },
                subgroup_max_size: if subgroups { info.subgroup_max_size } else { 0 },
                timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
                mappable_primary_buffers: features.contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
                pipeline_cache: features.contains(wgpu::Features::PIPELINE_CACHE),
                cooperative_matrix: features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
            },
            limits: LimitReport {
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_buffer_size: limits.max_buffer_size,
                max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
                max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
                max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
                max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            },
        }
    }

    /// `name (backend, type)`, as listed in errors.
    pub fn short(&self) -> String {
        format!("{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

/// Every adapter on every backend (Vulkan, Metal, DX12, GL), as the adapter offers it.
pub fn list_adapters() -> Vec<AdapterReport> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12 | wgpu::Backends::GL,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|adapter| AdapterReport::new(&adapter.get_info(), adapter.features(), &adapter.limits()))
        .collect()
}

impl fmt::Display for AdapterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let features = &self.features;
        let limits = &self.limits;
        writeln!(f, "{}", self.name)?;
        writeln!(
            f,
            "  backend: {}   type: {}   vendor: {:#06x}   device: {:#06x}",
            self.backend, self.device_type, self.vendor, self.device
        )?;
        writeln!(f, "  driver: {} {}", self.driver, self.driver_info)?;
        write!(f, "  f16: {}   subgroups: {}", yes_no(features.f16), yes_no(features.subgroups))?;
        if features.subgroups {
            write!(f, " ({}..{})", features.subgroup_min_size, features.subgroup_max_size)?;
        }
        writeln!(
            f,
            "   timestamps: {}   mappable primary buffers: {}   pipeline cache: {}   cooperative matrix: {}",
            yes_no(features.timestamp_query),
            yes_no(features.mappable_primary_buffers),
            yes_no(features.pipeline_cache),
            yes_no(features.cooperative_matrix)
        )?;
        write!(
            f,
            "  storage binding: {} MiB   buffer: {} MiB   storage buffers/stage: {}   workgroup memory: {} KiB   invocations/workgroup: {}   workgroups/dim: {}",
            limits.max_storage_buffer_binding_size >> 20,
            limits.max_buffer_size >> 20,
            limits.max_storage_buffers_per_shader_stage,
            limits.max_compute_workgroup_storage_size / 1024,
            limits.max_compute_invocations_per_workgroup,
            limits.max_compute_workgroups_per_dimension
        )
    }
}
