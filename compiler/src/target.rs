//! What the compiler knows about a device: capabilities and limits, as plain data. The runtime
//! fills it from the adapter; tests and `compile-model --target` use named tiers.

use serde::{Deserialize, Serialize};

/// Capabilities and limits of a target device.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceProfile {
    /// `SHADER_F16`: f16 in storage buffers and arithmetic.
    pub f16: bool,
    /// `SUBGROUP`: subgroup builtins.
    pub subgroups: bool,
    /// Smallest subgroup size the adapter may use (0 when unknown).
    pub subgroup_min_size: u32,
    /// Largest subgroup size the adapter may use (0 when unknown).
    pub subgroup_max_size: u32,
    /// `EXPERIMENTAL_COOPERATIVE_MATRIX` with 16x16x16 f16 products accumulated in f32 (tensor
    /// cores, simdgroup matrices). Absent in profiles written before it existed: false.
    #[serde(default)]
    pub cooperative_matrix: bool,
    /// Workgroups the device runs side by side, where that is known: a CPU adapter (lavapipe)
    /// runs one per host thread. 0 for GPUs, whose count WebGPU does not tell (kernels then
    /// assume hundreds). Only shapes work, never legality.
    #[serde(default)]
    pub parallelism: u32,
    /// Limits kernels must respect.
    pub limits: Limits,
}

/// The limits that decide kernel legality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// Largest storage buffer binding in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer in bytes.
    pub max_buffer_size: u64,
    /// Storage buffers one compute shader may bind.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Bytes of workgroup memory per workgroup.
    pub max_compute_workgroup_storage_size: u32,
    /// Invocations per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Largest `@workgroup_size` x.
    pub max_compute_workgroup_size_x: u32,
    /// Largest workgroup count in one dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
}

impl Limits {
    /// The WebGPU defaults every conformant adapter offers (the portable floor).
    pub fn webgpu_default() -> Limits {
        Limits {
            max_storage_buffer_binding_size: 128 << 20,
            max_buffer_size: 256 << 20,
            max_storage_buffers_per_shader_stage: 8,
            max_compute_workgroup_storage_size: 16384,
            max_compute_invocations_per_workgroup: 256,
            max_compute_workgroup_size_x: 256,
            max_compute_workgroups_per_dimension: 65535,
        }
    }
}

impl DeviceProfile {
    /// The portable tier: WebGPU default limits, no f16, no subgroups.
    pub fn portable() -> DeviceProfile {
        DeviceProfile {
            f16: false,
            subgroups: false,
            subgroup_min_size: 0,
            subgroup_max_size: 0,
            cooperative_matrix: false,
            parallelism: 0,
            limits: Limits::webgpu_default(),
        }
    }

    /// Portable limits with f16 and subgroups (what lavapipe, Metal and most Vulkan GPUs offer).
    pub fn full() -> DeviceProfile {
        DeviceProfile {
            f16: true,
            subgroups: true,
            subgroup_min_size: 4,
            subgroup_max_size: 64,
            ..DeviceProfile::portable()
        }
    }
}
