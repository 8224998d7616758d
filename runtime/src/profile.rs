//! GPU timing: the whole-run [`Timer`] behind `Executable::last_gpu_time`, and per-dispatch
//! timing, on only when `TESSERA_PROFILE=FILE.json` is set when a plan is loaded. Each run then writes a timestamp before and after every dispatch (inside the one
//! compute pass where the device has `TIMESTAMP_QUERY_INSIDE_PASSES`, else one pass per dispatch
//! with pass timestamps), reads them back after the run, and appends one Chrome trace event per
//! dispatch to FILE (open it in Perfetto or chrome://tracing). Totals per kernel name are kept
//! per plan (printed when it is dropped, at `TESSERA_DEBUG>=1`) and per process
//! ([`kernel_times`], for `tessera bench`).

use crate::error::{RuntimeError, scoped};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Queries in one query set (wgpu's maximum); larger plans use several sets.
const QUERIES_PER_SET: u32 = wgpu::QUERY_SET_MAX_QUERIES;

/// GPU time spent in one kernel (by name) over some runs.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// Kernel name.
    pub name: String,
    /// Dispatches timed.
    pub count: usize,
    /// Their summed GPU time.
    pub total: Duration,
}

/// What the profiler records about one dispatch besides its time.
#[derive(Clone, Debug)]
pub(crate) struct DispatchInfo {
    /// Kernel name.
    pub name: String,
    /// Storage buffers bound.
    pub bindings: usize,
    /// Bytes of the buffers bound.
    pub bytes: u64,
}

/// Where timestamps can be written on this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `ComputePass::write_timestamp` around each dispatch, in one pass.
    InsidePasses,
    /// One compute pass per dispatch, with beginning/end-of-pass timestamps.
    PassPerDispatch,
}

/// Timestamps at the start and end of a run's compute pass, resolved and copied to a small
/// staging buffer every run; read (mapped) only when [`crate::Executable::last_gpu_time`] asks.
#[derive(Debug)]
pub(crate) struct Timer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f32,
    /// A run has written the staging buffer.
    written: bool,
}

/// The buffer query sets resolve into and the mappable one it is copied to, `bytes` each.
fn timestamp_buffers(device: &wgpu::Device, label: &str, bytes: u64) -> (wgpu::Buffer, wgpu::Buffer) {
    let buffer = |label: &str, usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let resolved = buffer(label, wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
    let staging =
        buffer(&format!("{label} staging"), wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    (resolved, staging)
}

/// Bytes of two resolved timestamps.
const TIMESTAMP_BYTES: u64 = 2 * wgpu::QUERY_SIZE as u64;

impl Timer {
    /// A timer when the device has `TIMESTAMP_QUERY`; its two small buffers are not pooled.
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Result<Option<Timer>, RuntimeError> {
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(None);
        }
        scoped(device, || {
            let (resolved, staging) = timestamp_buffers(device, "tessera timestamps", TIMESTAMP_BYTES);
            Some(Timer {
                queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("tessera pass timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolved,
                staging,
                period: queue.get_timestamp_period(),
                written: false,
            })
        })
    }

    /// Timestamps at the beginning and end of the one compute pass of a run.
    pub fn pass_writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }
    }

    /// After the run's passes: copies the two timestamps out when `timed` (the run was one pass
    /// with [`Timer::pass_writes`]); otherwise the run has no time.
    pub fn finish_run(&mut self, encoder: &mut wgpu::CommandEncoder, timed: bool) {
        if timed {
            encoder.resolve_query_set(&self.queries, 0..2, &self.resolved, 0);
            encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, TIMESTAMP_BYTES);
        }
        self.written = timed;
    }

    /// GPU time of the last timed run (waits for it).
    pub fn read(&self, device: &wgpu::Device, timeout: Duration) -> Option<Duration> {
        if !self.written {
            return None;
        }
        let ticks = read_ticks(device, &self.staging, timeout)?;
        let elapsed = ticks[1].saturating_sub(ticks[0]);
        Some(Duration::from_nanos((elapsed as f64 * f64::from(self.period)) as u64))
    }
}

