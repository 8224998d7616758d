//! Reading outputs back: map each output's buffer (its staging copy, or the output itself on
//! unified memory), wait for the run, copy the bytes out, unmap.

use crate::RuntimeError;
use crate::error::scoped;
use crate::executor::{Executable, Readback};
use crate::legality::padded;
use std::sync::mpsc;

impl Executable {
    /// The buffer an output is mapped from: its staging copy, or itself on unified memory.
    pub(crate) fn mapped_buffer<'a>(&'a self, output: &'a Readback) -> &'a wgpu::Buffer {
        match &output.staging {
            Some(staging) => &staging.buffer,
            None => self.buffers[output.buffer].buffer(),
        }
    }

    /// Maps every read-back buffer, waits, copies the bytes out and unmaps.
    pub(crate) fn read_back(
        &mut self,
        submission: wgpu::SubmissionIndex,
    ) -> Result<Vec<Vec<u8>>, RuntimeError> {
        let (sender, receiver) = mpsc::channel();
        let mut requested = Vec::new();
        for (index, output) in self.outputs.iter().enumerate().filter(|(_, o)| o.bytes > 0) {
            let sender = sender.clone();
            let slice = self.mapped_buffer(output).slice(0..padded(output.bytes));
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
            let slice = self.mapped_buffer(output).slice(0..padded(output.bytes));
            let view = slice.get_mapped_range().map_err(|error| RuntimeError::Map(error.to_string()))?;
            results.push(view[..output.bytes as usize].to_vec());
        }
        Ok(results)
    }

    /// Unmaps the staging buffers a map was requested on (this also cancels a pending map).
    fn unmap(&self, requested: &[usize]) {
        let unmapped = scoped(&self.device, || {
            for &index in requested {
                self.mapped_buffer(&self.outputs[index]).unmap();
            }
        });
        if let Err(error) = unmapped {
            tracing::warn!("unmapping read-back buffers: {error}");
        }
    }
}
