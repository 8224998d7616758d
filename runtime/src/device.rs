//! Device selection: instance, adapter, device and queue, chosen from the environment, and the
//! [`DeviceProfile`] the compiler targets.

use crate::error::{DeviceHealth, RuntimeError};
use crate::pipelines::{CacheStats, DiskCache, PipelineCache};
use crate::pool::{BufferPool, MemoryStats, PoolStats};
use crate::report::AdapterReport;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tessera_compiler::{DeviceProfile, Limits};

/// How to choose and open a device. [`GpuOptions::from_env`] reads the `TESSERA_*` variables.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuOptions {
    /// Only this backend (`TESSERA_BACKEND`); `None` searches Vulkan/Metal/DX12, then GL.
    pub backend: Option<wgpu::Backend>,
    /// Case-insensitive substring of the adapter name (`TESSERA_ADAPTER`).
    pub adapter: Option<String>,
    /// Do not request `SHADER_F16` (`TESSERA_NO_F16`).
    pub no_f16: bool,
    /// Do not request subgroups (`TESSERA_NO_SUBGROUPS`).
    pub no_subgroups: bool,
    /// Do not request `MAPPABLE_PRIMARY_BUFFERS` (`TESSERA_NO_UMA`).
    pub no_uma: bool,
    /// Do not request cooperative matrices (`TESSERA_NO_COOPERATIVE_MATRIX`).
    pub no_cooperative_matrix: bool,
    /// How long to wait for the GPU before failing (`TESSERA_POLL_TIMEOUT_S`, default 300 s:
    /// lavapipe is slow).
    pub poll_timeout: Duration,
    /// Where the driver's compiled pipelines persist between runs (`$TESSERA_HOME/pipeline-cache`,
    /// default `~/.cache/tessera/pipeline-cache`); `None` (`TESSERA_NO_PIPELINE_CACHE`): not kept.
    pub pipeline_cache_dir: Option<PathBuf>,
}

impl Default for GpuOptions {
    fn default() -> GpuOptions {
        GpuOptions {
            backend: None,
            adapter: None,
            no_f16: false,
            no_subgroups: false,
            no_uma: false,
            no_cooperative_matrix: false,
            poll_timeout: Duration::from_secs(300),
            pipeline_cache_dir: None,
        }
    }
}

impl GpuOptions {
    /// Options from the process environment.
    pub fn from_env() -> Result<GpuOptions, RuntimeError> {
        GpuOptions::from_vars(|name| std::env::var(name).ok())
    }

    /// Options from any variable lookup (tests pass a map instead of the environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<GpuOptions, RuntimeError> {
        let bad = |name: &str, value: &str| RuntimeError::BadEnv {
            var: name.to_string(),
            value: value.to_string(),
        };
        let flag = |name: &str| -> Result<bool, RuntimeError> {
            match var(name).as_deref().map(str::trim) {
                None | Some("") | Some("0") | Some("false") => Ok(false),
                Some("1") | Some("true") => Ok(true),
                Some(other) => Err(bad(name, other)),
            }
        };
        let backend = match var("TESSERA_BACKEND") {
            None => None,
            Some(value) => Some(match value.trim().to_ascii_lowercase().as_str() {
                "" => return Err(bad("TESSERA_BACKEND", &value)),
                "vulkan" | "vk" => wgpu::Backend::Vulkan,
                "metal" | "mtl" => wgpu::Backend::Metal,
                "dx12" | "d3d12" => wgpu::Backend::Dx12,
                "gl" | "gles" | "opengl" => wgpu::Backend::Gl,
                _ => return Err(bad("TESSERA_BACKEND", &value)),
            }),
        };
        let poll_timeout = match var("TESSERA_POLL_TIMEOUT_S") {
            None => GpuOptions::default().poll_timeout,
            Some(value) => match value.trim().parse::<f64>() {
                Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Duration::from_secs_f64(seconds),
                _ => return Err(bad("TESSERA_POLL_TIMEOUT_S", &value)),
            },
        };
        let home = var("TESSERA_HOME")
            .filter(|h| !h.trim().is_empty())
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache").join("tessera")));
        let pipeline_cache_dir = match flag("TESSERA_NO_PIPELINE_CACHE")? {
            true => None,
            false => home.map(|h| h.join("pipeline-cache")),
        };
        Ok(GpuOptions {
            pipeline_cache_dir,
            backend,
            adapter: var("TESSERA_ADAPTER").filter(|name| !name.trim().is_empty()),
            no_f16: flag("TESSERA_NO_F16")?,
            no_subgroups: flag("TESSERA_NO_SUBGROUPS")?,
            no_uma: flag("TESSERA_NO_UMA")?,
            no_cooperative_matrix: flag("TESSERA_NO_COOPERATIVE_MATRIX")?,
            poll_timeout,
        })
    }
}