/// Timestamp queries and read-back buffers for every dispatch of one plan, plus its totals.
#[derive(Debug)]
pub(crate) struct DispatchProfiler {
    mode: Mode,
    sets: Vec<wgpu::QuerySet>,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
    dispatches: Vec<DispatchInfo>,
    /// Chrome trace thread id: one track per loaded plan.
    track: usize,
    /// When the current run was submitted (trace timestamps are offsets from process start).
    submitted_at: Option<Duration>,
    runs: usize,
    totals: HashMap<String, (usize, u64)>,
}

/// The trace file path, when `TESSERA_PROFILE` is set.
pub(crate) fn profile_path() -> Option<PathBuf> {
    std::env::var_os("TESSERA_PROFILE").filter(|v| !v.is_empty()).map(PathBuf::from)
}

impl DispatchProfiler {
    /// A profiler for `dispatches` when `TESSERA_PROFILE` is set and the device has timestamps
    /// (without them: one warning per process, and `None`).
    pub fn from_env(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        dispatches: Vec<DispatchInfo>,
    ) -> Result<Option<DispatchProfiler>, RuntimeError> {
        if profile_path().is_none() || dispatches.is_empty() {
            return Ok(None);
        }
        let features = device.features();
        if !features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "[tessera] TESSERA_PROFILE: the device has no TIMESTAMP_QUERY; no kernel times recorded"
                );
            }
            return Ok(None);
        }
        let mode = if features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES) {
            Mode::InsidePasses
        } else {
            Mode::PassPerDispatch
        };
        let queries = 2 * dispatches.len() as u64;
        let bytes = queries * wgpu::QUERY_SIZE as u64;
        static TRACKS: AtomicUsize = AtomicUsize::new(1);
        scoped(device, || {
            let sets = (0..queries.div_ceil(u64::from(QUERIES_PER_SET)))
                .map(|k| {
                    let count = (queries - k * u64::from(QUERIES_PER_SET)).min(u64::from(QUERIES_PER_SET));
                    device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("tessera dispatch timestamps"),
                        ty: wgpu::QueryType::Timestamp,
                        count: count as u32,
                    })
                })
                .collect();
            let (resolved, staging) = timestamp_buffers(device, "tessera dispatch timestamps", bytes);
            DispatchProfiler {
                mode,
                sets,
                resolved,
                staging,
                period: f64::from(queue.get_timestamp_period()),
                dispatches,
                track: TRACKS.fetch_add(1, Ordering::Relaxed),
                submitted_at: None,
                runs: 0,
                totals: HashMap::new(),
            }
        })
        .map(Some)
    }

    /// True when each dispatch needs a pass of its own (the whole-pass timer cannot be used).
    pub fn pass_per_dispatch(&self) -> bool {
        self.mode == Mode::PassPerDispatch
    }

    /// The query set and index of timestamp `query` (two per dispatch: before, after).
    fn query(&self, query: u32) -> (&wgpu::QuerySet, u32) {
        (&self.sets[(query / QUERIES_PER_SET) as usize], query % QUERIES_PER_SET)
    }

    /// Encodes every dispatch with timestamps around it; `dispatch(pass, i)` records dispatch
    /// `i`, `pass_timer` are the whole-run timestamps (used only when everything is one pass).
    pub fn encode(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        pass_timer: Option<wgpu::ComputePassTimestampWrites<'_>>,
        dispatch: &dyn Fn(&mut wgpu::ComputePass<'_>, usize),
    ) {
        let n = self.dispatches.len();
        match self.mode {
            Mode::InsidePasses => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("tessera dispatches (profiled)"),
                    timestamp_writes: pass_timer,
                });
                for i in 0..n {
                    let (set, index) = self.query(2 * i as u32);
                    pass.write_timestamp(set, index);
                    dispatch(&mut pass, i);
                    let (set, index) = self.query(2 * i as u32 + 1);
                    pass.write_timestamp(set, index);
                }
            }
            Mode::PassPerDispatch => {
                for i in 0..n {
                    // Both queries of a dispatch are in one set: QUERIES_PER_SET is even.
                    let (set, index) = self.query(2 * i as u32);
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("tessera dispatch (profiled)"),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: set,
                            beginning_of_pass_write_index: Some(index),
                            end_of_pass_write_index: Some(index + 1),
                        }),
                    });
                    dispatch(&mut pass, i);
                }
            }
        }
        for (k, set) in self.sets.iter().enumerate() {
            let first = k as u64 * u64::from(QUERIES_PER_SET);
            let count = (2 * n as u64 - first).min(u64::from(QUERIES_PER_SET)) as u32;
            encoder.resolve_query_set(set, 0..count, &self.resolved, first * wgpu::QUERY_SIZE as u64);
        }
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, self.resolved.size());
        self.submitted_at = Some(process_clock());
    }

    /// After the run finished: reads the timestamps, adds them to the totals and appends one
    /// trace event per dispatch to the profile file. A failure is logged, never fatal.
    pub fn collect(&mut self, device: &wgpu::Device, timeout: Duration) {
        let Some(submitted_at) = self.submitted_at.take() else { return };
        let Some(ticks) = read_ticks(device, &self.staging, timeout) else {
            tracing::warn!("TESSERA_PROFILE: reading the dispatch timestamps failed");
            return;
        };
        self.runs += 1;
        let start = ticks.first().copied().unwrap_or(0);
        let ns = |t: u64| t as f64 * self.period;
        let mut events = String::new();
        let mut process = process_profile();
        for (i, info) in self.dispatches.iter().enumerate() {
            let (begin, end) = (ticks[2 * i], ticks[2 * i + 1]);
            let duration = ns(end.saturating_sub(begin));
            let offset = ns(begin.saturating_sub(start));
            let total = self.totals.entry(info.name.clone()).or_default();
            *total = (total.0 + 1, total.1 + duration as u64);
            let total = process.totals.entry(info.name.clone()).or_default();
            *total = (total.0 + 1, total.1 + duration as u64);
            let event = serde_json::json!({
                "name": info.name,
                "cat": "kernel",
                "ph": "X",
                "pid": std::process::id(),
                "tid": self.track,
                "ts": submitted_at.as_secs_f64() * 1e6 + offset / 1e3,
                "dur": duration / 1e3,
                "args": { "dispatch": i, "bindings": info.bindings, "bytes": info.bytes, "run": self.runs },
            });
            events.push_str(&event.to_string());
            events.push('\n');
        }
        if let Err(e) = process.append(&events) {
            tracing::warn!("TESSERA_PROFILE: writing the trace: {e}");
        }
    }

    /// Per-kernel totals of this plan, longest first, and the number of runs.
    pub fn kernel_times(&self) -> (Vec<KernelTime>, usize) {
        (sorted(&self.totals), self.runs)
    }
}

