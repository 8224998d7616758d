//! Shared by the runtime tests: a real device (or a skip notice off CI) and small hand-written plans.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use tessera_compiler::{Access, BufferDesc, BufferId, BufferRole, Dispatch, IoBinding, KernelSource, Plan};
use tessera_ir::DType;
use tessera_runtime::{Gpu, RuntimeError};

/// The device the environment selects. Without one, a failure when `CI` is set, else a skip
/// notice and `None`.
pub fn gpu() -> Option<Gpu> {
    match Gpu::from_env() {
        Ok(gpu) => Some(gpu),
        Err(error @ (RuntimeError::NoAdapter { .. } | RuntimeError::AdapterNotFound { .. })) => {
            assert!(std::env::var_os("CI").is_none(), "CI is set but there is no GPU adapter: {error}");
            eprintln!("SKIPPED: no GPU adapter ({error})");
            None
        }
        Err(other) => panic!("could not open the GPU: {other}"),
    }
}

/// `let gpu = gpu_or_skip!();` returns from the test when there is no adapter off CI.
#[macro_export]
macro_rules! gpu_or_skip {
    () => {
        match common::gpu() {
            Some(gpu) => gpu,
            None => return,
        }
    };
}

pub const ADD_WGSL: &str = "
override SCALE: f32 = 1.0;
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i < arrayLength(&out) {
        out[i] = a[i] + SCALE * b[i];
    }
}
";

pub fn kernel(name: &str, wgsl: &str, bindings: Vec<Access>) -> KernelSource {
    KernelSource {
        name: name.to_string(),
        wgsl: wgsl.to_string(),
        entry: "main".to_string(),
        constants: BTreeMap::new(),
        bindings,
        workgroup_size: [64, 1, 1],
        workgroup_bytes: 0,
        uses_f16: false,
        uses_subgroups: false,
        uses_cooperative_matrix: false,
    }
}

pub fn io(name: &str, buffer: u32, len: usize, dtype: DType) -> IoBinding {
    IoBinding { name: name.to_string(), buffer: BufferId(buffer), shape: vec![len], dtype, storage: dtype }
}

pub fn buffer(size: u64, role: BufferRole, label: &str) -> BufferDesc {
    BufferDesc { size, role, label: label.to_string() }
}

/// out = a + scale * b over `n` f32 elements: inputs `a`, param `b`, one output.
pub fn vector_add(n: usize, scale: f64) -> Plan {
    let bytes = (n * 4) as u64;
    let mut add = kernel("add", ADD_WGSL, vec![Access::Read, Access::Read, Access::ReadWrite]);
    add.constants.insert("SCALE".to_string(), scale);
    Plan {
        buffers: vec![
            buffer(bytes, BufferRole::Input, "a"),
            buffer(bytes, BufferRole::Param, "b"),
            buffer(bytes, BufferRole::Output, "out"),
        ],
        kernels: vec![add],
        dispatches: vec![Dispatch {
            kernel: 0,
            buffers: vec![BufferId(0), BufferId(1), BufferId(2)],
            workgroups: [(n as u32).div_ceil(64), 1, 1],
        }],
        inputs: vec![io("a", 0, n, DType::F32)],
        params: vec![io("b", 1, n, DType::F32)],
        states: vec![],
        outputs: vec![io("output0", 2, n, DType::F32)],
        peak_bytes: 3 * bytes,
        report: Default::default(),
    }
}

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
