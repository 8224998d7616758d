//! Runs a [`Plan`]: buffers, pipelines and bind groups are made once at load; each run is one
//! command encoder, one compute pass with every dispatch, copies to staging, one submit, map.

use crate::device::Gpu;
use crate::error::{DeviceHealth, RuntimeError, scoped};
use crate::legality::{check_plan, host_bytes, padded};
use crate::pipelines::KernelPipeline;
use crate::pool::{BufferPool, PooledBuffer};
use std::num::NonZeroU64;
use std::sync::{Arc, mpsc};
use std::time::Duration;
use tessera_compiler::{BufferRole, IoBinding, Plan};

/// A plan loaded on a device, ready to run. Dropping it returns its buffers to the pool.
#[derive(Debug)]
pub struct Executable {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pool: Arc<BufferPool>,
    health: Arc<DeviceHealth>,
    poll_timeout: Duration,
    /// Device buffers, indexed by `BufferId`.
    buffers: Vec<PooledBuffer>,
    /// Dispatches in plan order.
    steps: Vec<Step>,
    inputs: Vec<HostWrite>,
    params: Vec<HostWrite>,
    outputs: Vec<Readback>,
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
struct HostWrite {
    name: String,
    buffer: usize,
    bytes: u64,
}

/// An output: the device buffer, the mappable staging buffer it is copied to, and its length.
#[derive(Debug)]
struct Readback {
    buffer: usize,
    bytes: u64,
    staging: PooledBuffer,
}

impl Gpu {
    /// Checks `plan` against the device's limits and features, then creates its buffers,
    /// pipelines (through the cache) and bind groups.
    pub fn load(&self, plan: &Plan) -> Result<Executable, RuntimeError> {
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
            outputs: Vec::with_capacity(plan.outputs.len()),
        };

        for (index, desc) in plan.buffers.iter().enumerate() {
            let read_back = plan.outputs.iter().any(|o| o.buffer.0 as usize == index);
            // COPY_DST everywhere: inputs and params are written, and reused buffers are cleared.
            let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
            if desc.role == BufferRole::Output || read_back {
                usage |= wgpu::BufferUsages::COPY_SRC;
            }
            let buffer = self.pool.acquire(&self.device, desc.size, usage, &desc.label)?;
            exe.buffers.push(buffer);
        }
        for output in &plan.outputs {
            let bytes = host_bytes(output);
            let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
            let label = format!("{} staging", output.name);
            let staging = self.pool.acquire(&self.device, padded(bytes).max(4), usage, &label)?;
            exe.outputs.push(Readback { buffer: output.buffer.0 as usize, bytes, staging });
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
                        buffer: &exe.buffers[id.0 as usize].buffer,
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

fn host_writes(bindings: &[IoBinding]) -> Vec<HostWrite> {
    bindings
        .iter()
        .map(|b| HostWrite { name: b.name.clone(), buffer: b.buffer.0 as usize, bytes: host_bytes(b) })
        .collect()
}

impl Executable {
    /// Writes a weight (little-endian elements of its storage dtype). Weights keep their value
    /// across runs.
    pub fn write_param(&mut self, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        let target = self.params.iter().find(|p| p.name == name);
        let target = target.ok_or_else(|| RuntimeError::UnknownBinding(name.to_string()))?;
        write(&self.device, &self.queue, &self.buffers[target.buffer], target, bytes)
    }

    /// Writes an input (little-endian elements of its storage dtype) for the next run.
    pub fn write_input(&mut self, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        let target = self.inputs.iter().find(|p| p.name == name);
        let target = target.ok_or_else(|| RuntimeError::UnknownBinding(name.to_string()))?;
        write(&self.device, &self.queue, &self.buffers[target.buffer], target, bytes)
    }

    /// Runs every dispatch and returns each output's bytes, in the plan's output order.
    pub fn run(&mut self) -> Result<Vec<Vec<u8>>, RuntimeError> {
        let submission = self.submit(true)?;
        self.read_back(submission)
    }

    /// Runs every dispatch and waits for the GPU, reading nothing back (for benchmarks).
    pub fn run_without_readback(&mut self) -> Result<(), RuntimeError> {
        let submission = self.submit(false)?;
        self.wait(submission)
    }

    /// Dispatches per run.
    pub fn dispatch_count(&self) -> usize {
        self.steps.len()
    }

    /// Bytes of device buffers this plan holds (size classes, staging buffers included).
    pub fn buffer_bytes(&self) -> u64 {
        let staging = self.outputs.iter().map(|o| &o.staging);
        self.buffers.iter().chain(staging).map(|b| b.buffer.size()).sum()
    }

    /// Encoder, one compute pass with every dispatch in plan order, output copies, one submit.
    fn submit(&mut self, copy_outputs: bool) -> Result<wgpu::SubmissionIndex, RuntimeError> {
        self.health.check()?;
        scoped(&self.device, || {
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tessera run") });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("tessera dispatches"),
                    timestamp_writes: None,
                });
                for step in &self.steps {
                    let [x, y, z] = step.workgroups;
                    pass.set_pipeline(&step.pipeline.pipeline);
                    pass.set_bind_group(0, &step.bind_group, &[]);
                    pass.dispatch_workgroups(x, y, z);
                }
            }
            if copy_outputs {
                for output in self.outputs.iter().filter(|o| o.bytes > 0) {
                    let source = &self.buffers[output.buffer].buffer;
                    encoder.copy_buffer_to_buffer(source, 0, &output.staging.buffer, 0, padded(output.bytes));
                }
            }
            self.queue.submit([encoder.finish()])
        })
    }