/// The resolved timestamps in `staging` (written by a finished submission), mapped and copied
/// out; `None` when mapping fails or times out.
fn read_ticks(device: &wgpu::Device, staging: &wgpu::Buffer, timeout: Duration) -> Option<Vec<u64>> {
    let (sender, receiver) = mpsc::channel();
    let slice = staging.slice(..);
    slice.map_async(wgpu::MapMode::Read, move |result| {
        let _ = sender.send(result);
    });
    let poll = wgpu::PollType::Wait { submission_index: None, timeout: Some(timeout) };
    let ticks = match (device.poll(poll), receiver.recv_timeout(timeout)) {
        (Ok(_), Ok(Ok(()))) => slice.get_mapped_range().ok().map(|view| {
            view.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())).collect()
        }),
        _ => None,
    };
    if let Err(error) = scoped(device, || staging.unmap()) {
        tracing::warn!("unmapping a timestamp buffer: {error}");
    }
    ticks
}

impl Drop for DispatchProfiler {
    fn drop(&mut self) {
        if self.runs > 0 && debug_level() >= 1 {
            let how = match self.mode {
                Mode::InsidePasses => "timestamps inside one pass",
                Mode::PassPerDispatch => "one pass per dispatch",
            };
            eprint!("{}", summary_text(&sorted(&self.totals), self.runs, self.dispatches.len(), how));
        }
    }
}

