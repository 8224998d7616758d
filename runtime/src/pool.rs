//! Device buffers by size class and usage, reused across plan loads, with memory accounting.

use crate::error::{RuntimeError, scoped};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// Bytes of live device buffers, the pool's free buffers included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    /// Bytes allocated now.
    pub current_bytes: u64,
    /// Most bytes allocated at once since the device was created.
    pub peak_bytes: u64,
    /// Bytes copied to upload shared weights: twice their size through a staging buffer (host to
    /// staging, staging to device), once through a buffer mapped at creation (unified memory).
    pub copied_bytes: u64,
}

/// How often the pool could hand back a released buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Acquires served by a released buffer.
    pub reused: u64,
    /// Acquires that allocated a new buffer.
    pub allocated: u64,
    /// Released buffers waiting for reuse.
    pub free_buffers: usize,
    /// Their bytes.
    pub free_bytes: u64,
}

/// Rounds `size` up to its class: a power of two below 1 MiB (at least 256 bytes), a multiple of
/// 1/8 of the next power of two above, so reuse wastes at most 12.5% for large buffers.
pub fn size_class(size: u64) -> u64 {
    const SMALL: u64 = 1 << 20;
    let pow2 = size.max(256).next_power_of_two();
    if pow2 <= SMALL {
        return pow2;
    }
    let step = pow2 / 8;
    size.div_ceil(step) * step
}

/// A device buffer from the pool; give it back with [`BufferPool::release`].
#[derive(Debug)]
pub struct PooledBuffer {
    /// The buffer (its size is the class size, at least what was asked).
    pub buffer: wgpu::Buffer,
    class: u64,
    usage: wgpu::BufferUsages,
    reused: bool,
}

impl PooledBuffer {
    /// True when the buffer held data before (a fresh buffer is zeroed by wgpu).
    pub fn reused(&self) -> bool {
        self.reused
    }
}

/// Free buffers keyed by (size class, usage), plus byte counts.
#[derive(Debug, Default)]
pub struct BufferPool {
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    free: HashMap<(u64, wgpu::BufferUsages), Vec<wgpu::Buffer>>,
    memory: MemoryStats,
    stats: PoolStats,
}

impl BufferPool {
    /// A buffer of at least `size` bytes with exactly `usage`: a released one of the same class
    /// when there is one, else a new one (never larger than `max_buffer_size`).
    pub fn acquire(
        &self,
        device: &wgpu::Device,
        size: u64,
        usage: wgpu::BufferUsages,
        label: &str,
    ) -> Result<PooledBuffer, RuntimeError> {
        let max = device.limits().max_buffer_size;
        // Rounding must not push a legal buffer over the limit; keep the class a multiple of 4.
        let class = size_class(size).min(max / 4 * 4).max(size);
        self.acquire_class(device, class, usage, label)
    }

    /// A buffer of exactly `size` bytes rounded up to 4 (long-lived buffers such as shared
    /// weights, where a size class could waste up to 12.5%): a released one of that exact size
    /// when there is one, else a new one.
    pub fn acquire_exact(
        &self,
        device: &wgpu::Device,
        size: u64,
        usage: wgpu::BufferUsages,
        label: &str,
    ) -> Result<PooledBuffer, RuntimeError> {
        self.acquire_class(device, size.div_ceil(4).max(1) * 4, usage, label)
    }

    fn acquire_class(
        &self,
        device: &wgpu::Device,
        class: u64,
        usage: wgpu::BufferUsages,
        label: &str,
    ) -> Result<PooledBuffer, RuntimeError> {
        let mut state = self.lock();
        if let Some(buffer) = state.free.get_mut(&(class, usage)).and_then(Vec::pop) {
            state.stats.reused += 1;
            state.stats.free_buffers -= 1;
            state.stats.free_bytes -= class;
            return Ok(PooledBuffer { buffer, class, usage, reused: true });
        }
        drop(state);
        let descriptor =
            wgpu::BufferDescriptor { label: Some(label), size: class, usage, mapped_at_creation: false };
        let buffer = scoped(device, || device.create_buffer(&descriptor))?;
        let mut state = self.lock();
        state.stats.allocated += 1;
        state.memory.current_bytes += class;
        state.memory.peak_bytes = state.memory.peak_bytes.max(state.memory.current_bytes);
        Ok(PooledBuffer { buffer, class, usage, reused: false })
    }

