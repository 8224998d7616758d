//! States (the KV cache) and buffers shared between plans: in-place accumulation across runs,
//! one copy of a param and a state seen by several plans, mismatches, memory accounting, release.

mod common;

use common::{buffer, f32_bytes, f32s, io, kernel, vector_add};
use tessera_compiler::{Access, BufferId, BufferRole, Dispatch, Plan};
use tessera_ir::DType;
use tessera_runtime::{Gpu, GpuOptions, RuntimeError, SharedBuffers};

/// state[i] += x[i] in place.
const ACCUMULATE_WGSL: &str = "
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> state: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < arrayLength(&state) { state[id.x] = state[id.x] + x[id.x]; }
}";

/// out[i] = state[i] * w[i].
const READ_WGSL: &str = "
@group(0) @binding(0) var<storage, read> state: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < arrayLength(&out) { out[id.x] = state[id.x] * w[id.x]; }
}";

fn workgroups(n: usize) -> [u32; 3] {
    [(n as u32).div_ceil(64), 1, 1]
}

/// Input `x`, state `cache` += x, no outputs.
fn accumulate(n: usize) -> Plan {
    let bytes = (n * 4) as u64;
    Plan {
        buffers: vec![buffer(bytes, BufferRole::Input, "x"), buffer(bytes, BufferRole::State, "cache")],
        kernels: vec![kernel("accumulate", ACCUMULATE_WGSL, vec![Access::Read, Access::ReadWrite])],
        dispatches: vec![Dispatch {
            kernel: 0,
            buffers: vec![BufferId(0), BufferId(1)],
            workgroups: workgroups(n),
        }],
        inputs: vec![io("x", 0, n, DType::F32)],
        states: vec![io("cache", 1, n, DType::F32)],
        peak_bytes: 2 * bytes,
        report: Default::default(),
        ..Plan::default()
    }
}

/// Input `x`, param `w`, state `cache` += x, then output cache * w.
fn accumulate_and_scale(n: usize) -> Plan {
    let bytes = (n * 4) as u64;
    Plan {
        buffers: vec![
            buffer(bytes, BufferRole::Input, "x"),
            buffer(bytes, BufferRole::State, "cache"),
            buffer(bytes, BufferRole::Param, "w"),
            buffer(bytes, BufferRole::Output, "out"),
        ],
        kernels: vec![
            kernel("accumulate", ACCUMULATE_WGSL, vec![Access::Read, Access::ReadWrite]),
            kernel("scale", READ_WGSL, vec![Access::Read, Access::Read, Access::ReadWrite]),
        ],
        dispatches: vec![
            Dispatch { kernel: 0, buffers: vec![BufferId(0), BufferId(1)], workgroups: workgroups(n) },
            Dispatch {
                kernel: 1,
                buffers: vec![BufferId(1), BufferId(2), BufferId(3)],
                workgroups: workgroups(n),
            },
        ],
        inputs: vec![io("x", 0, n, DType::F32)],
        params: vec![io("w", 2, n, DType::F32)],
        states: vec![io("cache", 1, n, DType::F32)],
        outputs: vec![io("output0", 3, n, DType::F32)],
        peak_bytes: 4 * bytes,
        report: Default::default(),
    }
}

/// Param `w`, state `cache`, output cache * w: reads the state, never writes it.
fn read_scaled(n: usize) -> Plan {
    let bytes = (n * 4) as u64;
    Plan {
        buffers: vec![
            buffer(bytes, BufferRole::State, "cache"),
            buffer(bytes, BufferRole::Param, "w"),
            buffer(bytes, BufferRole::Output, "out"),
        ],
        kernels: vec![kernel("scale", READ_WGSL, vec![Access::Read, Access::Read, Access::ReadWrite])],
        dispatches: vec![Dispatch {
            kernel: 0,
            buffers: vec![BufferId(0), BufferId(1), BufferId(2)],
            workgroups: workgroups(n),
        }],
        params: vec![io("w", 1, n, DType::F32)],
        states: vec![io("cache", 0, n, DType::F32)],
        outputs: vec![io("output0", 2, n, DType::F32)],
        peak_bytes: 3 * bytes,
        report: Default::default(),
        ..Plan::default()
    }
}

