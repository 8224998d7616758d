//! tessera's graph compiler: turns a verified [`tessera_ir::Graph`] into a [`Plan`] of WGSL
//! kernels for a [`DeviceProfile`]. The e-graph optimizer slots in before lowering.
#![warn(missing_docs)]

pub mod plan;
pub mod target;

pub use plan::{Access, BufferDesc, BufferId, BufferRole, Dispatch, IoBinding, KernelSource, Plan};
pub use target::{DeviceProfile, Limits};
