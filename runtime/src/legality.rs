//! Checks a [`Plan`] against the device before anything is allocated: a plan over a limit or
//! needing a missing feature is an `Err` naming the limit, never a wgpu panic or a lost device.

use crate::error::RuntimeError;
use tessera_compiler::{BufferId, BufferRole, DeviceProfile, IoBinding, KernelSource, Plan};

/// Every check the runtime makes before loading `plan`. `profile` holds the (possibly narrowed)
/// limits the compiler targeted; `device` the ones only wgpu knows (workgroup size y and z).
pub(crate) fn check_plan(
    plan: &Plan,
    profile: &DeviceProfile,
    device: &wgpu::Limits,
) -> Result<(), RuntimeError> {
    for (index, buffer) in plan.buffers.iter().enumerate() {
        if buffer.size < 4 || buffer.size % 4 != 0 {
            return Err(malformed(format!(
                "buffer {index} ({}) has size {}, not a positive multiple of 4",
                buffer.label, buffer.size
            )));
        }
        let what = |limit: &str| format!("size of buffer {index} ({}) against {limit}", buffer.label);
        at_most(what("max_buffer_size"), buffer.size, profile.limits.max_buffer_size)?;
        // Every buffer is bound whole as a storage buffer.
        at_most(
            what("max_storage_buffer_binding_size"),
            buffer.size,
            profile.limits.max_storage_buffer_binding_size,
        )?;
    }
    for kernel in &plan.kernels {
        check_kernel(kernel, profile, device)?;
    }
    for (index, dispatch) in plan.dispatches.iter().enumerate() {
        let kernel = plan.kernels.get(dispatch.kernel).ok_or_else(|| {
            malformed(format!(
                "dispatch {index} runs kernel {}, the plan has {}",
                dispatch.kernel,
                plan.kernels.len()
            ))
        })?;
        if dispatch.buffers.len() != kernel.bindings.len() {
            return Err(malformed(format!(
                "dispatch {index} binds {} buffers, kernel {} declares {} bindings",
                dispatch.buffers.len(),
                kernel.name,
                kernel.bindings.len()
            )));
        }
        for (slot, (&buffer, access)) in dispatch.buffers.iter().zip(&kernel.bindings).enumerate() {
            check_buffer_id(plan, buffer, &format!("dispatch {index}"))?;
            // WebGPU forbids one buffer as read-only and writable storage in the same dispatch.
            let conflict = dispatch
                .buffers
                .iter()
                .zip(&kernel.bindings)
                .any(|(&other, other_access)| other == buffer && other_access != access);
            if conflict {
                return Err(malformed(format!(
                    "dispatch {index} (kernel {}) binds buffer {} both read-only and read-write (slot {slot})",
                    kernel.name, buffer.0
                )));
            }
        }
        for (axis, count) in ["x", "y", "z"].iter().zip(dispatch.workgroups) {
            at_most(
                format!("workgroup count {axis} of dispatch {index} (kernel {})", kernel.name),
                count.into(),
                profile.limits.max_compute_workgroups_per_dimension.into(),
            )?;
        }
    }
    for binding in plan.inputs.iter().chain(&plan.params).chain(&plan.states).chain(&plan.outputs) {
        check_io(plan, binding)?;
    }
    check_persistent(plan)
}

/// Params and states become shared buffers: each needs its own buffer of its role, which no
/// input overwrites.
fn check_persistent(plan: &Plan) -> Result<(), RuntimeError> {
    let params = plan.params.iter().map(|b| (b, BufferRole::Param));
    let persistent: Vec<(&IoBinding, BufferRole)> =
        params.chain(plan.states.iter().map(|b| (b, BufferRole::State))).collect();
    for (index, (binding, role)) in persistent.iter().enumerate() {
        let desc = &plan.buffers[binding.buffer.0 as usize];
        if desc.role != *role {
            return Err(malformed(format!(
                "{role:?} {} is bound to buffer {} of role {:?}",
                binding.name, binding.buffer.0, desc.role
            )));
        }
        let twice = persistent[..index].iter().find(|(other, _)| other.buffer == binding.buffer);
        if let Some((other, _)) = twice {
            return Err(malformed(format!(
                "{} and {} are bound to the same buffer {}",
                other.name, binding.name, binding.buffer.0
            )));
        }
        if let Some(input) = plan.inputs.iter().find(|i| i.buffer == binding.buffer) {
            return Err(malformed(format!(
                "input {} is bound to the buffer of {role:?} {}",
                input.name, binding.name
            )));
        }
    }
    Ok(())
}

