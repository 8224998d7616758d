//! Runs a [`Plan`]: buffers, pipelines and bind groups are made once at load; each run is one
//! command encoder, one compute pass with every dispatch, copies to staging, one submit, map.
//! Params and states live in [`SharedBuffers`], so several plans can bind the same weights and
//! KV cache.

use crate::chain::Chain;
use crate::device::Gpu;
use crate::error::{DeviceHealth, RuntimeError, scoped};
use crate::legality::{check_plan, host_bytes, padded};
use crate::pipelines::KernelPipeline;
use crate::pool::{BufferPool, PooledBuffer};
use crate::profile::{DispatchInfo, DispatchProfiler, KernelTime, Timer};
use crate::shared::{SharedBuffers, SharedEntry, SharedRequest, write_bytes};
use std::num::NonZeroU64;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tessera_compiler::{BufferRole, IoBinding, Plan};

/// A plan loaded on a device, ready to run. Dropping it returns its own buffers to the pool and
/// lets go of the shared ones (params and states).
#[derive(Debug)]
pub struct Executable {
    pub(crate) device: wgpu::Device,
    queue: wgpu::Queue,
    pub(crate) pool: Arc<BufferPool>,
    health: Arc<DeviceHealth>,
    pub(crate) poll_timeout: Duration,
    /// Device buffers, indexed by `BufferId`.
    pub(crate) buffers: Vec<Slot>,
    /// Dispatches in plan order.
    steps: Vec<Step>,
    pub(crate) inputs: Vec<HostWrite>,
    params: Vec<HostWrite>,
    states: Vec<HostWrite>,
    pub(crate) outputs: Vec<Readback>,
    /// GPU time of the compute pass, where the device has `TIMESTAMP_QUERY`.
    timer: Option<Timer>,
    /// Per-dispatch timestamps, only under `TESSERA_PROFILE` (`None`: runs encode no extra work).
    pub(crate) profiler: Option<DispatchProfiler>,
    /// CPU time the last run spent encoding and submitting its commands.
    encode_time: Duration,
    /// Dispatches per submit (`TESSERA_SUBMIT_CHUNK`; 0: one submit per run).
    submit_chunk: usize,
    /// Runs in flight whose first output feeds the next (see `chain.rs`).
    pub(crate) chain: Option<Chain>,
}

/// Copies recorded around a run's dispatches: `feed` (buffer to buffer, before them) and
/// `keep` (the first output into a chain read-back slot, after them).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RunCopies {
    pub feed: Option<(usize, usize, u64)>,
    pub keep: Option<usize>,
}

/// Dispatches per submit by default. Measured on the H200 (SmolLM2 decode, 218 dispatches): one
/// submit 371-375 tok/s, pieces of 8 / 16 / 32 / 64: 419 / 460 / 459 / 437-443 tok/s; the GPU
/// runs the first pieces while the host still encodes (~3 us per dispatch).
const SUBMIT_CHUNK: usize = 32;

/// A buffer the plan owns (from the pool) or binds from its [`SharedBuffers`].
#[derive(Debug)]
pub(crate) enum Slot {
    Owned(PooledBuffer),
    Shared(Arc<SharedEntry>),
}

impl Slot {
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        match self {
            Slot::Owned(pooled) => &pooled.buffer,
            Slot::Shared(entry) => entry.buffer(),
        }
    }
}

