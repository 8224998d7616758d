//! Running hand-written plans on the real adapter: results, repeated runs, host I/O errors.

mod common;

use common::{f32_bytes, f32s, vector_add};
use tessera_compiler::{Access, BufferId, BufferRole, Dispatch, Plan};
use tessera_ir::DType;
use tessera_runtime::RuntimeError;

#[test]
fn vector_add_of_1000_elements_reads_back_correct_values() {
    let gpu = gpu_or_skip!();
    let n = 1000; // not a multiple of the workgroup size 64
    let mut exe = gpu.load(&vector_add(n, 1.0)).unwrap();
    assert_eq!(exe.dispatch_count(), 1);
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..n).map(|i| 0.5 * i as f32 - 7.0).collect();
    exe.write_param("b", &f32_bytes(&b)).unwrap();
    exe.write_input("a", &f32_bytes(&a)).unwrap();
    let outputs = exe.run().unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].len(), n * 4);
    let expected: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(f32s(&outputs[0]), expected);
}

#[test]
fn second_run_with_new_inputs_reuses_the_bind_groups() {
    let gpu = gpu_or_skip!();
    let n = 300;
    let mut exe = gpu.load(&vector_add(n, 2.0)).unwrap();
    let b: Vec<f32> = (0..n).map(|i| i as f32).collect();
    exe.write_param("b", &f32_bytes(&b)).unwrap();
    for round in 0..2 {
        let a = vec![round as f32 * 100.0; n];
        exe.write_input("a", &f32_bytes(&a)).unwrap();
        let got = f32s(&exe.run().unwrap()[0]);
        let expected: Vec<f32> = b.iter().map(|y| round as f32 * 100.0 + 2.0 * y).collect();
        assert_eq!(got, expected, "run {round}");
    }
    exe.run_without_readback().unwrap();
}

#[test]
fn wrong_length_and_unknown_names_are_errors() {
    let gpu = gpu_or_skip!();
    let mut exe = gpu.load(&vector_add(10, 1.0)).unwrap();
    assert_eq!(
        exe.write_input("a", &[0u8; 12]),
        Err(RuntimeError::SizeMismatch { name: "a".to_string(), expected: 40, got: 12 })
    );
    assert_eq!(exe.write_input("nope", &[0u8; 40]), Err(RuntimeError::UnknownBinding("nope".to_string())));
    // A param is not an input.
    assert_eq!(exe.write_input("b", &[0u8; 40]), Err(RuntimeError::UnknownBinding("b".to_string())));
}

#[test]
fn odd_f16_lengths_are_padded_on_the_device_and_exact_on_the_host() {
    let gpu = gpu_or_skip!();
    if !gpu.profile().f16 {
        eprintln!("SKIPPED: adapter without SHADER_F16");
        return;
    }
    let wgsl = "enable f16;
        @group(0) @binding(0) var<storage, read> x: array<f16>;
        @group(0) @binding(1) var<storage, read_write> y: array<f16>;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
            if id.x < 3u { y[id.x] = x[id.x] * 2.0h; }
        }";
    let mut double = common::kernel("double_f16", wgsl, vec![Access::Read, Access::ReadWrite]);
    double.uses_f16 = true;
    let plan = Plan {
        buffers: vec![common::buffer(8, BufferRole::Input, "x"), common::buffer(8, BufferRole::Output, "y")],
        kernels: vec![double],
        dispatches: vec![Dispatch {
            kernel: 0,
            buffers: vec![BufferId(0), BufferId(1)],
            workgroups: [1, 1, 1],
        }],
        inputs: vec![common::io("x", 0, 3, DType::F16)],
        params: vec![],
        states: vec![],
        outputs: vec![common::io("output0", 1, 3, DType::F16)],
        peak_bytes: 16,
        report: Default::default(),
    };
    let mut exe = gpu.load(&plan).unwrap();
    // 1.0, 2.5, -3.0 as f16
    let x: Vec<u8> = [0x3c00u16, 0x4100, 0xc200].iter().flat_map(|h| h.to_le_bytes()).collect();
    exe.write_input("x", &x).unwrap();
    let y = exe.run().unwrap().remove(0);
    let expected: Vec<u8> = [0x4000u16, 0x4500, 0xc600].iter().flat_map(|h| h.to_le_bytes()).collect();
    assert_eq!(y, expected);
}

