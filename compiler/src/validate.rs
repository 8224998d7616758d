//! Offline kernel validation: naga parses and validates each WGSL module with the same validator
//! wgpu-core builds for a device with the profile's features, and the kernel's declared metadata
//! (bindings, workgroup size, workgroup memory) is checked against the module and the limits.

use crate::{CompileError, DeviceProfile, KernelSource};
use naga::valid::{Capabilities, ValidationFlags};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, OnceLock};

/// Parses and validates `kernel` for `profile`, and checks it against the profile's limits.
pub fn validate_kernel(kernel: &KernelSource, profile: &DeviceProfile) -> Result<(), CompileError> {
    check_limits(kernel, profile)?;
    let key = cache_key(kernel, profile);
    if validated().lock().map(|set| set.contains(&key)).unwrap_or(false) {
        return Ok(());
    }
    let (module, _) = parse_and_validate(kernel, profile)?;
    check_metadata(kernel, &module)?;
    if let Ok(mut set) = validated().lock() {
        set.insert(key);
    }
    Ok(())
}

/// WGSL already validated in this process, by hash of (text, entry, features).
fn validated() -> &'static Mutex<HashSet<u64>> {
    static CACHE: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashSet::new()))
}

fn cache_key(kernel: &KernelSource, profile: &DeviceProfile) -> u64 {
    let mut h = DefaultHasher::new();
    (&kernel.wgsl, &kernel.entry, &kernel.bindings, kernel.workgroup_size, kernel.workgroup_bytes)
        .hash(&mut h);
    (profile.f16, profile.subgroups).hash(&mut h);
    h.finish()
}

/// The wgpu features a device with this profile has.
fn features(profile: &DeviceProfile) -> wgpu_types::Features {
    let mut f = wgpu_types::Features::empty();
    if profile.f16 {
        f |= wgpu_types::Features::SHADER_F16;
    }
    if profile.subgroups {
        f |= wgpu_types::Features::SUBGROUP;
    }
    if profile.cooperative_matrix {
        f |= wgpu_types::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
    }
    f
}

/// Parses `kernel` and validates it with the validator wgpu-core builds for a device of this
/// profile (its features, downlevel-compliant); the module and its info feed naga's backends.
pub fn parse_and_validate(
    kernel: &KernelSource,
    profile: &DeviceProfile,
) -> Result<(naga::Module, naga::valid::ModuleInfo), CompileError> {
    let invalid = |message: String| CompileError::Invalid { kernel: kernel.name.clone(), message };
    let downlevel = wgpu_types::DownlevelFlags::compliant();
    let capabilities: Capabilities =
        wgpu_naga_bridge::features_to_naga_capabilities(features(profile), downlevel);
    let options = naga::front::wgsl::Options { parse_doc_comments: false, capabilities };
    let module = naga::front::wgsl::Frontend::new_with_options(options)
        .parse(&kernel.wgsl)
        .map_err(|e| invalid(e.emit_to_string(&kernel.wgsl)))?;
    let mut validator =
        wgpu_naga_bridge::create_validator(features(profile), downlevel, ValidationFlags::all());
    let info = validator.validate(&module).map_err(|e| invalid(e.emit_to_string(&kernel.wgsl)))?;
    Ok((module, info))
}

/// The declared metadata must describe the module: the runtime builds layouts from it.
fn check_metadata(kernel: &KernelSource, module: &naga::Module) -> Result<(), CompileError> {
    let invalid = |message: String| CompileError::Invalid { kernel: kernel.name.clone(), message };
    let entry = module
        .entry_points
        .iter()
        .find(|e| e.name == kernel.entry)
        .ok_or_else(|| invalid(format!("no entry point `{}`", kernel.entry)))?;
    if entry.workgroup_size != kernel.workgroup_size {
        return Err(invalid(format!(
            "declares workgroup size {:?}, the module has {:?}",
            kernel.workgroup_size, entry.workgroup_size
        )));
    }
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).map_err(|e| invalid(format!("layout: {e}")))?;
    let mut storage = Vec::new();
    let mut workgroup_bytes = 0u32;
    for (_, var) in module.global_variables.iter() {
        match var.space {
            naga::AddressSpace::Storage { access } => {
                let index = var.binding.as_ref().map(|b| (b.group, b.binding));
                storage.push((index, access.contains(naga::StorageAccess::STORE)));
            }
            naga::AddressSpace::WorkGroup => workgroup_bytes += layouter[var.ty].size,
            _ => {}
        }
    }
    storage.sort();
    let declared = kernel
        .bindings
        .iter()
        .enumerate()
        .map(|(i, a)| (Some((0, i as u32)), *a == crate::Access::ReadWrite))
        .collect::<Vec<_>>();
    if storage != declared {
        return Err(invalid(format!("declares bindings {:?}, the module has {storage:?}", kernel.bindings)));
    }
    if workgroup_bytes != kernel.workgroup_bytes {
        return Err(invalid(format!(
            "declares {} bytes of workgroup memory, the module has {workgroup_bytes}",
            kernel.workgroup_bytes
        )));
    }
    Ok(())
}

fn check_limits(kernel: &KernelSource, profile: &DeviceProfile) -> Result<(), CompileError> {
    let limits = &profile.limits;
    let what = |s: &str| format!("kernel `{}`: {s}", kernel.name);
    let checks = [
        (
            "storage bindings",
            kernel.bindings.len() as u64,
            limits.max_storage_buffers_per_shader_stage as u64,
        ),
        (
            "workgroup memory (bytes)",
            kernel.workgroup_bytes as u64,
            limits.max_compute_workgroup_storage_size as u64,
        ),
        (
            "invocations per workgroup",
            kernel.workgroup_size.iter().map(|&d| d as u64).product(),
            limits.max_compute_invocations_per_workgroup as u64,
        ),
        ("workgroup size x", kernel.workgroup_size[0] as u64, limits.max_compute_workgroup_size_x as u64),
    ];
    for (name, value, limit) in checks {
        if value > limit {
            return Err(CompileError::Limit { what: what(name), value, limit });
        }
    }
    let missing = |feature: &str| CompileError::Invalid {
        kernel: kernel.name.clone(),
        message: format!("uses {feature}, which the device profile lacks"),
    };
    if kernel.uses_f16 && !profile.f16 {
        return Err(missing("f16"));
    }
    if kernel.uses_subgroups && !profile.subgroups {
        return Err(missing("subgroups"));
    }
    if kernel.uses_cooperative_matrix && !profile.cooperative_matrix {
        return Err(missing("cooperative matrices"));
    }
    Ok(())
}