/// One dispatch: its pipeline, its bind group (made at load) and its workgroup counts.
#[derive(Debug)]
struct Step {
    pipeline: Arc<KernelPipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// A buffer the host writes by name.
#[derive(Debug)]
pub(crate) struct HostWrite {
    pub(crate) name: String,
    pub(crate) buffer: usize,
    pub(crate) bytes: u64,
}

/// An output: the device buffer, the mappable staging buffer it is copied to, and its length.
#[derive(Debug)]
pub(crate) struct Readback {
    pub(crate) buffer: usize,
    pub(crate) bytes: u64,
    /// Where the bytes are copied to be mapped; `None` on unified memory, where the output's
    /// own buffer is mapped (no copy).
    pub(crate) staging: Option<PooledBuffer>,
}

impl Gpu {
    /// Checks `plan` against the device's limits and features, then creates its buffers,
    /// pipelines (through the cache) and bind groups. Its params and states are its own (see
    /// [`Gpu::load_shared`] to share them between plans).
    pub fn load(&self, plan: &Plan) -> Result<Executable, RuntimeError> {
        self.load_shared(plan, &SharedBuffers::private())
    }

    /// Like [`Gpu::load`], but every param and state of `plan` binds the buffer of the same name
    /// in `shared`, created on first use (states zeroed) and reused by every later plan, so
    /// plans share weights and the KV cache without copies. A name whose role, byte length or
    /// size differs from the shared buffer's is a [`RuntimeError::SharedMismatch`], and the set is
    /// left unchanged.
    pub fn load_shared(&self, plan: &Plan, shared: &SharedBuffers) -> Result<Executable, RuntimeError> {
        self.health.check()?;
        check_plan(plan, self.profile(), &self.device.limits())?;
        let pipelines = plan
            .kernels
            .iter()
            .map(|kernel| self.pipelines.get_or_build(&self.device, kernel))
            .collect::<Result<Vec<_>, _>>()?;

        // Built up in place, so an error half-way returns what was acquired to the pool.
        let mut exe = Executable {
            device: self.device.clone(),
            queue: self.queue.clone(),
            pool: Arc::clone(&self.pool),
            health: Arc::clone(&self.health),
            poll_timeout: self.poll_timeout,
            buffers: Vec::with_capacity(plan.buffers.len()),
            steps: Vec::with_capacity(plan.dispatches.len()),
            inputs: host_writes(&plan.inputs),
            params: host_writes(&plan.params),
            states: host_writes(&plan.states),
            outputs: Vec::with_capacity(plan.outputs.len()),
            timer: Timer::new(&self.device, &self.queue)?,
            profiler: DispatchProfiler::from_env(&self.device, &self.queue, dispatch_infos(plan))?,
            encode_time: Duration::ZERO,
            submit_chunk: std::env::var("TESSERA_SUBMIT_CHUNK")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(SUBMIT_CHUNK),
            chain: None,
        };

        // Params then states, each bound to the shared buffer of its name.
        let bindings = || {
            let params = plan.params.iter().map(|b| (b, BufferRole::Param));
            params.chain(plan.states.iter().map(|b| (b, BufferRole::State)))
        };
        let requests: Vec<SharedRequest> = bindings()
            .map(|(b, role)| SharedRequest {
                name: &b.name,
                role,
                bytes: host_bytes(b),
                size: plan.buffers[b.buffer.0 as usize].size,
            })
            .collect();
        let mut shared_of: Vec<Option<Arc<SharedEntry>>> = vec![None; plan.buffers.len()];
        let entries = shared.lock().bind(self, &requests)?;
        for ((binding, _), entry) in bindings().zip(entries) {
            shared_of[binding.buffer.0 as usize] = Some(entry);
        }

        for (index, desc) in plan.buffers.iter().enumerate() {
            if let Some(entry) = shared_of[index].take() {
                exe.buffers.push(Slot::Shared(entry));
                continue;
            }
            let read_back = plan.outputs.iter().any(|o| o.buffer.0 as usize == index);
            // COPY_DST everywhere: inputs and params are written, and reused buffers are cleared.
            let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
            if desc.role == BufferRole::Output || read_back {
                usage |= wgpu::BufferUsages::COPY_SRC;
            }
            if read_back && self.has_unified_memory() {
                // Shared memory: the host maps the output itself instead of a staging copy.
                usage |= wgpu::BufferUsages::MAP_READ;
            }
            let buffer = self.pool.acquire(&self.device, desc.size, usage, &desc.label)?;
            exe.buffers.push(Slot::Owned(buffer));
        }
        for output in &plan.outputs {
            let bytes = host_bytes(output);
            let buffer = output.buffer.0 as usize;
            let mappable = matches!(&exe.buffers[buffer], Slot::Owned(b) if b.buffer.usage().contains(wgpu::BufferUsages::MAP_READ));
            let staging = if mappable {
                None
            } else {
                let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
                let label = format!("{} staging", output.name);
                Some(self.pool.acquire(&self.device, padded(bytes).max(4), usage, &label)?)
            };
            exe.outputs.push(Readback { buffer, bytes, staging });
        }
        exe.clear_reused_buffers()?;

        for dispatch in &plan.dispatches {
            let pipeline = Arc::clone(&pipelines[dispatch.kernel]);
            let entries: Vec<wgpu::BindGroupEntry> = dispatch
                .buffers
                .iter()
                .enumerate()
                .map(|(slot, id)| wgpu::BindGroupEntry {
                    binding: slot as u32,
                    // Bound at the plan's size, not the pool's class size, so arrayLength() is exact.
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: exe.buffers[id.0 as usize].buffer(),
                        offset: 0,
                        size: NonZeroU64::new(plan.buffers[id.0 as usize].size),
                    }),
                })
                .collect();
            let label = Some(plan.kernels[dispatch.kernel].name.as_str());
            let bind_group = scoped(&self.device, || {
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label,
                    layout: &pipeline.bind_group_layout,
                    entries: &entries,
                })
            })?;
            exe.steps.push(Step { pipeline, bind_group, workgroups: dispatch.workgroups });
        }
        Ok(exe)
    }
}