/// One open GPU: adapter, device, queue, what it offers, and the caches shared by every plan
/// loaded on it. `Send + Sync`: share it with `Arc`.
#[derive(Debug)]
pub struct Gpu {
    pub(crate) instance: wgpu::Instance,
    pub(crate) adapter: wgpu::Adapter,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    report: AdapterReport,
    profile: DeviceProfile,
    pub(crate) pool: Arc<BufferPool>,
    pub(crate) pipelines: PipelineCache,
    pub(crate) health: Arc<DeviceHealth>,
    pub(crate) poll_timeout: Duration,
}

const PRIMARY: wgpu::Backends =
    wgpu::Backends::VULKAN.union(wgpu::Backends::METAL).union(wgpu::Backends::DX12);

impl Gpu {
    /// The best adapter, as `TESSERA_BACKEND`, `TESSERA_ADAPTER`, `TESSERA_NO_F16`,
    /// `TESSERA_NO_SUBGROUPS`, `TESSERA_NO_UMA` and `TESSERA_POLL_TIMEOUT_S` say.
    pub fn from_env() -> Result<Gpu, RuntimeError> {
        Gpu::new(&GpuOptions::from_env()?)
    }

    /// Chooses an adapter and opens a device. Without a backend, searches Vulkan/Metal/DX12 and
    /// falls back to GL; prefers discrete over integrated over other adapters.
    pub fn new(options: &GpuOptions) -> Result<Gpu, RuntimeError> {
        let searches: Vec<wgpu::Backends> = match options.backend {
            Some(backend) => vec![backend.into()],
            None => vec![PRIMARY, wgpu::Backends::GL],
        };
        let mut seen: Vec<String> = Vec::new();
        for backends in &searches {
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                backends: *backends,
                ..wgpu::InstanceDescriptor::new_without_display_handle()
            });
            let adapters = pollster::block_on(instance.enumerate_adapters(*backends));
            seen.extend(
                adapters.iter().map(|a| AdapterReport::new(&a.get_info(), a.features(), &a.limits()).short()),
            );
            let wanted = options.adapter.as_ref().map(|name| name.to_lowercase());
            let best = adapters
                .into_iter()
                .filter(|a| {
                    wanted.as_ref().is_none_or(|name| a.get_info().name.to_lowercase().contains(name))
                })
                .min_by_key(|a| preference(&a.get_info()));
            if let Some(adapter) = best {
                return Gpu::open(instance, adapter, options);
            }
        }
        if let (Some(wanted), false) = (&options.adapter, seen.is_empty()) {
            return Err(RuntimeError::AdapterNotFound { wanted: wanted.clone(), available: seen });
        }
        let searched = searches.iter().map(|b| backend_names(*b)).collect::<Vec<_>>().join(", then ");
        let hint = match options.backend {
            Some(_) => "unset TESSERA_BACKEND to search every backend, or install a driver for this one",
            None => {
                "install a Vulkan driver (without a GPU on Debian/Ubuntu: `apt-get install \
                     mesa-vulkan-drivers libvulkan1` for lavapipe)"
            }
        };
        Err(RuntimeError::NoAdapter { searched, hint: hint.to_string() })
    }

    /// Requests the device with the adapter's own limits and the features tessera uses.
    fn open(
        instance: wgpu::Instance,
        adapter: wgpu::Adapter,
        options: &GpuOptions,
    ) -> Result<Gpu, RuntimeError> {
        let info = adapter.get_info();
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::PIPELINE_CACHE;
        if !options.no_f16 {
            wanted |= wgpu::Features::SHADER_F16;
        }
        if !options.no_subgroups {
            wanted |= wgpu::Features::SUBGROUP | wgpu::Features::SUBGROUP_BARRIER;
        }
        // Mappable storage buffers are zero-copy on shared memory and a slow path over PCIe.
        let shares_memory =
            matches!(info.device_type, wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::Cpu);
        if shares_memory && !options.no_uma {
            wanted |= wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
        }
        let coop = !options.no_cooperative_matrix && !options.no_f16 && has_f16_products(&adapter);
        let experimental_features = if coop {
            wanted |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
            // SAFETY: wgpu marks cooperative matrices experimental (validation may miss misuse);
            // only the cooperative-matrix matmul uses them, and the conformance suite checks it.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("tessera"),
            required_features: adapter.features() & wanted,
            required_limits: adapter.limits(),
            experimental_features,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor))
            .map_err(|error| RuntimeError::RequestDevice(format!("{}: {error}", info.name)))?;
        let health = DeviceHealth::watch(&device);
        let report = AdapterReport::new(&info, device.features(), &device.limits());
        let mut profile = profile_of(&report, &device.limits());
        if info.device_type == wgpu::DeviceType::Cpu {
            profile.parallelism = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        }
        tracing::info!("tessera device: {}", report.short());
        let disk = options.pipeline_cache_dir.as_deref().and_then(|dir| DiskCache::open(&device, &info, dir));
        Ok(Gpu {
            instance,
            adapter,
            device,
            queue,
            report,
            profile,
            pool: Arc::new(BufferPool::default()),
            pipelines: PipelineCache::new(disk),
            health,
            poll_timeout: options.poll_timeout,
        })
    }

    /// What the compiler may use on this device.
    pub fn profile(&self) -> &DeviceProfile {
        &self.profile
    }

    /// The selected adapter, with the features enabled on the device.
    pub fn report(&self) -> &AdapterReport {
        &self.report
    }

    /// Narrows the profile to what both it and `target` allow, so tests can emulate a smaller
    /// device (`DeviceProfile::portable()`) or compile what an artifact tier compiles; plans are
    /// then checked against the narrowed limits. Subgroup sizes widen to cover the target's range.
    pub fn restrict_to(&mut self, target: &DeviceProfile) {
        let mine = &mut self.profile;
        let (a, b) = (&mut mine.limits, &target.limits);
        *a = Limits {
            max_storage_buffer_binding_size: a
                .max_storage_buffer_binding_size
                .min(b.max_storage_buffer_binding_size),
            max_buffer_size: a.max_buffer_size.min(b.max_buffer_size),
            max_storage_buffers_per_shader_stage: a
                .max_storage_buffers_per_shader_stage
                .min(b.max_storage_buffers_per_shader_stage),
            max_compute_workgroup_storage_size: a
                .max_compute_workgroup_storage_size
                .min(b.max_compute_workgroup_storage_size),
            max_compute_invocations_per_workgroup: a
                .max_compute_invocations_per_workgroup
                .min(b.max_compute_invocations_per_workgroup),
            max_compute_workgroup_size_x: a.max_compute_workgroup_size_x.min(b.max_compute_workgroup_size_x),
            max_compute_workgroups_per_dimension: a
                .max_compute_workgroups_per_dimension
                .min(b.max_compute_workgroups_per_dimension),
        };
        mine.f16 &= target.f16;
        mine.subgroups &= target.subgroups;
        mine.cooperative_matrix &= target.cooperative_matrix && mine.subgroups;
        if !mine.subgroups {
            mine.subgroup_min_size = 0;
            mine.subgroup_max_size = 0;
        } else if target.subgroup_min_size > 0 {
            // Assume no more about subgroup sizes than the target's range: kernels that rely on
            // one fixed size (the subgroup-rows gemv) are then chosen only where the target is.
            mine.subgroup_min_size = mine.subgroup_min_size.min(target.subgroup_min_size);
            mine.subgroup_max_size = mine.subgroup_max_size.max(target.subgroup_max_size);
        }
    }

    /// Bytes of device buffers allocated now and at peak (the pool's free buffers included).
    pub fn memory(&self) -> MemoryStats {
        self.pool.memory()
    }

    /// Buffer reuse counts.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Destroys the pool's free buffers.
    pub fn trim_pool(&self) {
        self.pool.trim()
    }

    /// Starts the peak of [`Gpu::memory`] over from the bytes allocated now (a benchmark's
    /// earlier, dropped work no longer counts).
    pub fn reset_memory_peak(&self) {
        self.pool.reset_peak()
    }

    /// Pipeline cache hits and misses.
    pub fn pipeline_stats(&self) -> CacheStats {
        self.pipelines.stats()
    }

    /// The file the driver's compiled pipelines persist in (Vulkan, unless
    /// `TESSERA_NO_PIPELINE_CACHE`); `None` where the backend has no pipeline cache.
    pub fn pipeline_cache_file(&self) -> Option<&Path> {
        self.pipelines.disk_file()
    }

    /// Writes the driver's pipeline cache to its file now, if it changed (also done when the
    /// `Gpu` is dropped).
    pub fn save_pipeline_cache(&self) {
        // A lost or destroyed device has nothing trustworthy to save.
        if self.health.check().is_ok() {
            self.pipelines.save();
        }
    }

    /// True when the device shares memory with the CPU and mappable storage buffers are enabled.
    pub fn has_unified_memory(&self) -> bool {
        self.report.features.mappable_primary_buffers
    }

    /// Destroys the device now, freeing its memory: every later call on it or on an
    /// [`Executable`](crate::Executable) loaded from it returns [`RuntimeError::DeviceLost`].
    pub fn destroy(&self) {
        self.device.destroy();
        self.health.mark_lost("destroyed by Gpu::destroy");
    }

    /// The wgpu instance this device came from.
    pub fn instance(&self) -> &wgpu::Instance {
        &self.instance
    }

    /// The adapter.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }
}

