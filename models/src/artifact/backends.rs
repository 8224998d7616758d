//! Compile-time proof that each kernel will be accepted beyond the machine that compiled it:
//! naga parses and validates the WGSL for the tier's features, then translates it to SPIR-V
//! (Vulkan), MSL (Metal) and HLSL (DX12) with the override constants applied, as wgpu-hal does.

use naga::back::{hlsl, msl, pipeline_constants, spv};
use naga::valid::ModuleInfo;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tessera_compiler::{DeviceProfile, KernelSource, Plan, parse_and_validate};

/// A backend naga translates WGSL to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Backend {
    /// SPIR-V, for Vulkan.
    SpirV,
    /// Metal Shading Language.
    Msl,
    /// HLSL, for DX12.
    Hlsl,
}

impl Backend {
    /// Every backend checked.
    pub const ALL: [Backend; 3] = [Backend::SpirV, Backend::Msl, Backend::Hlsl];

    /// The backend a wgpu backend name (`vulkan`, `metal`, `dx12`, `gl`) compiles through; GL is
    /// not checked (naga's GLSL output is not built).
    pub fn of_wgpu(name: &str) -> Option<Backend> {
        match name {
            "vulkan" => Some(Backend::SpirV),
            "metal" => Some(Backend::Msl),
            "dx12" => Some(Backend::Hlsl),
            _ => None,
        }
    }

    /// Display name.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::SpirV => "SPIR-V",
            Backend::Msl => "MSL",
            Backend::Hlsl => "HLSL",
        }
    }
}

/// One kernel that failed a translation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranslationFailure {
    /// The backend.
    pub backend: Backend,
    /// Kernel name.
    pub kernel: String,
    /// naga's message.
    pub message: String,
}

/// The translation of a tier's kernels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendReport {
    /// Distinct kernels (WGSL + entry + constants) checked.
    pub kernels: usize,
    /// Every failure, by backend and kernel.
    pub failures: Vec<TranslationFailure>,
}

impl BackendReport {
    /// True when every kernel translated for `backend`.
    pub fn clean_for(&self, backend: Backend) -> bool {
        !self.failures.iter().any(|f| f.backend == backend)
    }

    /// Failures for `backend`.
    pub fn failed(&self, backend: Backend) -> usize {
        self.failures.iter().filter(|f| f.backend == backend).count()
    }
}

/// Validates and translates every distinct kernel of `plans` for `profile`. A kernel that naga
/// rejects outright is an error (the plan is wrong everywhere); a failed translation is recorded
/// per backend, so the runtime can skip this tier on that backend only.
pub fn check_plans<'a>(
    plans: impl IntoIterator<Item = &'a Plan>,
    profile: &DeviceProfile,
) -> Result<BackendReport, String> {
    let mut seen = HashSet::new();
    let mut report = BackendReport::default();
    for kernel in plans.into_iter().flat_map(|p| &p.kernels) {
        let constants: Vec<(String, u64)> =
            kernel.constants.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect();
        if !seen.insert((kernel.wgsl.clone(), kernel.entry.clone(), constants)) {
            continue;
        }
        report.kernels += 1;
        let (module, info) = parse_and_validate(kernel, profile).map_err(|e| e.to_string())?;
        for backend in Backend::ALL {
            if let Err(message) = translate(&module, &info, kernel, backend) {
                report.failures.push(TranslationFailure { backend, kernel: kernel.name.clone(), message });
            }
        }
    }
    Ok(report)
}

/// Overrides applied for the entry point, then the backend's writer, with the language versions
/// wgpu-hal asks for on devices that have f16 and subgroups.
fn translate(
    module: &naga::Module,
    info: &ModuleInfo,
    kernel: &KernelSource,
    backend: Backend,
) -> Result<(), String> {
    let mut constants = naga::back::PipelineConstants::default();
    for (name, value) in &kernel.constants {
        constants.insert(name.clone(), *value);
    }
    let entry = (naga::ShaderStage::Compute, kernel.entry.as_str());
    let (module, info) = pipeline_constants::process_overrides(module, info, Some(entry), &constants)
        .map_err(|e| format!("override constants: {e}"))?;
    match backend {
        Backend::SpirV => {
            let options = spv::Options { lang_version: (1, 3), ..spv::Options::default() };
            let pipeline = spv::PipelineOptions {
                shader_stage: naga::ShaderStage::Compute,
                entry_point: kernel.entry.clone(),
            };
            spv::write_vec(&module, &info, &options, Some(&pipeline)).map(drop).map_err(|e| e.to_string())
        }
        Backend::Msl => {
            let options = msl::Options { lang_version: (2, 4), ..msl::Options::default() };
            let pipeline = msl::PipelineOptions {
                entry_point: Some((naga::ShaderStage::Compute, kernel.entry.clone())),
                ..msl::PipelineOptions::default()
            };
            msl::write_string(&module, &info, &options, &pipeline).map(drop).map_err(|e| e.to_string())
        }
        Backend::Hlsl => {
            let options = hlsl::Options { shader_model: hlsl::ShaderModel::V6_2, ..hlsl::Options::default() };
            let pipeline = hlsl::PipelineOptions {
                entry_point: Some((naga::ShaderStage::Compute, kernel.entry.clone())),
            };
            let mut out = String::new();
            hlsl::Writer::new(&mut out, &options, &pipeline)
                .write(&module, &info, None)
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}
