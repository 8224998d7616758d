//! `Device`: one GPU plus the cache of compiled plans that lazy arrays evaluate through.

use crate::element;
use crate::error::{Result, invalid};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use tessera_compiler::{CompileOptions, Plan};
use tessera_ir::{DType, Graph};
use tessera_runtime::{Executable, Gpu, MemoryStats};

/// How many compiled graphs a device keeps before evicting the least recently used.
const PLAN_CACHE_CAPACITY: usize = 128;

/// A GPU that arrays live on. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct Device {
    inner: Arc<DeviceInner>,
}

struct DeviceInner {
    gpu: Gpu,
    options: CompileOptions,
    plans: Mutex<PlanCache>,
}

/// Compiled plans keyed by the graph's text form (structure, shapes, dtypes and constants).
#[derive(Default)]
struct PlanCache {
    entries: HashMap<String, Arc<Compiled>>,
    order: VecDeque<String>,
    compiles: usize,
}

/// A plan loaded on the device, ready to run.
pub(crate) struct Compiled {
    pub(crate) plan: Plan,
    pub(crate) exe: Mutex<Executable>,
}

/// A value handed to or returned from a compiled graph: logical little-endian bytes.
pub(crate) struct HostValue {
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) dtype: DType,
}

impl Device {
    /// The default device: the best adapter, shared by every caller in the process.
    /// `TESSERA_BACKEND` / `TESSERA_ADAPTER` choose another one.
    #[allow(clippy::should_implement_trait)]
    pub fn default() -> Result<Device> {
        static DEFAULT: OnceLock<Device> = OnceLock::new();
        if let Some(d) = DEFAULT.get() {
            return Ok(d.clone());
        }
        let dev = Device::new()?;
        Ok(DEFAULT.get_or_init(|| dev).clone())
    }

    /// A new device from the environment (not shared with [`Device::default`]).
    pub fn new() -> Result<Device> {
        Device::with_options(CompileOptions::default())
    }

    /// A new device whose graphs compile with `options` (passes switched off, for bisecting).
    pub fn with_options(options: CompileOptions) -> Result<Device> {
        let gpu = Gpu::from_env()?;
        Ok(Device { inner: Arc::new(DeviceInner { gpu, options, plans: Mutex::default() }) })
    }

    /// The runtime device underneath (adapter report, profile, memory).
    pub fn gpu(&self) -> &Gpu {
        &self.inner.gpu
    }

    /// Current and peak bytes of device buffers.
    pub fn memory(&self) -> MemoryStats {
        self.inner.gpu.memory()
    }

    /// How many distinct graphs this device has compiled (cache misses).
    pub fn compile_count(&self) -> usize {
        self.inner.plans.lock().map(|p| p.compiles).unwrap_or(0)
    }

    /// True when both handles refer to the same device.
    pub fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Compiles `graph` (or takes it from the cache) and loads it on the GPU.
    pub(crate) fn compiled(&self, graph: &Graph) -> Result<Arc<Compiled>> {
        let key = graph.to_string();
        let mut cache = self.inner.plans.lock().map_err(|_| invalid("eval", "plan cache poisoned"))?;
        if let Some(c) = cache.entries.get(&key).cloned() {
            cache.order.retain(|k| k != &key);
            cache.order.push_back(key);
            return Ok(c);
        }
        let plan = tessera_compiler::compile(graph, self.inner.gpu.profile(), &self.inner.options)?;
        let exe = self.inner.gpu.load(&plan)?;
        let compiled = Arc::new(Compiled { plan, exe: Mutex::new(exe) });
        cache.compiles += 1;
        cache.entries.insert(key.clone(), compiled.clone());
        cache.order.push_back(key);
        while cache.order.len() > PLAN_CACHE_CAPACITY {
            if let Some(old) = cache.order.pop_front() {
                cache.entries.remove(&old);
            }
        }
        Ok(compiled)
    }

    /// Runs a compiled graph: writes `inputs` (by graph input name), returns every output.
    pub(crate) fn run(&self, graph: &Graph, inputs: &[(String, HostValue)]) -> Result<Vec<HostValue>> {
        let compiled = self.compiled(graph)?;
        let mut exe = compiled.exe.lock().map_err(|_| invalid("eval", "executable poisoned"))?;
        for (name, value) in inputs {
            let binding = compiled
                .plan
                .input(name)
                .ok_or_else(|| invalid("eval", format!("plan has no input `{name}`")))?;
            let bytes = element::convert(&value.bytes, value.dtype, binding.storage);
            exe.write_input(name, &bytes)?;
        }
        let outputs = exe.run()?;
        Ok(outputs
            .into_iter()
            .zip(&compiled.plan.outputs)
            .map(|(bytes, b)| {
                // Buffers are padded to 4 bytes; keep exactly the elements.
                let len = b.shape.iter().product::<usize>() * b.storage.size_bytes();
                let bytes = &bytes[..len.min(bytes.len())];
                HostValue { bytes: Arc::new(element::convert(bytes, b.storage, b.dtype)), dtype: b.dtype }
            })
            .collect())
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.inner.gpu.report().name)
    }
}
