//! Device buffers shared by name between plans: weights (params) uploaded once, and the KV cache
//! (states) that a prefill plan writes and a decode plan reads, without a copy per plan.

use crate::device::Gpu;
use crate::error::{RuntimeError, scoped};
use crate::executor::read_buffer;
use crate::legality::padded;
use crate::pool::{BufferPool, PooledBuffer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tessera_compiler::BufferRole;

/// Usage of every shared buffer: bound as storage, written by the host, read back by tests and
/// by outputs that return a state.
pub(crate) const SHARED_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_DST).union(wgpu::BufferUsages::COPY_SRC);

/// Named device buffers that plans loaded with [`Gpu::load_shared`] bind their params and states
/// to: the first plan (or [`Gpu::write_shared`]) to name a value creates its buffer, later ones
/// reuse it. Cheap to clone (clones share the same set); `Send + Sync`.
///
/// A buffer lives while the set or any executable bound to it holds it; then it is destroyed
/// and its memory returned to the device. [`Gpu::memory`] counts each buffer once, however many
/// plans bind it.
#[derive(Clone, Debug, Default)]
pub struct SharedBuffers {
    inner: Arc<Mutex<SharedInner>>,
}

#[derive(Debug, Default)]
pub(crate) struct SharedInner {
    entries: HashMap<String, Arc<SharedEntry>>,
    /// The pool (so the device) the buffers live on, set at first use.
    pool: Option<Arc<BufferPool>>,
    /// A plan's private set ([`Gpu::load`]): size classes, back to the pool when dropped.
    pooled: bool,
}

/// One shared buffer. Dropped with its last holder.
#[derive(Debug)]
pub(crate) struct SharedEntry {
    role: BufferRole,
    /// Host bytes of the value (elements times storage size).
    pub(crate) bytes: u64,
    /// `Some` until dropped.
    buffer: Option<PooledBuffer>,
    pool: Arc<BufferPool>,
    pooled: bool,
}

impl SharedEntry {
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer.as_ref().expect("a shared buffer is only taken when dropped").buffer
    }
}

impl Drop for SharedEntry {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            if self.pooled { self.pool.release(buffer) } else { self.pool.free(buffer) }
        }
    }
}

/// What a plan needs from the set: one param or state binding.
pub(crate) struct SharedRequest<'a> {
    pub(crate) name: &'a str,
    pub(crate) role: BufferRole,
    /// Host bytes of the binding.
    pub(crate) bytes: u64,
    /// Bytes the plan binds (its buffer's size).
    pub(crate) size: u64,
}

impl SharedBuffers {
    /// An empty set.
    pub fn new() -> SharedBuffers {
        SharedBuffers::default()
    }

    /// The private set of a plan loaded with [`Gpu::load`]: pooled like its other buffers.
    pub(crate) fn private() -> SharedBuffers {
        let inner = SharedInner { pooled: true, ..SharedInner::default() };
        SharedBuffers { inner: Arc::new(Mutex::new(inner)) }
    }

