//! Capability tiers: the device profiles an artifact's plans are compiled for, best first, and
//! the test that decides whether an adapter can run a tier's plans.

use tessera_compiler::DeviceProfile;

/// The tiers `compile-model` knows, best first. Every tier binds at most 8 storage buffers of at
/// most 128 MiB, what every WebGPU adapter offers; `subgroup32` also assumes 32 KiB of workgroup
/// memory and 1024 invocations per workgroup.
pub const TIER_NAMES: [&str; 3] = ["subgroup32", "full", "portable"];

/// The profile of the tier `name`.
pub fn tier_profile(name: &str) -> Option<DeviceProfile> {
    match name {
        // One subgroup size of 32 (NVIDIA, Apple), where the quantized gemvs run the
        // subgroup-rows kernel, with the workgroup memory and size it was measured with.
        "subgroup32" => {
            let mut p =
                DeviceProfile { subgroup_min_size: 32, subgroup_max_size: 32, ..DeviceProfile::full() };
            p.limits.max_compute_workgroup_storage_size = 32 << 10;
            p.limits.max_compute_invocations_per_workgroup = 1024;
            p.limits.max_compute_workgroup_size_x = 1024;
            Some(p)
        }
        // f16 and subgroup kernels (lavapipe, Metal, most Vulkan and DX12 GPUs).
        "full" => Some(DeviceProfile::full()),
        // Plain f32 with workgroup-memory reductions: runs anywhere.
        "portable" => Some(DeviceProfile::portable()),
        _ => None,
    }
}

/// Why `adapter` cannot run plans compiled for `tier`, or `Ok` when it can: every feature the
/// tier uses is present, every limit the tier assumed is at most the adapter's, and the adapter's
/// subgroup sizes lie in the range the tier's kernels were written for.
pub fn fits(tier: &DeviceProfile, adapter: &DeviceProfile) -> Result<(), String> {
    if tier.f16 && !adapter.f16 {
        return Err("needs f16 (SHADER_F16)".into());
    }
    if tier.subgroups && !adapter.subgroups {
        return Err("needs subgroups".into());
    }
    if tier.cooperative_matrix && !adapter.cooperative_matrix {
        return Err("needs cooperative matrices (EXPERIMENTAL_COOPERATIVE_MATRIX)".into());
    }
    if tier.subgroups && tier.subgroup_min_size > 0 {
        let (lo, hi) = (adapter.subgroup_min_size, adapter.subgroup_max_size);
        if lo < tier.subgroup_min_size || hi > tier.subgroup_max_size {
            return Err(format!(
                "written for subgroup sizes {}..{}, the adapter uses {lo}..{hi}",
                tier.subgroup_min_size, tier.subgroup_max_size
            ));
        }
    }
    let (t, a) = (&tier.limits, &adapter.limits);
    let limits = [
        (
            "max_storage_buffer_binding_size",
            t.max_storage_buffer_binding_size,
            a.max_storage_buffer_binding_size,
        ),
        ("max_buffer_size", t.max_buffer_size, a.max_buffer_size),
        (
            "max_storage_buffers_per_shader_stage",
            t.max_storage_buffers_per_shader_stage.into(),
            a.max_storage_buffers_per_shader_stage.into(),
        ),
        (
            "max_compute_workgroup_storage_size",
            t.max_compute_workgroup_storage_size.into(),
            a.max_compute_workgroup_storage_size.into(),
        ),
        (
            "max_compute_invocations_per_workgroup",
            t.max_compute_invocations_per_workgroup.into(),
            a.max_compute_invocations_per_workgroup.into(),
        ),
        (
            "max_compute_workgroup_size_x",
            t.max_compute_workgroup_size_x.into(),
            a.max_compute_workgroup_size_x.into(),
        ),
        (
            "max_compute_workgroups_per_dimension",
            t.max_compute_workgroups_per_dimension.into(),
            a.max_compute_workgroups_per_dimension.into(),
        ),
    ];
    for (name, wanted, offered) in limits {
        if wanted > offered {
            return Err(format!("needs {name} {wanted}, the adapter offers {offered}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_need_their_features_subgroup_sizes_and_limits() {
        let floor = DeviceProfile::portable();
        let full = DeviceProfile::full();
        assert_eq!(fits(&floor, &floor), Ok(()));
        assert!(fits(&full, &floor).is_err_and(|e| e.contains("f16")));
        let no_subgroups = DeviceProfile { subgroups: false, ..full.clone() };
        assert!(fits(&full, &no_subgroups).is_err_and(|e| e.contains("subgroups")));
        let nvidia = DeviceProfile { subgroup_min_size: 32, subgroup_max_size: 32, ..full.clone() };
        assert_eq!(fits(&full, &nvidia), Ok(()));
        let wide = DeviceProfile { subgroup_min_size: 4, subgroup_max_size: 128, ..full.clone() };
        assert!(fits(&full, &wide).is_err_and(|e| e.contains("subgroup sizes")));
        // subgroup32 fits one subgroup size of 32 with the limits it assumes, nothing else.
        let sg32 = tier_profile("subgroup32").expect("known tier");
        assert!(fits(&sg32, &nvidia).is_err_and(|e| e.contains("max_compute_workgroup_storage_size")));
        let mut big = nvidia.clone();
        big.limits = sg32.limits;
        assert_eq!(fits(&sg32, &big), Ok(()));
        let eight = DeviceProfile { subgroup_min_size: 8, subgroup_max_size: 8, ..big.clone() };
        assert!(fits(&sg32, &eight).is_err_and(|e| e.contains("subgroup sizes")));
        let mut small = floor.clone();
        small.limits.max_storage_buffers_per_shader_stage = 4;
        assert!(fits(&floor, &small).is_err_and(|e| e.contains("max_storage_buffers_per_shader_stage")));
    }
}