    /// Blocks until `submission` is done or the poll timeout passes.
    fn wait(&self, submission: wgpu::SubmissionIndex) -> Result<(), RuntimeError> {
        let poll =
            wgpu::PollType::Wait { submission_index: Some(submission), timeout: Some(self.poll_timeout) };
        let waited = self.device.poll(poll);
        self.health.check()?;
        match waited {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => {
                Err(RuntimeError::PollTimeout { seconds: self.poll_timeout.as_secs_f64() })
            }
            Err(other) => Err(RuntimeError::Validation(format!("poll failed: {other}"))),
        }
    }

    /// Maps every staging buffer, waits, copies the bytes out and unmaps.
    fn read_back(&mut self, submission: wgpu::SubmissionIndex) -> Result<Vec<Vec<u8>>, RuntimeError> {
        let (sender, receiver) = mpsc::channel();
        let mut requested = Vec::new();
        for (index, output) in self.outputs.iter().enumerate().filter(|(_, o)| o.bytes > 0) {
            let sender = sender.clone();
            let slice = output.staging.buffer.slice(0..padded(output.bytes));
            slice.map_async(wgpu::MapMode::Read, move |result| {
                // The receiver outlives every callback; a failed send only means we gave up.
                let _ = sender.send((index, result));
            });
            requested.push(index);
        }
        drop(sender);
        let result = self.wait(submission).and_then(|()| self.copy_mapped(&receiver, requested.len()));
        self.unmap(&requested);
        result
    }

    fn copy_mapped(
        &self,
        receiver: &mpsc::Receiver<(usize, Result<(), wgpu::BufferAsyncError>)>,
        expected: usize,
    ) -> Result<Vec<Vec<u8>>, RuntimeError> {
        // Usually every callback has run when `PollType::Wait` returns, but another thread's poll
        // may be the one running them, so wait for each (bounded by the poll timeout).
        let mut mapped = Vec::with_capacity(expected);
        for _ in 0..expected {
            match receiver.recv_timeout(self.poll_timeout) {
                Ok(result) => mapped.push(result),
                Err(_) => {
                    return Err(RuntimeError::Map(format!(
                        "{} of {expected} read-back buffers mapped",
                        mapped.len()
                    )));
                }
            }
        }
        if let Some((_, Err(error))) = mapped.iter().find(|(_, r)| r.is_err()) {
            return Err(RuntimeError::Map(error.to_string()));
        }
        let mut results = Vec::with_capacity(self.outputs.len());
        for output in &self.outputs {
            if output.bytes == 0 {
                results.push(Vec::new());
                continue;
            }
            let slice = output.staging.buffer.slice(0..padded(output.bytes));
            let view = slice.get_mapped_range().map_err(|error| RuntimeError::Map(error.to_string()))?;
            results.push(view[..output.bytes as usize].to_vec());
        }
        Ok(results)
    }

    /// Unmaps the staging buffers a map was requested on (this also cancels a pending map).
    fn unmap(&self, requested: &[usize]) {
        let unmapped = scoped(&self.device, || {
            for &index in requested {
                self.outputs[index].staging.buffer.unmap();
            }
        });
        if let Err(error) = unmapped {
            tracing::warn!("unmapping read-back buffers: {error}");
        }
    }

    /// Zeroes buffers the pool handed back used, so every plan starts from zeroed memory as it
    /// would with fresh buffers.
    fn clear_reused_buffers(&self) -> Result<(), RuntimeError> {
        let reused: Vec<&PooledBuffer> = self.buffers.iter().filter(|b| b.reused()).collect();
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
    buffer: &PooledBuffer,
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
    if bytes.is_empty() {
        return Ok(());
    }
    scoped(device, || {
        if bytes.len().is_multiple_of(4) {
            queue.write_buffer(&buffer.buffer, 0, bytes);
        } else {
            let mut aligned = bytes.to_vec();
            aligned.resize(padded(target.bytes) as usize, 0);
            queue.write_buffer(&buffer.buffer, 0, &aligned);
        }
    })
}

impl Drop for Executable {
    fn drop(&mut self) {
        let staging = self.outputs.drain(..).map(|o| o.staging);
        for buffer in self.buffers.drain(..).chain(staging) {
            self.pool.release(buffer);
        }
    }
}