/// Name, bindings and bytes of each dispatch, for profile events.
fn dispatch_infos(plan: &Plan) -> Vec<DispatchInfo> {
    plan.dispatches
        .iter()
        .map(|d| DispatchInfo {
            name: plan.kernels[d.kernel].name.clone(),
            bindings: d.buffers.len(),
            bytes: d.buffers.iter().map(|b| plan.buffers[b.0 as usize].size).sum(),
        })
        .collect()
}

fn host_writes(bindings: &[IoBinding]) -> Vec<HostWrite> {
    bindings
        .iter()
        .map(|b| HostWrite { name: b.name.clone(), buffer: b.buffer.0 as usize, bytes: host_bytes(b) })
        .collect()
}

impl Executable {
    /// Writes a weight (little-endian elements of its storage dtype). Weights keep their value
    /// across runs; a shared weight is written once for every plan that binds it.
    pub fn write_param(&mut self, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        let target = self.params.iter().find(|p| p.name == name);
        let target = target.ok_or_else(|| RuntimeError::UnknownBinding(name.to_string()))?;
        write(&self.device, &self.queue, self.buffers[target.buffer].buffer(), target, bytes)
    }

    /// Overwrites a state (the KV cache) with `bytes` (little-endian elements of its storage
    /// dtype), e.g. zeroes to start a new sequence. Runs never reset states.
    pub fn write_state(&mut self, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        let target = self.states.iter().find(|p| p.name == name);
        let target = target.ok_or_else(|| RuntimeError::UnknownBinding(name.to_string()))?;
        write(&self.device, &self.queue, self.buffers[target.buffer].buffer(), target, bytes)
    }

    /// The current bytes of a state, copied through a staging buffer (waits for the GPU).
    pub fn read_state(&self, name: &str) -> Result<Vec<u8>, RuntimeError> {
        let target = self.states.iter().find(|p| p.name == name);
        let target = target.ok_or_else(|| RuntimeError::UnknownBinding(name.to_string()))?;
        let buffer = self.buffers[target.buffer].buffer();
        read_buffer(
            &self.device,
            &self.queue,
            &self.pool,
            &self.health,
            self.poll_timeout,
            buffer,
            target.bytes,
        )
    }