#[test]
fn a_state_accumulates_across_runs_and_write_state_resets_it() {
    let gpu = gpu_or_skip!();
    let n = 100;
    let mut exe = gpu.load(&accumulate(n)).unwrap();
    assert_eq!(f32s(&exe.read_state("cache").unwrap()), vec![0.0; n], "states start zeroed");
    for (round, expected) in [1.0, 3.0, 6.0].into_iter().enumerate() {
        exe.write_input("x", &f32_bytes(&vec![round as f32 + 1.0; n])).unwrap();
        assert!(exe.run().unwrap().is_empty());
        assert_eq!(f32s(&exe.read_state("cache").unwrap()), vec![expected; n], "run {round}");
    }
    let ramp: Vec<f32> = (0..n).map(|i| i as f32).collect();
    exe.write_state("cache", &f32_bytes(&ramp)).unwrap();
    assert_eq!(f32s(&exe.read_state("cache").unwrap()), ramp);
    exe.write_input("x", &f32_bytes(&vec![0.5; n])).unwrap();
    exe.run_without_readback().unwrap();
    let expected: Vec<f32> = ramp.iter().map(|v| v + 0.5).collect();
    assert_eq!(f32s(&exe.read_state("cache").unwrap()), expected);

    exe.write_state("cache", &vec![0u8; n * 4]).unwrap();
    assert_eq!(f32s(&exe.read_state("cache").unwrap()), vec![0.0; n]);
    assert_eq!(
        exe.write_state("cache", &[0u8; 8]),
        Err(RuntimeError::SizeMismatch { name: "cache".to_string(), expected: (n * 4) as u64, got: 8 })
    );
    assert_eq!(exe.read_state("x"), Err(RuntimeError::UnknownBinding("x".to_string())));
    assert_eq!(exe.write_param("cache", &[0u8; 400]), Err(RuntimeError::UnknownBinding("cache".to_string())));
}

#[test]
fn plans_loaded_on_one_shared_set_see_the_same_param_and_state() {
    let gpu = gpu_or_skip!();
    let n = 70;
    let shared = SharedBuffers::new();
    let mut writer = gpu.load_shared(&accumulate_and_scale(n), &shared).unwrap();
    let mut reader = gpu.load_shared(&read_scaled(n), &shared).unwrap();
    assert_eq!(shared.names(), ["cache", "w"]);
    assert_eq!(shared.role("cache"), Some(BufferRole::State));
    assert_eq!(shared.role("w"), Some(BufferRole::Param));

    // The weight, written once through the reader, is what the writer uses.
    let w: Vec<f32> = (0..n).map(|i| i as f32).collect();
    reader.write_param("w", &f32_bytes(&w)).unwrap();
    writer.write_input("x", &f32_bytes(&vec![2.0; n])).unwrap();
    let expected: Vec<f32> = w.iter().map(|w| 2.0 * w).collect();
    assert_eq!(f32s(&writer.run().unwrap()[0]), expected);
    // The state the writer updated is what the reader reads, and reading leaves it alone.
    assert_eq!(f32s(&reader.run().unwrap()[0]), expected);
    assert_eq!(f32s(&reader.read_state("cache").unwrap()), vec![2.0; n]);
    assert_eq!(f32s(&gpu.read_shared(&shared, "cache").unwrap()), vec![2.0; n]);
    writer.run().unwrap();
    assert_eq!(f32s(&reader.read_state("cache").unwrap()), vec![4.0; n]);

    // A third plan loaded later binds the existing buffers: no zeroing of the cache.
    let mut late = gpu.load_shared(&read_scaled(n), &shared).unwrap();
    let expected: Vec<f32> = w.iter().map(|w| 4.0 * w).collect();
    assert_eq!(f32s(&late.run().unwrap()[0]), expected);

    // A state reset through one plan is seen by the others; so is a param written directly.
    reader.write_state("cache", &f32_bytes(&vec![1.0; n])).unwrap();
    gpu.write_shared(&shared, "w", &f32_bytes(&vec![3.0; n])).unwrap();
    assert_eq!(f32s(&late.run().unwrap()[0]), vec![3.0; n]);
    assert_eq!(f32s(&gpu.read_shared(&shared, "w").unwrap()), vec![3.0; n]);
}

#[test]
fn weights_can_be_uploaded_before_any_plan_is_loaded() {
    let gpu = gpu_or_skip!();
    let n = 1000;
    let shared = SharedBuffers::new();
    assert!(shared.is_empty());
    gpu.write_shared(&shared, "b", &f32_bytes(&vec![0.25; n])).unwrap();
    assert!(shared.contains("b") && !shared.contains("a"));
    assert_eq!(shared.bytes(), 4000, "shared buffers are sized exactly, not by size class");
    let mut exe = gpu.load_shared(&vector_add(n, 4.0), &shared).unwrap();
    exe.write_input("a", &f32_bytes(&vec![1.0; n])).unwrap();
    assert_eq!(f32s(&exe.run().unwrap()[0]), vec![2.0; n]);
    // Wrong length for an existing buffer.
    assert!(matches!(
        gpu.write_shared(&shared, "b", &[0u8; 12]),
        Err(RuntimeError::SharedMismatch { name, .. }) if name == "b"
    ));
    assert_eq!(gpu.read_shared(&shared, "nope"), Err(RuntimeError::UnknownBinding("nope".to_string())));
}