    /// A new buffer holding `bytes` (zero-padded to 4), written through a mapping at creation:
    /// on unified-memory adapters the host writes the device's memory directly, with no
    /// staging buffer and no GPU copy. Needs `MAPPABLE_PRIMARY_BUFFERS` (adds `MAP_WRITE`).
    pub fn create_mapped(
        &self,
        device: &wgpu::Device,
        bytes: &[u8],
        usage: wgpu::BufferUsages,
        label: &str,
    ) -> Result<PooledBuffer, RuntimeError> {
        let class = (bytes.len() as u64).div_ceil(4).max(1) * 4;
        let usage = usage | wgpu::BufferUsages::MAP_WRITE;
        let descriptor =
            wgpu::BufferDescriptor { label: Some(label), size: class, usage, mapped_at_creation: true };
        let buffer = scoped(device, || device.create_buffer(&descriptor))?;
        {
            let mut view = buffer.get_mapped_range_mut(..).map_err(|e| RuntimeError::Map(e.to_string()))?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        buffer.unmap();
        let mut state = self.lock();
        state.stats.allocated += 1;
        state.memory.current_bytes += class;
        state.memory.peak_bytes = state.memory.peak_bytes.max(state.memory.current_bytes);
        state.memory.copied_bytes += bytes.len() as u64;
        Ok(PooledBuffer { buffer, class, usage, reused: false })
    }

    /// Counts `bytes` copied by an upload.
    pub fn record_copy(&self, bytes: u64) {
        self.lock().memory.copied_bytes += bytes;
    }

    /// Keeps `buffer` for the next acquire of its class and usage.
    pub fn release(&self, buffer: PooledBuffer) {
        let mut state = self.lock();
        state.stats.free_buffers += 1;
        state.stats.free_bytes += buffer.class;
        state.free.entry((buffer.class, buffer.usage)).or_default().push(buffer.buffer);
    }

    /// Destroys `buffer` now instead of keeping it for reuse.
    pub fn free(&self, buffer: PooledBuffer) {
        buffer.buffer.destroy();
        self.lock().memory.current_bytes -= buffer.class;
    }

    /// Destroys every free buffer, returning its memory to the device.
    pub fn trim(&self) {
        let mut state = self.lock();
        for buffer in state.free.drain().flat_map(|(_, buffers)| buffers) {
            buffer.destroy();
        }
        state.memory.current_bytes -= state.stats.free_bytes;
        state.stats.free_buffers = 0;
        state.stats.free_bytes = 0;
    }

    /// Starts the peak over from what is allocated now.
    pub fn reset_peak(&self) {
        let mut state = self.lock();
        state.memory.peak_bytes = state.memory.current_bytes;
    }

    /// Bytes allocated now and at peak.
    pub fn memory(&self) -> MemoryStats {
        self.lock().memory
    }

    /// Reuse counts and free buffers.
    pub fn stats(&self) -> PoolStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // Counters stay consistent even if a holder panicked: every update is a few additions.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_are_powers_of_two_then_eighths() {
        assert_eq!(size_class(4), 256);
        assert_eq!(size_class(4000), 4096);
        assert_eq!(size_class(1 << 20), 1 << 20);
        assert_eq!(size_class((1 << 20) + 4), (1 << 20) + (1 << 18));
        assert_eq!(size_class(100 << 20), 112 << 20);
        assert_eq!(size_class(128 << 20), 128 << 20);
    }
}