    /// Writes an input (little-endian elements of its storage dtype) for the next run.
    pub fn write_input(&mut self, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        let target = self.inputs.iter().find(|p| p.name == name);
        let target = target.ok_or_else(|| RuntimeError::UnknownBinding(name.to_string()))?;
        write(&self.device, &self.queue, self.buffers[target.buffer].buffer(), target, bytes)
    }

    /// Runs every dispatch and returns each output's bytes, in the plan's output order.
    pub fn run(&mut self) -> Result<Vec<Vec<u8>>, RuntimeError> {
        self.check_no_chain()?;
        let submission = self.submit(true, RunCopies::default())?;
        let outputs = self.read_back(submission)?;
        if let Some(profiler) = &mut self.profiler {
            profiler.collect(&self.device, self.poll_timeout);
        }
        Ok(outputs)
    }

    /// Runs every dispatch and waits for the GPU, reading nothing back (for benchmarks).
    pub fn run_without_readback(&mut self) -> Result<(), RuntimeError> {
        self.check_no_chain()?;
        let submission = self.submit(false, RunCopies::default())?;
        self.wait(submission)?;
        if let Some(profiler) = &mut self.profiler {
            profiler.collect(&self.device, self.poll_timeout);
        }
        Ok(())
    }

    /// GPU time per kernel name over this plan's runs so far, longest first, and the number of
    /// runs; `None` unless `TESSERA_PROFILE` was set at load on a device with timestamps.
    pub fn kernel_times(&self) -> Option<(Vec<KernelTime>, usize)> {
        self.profiler.as_ref().map(DispatchProfiler::kernel_times)
    }

    /// GPU time of the last run's compute pass (every dispatch, not the read-back), from
    /// timestamp queries; `None` before the first run, on devices without `TIMESTAMP_QUERY`, or
    /// if reading the timestamps failed. Costs a small map and a poll, only when called.
    pub fn last_gpu_time(&self) -> Option<Duration> {
        self.timer.as_ref().and_then(|timer| timer.read(&self.device, self.poll_timeout))
    }

    /// Dispatches per run.
    pub fn dispatch_count(&self) -> usize {
        self.steps.len()
    }

    /// Bytes of device buffers this plan binds (size classes, staging buffers and shared
    /// buffers included).
    pub fn buffer_bytes(&self) -> u64 {
        let staging = self.outputs.iter().filter_map(|o| o.staging.as_ref()).map(|s| &s.buffer);
        self.buffers.iter().map(Slot::buffer).chain(staging).map(wgpu::Buffer::size).sum()
    }

    /// Outputs read back through a staging copy (none on unified memory).
    pub fn staged_outputs(&self) -> usize {
        self.outputs.iter().filter(|o| o.staging.is_some()).count()
    }

    /// Bytes of the shared buffers (params and states) among [`Executable::buffer_bytes`].
    pub fn shared_bytes(&self) -> u64 {
        let shared = self.buffers.iter().filter(|b| matches!(b, Slot::Shared(_)));
        shared.map(|b| b.buffer().size()).sum()
    }