impl Drop for Gpu {
    /// Persists the pipelines this process compiled, for the next start.
    fn drop(&mut self) {
        self.save_pipeline_cache();
    }
}

/// `vulkan/metal/dx12`.
fn backend_names(backends: wgpu::Backends) -> String {
    let names = wgpu::Backend::ALL.iter().filter(|&&b| backends.contains(b.into())).map(|b| b.to_str());
    names.collect::<Vec<_>>().join("/")
}

/// Lower is better: discrete, integrated, virtual, CPU, other; non-GL before GL.
fn preference(info: &wgpu::AdapterInfo) -> (u8, bool) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    (kind, info.backend == wgpu::Backend::Gl)
}

/// True when the adapter multiplies 16x16x16 f16 cooperative matrices into f32 accumulators,
/// the one configuration the cooperative-matrix matmul uses.
fn has_f16_products(adapter: &wgpu::Adapter) -> bool {
    use wgpu::CooperativeScalarType as T;
    adapter.features().contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16)
        && adapter.cooperative_matrix_properties().iter().any(|p| {
            (p.m_size, p.n_size, p.k_size) == (16, 16, 16) && p.ab_type == T::F16 && p.cr_type == T::F32
        })
}

/// The compiler's view of the device.
fn profile_of(report: &AdapterReport, limits: &wgpu::Limits) -> DeviceProfile {
    DeviceProfile {
        f16: report.features.f16,
        subgroups: report.features.subgroups,
        subgroup_min_size: report.features.subgroup_min_size,
        subgroup_max_size: report.features.subgroup_max_size,
        cooperative_matrix: report.features.cooperative_matrix && report.features.subgroups,
        parallelism: 0,
        limits: Limits {
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroup_size_x: limits.max_compute_workgroup_size_x,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn options(vars: &[(&str, &str)]) -> Result<GpuOptions, RuntimeError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        GpuOptions::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn env_is_parsed_and_bad_values_are_errors() {
        assert_eq!(options(&[]).unwrap(), GpuOptions::default());
        let parsed = options(&[
            ("TESSERA_BACKEND", "Vulkan"),
            ("TESSERA_ADAPTER", "llvm"),
            ("TESSERA_NO_F16", "1"),
            ("TESSERA_POLL_TIMEOUT_S", "2.5"),
        ])
        .unwrap();
        assert_eq!(parsed.backend, Some(wgpu::Backend::Vulkan));
        assert_eq!(parsed.adapter.as_deref(), Some("llvm"));
        assert!(parsed.no_f16 && !parsed.no_subgroups);
        let cache = |vars: &[(&str, &str)]| options(vars).unwrap().pipeline_cache_dir;
        assert_eq!(cache(&[("HOME", "/h")]), Some(PathBuf::from("/h/.cache/tessera/pipeline-cache")));
        assert_eq!(
            cache(&[("HOME", "/h"), ("TESSERA_HOME", "/t")]),
            Some(PathBuf::from("/t/pipeline-cache"))
        );
        assert_eq!(cache(&[("HOME", "/h"), ("TESSERA_NO_PIPELINE_CACHE", "1")]), None);
        assert_eq!(parsed.poll_timeout, Duration::from_millis(2500));
        for (var, value) in
            [("TESSERA_BACKEND", "cuda"), ("TESSERA_NO_F16", "maybe"), ("TESSERA_POLL_TIMEOUT_S", "-1")]
        {
            assert_eq!(
                options(&[(var, value)]),
                Err(RuntimeError::BadEnv { var: var.to_string(), value: value.to_string() })
            );
        }
    }
}
