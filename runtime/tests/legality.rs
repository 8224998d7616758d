//! Plans the device cannot run are errors at load, never panics.

mod common;

use common::{buffer, kernel, vector_add};
use tessera_compiler::{Access, BufferId, BufferRole, DeviceProfile, Dispatch, Plan};
use tessera_runtime::RuntimeError;

fn limit_exceeded(result: Result<tessera_runtime::Executable, RuntimeError>) -> (String, u64, u64) {
    match result {
        Err(RuntimeError::LimitExceeded { what, value, limit }) => (what, value, limit),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

#[test]
fn forty_bindings_exceed_the_storage_buffers_per_stage() {
    let gpu = gpu_or_skip!();
    let n = 40;
    let plan = Plan {
        buffers: (0..n).map(|i| buffer(16, BufferRole::Scratch, &format!("b{i}"))).collect(),
        kernels: vec![kernel("wide", "not even parsed", vec![Access::ReadWrite; n])],
        dispatches: vec![Dispatch {
            kernel: 0,
            buffers: (0..n as u32).map(BufferId).collect(),
            workgroups: [1, 1, 1],
        }],
        ..Plan::default()
    };
    let (what, value, limit) = limit_exceeded(gpu.load(&plan));
    assert!(what.contains("storage buffers") && what.contains("wide"), "{what}");
    assert_eq!(value, 40);
    assert_eq!(limit, u64::from(gpu.profile().limits.max_storage_buffers_per_shader_stage));
}

#[test]
fn a_3_gib_buffer_exceeds_the_buffer_limits() {
    let gpu = gpu_or_skip!();
    let mut plan = vector_add(16, 1.0);
    plan.buffers[1].size = 3 << 30;
    let (what, value, _) = limit_exceeded(gpu.load(&plan));
    assert!(what.contains("buffer 1 (b)"), "{what}");
    assert_eq!(value, 3 << 30);
    assert_eq!(gpu.memory().current_bytes, 0, "nothing allocated before the check");
}

#[test]
fn workgroup_counts_and_sizes_are_checked() {
    let gpu = gpu_or_skip!();
    let mut plan = vector_add(16, 1.0);
    plan.dispatches[0].workgroups = [1, 70_000, 1];
    let (what, value, _) = limit_exceeded(gpu.load(&plan));
    assert!(what.contains("workgroup count y"), "{what}");
    assert_eq!(value, 70_000);

    let mut plan = vector_add(16, 1.0);
    plan.kernels[0].workgroup_size = [64, 64, 1];
    let (what, ..) = limit_exceeded(gpu.load(&plan));
    assert!(what.contains("invocations per workgroup"), "{what}");

    let mut plan = vector_add(16, 1.0);
    plan.kernels[0].workgroup_bytes = 1 << 20;
    let (what, ..) = limit_exceeded(gpu.load(&plan));
    assert!(what.contains("workgroup memory"), "{what}");
}

#[test]
fn a_narrowed_profile_enforces_portable_limits_and_missing_features() {
    let mut gpu = gpu_or_skip!();
    gpu.restrict_to(&DeviceProfile::portable());
    // Its parallelism is the adapter's own (a shape hint, not a capability).
    let portable = DeviceProfile { parallelism: gpu.profile().parallelism, ..DeviceProfile::portable() };
    assert_eq!(gpu.profile(), &portable);
    let n = 9;
    let plan = Plan {
        buffers: (0..n).map(|i| buffer(16, BufferRole::Scratch, &format!("b{i}"))).collect(),
        kernels: vec![kernel("nine", "", vec![Access::ReadWrite; n])],
        dispatches: vec![Dispatch {
            kernel: 0,
            buffers: (0..n as u32).map(BufferId).collect(),
            workgroups: [1, 1, 1],
        }],
        ..Plan::default()
    };
    assert_eq!(limit_exceeded(gpu.load(&plan)).2, 8);

    let mut plan = vector_add(16, 1.0);
    plan.kernels[0].uses_f16 = true;
    assert!(matches!(gpu.load(&plan), Err(RuntimeError::MissingFeature(f)) if f.contains("SHADER_F16")));
    plan.kernels[0].uses_f16 = false;
    plan.kernels[0].uses_subgroups = true;
    assert!(matches!(gpu.load(&plan), Err(RuntimeError::MissingFeature(f)) if f.contains("SUBGROUP")));
}

#[test]
fn malformed_plans_are_validation_errors() {
    let gpu = gpu_or_skip!();
    let mut plan = vector_add(16, 1.0);
    plan.dispatches[0].buffers[2] = BufferId(9);
    assert!(matches!(gpu.load(&plan), Err(RuntimeError::Validation(m)) if m.contains("buffer 9")));

    let mut plan = vector_add(16, 1.0);
    plan.dispatches[0].kernel = 3;
    assert!(matches!(gpu.load(&plan), Err(RuntimeError::Validation(m)) if m.contains("kernel 3")));

    let mut plan = vector_add(16, 1.0);
    plan.dispatches[0].buffers = vec![BufferId(0), BufferId(2), BufferId(2)];
    assert!(
        matches!(gpu.load(&plan), Err(RuntimeError::Validation(m)) if m.contains("read-only and read-write"))
    );
}

#[test]
fn invalid_wgsl_is_a_validation_error_and_the_device_stays_usable() {
    let gpu = gpu_or_skip!();
    let mut plan = vector_add(16, 1.0);
    plan.kernels[0].wgsl =
        "@compute @workgroup_size(64) fn main() { let x: f32 = undefined_thing; }".to_string();
    plan.kernels[0].name = "broken".to_string();
    match gpu.load(&plan) {
        Err(RuntimeError::Validation(message)) => assert!(message.contains("broken"), "{message}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    // A wrong entry point fails at pipeline creation, also as a validation error.
    let mut plan = vector_add(16, 1.0);
    plan.kernels[0].entry = "no_such_entry".to_string();
    assert!(matches!(gpu.load(&plan), Err(RuntimeError::Validation(_))));

    let mut exe = gpu.load(&vector_add(16, 1.0)).unwrap();
    exe.write_input("a", &common::f32_bytes(&[1.0; 16])).unwrap();
    exe.write_param("b", &common::f32_bytes(&[2.0; 16])).unwrap();
    assert_eq!(common::f32s(&exe.run().unwrap()[0]), vec![3.0; 16]);
}

/// Narrowed to an artifact tier, the profile assumes no fixed subgroup size the tier does not:
/// the JIT then compiles the tier's kernels (lavapipe's 8..8 becomes the full tier's 4..64).
#[test]
fn a_narrowed_profile_covers_the_targets_subgroup_sizes() {
    let mut gpu = gpu_or_skip!();
    if !gpu.profile().subgroups {
        return;
    }
    let (lo, hi) = (gpu.profile().subgroup_min_size, gpu.profile().subgroup_max_size);
    let full = DeviceProfile::full();
    gpu.restrict_to(&full);
    let p = gpu.profile();
    assert!(p.subgroups);
    assert_eq!(
        (p.subgroup_min_size, p.subgroup_max_size),
        (lo.min(full.subgroup_min_size), hi.max(full.subgroup_max_size))
    );
}