#[test]
fn a_size_or_role_mismatch_between_plans_is_an_error_and_changes_nothing() {
    let gpu = gpu_or_skip!();
    let shared = SharedBuffers::new();
    let first = gpu.load_shared(&accumulate_and_scale(64), &shared).unwrap();
    let before = gpu.memory();
    let mut longer = read_scaled(64);
    longer.buffers[0].size = 260;
    longer.states[0].shape = vec![65];
    let Err(RuntimeError::SharedMismatch { name, reason }) = gpu.load_shared(&longer, &shared) else {
        panic!("a plan whose cache has another size must not load");
    };
    assert_eq!(name, "cache", "{reason}");
    assert!(reason.contains("260") && reason.contains("256"), "{reason}");
    assert_eq!(gpu.memory(), before);
    assert_eq!(shared.names(), ["cache", "w"]);

    // The same name as a param in one plan and a state in another.
    let mut as_param = read_scaled(64);
    as_param.buffers[0].role = BufferRole::Param;
    as_param.params.push(as_param.states.remove(0));
    let Err(RuntimeError::SharedMismatch { name, reason }) = gpu.load_shared(&as_param, &shared) else {
        panic!("a state bound as a param must not load");
    };
    assert_eq!(name, "cache");
    assert!(reason.contains("Param") && reason.contains("State"), "{reason}");
    drop(first);
}

#[test]
fn plans_whose_states_are_not_their_own_buffers_are_rejected() {
    let gpu = gpu_or_skip!();
    // A state bound to a scratch buffer.
    let mut plan = accumulate(16);
    plan.buffers[1].role = BufferRole::Scratch;
    let Err(RuntimeError::Validation(message)) = gpu.load(&plan) else { panic!("loaded") };
    assert!(message.contains("cache") && message.contains("Scratch"), "{message}");
    // An input writing into a state's buffer.
    let mut plan = accumulate(16);
    plan.inputs.push(io("y", 1, 16, DType::F32));
    let Err(RuntimeError::Validation(message)) = gpu.load(&plan) else { panic!("loaded") };
    assert!(message.contains("input y"), "{message}");
    // A state larger than its buffer.
    let mut plan = accumulate(16);
    plan.states[0].shape = vec![17];
    assert!(matches!(gpu.load(&plan), Err(RuntimeError::Validation(_))));
}

#[test]
fn memory_counts_a_shared_buffer_once_and_dropping_everything_frees_it() {
    let gpu = gpu_or_skip!();
    let n = 1024; // 4096 bytes: size class and exact size agree
    let shared = SharedBuffers::new();
    let writer = gpu.load_shared(&accumulate_and_scale(n), &shared).unwrap();
    let after_one = gpu.memory().current_bytes;
    // x, out, out's staging unless unified memory maps `out` itself (owned) + cache, w (shared)
    let staging = u64::from(!gpu.has_unified_memory());
    assert_eq!(after_one, (4 + staging) * 4096);
    assert_eq!(shared.bytes(), 2 * 4096);
    assert_eq!((writer.buffer_bytes(), writer.shared_bytes()), ((4 + staging) * 4096, 2 * 4096));
    let reader = gpu.load_shared(&read_scaled(n), &shared).unwrap();
    // The reader adds only its output (and staging) buffers.
    assert_eq!(gpu.memory().current_bytes, after_one + (1 + staging) * 4096);
    assert_eq!(reader.shared_bytes(), 2 * 4096);

    // Dropping the plans keeps the shared buffers (the set holds them) and pools the rest.
    drop((writer, reader));
    assert_eq!(shared.len(), 2);
    assert_eq!(gpu.pool_stats().free_buffers as u64, 3 + 2 * staging);
    gpu.trim_pool();
    assert_eq!(gpu.memory().current_bytes, 2 * 4096);

    // A plan outliving the set keeps its buffers alive; the last holder frees them.
    let mut exe = gpu.load_shared(&accumulate(n), &shared).unwrap();
    drop(shared);
    exe.write_input("x", &f32_bytes(&vec![1.0; n])).unwrap();
    exe.run().unwrap();
    assert_eq!(f32s(&exe.read_state("cache").unwrap()), vec![1.0; n]);
    drop(exe);
    gpu.trim_pool();
    assert_eq!(gpu.memory().current_bytes, 0);
}

