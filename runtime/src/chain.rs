//! Chained runs: each run's first output is copied into an input of the next on the GPU, so the
//! host records and submits run n+1 while run n executes and reads each result one run behind.
//! Greedy decode uses it to feed step n's argmax token to step n+1 with no round trip through
//! the host between them.

use crate::RuntimeError;
use crate::executor::{Executable, RunCopies};
use crate::legality::padded;
use crate::pool::PooledBuffer;
use std::collections::VecDeque;
use std::sync::mpsc;

/// Runs that may be in flight at once: the one executing and the one queued behind it.
const IN_FLIGHT: usize = 2;

/// The chain's state on an [`Executable`]: the input fed, a read-back slot per run in flight
/// (the first output is copied there, since the next run overwrites the output itself), and the
/// runs not yet collected, oldest first.
#[derive(Debug)]
pub(crate) struct Chain {
    input: usize,
    slots: Vec<PooledBuffer>,
    in_flight: VecDeque<(wgpu::SubmissionIndex, usize)>,
    next_slot: usize,
}

impl Chain {
    /// The read-back buffer of slot `i`.
    pub(crate) fn slot(&self, i: usize) -> &wgpu::Buffer {
        &self.slots[i].buffer
    }
}

impl Executable {
    /// Submits a run without waiting for it. With `feed` and a chained run still in flight, that
    /// run's first output is first copied into input `input` (same byte length) on the GPU;
    /// otherwise the input keeps what the host wrote. Other inputs written before this call apply to this run only (queue
    /// writes are ordered between submits). At most two runs may be in flight: collect first.
    /// Not available while `TESSERA_PROFILE` profiles this plan (its query buffers are per run).
    pub fn submit_chained(&mut self, input: &str, feed: bool) -> Result<(), RuntimeError> {
        if self.profiler.is_some() {
            return Err(RuntimeError::Validation(
                "chained runs are not profiled: unset TESSERA_PROFILE".into(),
            ));
        }
        let target = self.inputs.iter().position(|w| w.name == input);
        let target = target.ok_or_else(|| RuntimeError::UnknownBinding(input.to_string()))?;
        let first = self
            .outputs
            .first()
            .ok_or_else(|| RuntimeError::Validation("a chained plan needs an output".into()))?;
        let (first_buffer, first_bytes) = (first.buffer, first.bytes);
        if self.inputs[target].bytes != first_bytes {
            return Err(RuntimeError::SizeMismatch {
                name: input.to_string(),
                expected: self.inputs[target].bytes,
                got: first_bytes,
            });
        }
        if self.chain.as_ref().is_some_and(|c| c.input != target) {
            return Err(RuntimeError::Validation(format!(
                "{input}: the chain in flight feeds another input"
            )));
        }
        if self.chain.is_none() {
            let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
            let size = padded(first_bytes).max(4);
            let slots = (0..IN_FLIGHT)
                .map(|i| self.pool.acquire(&self.device, size, usage, &format!("chain read-back {i}")))
                .collect::<Result<_, _>>()?;
            self.chain = Some(Chain { input: target, slots, in_flight: VecDeque::new(), next_slot: 0 });
        }
        let (slot, has_previous) = match &self.chain {
            Some(c) if c.in_flight.len() >= IN_FLIGHT => {
                return Err(RuntimeError::Validation("two chained runs in flight: collect one first".into()));
            }
            Some(c) => (c.next_slot, true),
            None => (0, false),
        };
        let feed = (feed && has_previous).then_some((first_buffer, self.inputs[target].buffer, first_bytes));
        let submission = self.submit(false, RunCopies { feed, keep: Some(slot) })?;
        if let Some(chain) = &mut self.chain {
            chain.in_flight.push_back((submission, slot));
            chain.next_slot = (slot + 1) % IN_FLIGHT;
        }
        Ok(())
    }

    /// Waits for the oldest chained run in flight and returns its first output's bytes; `None`
    /// when none is in flight. When the last one is collected the chain ends, and plain runs may
    /// follow.
    pub fn collect_chained(&mut self) -> Result<Option<Vec<u8>>, RuntimeError> {
        let Some(chain) = &mut self.chain else { return Ok(None) };
        let Some((submission, slot)) = chain.in_flight.pop_front() else { return Ok(None) };
        let bytes = self.outputs.first().map_or(0, |o| o.bytes);
        let buffer = self
            .chain
            .as_ref()
            .map(|c| c.slot(slot).clone())
            .ok_or_else(|| RuntimeError::Validation("chain state vanished".into()))?;
        let (sender, receiver) = mpsc::channel();
        let slice = buffer.slice(0..padded(bytes).max(4));
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        let read = self.wait(submission).and_then(|()| {
            match receiver.recv_timeout(self.poll_timeout) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(RuntimeError::Map(e.to_string())),
                Err(_) => return Err(RuntimeError::Map("chained read-back never mapped".into())),
            }
            let view = slice.get_mapped_range().map_err(|e| RuntimeError::Map(e.to_string()))?;
            Ok(view[..bytes as usize].to_vec())
        });
        buffer.unmap();
        if self.chain.as_ref().is_some_and(|c| c.in_flight.is_empty()) {
            self.chain = None;
        }
        read.map(Some)
    }

    /// Fails while chained runs are in flight (a plain run would race them for the outputs).
    pub(crate) fn check_no_chain(&self) -> Result<(), RuntimeError> {
        match &self.chain {
            Some(c) if !c.in_flight.is_empty() => {
                Err(RuntimeError::Validation("chained runs in flight: collect them first".into()))
            }
            _ => Ok(()),
        }
    }

    /// True when `TESSERA_PROFILE` records this plan's dispatches (chained runs are then refused).
    pub fn is_profiled(&self) -> bool {
        self.profiler.is_some()
    }
}