    /// Compute passes with every dispatch in plan order (submitted in pieces of
    /// `submit_chunk`), output copies in the last one.
    pub(crate) fn submit(
        &mut self,
        copy_outputs: bool,
        copies: RunCopies,
    ) -> Result<wgpu::SubmissionIndex, RuntimeError> {
        self.health.check()?;
        let started = Instant::now();
        let submitted = scoped(&self.device, || {
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tessera run") });
            if let Some((from, to, bytes)) = copies.feed {
                encoder.copy_buffer_to_buffer(
                    self.buffers[from].buffer(),
                    0,
                    self.buffers[to].buffer(),
                    0,
                    bytes,
                );
            }
            // Whether the dispatches ran in one pass the whole-run timer could time.
            let one_pass = match &mut self.profiler {
                None => {
                    // With `submit_chunk`, the first dispatches go to the GPU while the rest are
                    // still being encoded; the timer spans the first to the last pass.
                    let n = self.steps.len();
                    let chunk = if self.submit_chunk == 0 { n.max(1) } else { self.submit_chunk };
                    let mut start = 0;
                    loop {
                        let end = (start + chunk).min(n);
                        let timestamp_writes = self.timer.as_ref().map(|timer| {
                            let mut writes = timer.pass_writes();
                            if start > 0 {
                                writes.beginning_of_pass_write_index = None;
                            }
                            if end < n {
                                writes.end_of_pass_write_index = None;
                            }
                            writes
                        });
                        let timestamp_writes = timestamp_writes.filter(|w| {
                            w.beginning_of_pass_write_index.is_some() || w.end_of_pass_write_index.is_some()
                        });
                        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("tessera dispatches"),
                            timestamp_writes,
                        });
                        for step in &self.steps[start..end] {
                            let [x, y, z] = step.workgroups;
                            pass.set_pipeline(&step.pipeline.pipeline);
                            pass.set_bind_group(0, &step.bind_group, &[]);
                            pass.dispatch_workgroups(x, y, z);
                        }
                        drop(pass);
                        if end >= n {
                            break;
                        }
                        let done = std::mem::replace(
                            &mut encoder,
                            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                                label: Some("tessera run"),
                            }),
                        );
                        self.queue.submit([done.finish()]);
                        start = end;
                    }
                    true
                }
                Some(profiler) => {
                    let steps = &self.steps;
                    let record = |pass: &mut wgpu::ComputePass<'_>, i: usize| {
                        let [x, y, z] = steps[i].workgroups;
                        pass.set_pipeline(&steps[i].pipeline.pipeline);
                        pass.set_bind_group(0, &steps[i].bind_group, &[]);
                        pass.dispatch_workgroups(x, y, z);
                    };
                    let one_pass = !profiler.pass_per_dispatch();
                    let timestamp_writes = self.timer.as_ref().filter(|_| one_pass).map(Timer::pass_writes);
                    profiler.encode(&mut encoder, timestamp_writes, &record);
                    one_pass
                }
            };
            if let Some(timer) = &mut self.timer {
                timer.finish_run(&mut encoder, one_pass);
            }
            if let (Some(slot), Some(chain), Some(first)) = (copies.keep, &self.chain, self.outputs.first()) {
                let source = self.buffers[first.buffer].buffer();
                encoder.copy_buffer_to_buffer(source, 0, chain.slot(slot), 0, padded(first.bytes));
            }
            if copy_outputs {
                for output in self.outputs.iter().filter(|o| o.bytes > 0) {
                    if let Some(staging) = &output.staging {
                        let source = self.buffers[output.buffer].buffer();
                        encoder.copy_buffer_to_buffer(source, 0, &staging.buffer, 0, padded(output.bytes));
                    }
                }
            }
            self.queue.submit([encoder.finish()])
        });
        self.encode_time = started.elapsed();
        submitted
    }

    /// Submits a run in pieces of `dispatches` (0: one submit), so the GPU starts on the first
    /// piece while the host encodes the rest.
    pub fn set_submit_chunk(&mut self, dispatches: usize) {
        self.submit_chunk = dispatches;
    }

    /// CPU time the last run spent recording its dispatches and submitting them (bind groups and
    /// pipelines are made at load, so this is the per-step overhead on the host).
    pub fn last_encode_time(&self) -> Duration {
        self.encode_time
    }

    /// Blocks until `submission` is done or the poll timeout passes.
    pub(crate) fn wait(&self, submission: wgpu::SubmissionIndex) -> Result<(), RuntimeError> {
        wait_for(&self.device, &self.health, self.poll_timeout, submission)
    }

    /// Zeroes owned buffers the pool handed back used, so every plan starts from zeroed memory as
    /// it would with fresh buffers (shared buffers are zeroed when created, never after).
    fn clear_reused_buffers(&self) -> Result<(), RuntimeError> {
        let reused: Vec<&PooledBuffer> = self
            .buffers
            .iter()
            .filter_map(|b| match b {
                Slot::Owned(pooled) if pooled.reused() => Some(pooled),
                _ => None,
            })
            .collect();
        if reused.is_empty() {
            return Ok(());
        }
        scoped(&self.device, || {
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tessera clear") });
            for buffer in reused {
                encoder.clear_buffer(&buffer.buffer, 0, None);
            }
            self.queue.submit([encoder.finish()]);
        })
    }
}