#[test]
fn a_private_state_is_per_plan_and_zeroed_even_in_a_reused_buffer() {
    let gpu = gpu_or_skip!();
    let n = 64;
    let mut first = gpu.load(&accumulate(n)).unwrap();
    first.write_input("x", &f32_bytes(&vec![5.0; n])).unwrap();
    first.run().unwrap();
    let mut second = gpu.load(&accumulate(n)).unwrap();
    assert_eq!(f32s(&second.read_state("cache").unwrap()), vec![0.0; n], "plain loads do not share");
    drop(first);
    // The first plan's dirty cache goes back to the pool; a new plan gets it zeroed.
    let third = gpu.load(&accumulate(n)).unwrap();
    assert!(gpu.pool_stats().reused > 0);
    assert_eq!(f32s(&third.read_state("cache").unwrap()), vec![0.0; n]);
    second.write_input("x", &f32_bytes(&vec![1.0; n])).unwrap();
    second.run().unwrap();
    assert_eq!(f32s(&second.read_state("cache").unwrap()), vec![1.0; n]);
}

#[test]
fn shared_buffers_belong_to_one_gpu() {
    let gpu = gpu_or_skip!();
    let other = gpu_or_skip!();
    let shared = SharedBuffers::new();
    gpu.write_shared(&shared, "w", &[0u8; 16]).unwrap();
    assert!(matches!(other.load_shared(&read_scaled(4), &shared), Err(RuntimeError::Validation(_))));
    assert!(matches!(other.write_shared(&shared, "w", &[0u8; 16]), Err(RuntimeError::Validation(_))));
}

/// On a unified-memory adapter (lavapipe is a `Cpu` adapter with mappable primary buffers)
/// shared weights are written once through a mapping; `TESSERA_NO_UMA` takes the staging path,
/// which copies twice. Both hold the same bytes.
#[test]
fn unified_memory_uploads_copy_once_and_staging_twice() {
    let Some(gpu) = common::gpu() else { return };
    let bytes: Vec<u8> = (0..4096u32).flat_map(|i| (i * 7).to_le_bytes()).collect();
    let staging_gpu =
        Gpu::new(&GpuOptions { no_uma: true, ..GpuOptions::from_env().expect("env") }).expect("gpu");
    for (g, copies) in [(&gpu, if gpu.has_unified_memory() { 1 } else { 2 }), (&staging_gpu, 2)] {
        let shared = SharedBuffers::new();
        let before = g.memory().copied_bytes;
        g.write_shared(&shared, "w", &bytes).expect("upload");
        assert_eq!(g.memory().copied_bytes - before, copies * bytes.len() as u64);
        assert_eq!(g.read_shared(&shared, "w").expect("read back"), bytes);
    }
    assert!(!staging_gpu.has_unified_memory());
}

/// Results come back without a staging copy on unified memory (the output buffer itself is
/// mapped, then unmapped before the next run writes it) and through staging otherwise; both
/// give the same bytes run after run.
#[test]
fn unified_memory_reads_outputs_without_staging_copies() {
    let Some(gpu) = common::gpu() else { return };
    let n = 300;
    let staging_gpu =
        Gpu::new(&GpuOptions { no_uma: true, ..GpuOptions::from_env().expect("env") }).expect("gpu");
    let mut results = Vec::new();
    for g in [&gpu, &staging_gpu] {
        let shared = SharedBuffers::new();
        let w: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        g.write_shared(&shared, "w", &f32_bytes(&w)).expect("upload");
        let mut exe = g.load_shared(&read_scaled(n), &shared).expect("load");
        let staged = if g.has_unified_memory() { 0 } else { 1 };
        assert_eq!(exe.staged_outputs(), staged, "unified memory: {}", g.has_unified_memory());
        let mut runs = Vec::new();
        for state in [1.0f32, 3.0] {
            exe.write_state("cache", &f32_bytes(&vec![state; n])).expect("state");
            runs.push(f32s(&exe.run().expect("run")[0]));
        }
        assert_ne!(runs[0], runs[1], "the second run's result is read, not the first's");
        results.push(runs);
    }
    assert_eq!(results[0], results[1], "mapped and staged read-backs agree");
}
