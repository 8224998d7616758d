//! Adapter listing and selection.

mod common;

use tessera_runtime::{Gpu, GpuOptions, RuntimeError, list_adapters};

#[test]
fn list_adapters_reports_lavapipe_as_a_cpu_with_f16_and_subgroups() {
    let adapters = list_adapters();
    let lavapipe = adapters.iter().find(|a| a.name.contains("llvmpipe") && a.backend == "vulkan");
    let Some(lavapipe) = lavapipe else {
        assert!(std::env::var_os("CI").is_none(), "CI is set but lavapipe is missing: {adapters:?}");
        eprintln!("SKIPPED: no lavapipe adapter ({} adapters found)", adapters.len());
        return;
    };
    assert_eq!(lavapipe.device_type, "Cpu");
    assert!(lavapipe.features.f16 && lavapipe.features.subgroups, "{lavapipe:?}");
    assert!(lavapipe.features.subgroup_min_size >= 4);
    assert!(lavapipe.limits.max_storage_buffers_per_shader_stage >= 8);
    let text = lavapipe.to_string();
    assert!(text.starts_with(&lavapipe.name) && text.contains("subgroups: yes"), "{text}");
    let json = serde_json::to_value(lavapipe).unwrap();
    assert_eq!(json["features"]["f16"], true);
}

#[test]
fn the_selected_device_fills_the_profile() {
    let gpu = gpu_or_skip!();
    let report = gpu.report();
    eprintln!("selected:\n{report}");
    let profile = gpu.profile();
    assert_eq!(profile.f16, report.features.f16);
    assert_eq!(profile.subgroups, report.features.subgroups);
    assert_eq!(profile.limits.max_storage_buffer_binding_size, report.limits.max_storage_buffer_binding_size);
    assert!(profile.limits.max_compute_workgroups_per_dimension >= 65535);
    if report.device_type == "DiscreteGpu" {
        assert!(!report.features.mappable_primary_buffers, "never the UMA path on a discrete GPU");
    }
}

#[test]
fn fallback_switches_turn_features_off() {
    if common::gpu().is_none() {
        return;
    }
    let options = GpuOptions { no_f16: true, no_subgroups: true, ..GpuOptions::from_env().unwrap() };
    let gpu = Gpu::new(&options).unwrap();
    assert!(!gpu.profile().f16 && !gpu.profile().subgroups);
    assert_eq!((gpu.profile().subgroup_min_size, gpu.profile().subgroup_max_size), (0, 0));
}

#[test]
fn an_adapter_name_that_matches_nothing_lists_the_adapters_found() {
    if common::gpu().is_none() {
        return;
    }
    let options = GpuOptions { adapter: Some("no-such-adapter-xyz".to_string()), ..GpuOptions::default() };
    match Gpu::new(&options) {
        Err(RuntimeError::AdapterNotFound { wanted, available }) => {
            assert_eq!(wanted, "no-such-adapter-xyz");
            assert!(!available.is_empty());
        }
        other => panic!("expected AdapterNotFound, got {other:?}"),
    }
}