/// `TESSERA_DEBUG` as a number (0 when unset or unparsable).
fn debug_level() -> u32 {
    std::env::var("TESSERA_DEBUG").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The per-kernel summary of a plan: count, total and share of the step, longest first (the
/// top 15, then the rest in one line).
fn summary_text(times: &[KernelTime], runs: usize, dispatches: usize, how: &str) -> String {
    let all: f64 = times.iter().map(|t| t.total.as_secs_f64()).sum::<f64>() * 1e6;
    let step = all / runs.max(1) as f64;
    let mut s = format!(
        "[tessera] profile: {dispatches} dispatches x {runs} runs, {step:.1} us of kernel time per run ({how})\n"
    );
    let line = |name: &str, count: usize, us: f64| {
        let share = if all > 0.0 { 100.0 * us / all } else { 0.0 };
        format!("[tessera]   {name:<44} {count:>7} {us:>12.1} us {share:>5.1}%\n")
    };
    for t in times.iter().take(15) {
        s.push_str(&line(&t.name, t.count, t.total.as_secs_f64() * 1e6));
    }
    if times.len() > 15 {
        let rest = &times[15..];
        let count = rest.iter().map(|t| t.count).sum();
        let us = rest.iter().map(|t| t.total.as_secs_f64()).sum::<f64>() * 1e6;
        s.push_str(&line(&format!("({} more kernels)", rest.len()), count, us));
    }
    s
}

fn sorted(totals: &HashMap<String, (usize, u64)>) -> Vec<KernelTime> {
    let mut times: Vec<KernelTime> = totals
        .iter()
        .map(|(name, &(count, ns))| KernelTime { name: name.clone(), count, total: Duration::from_nanos(ns) })
        .collect();
    times.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    times
}

/// Per-kernel GPU time over every profiled run of this process, longest first (empty unless
/// `TESSERA_PROFILE` is set and the device has timestamps).
pub fn kernel_times() -> Vec<KernelTime> {
    sorted(&process_profile().totals)
}

/// Seconds since the first profiled run of the process (the trace's time origin).
fn process_clock() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// The process's trace file and totals.
#[derive(Debug, Default)]
struct ProcessProfile {
    trace: Option<TraceFile>,
    totals: HashMap<String, (usize, u64)>,
}

fn process_profile() -> std::sync::MutexGuard<'static, ProcessProfile> {
    static PROFILE: OnceLock<Mutex<ProcessProfile>> = OnceLock::new();
    let lock = PROFILE.get_or_init(Mutex::default).lock();
    // A panic while holding the lock leaves plain totals behind: still usable.
    lock.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ProcessProfile {
    /// Appends newline-separated JSON events, opening (truncating) the file on first use.
    fn append(&mut self, events: &str) -> std::io::Result<()> {
        if self.trace.is_none() {
            let Some(path) = profile_path() else { return Ok(()) };
            self.trace = Some(TraceFile::create(&path)?);
        }
        match &mut self.trace {
            Some(trace) => trace.append(events),
            None => Ok(()),
        }
    }
}

/// A Chrome trace in the JSON array format, kept valid after every append: `[`, events
/// separated by commas, `]`. Appending overwrites the closing bracket.
#[derive(Debug)]
struct TraceFile {
    file: File,
    events: usize,
}

/// The bytes that close the array.
const TRACE_END: &[u8] = b"\n]\n";

impl TraceFile {
    fn create(path: &Path) -> std::io::Result<TraceFile> {
        let mut file = File::create(path)?;
        file.write_all(b"[")?;
        file.write_all(TRACE_END)?;
        Ok(TraceFile { file, events: 0 })
    }

    fn append(&mut self, events: &str) -> std::io::Result<()> {
        let mut body = String::new();
        for event in events.lines().filter(|l| !l.is_empty()) {
            body.push_str(if self.events == 0 { "\n" } else { ",\n" });
            body.push_str(event);
            self.events += 1;
        }
        self.file.seek(SeekFrom::End(-(TRACE_END.len() as i64)))?;
        self.file.write_all(body.as_bytes())?;
        self.file.write_all(TRACE_END)?;
        self.file.flush()
    }
}
