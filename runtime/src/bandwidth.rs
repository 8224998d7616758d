//! The device's copy bandwidth, measured two ways: its own copy command, and a vec4 copy kernel
//! with many loads in flight per invocation. Benchmarks divide streamed bytes by the faster, so
//! a weak copy cannot flatter them.

use crate::error::scoped;
use crate::executor::wait_for;
use crate::{Gpu, RuntimeError};
use std::time::Instant;

/// Copies per submit, so the submit and wait are a few percent of the timed span.
const COPIES_PER_SUBMIT: u32 = 8;

/// Each invocation copies four vec4s, a workgroup's width apart.
const COPY_KERNEL: &str = "
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = (wid.x + wid.y * 65535u) * 1024u + lid;
    let a = src[base];
    let b = src[base + 256u];
    let c = src[base + 512u];
    let d = src[base + 768u];
    dst[base] = a;
    dst[base + 256u] = b;
    dst[base + 512u] = c;
    dst[base + 768u] = d;
}
";

/// Bytes one copy-kernel workgroup moves.
const KERNEL_WORKGROUP_BYTES: u64 = 1024 * 16;

impl Gpu {
    /// Read + write bytes per second of a copy between two buffers of about `bytes` (capped at
    /// the largest storage binding), the faster of `copy_buffer_to_buffer` and a vec4 copy
    /// kernel: the median of `reps` submits of several copies each.
    pub fn copy_bandwidth(&self, bytes: u64, reps: usize) -> Result<f64, RuntimeError> {
        let limits = self.device.limits();
        let cap = limits.max_buffer_size.min(limits.max_storage_buffer_binding_size);
        let groups = (bytes.min(cap) / KERNEL_WORKGROUP_BYTES).max(1);
        let bytes = groups * KERNEL_WORKGROUP_BYTES;
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let make = |label| {
            scoped(&self.device, || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                })
            })
        };
        let (src, dst) = (make("tessera copy source")?, make("tessera copy target")?);
        let command =
            self.time_copies(reps, |encoder| encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes))?;
        let (pipeline, bind_group) = scoped(&self.device, || {
            let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("tessera copy"),
                source: wgpu::ShaderSource::Wgsl(COPY_KERNEL.into()),
            });
            let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("tessera copy"),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("tessera copy"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: src.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: dst.as_entire_binding() },
                ],
            });
            (pipeline, bind_group)
        })?;
        let (x, y) = (groups.min(65535) as u32, groups.div_ceil(65535) as u32);
        // A 2-D grid of 65535-wide rows must cover the buffer exactly.
        let kernel = if u64::from(x) * u64::from(y) == groups {
            self.time_copies(reps, |encoder| {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(x, y, 1);
            })?
        } else {
            f64::INFINITY
        };
        Ok(2.0 * bytes as f64 / command.min(kernel))
    }

    /// Median seconds per copy over `reps` submits of [`COPIES_PER_SUBMIT`] recorded copies,
    /// after one submit of warm-up.
    fn time_copies(
        &self,
        reps: usize,
        record: impl Fn(&mut wgpu::CommandEncoder),
    ) -> Result<f64, RuntimeError> {
        let mut times = Vec::with_capacity(reps + 1);
        for _ in 0..=reps.max(1) {
            let start = Instant::now();
            let submission = scoped(&self.device, || {
                let mut encoder = self.device.create_command_encoder(&Default::default());
                for _ in 0..COPIES_PER_SUBMIT {
                    record(&mut encoder);
                }
                self.queue.submit([encoder.finish()])
            })?;
            wait_for(&self.device, &self.health, self.poll_timeout, submission)?;
            times.push(start.elapsed().as_secs_f64());
        }
        let timed = &mut times[1..];
        timed.sort_by(f64::total_cmp);
        Ok(timed[timed.len() / 2] / f64::from(COPIES_PER_SUBMIT))
    }
}
