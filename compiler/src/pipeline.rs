//! The compile pipeline, one named step per line. The e-graph optimizer, scheduling/fusion and a
//! smarter memory plan slot in as steps here.

use crate::codegen::Target;
use crate::{CompileError, DeviceProfile, Plan, lower, memory, validate_kernel};
use tessera_ir::Graph;

/// Switches of the compile pipeline (each step can be turned off to bisect a wrong result).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// Validate every kernel with naga (cached by hash of its WGSL).
    pub validate: bool,
    /// Let scratch values with disjoint lifetimes share a buffer.
    pub reuse_buffers: bool,
    /// Use subgroup kernels where the profile has subgroups (off: workgroup-memory fallback).
    pub subgroups: bool,
}

impl Default for CompileOptions {
    fn default() -> CompileOptions {
        CompileOptions { validate: true, reuse_buffers: true, subgroups: true }
    }
}

/// Compiles `graph` into a [`Plan`] of naga-validated WGSL kernels for `profile`.
pub fn compile(
    graph: &Graph,
    profile: &DeviceProfile,
    options: &CompileOptions,
) -> Result<Plan, CompileError> {
    let target = Target { profile, subgroups: profile.subgroups && options.subgroups };
    // 1. verify: every later step relies on recorded types matching inference.
    graph.verify()?;
    // 2. optimize: the e-graph rewrites go here (none yet).
    // 3. memory: a buffer per value, reshapes aliased, scratch reused by lifetime.
    let memory = memory::plan(graph, profile, options.reuse_buffers)?;
    // 4. lower: one kernel per op, in graph order, plus output copies.
    let mut plan = lower::lower(graph, &target, &memory)?;
    // 5. validate: naga parse + validate of each distinct kernel, limits checked.
    if options.validate {
        for kernel in &plan.kernels {
            validate_kernel(kernel, profile)?;
        }
    }
    // 6. account: the device memory the plan needs.
    plan.peak_bytes = plan.buffers.iter().map(|b| b.size).sum();
    tracing::debug!(
        kernels = plan.kernels.len(),
        dispatches = plan.dispatches.len(),
        peak_bytes = plan.peak_bytes,
        "compiled"
    );
    Ok(plan)
}