fn check_kernel(
    kernel: &KernelSource,
    profile: &DeviceProfile,
    device: &wgpu::Limits,
) -> Result<(), RuntimeError> {
    let name = &kernel.name;
    at_most(
        format!("storage buffers bound by kernel {name}"),
        kernel.bindings.len() as u64,
        profile.limits.max_storage_buffers_per_shader_stage.into(),
    )?;
    at_most(
        format!("workgroup memory of kernel {name}"),
        kernel.workgroup_bytes.into(),
        profile.limits.max_compute_workgroup_storage_size.into(),
    )?;
    let [x, y, z] = kernel.workgroup_size;
    if x == 0 || y == 0 || z == 0 {
        return Err(malformed(format!("kernel {name} has workgroup size {:?}", kernel.workgroup_size)));
    }
    at_most(
        format!("workgroup size x of kernel {name}"),
        x.into(),
        profile.limits.max_compute_workgroup_size_x.into(),
    )?;
    at_most(
        format!("workgroup size y of kernel {name}"),
        y.into(),
        device.max_compute_workgroup_size_y.into(),
    )?;
    at_most(
        format!("workgroup size z of kernel {name}"),
        z.into(),
        device.max_compute_workgroup_size_z.into(),
    )?;
    at_most(
        format!("invocations per workgroup of kernel {name}"),
        u64::from(x) * u64::from(y) * u64::from(z),
        profile.limits.max_compute_invocations_per_workgroup.into(),
    )?;
    if kernel.uses_f16 && !profile.f16 {
        return Err(RuntimeError::MissingFeature(format!("SHADER_F16 (kernel {name} uses f16)")));
    }
    if kernel.uses_subgroups && !profile.subgroups {
        return Err(RuntimeError::MissingFeature(format!("SUBGROUP (kernel {name} uses subgroup builtins)")));
    }
    if kernel.uses_cooperative_matrix && !profile.cooperative_matrix {
        return Err(RuntimeError::MissingFeature(format!(
            "EXPERIMENTAL_COOPERATIVE_MATRIX (kernel {name} uses cooperative matrices)"
        )));
    }
    Ok(())
}

fn check_io(plan: &Plan, binding: &IoBinding) -> Result<(), RuntimeError> {
    let context = format!("binding {}", binding.name);
    let buffer = check_buffer_id(plan, binding.buffer, &context)?;
    let bytes = padded(host_bytes(binding));
    if bytes > buffer.size {
        return Err(malformed(format!(
            "{context} holds {bytes} bytes but its buffer {} has {}",
            binding.buffer.0, buffer.size
        )));
    }
    Ok(())
}

fn check_buffer_id<'p>(
    plan: &'p Plan,
    id: BufferId,
    context: &str,
) -> Result<&'p tessera_compiler::BufferDesc, RuntimeError> {
    plan.buffers.get(id.0 as usize).ok_or_else(|| {
        malformed(format!("{context} refers to buffer {}, the plan has {}", id.0, plan.buffers.len()))
    })
}

/// Bytes of a binding's host data: elements times the size of its storage dtype.
pub(crate) fn host_bytes(binding: &IoBinding) -> u64 {
    let elements: u64 = binding.shape.iter().map(|&d| d as u64).product();
    elements * binding.storage.size_bytes() as u64
}

/// Rounds up to the 4-byte granularity of buffer copies (odd f16 counts).
pub(crate) fn padded(bytes: u64) -> u64 {
    bytes.div_ceil(4) * 4
}

fn at_most(what: String, value: u64, limit: u64) -> Result<(), RuntimeError> {
    if value > limit {
        return Err(RuntimeError::LimitExceeded { what, value, limit });
    }
    Ok(())
}

fn malformed(message: String) -> RuntimeError {
    RuntimeError::Validation(format!("malformed plan: {message}"))
}