#[test]
fn a_plan_with_several_dispatches_runs_them_in_order() {
    let gpu = gpu_or_skip!();
    // out = a + b, then out2 = out + b: two dispatches of one kernel through a scratch buffer.
    let n = 70;
    let bytes = (n * 4) as u64;
    let mut plan = vector_add(n, 1.0);
    plan.buffers[2].role = BufferRole::Scratch;
    plan.buffers.push(common::buffer(bytes, BufferRole::Output, "out2"));
    plan.dispatches.push(Dispatch {
        kernel: 0,
        buffers: vec![BufferId(2), BufferId(1), BufferId(3)],
        workgroups: [2, 1, 1],
    });
    plan.outputs = vec![common::io("output0", 3, n, DType::F32)];
    let mut exe = gpu.load(&plan).unwrap();
    assert_eq!(exe.dispatch_count(), 2);
    exe.write_param("b", &f32_bytes(&vec![1.5; n])).unwrap();
    exe.write_input("a", &f32_bytes(&vec![10.0; n])).unwrap();
    assert_eq!(f32s(&exe.run().unwrap()[0]), vec![13.0; n]);
}

#[test]
fn a_destroyed_device_is_reported_as_lost_not_a_panic() {
    let gpu = gpu_or_skip!();
    let mut exe = gpu.load(&vector_add(8, 1.0)).unwrap();
    gpu.destroy();
    assert!(matches!(exe.run(), Err(RuntimeError::DeviceLost(_))));
    assert!(matches!(gpu.load(&vector_add(8, 1.0)), Err(RuntimeError::DeviceLost(_))));
    drop(exe);
}

#[test]
fn one_gpu_shared_by_threads_runs_their_plans_independently() {
    let gpu = std::sync::Arc::new(gpu_or_skip!());
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let gpu = std::sync::Arc::clone(&gpu);
            std::thread::spawn(move || {
                let n = 100 + 37 * t;
                let mut exe = gpu.load(&vector_add(n, 1.0)).unwrap();
                exe.write_param("b", &f32_bytes(&vec![t as f32; n])).unwrap();
                for round in 0..3 {
                    exe.write_input("a", &f32_bytes(&vec![round as f32; n])).unwrap();
                    assert_eq!(f32s(&exe.run().unwrap()[0]), vec![(round + t) as f32; n]);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(gpu.pipeline_stats().hits + gpu.pipeline_stats().misses, 4);
}

#[test]
fn last_gpu_time_is_measured_where_the_device_has_timestamps() {
    let gpu = gpu_or_skip!();
    let mut exe = gpu.load(&vector_add(4096, 1.0)).unwrap();
    assert_eq!(exe.last_gpu_time(), None, "no run yet");
    exe.run().unwrap();
    let first = exe.last_gpu_time();
    if !gpu.report().features.timestamp_query {
        assert_eq!(first, None);
        eprintln!("SKIPPED: adapter without TIMESTAMP_QUERY");
        return;
    }
    let first = first.expect("a run on a device with timestamps is timed");
    assert!(first < std::time::Duration::from_secs(60), "{first:?}");
    // Reading the time leaves the executable usable, and every run is timed again.
    exe.run_without_readback().unwrap();
    assert!(exe.last_gpu_time().is_some());
    assert_eq!(exe.run().unwrap()[0].len(), 4096 * 4);
    eprintln!("vector_add of 4096: {first:?}, then {:?}", exe.last_gpu_time());
}