/// Checks the length, then queues the write (padded to 4 bytes for odd f16 counts).
fn write(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    buffer: &wgpu::Buffer,
    target: &HostWrite,
    bytes: &[u8],
) -> Result<(), RuntimeError> {
    if bytes.len() as u64 != target.bytes {
        return Err(RuntimeError::SizeMismatch {
            name: target.name.clone(),
            expected: target.bytes,
            got: bytes.len() as u64,
        });
    }
    write_bytes(device, queue, buffer, bytes)
}

/// Blocks until `submission` is done or `timeout` passes.
pub(crate) fn wait_for(
    device: &wgpu::Device,
    health: &DeviceHealth,
    timeout: Duration,
    submission: wgpu::SubmissionIndex,
) -> Result<(), RuntimeError> {
    let poll = wgpu::PollType::Wait { submission_index: Some(submission), timeout: Some(timeout) };
    let waited = device.poll(poll);
    health.check()?;
    match waited {
        Ok(_) => Ok(()),
        Err(wgpu::PollError::Timeout) => Err(RuntimeError::PollTimeout { seconds: timeout.as_secs_f64() }),
        Err(other) => Err(RuntimeError::Validation(format!("poll failed: {other}"))),
    }
}

/// The first `bytes` bytes of `buffer` (which has `COPY_SRC`): copy to a pooled staging buffer,
/// submit, map, wait, copy out, unmap.
pub(crate) fn read_buffer(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    pool: &BufferPool,
    health: &DeviceHealth,
    timeout: Duration,
    buffer: &wgpu::Buffer,
    bytes: u64,
) -> Result<Vec<u8>, RuntimeError> {
    health.check()?;
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
    let staging = pool.acquire(device, padded(bytes), usage, "tessera read staging")?;
    let result = (|| {
        let submission = scoped(device, || {
            let mut encoder = device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tessera read") });
            encoder.copy_buffer_to_buffer(buffer, 0, &staging.buffer, 0, padded(bytes));
            queue.submit([encoder.finish()])
        })?;
        let (sender, receiver) = mpsc::channel();
        let slice = staging.buffer.slice(0..padded(bytes));
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        let mapped = wait_for(device, health, timeout, submission).and_then(|()| {
            match receiver.recv_timeout(timeout) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(RuntimeError::Map(error.to_string())),
                Err(_) => return Err(RuntimeError::Map("the read-back buffer was not mapped".to_string())),
            }
            let view = slice.get_mapped_range().map_err(|error| RuntimeError::Map(error.to_string()))?;
            Ok(view[..bytes as usize].to_vec())
        });
        if let Err(error) = scoped(device, || staging.buffer.unmap()) {
            tracing::warn!("unmapping a read-back buffer: {error}");
        }
        mapped
    })();
    pool.release(staging);
    result
}

impl Drop for Executable {
    fn drop(&mut self) {
        let staging = self.outputs.drain(..).filter_map(|o| o.staging);
        let owned = self.buffers.drain(..).filter_map(|slot| match slot {
            Slot::Owned(pooled) => Some(pooled),
            // The last holder of a shared buffer frees it.
            Slot::Shared(_) => None,
        });
        for buffer in owned.collect::<Vec<_>>().into_iter().chain(staging) {
            self.pool.release(buffer);
        }
    }
}
