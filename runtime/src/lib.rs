//! tessera's wgpu runtime: picks a device, checks a compiled [`Plan`](tessera_compiler::Plan)
//! against its limits, and runs it. Every wgpu call in tessera lives in this crate.
//!
//! The path, in WebGPU terms:
//! - [`Gpu::from_env`]: instance, adapter (`TESSERA_BACKEND`, `TESSERA_ADAPTER`), device and
//!   queue with the adapter's limits and the features tessera uses;
//!   [`Gpu::profile`] is what the compiler may target.
//! - [`Gpu::load`]: legality checks, then buffers (from a pool of size classes), pipelines (from a
//!   cache keyed by WGSL + entry point + constants) and every bind group, once.
//! - [`Gpu::load_shared`]: the same, with params and states bound by name to [`SharedBuffers`],
//!   so several plans (prefill per prompt bucket, decode) share one copy of the weights and one
//!   KV cache. States are zeroed once, then only the plans' dispatches (and
//!   [`Executable::write_state`]) change them.
//! - [`Executable::run`]: one command encoder, one compute pass with every dispatch, copies to
//!   staging buffers, one submit, map, read back.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use tessera_compiler::{Access, BufferDesc, BufferId, BufferRole, Dispatch, IoBinding, KernelSource, Plan};
//! use tessera_ir::DType;
//!
//! # fn main() -> Result<(), tessera_runtime::RuntimeError> {
//! let gpu = tessera_runtime::Gpu::from_env()?;
//! println!("{}", gpu.report());
//!
//! // out[i] = 2 * x[i] for 4 floats.
//! let wgsl = "@group(0) @binding(0) var<storage, read> x: array<f32>;
//!             @group(0) @binding(1) var<storage, read_write> out: array<f32>;
//!             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
//!                 if id.x < arrayLength(&x) { out[id.x] = 2.0 * x[id.x]; }
//!             }";
//! let io = |name: &str, buffer| IoBinding {
//!     name: name.into(), buffer: BufferId(buffer), shape: vec![4], dtype: DType::F32, storage: DType::F32,
//! };
//! let plan = Plan {
//!     buffers: vec![
//!         BufferDesc { size: 16, role: BufferRole::Input, label: "x".into() },
//!         BufferDesc { size: 16, role: BufferRole::Output, label: "out".into() },
//!     ],
//!     kernels: vec![KernelSource {
//!         name: "double".into(), wgsl: wgsl.into(), entry: "main".into(), constants: BTreeMap::new(),
//!         bindings: vec![Access::Read, Access::ReadWrite], workgroup_size: [64, 1, 1],
//!         workgroup_bytes: 0, uses_f16: false, uses_subgroups: false, uses_cooperative_matrix: false,
//!     }],
//!     dispatches: vec![Dispatch { kernel: 0, buffers: vec![BufferId(0), BufferId(1)], workgroups: [1, 1, 1] }],
//!     inputs: vec![io("x", 0)],
//!     params: vec![],
//!     states: vec![],
//!     outputs: vec![io("output0", 1)],
//!     peak_bytes: 32,
//!     report: Default::default(),
//! };
//! let mut exe = gpu.load(&plan)?;
//! exe.write_input("x", bytemuck::cast_slice(&[1.0f32, 2.0, 3.0, 4.0]))?;
//! let outputs = exe.run()?;
//! let doubled: Vec<f32> = bytemuck::pod_collect_to_vec(&outputs[0]);
//! assert_eq!(doubled, [2.0, 4.0, 6.0, 8.0]);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod bandwidth;
mod chain;
mod device;
mod error;
mod executor;
mod legality;
mod pipelines;
mod pool;
mod profile;
mod readback;
mod report;
mod shared;

pub use device::{Gpu, GpuOptions};
pub use error::RuntimeError;
pub use executor::Executable;
pub use pipelines::CacheStats;
pub use pool::{MemoryStats, PoolStats, size_class};
pub use profile::{KernelTime, kernel_times};
pub use report::{AdapterReport, FeatureReport, LimitReport, list_adapters};
pub use shared::SharedBuffers;

/// Compile-time proof of the thread-safety the facade relies on.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    const fn sendable<T: Send>() {}
    shareable::<Gpu>();
    shareable::<SharedBuffers>();
    sendable::<Executable>();
};
