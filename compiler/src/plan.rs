//! The Plan: plain serde data the runtime executes. JIT builds it in-process; `compile-model`
//! writes it to disk; both run through the same runtime path.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tessera_ir::DType;

/// Index of a device buffer in [`Plan::buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BufferId(pub u32);

/// Everything needed to run one compiled graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Physical device buffers (the memory plan may map several values onto one).
    pub buffers: Vec<BufferDesc>,
    /// Distinct shaders; dispatches refer to them by index.
    pub kernels: Vec<KernelSource>,
    /// Dispatches in the order they run.
    pub dispatches: Vec<Dispatch>,
    /// Data written before each run, by graph input name.
    pub inputs: Vec<IoBinding>,
    /// Weights written once when the plan is loaded, by param name.
    pub params: Vec<IoBinding>,
    /// Persistent values (the KV cache) by state name: zero at load, kept across runs, updated
    /// in place; plans loaded against the same shared buffers see the same states.
    pub states: Vec<IoBinding>,
    /// Results read back after a run, in the graph's output order.
    pub outputs: Vec<IoBinding>,
    /// Sum of all buffer sizes: the device memory the plan needs, known before it runs.
    pub peak_bytes: u64,
    /// The optimizer's report, one entry per dispatch (empty in plans written before it existed).
    #[serde(default)]
    pub report: Vec<KernelReport>,
}

/// What one dispatch does, for `TESSERA_DEBUG` and tests: which ops it fused and what it moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelReport {
    /// Index into [`Plan::dispatches`].
    pub dispatch: usize,
    /// Kernel name.
    pub kernel: String,
    /// Ops computed by the dispatch (host op first, then fused prologue/epilogue ops).
    pub ops: Vec<String>,
    /// Storage buffers bound.
    pub bindings: usize,
    /// Bytes of the buffers bound (an upper bound on bytes moved).
    pub bytes: u64,
    /// Estimated cost in microseconds (cost model: launch + bytes).
    pub cost_us: f64,
    /// Indices of the optimized graph's nodes the dispatch computes (host first).
    #[serde(default)]
    pub nodes: Vec<usize>,
    /// E-graph rules that rewrote those nodes' e-classes (or a class they used).
    #[serde(default)]
    pub rules: Vec<String>,
}

/// One device buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferDesc {
    /// Size in bytes (a multiple of 4, at least 4).
    pub size: u64,
    /// What the buffer holds.
    pub role: BufferRole,
    /// Debug label (the value it holds, `scratchN`, or `workspace`: the partial results split
    /// kernels pass from their first dispatch to their second).
    pub label: String,
}

/// What a buffer holds; decides its usage flags and when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BufferRole {
    /// Written by the host before each run.
    Input,
    /// Written by the host once at load.
    Param,
    /// Read back by the host after each run.
    Output,
    /// Persistent across runs (KV cache): zeroed once, then only the plan writes it.
    State,
    /// Intermediate values, never seen by the host.
    Scratch,
}

/// A host-visible value bound to a buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoBinding {
    /// Graph input/param name, or `outputN`.
    pub name: String,
    /// The buffer.
    pub buffer: BufferId,
    /// Logical shape.
    pub shape: Vec<usize>,
    /// Logical dtype.
    pub dtype: DType,
    /// Dtype of the elements as stored on the device (F16 is stored as F32 on devices without
    /// `SHADER_F16`; Bool is always stored as one u32 per element).
    pub storage: DType,
}

/// WGSL for one kernel and what it needs from the device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelSource {
    /// Human-readable name (`matmul_f32_64x64`), used in labels and reports.
    pub name: String,
    /// Complete WGSL module.
    pub wgsl: String,
    /// Entry point.
    pub entry: String,
    /// Values for WGSL `override` constants.
    pub constants: BTreeMap<String, f64>,
    /// Access mode of each storage binding, in binding order (group 0).
    pub bindings: Vec<Access>,
    /// `@workgroup_size` of the entry point.
    pub workgroup_size: [u32; 3],
    /// Bytes of `var<workgroup>` memory the kernel declares.
    pub workgroup_bytes: u32,
    /// Uses `f16` (needs `SHADER_F16`).
    pub uses_f16: bool,
    /// Uses subgroup builtins (needs `SUBGROUP`).
    pub uses_subgroups: bool,
    /// Uses cooperative matrices (needs `EXPERIMENTAL_COOPERATIVE_MATRIX`); absent in plans
    /// written before they existed.
    #[serde(default)]
    pub uses_cooperative_matrix: bool,
}

/// Access mode of a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
}

/// One dispatch of a kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Index into [`Plan::kernels`].
    pub kernel: usize,
    /// Buffer bound at each binding slot, in binding order.
    pub buffers: Vec<BufferId>,
    /// Workgroup counts (each within the device's per-dimension limit).
    pub workgroups: [u32; 3],
}

impl Plan {
    /// The input binding named `name`.
    pub fn input(&self, name: &str) -> Option<&IoBinding> {
        self.inputs.iter().find(|b| b.name == name)
    }

    /// The state binding named `name`.
    pub fn state(&self, name: &str) -> Option<&IoBinding> {
        self.states.iter().find(|b| b.name == name)
    }

    /// The param binding named `name`.
    pub fn param(&self, name: &str) -> Option<&IoBinding> {
        self.params.iter().find(|b| b.name == name)
    }
}