    /// True when a buffer named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.lock().entries.contains_key(name)
    }

    /// Names of the buffers, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().entries.keys().cloned().collect();
        names.sort();
        names
    }

    /// Whether `name` holds a param ([`BufferRole::Param`]) or a state ([`BufferRole::State`]).
    pub fn role(&self, name: &str) -> Option<BufferRole> {
        self.lock().entries.get(name).map(|e| e.role)
    }

    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when the set holds no buffer.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// Bytes of device memory the buffers take (each once).
    pub fn bytes(&self) -> u64 {
        self.lock().entries.values().map(|e| e.buffer().size()).sum()
    }

    /// Forgets `name`; its buffer is freed once no executable binds it. True when it existed.
    pub fn remove(&self, name: &str) -> bool {
        // Drop the entry after the lock is released (the drop takes the pool's lock).
        let removed = self.lock().entries.remove(name);
        removed.is_some()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SharedInner> {
        // Every update is a single insert, so a poisoned map is still consistent.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SharedInner {
    /// The buffers for `requests`, created where missing (states and reused buffers zeroed).
    /// Checks every request before creating anything, so a mismatch leaves the set unchanged.
    pub(crate) fn bind(
        &mut self,
        gpu: &Gpu,
        requests: &[SharedRequest],
    ) -> Result<Vec<Arc<SharedEntry>>, RuntimeError> {
        self.check_device(gpu)?;
        for request in requests {
            if let Some(entry) = self.entries.get(request.name) {
                check_match(request, entry)?;
            }
        }
        let mut bound = Vec::with_capacity(requests.len());
        let mut created = Vec::new();
        for request in requests {
            let entry = match self.entries.get(request.name) {
                // Two bindings of one plan with the same name: checked against the first one.
                Some(entry) => {
                    check_match(request, entry)?;
                    Arc::clone(entry)
                }
                None => {
                    let entry = self.create(gpu, request.name, request.role, request.bytes, request.size)?;
                    created.push(Arc::clone(&entry));
                    self.entries.insert(request.name.to_string(), Arc::clone(&entry));
                    entry
                }
            };
            bound.push(entry);
        }
        clear_reused(gpu, &created)?;
        Ok(bound)
    }

    fn check_device(&mut self, gpu: &Gpu) -> Result<(), RuntimeError> {
        match &self.pool {
            Some(pool) if !Arc::ptr_eq(pool, &gpu.pool) => {
                Err(RuntimeError::Validation("these SharedBuffers hold buffers of another Gpu".to_string()))
            }
            Some(_) => Ok(()),
            None => {
                self.pool = Some(Arc::clone(&gpu.pool));
                Ok(())
            }
        }
    }

    fn create(
        &self,
        gpu: &Gpu,
        name: &str,
        role: BufferRole,
        bytes: u64,
        size: u64,
    ) -> Result<Arc<SharedEntry>, RuntimeError> {
        let buffer = if self.pooled {
            gpu.pool.acquire(&gpu.device, size, SHARED_USAGE, name)?
        } else {
            gpu.pool.acquire_exact(&gpu.device, size, SHARED_USAGE, name)?
        };
        let pool = Arc::clone(&gpu.pool);
        Ok(Arc::new(SharedEntry { role, bytes, buffer: Some(buffer), pool, pooled: self.pooled }))
    }
}

impl SharedInner {
    /// A new param buffer written through a mapping at creation (unified-memory adapters).
    fn create_mapped(&mut self, gpu: &Gpu, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        let buffer = gpu.pool.create_mapped(&gpu.device, bytes, SHARED_USAGE, name)?;
        let pool = Arc::clone(&gpu.pool);
        let entry = SharedEntry {
            role: BufferRole::Param,
            bytes: bytes.len() as u64,
            buffer: Some(buffer),
            pool,
            pooled: false,
        };
        self.entries.insert(name.to_string(), Arc::new(entry));
        Ok(())
    }
}

fn check_match(request: &SharedRequest, entry: &SharedEntry) -> Result<(), RuntimeError> {
    let mismatch = |reason: String| RuntimeError::SharedMismatch { name: request.name.to_string(), reason };
    if request.role != entry.role {
        return Err(mismatch(format!(
            "the plan binds it as a {:?}, the shared buffer holds a {:?}",
            request.role, entry.role
        )));
    }
    if request.bytes != entry.bytes {
        return Err(mismatch(format!(
            "the plan's value has {} bytes, the shared one {}",
            request.bytes, entry.bytes
        )));
    }
    let capacity = entry.buffer().size();
    if request.size > capacity {
        return Err(mismatch(format!(
            "the plan binds {} bytes, the shared buffer has {capacity}",
            request.size
        )));
    }
    Ok(())
}

/// Zeroes new buffers the pool handed back used (fresh ones are zeroed by wgpu).
fn clear_reused(gpu: &Gpu, created: &[Arc<SharedEntry>]) -> Result<(), RuntimeError> {
    let reused: Vec<&wgpu::Buffer> = created
        .iter()
        .filter(|e| e.buffer.as_ref().is_some_and(PooledBuffer::reused))
        .map(|e| e.buffer())
        .collect();
    if reused.is_empty() {
        return Ok(());
    }
    scoped(&gpu.device, || {
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tessera clear shared") });
        for buffer in reused {
            encoder.clear_buffer(buffer, 0, None);
        }
        gpu.queue.submit([encoder.finish()]);
    })
}

impl Gpu {
    /// Writes `bytes` into the shared buffer `name`, creating it as a param of that many bytes
    /// when absent, so a model can upload its weights before loading any plan. An existing
    /// buffer (param or state) must hold exactly `bytes.len()` bytes.
    pub fn write_shared(&self, shared: &SharedBuffers, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        self.health.check()?;
        let len = bytes.len() as u64;
        let size = padded(len).max(4);
        let limits = &self.profile().limits;
        for (what, limit) in [
            ("max_buffer_size", limits.max_buffer_size),
            ("max_storage_buffer_binding_size", limits.max_storage_buffer_binding_size),
        ] {
            if size > limit {
                return Err(RuntimeError::LimitExceeded {
                    what: format!("size of shared buffer {name} against {what}"),
                    value: size,
                    limit,
                });
            }
        }
        let request = SharedRequest { name, role: BufferRole::Param, bytes: len, size };
        let entry = {
            let mut inner = shared.lock();
            inner.check_device(self)?;
            match inner.entries.get(name) {
                // Any role: only the length has to agree.
                Some(entry) => {
                    check_match(&SharedRequest { role: entry.role, ..request }, entry)?;
                    Arc::clone(entry)
                }
                // Unified memory: the bytes go from the host straight into the device's buffer.
                None if self.has_unified_memory() => return inner.create_mapped(self, name, bytes),
                None => inner.bind(self, &[request])?.remove(0),
            }
        };
        write_bytes(&self.device, &self.queue, entry.buffer(), bytes)?;
        // Host to wgpu's staging memory, then staging to the buffer on the GPU.
        self.pool.record_copy(2 * len);
        Ok(())
    }

    /// The bytes of the shared buffer `name` (a copy through a staging buffer; waits for the GPU).
    pub fn read_shared(&self, shared: &SharedBuffers, name: &str) -> Result<Vec<u8>, RuntimeError> {
        self.health.check()?;
        let entry = {
            let mut inner = shared.lock();
            inner.check_device(self)?;
            let entry =
                inner.entries.get(name).ok_or_else(|| RuntimeError::UnknownBinding(name.to_string()))?;
            Arc::clone(entry)
        };
        read_buffer(
            &self.device,
            &self.queue,
            &self.pool,
            &self.health,
            self.poll_timeout,
            entry.buffer(),
            entry.bytes,
        )
    }
}

/// Queues a write of `bytes` at offset 0, padded to 4 bytes for odd f16 counts.
pub(crate) fn write_bytes(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    buffer: &wgpu::Buffer,
    bytes: &[u8],
) -> Result<(), RuntimeError> {
    if bytes.is_empty() {
        return Ok(());
    }
    scoped(device, || {
        if bytes.len().is_multiple_of(4) {
            queue.write_buffer(buffer, 0, bytes);
        } else {
            let mut aligned = bytes.to_vec();
            aligned.resize(padded(bytes.len() as u64) as usize, 0);
            queue.write_buffer(buffer, 0, &aligned);
        }
    })
}
