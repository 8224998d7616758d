//! Runtime errors, and the two ways wgpu reports them: error scopes around each call that can
//! fail, and device-wide callbacks recorded in [`DeviceHealth`] for the next call to return.

use std::sync::{Arc, Mutex};

/// Everything the runtime can fail with. Nothing a user can cause panics.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// No adapter on the backends searched.
    #[error("no GPU adapter found (searched {searched}); {hint}")]
    NoAdapter {
        /// Backends that were searched.
        searched: String,
        /// What to install or set.
        hint: String,
    },
    /// `TESSERA_ADAPTER` matched no adapter.
    #[error("no adapter name contains {wanted:?}; adapters found: {}", available.join("; "))]
    AdapterNotFound {
        /// The substring asked for.
        wanted: String,
        /// Every adapter found, as `name (backend, type)`.
        available: Vec<String>,
    },
    /// An environment variable holds a value the runtime does not understand.
    #[error("environment variable {var}={value:?} is not understood")]
    BadEnv {
        /// Variable name.
        var: String,
        /// Its value.
        value: String,
    },
    /// The adapter refused to create a device.
    #[error("could not create a device: {0}")]
    RequestDevice(String),
    /// The device was lost (driver reset, crash or destroy).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// The device ran out of memory.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// wgpu rejected a call (invalid shader, bad binding, malformed plan, ...).
    #[error("GPU validation error: {0}")]
    Validation(String),
    /// The plan needs more than the device allows.
    #[error("{what} is {value}, over the device limit of {limit}")]
    LimitExceeded {
        /// Which limit, and for what.
        what: String,
        /// What the plan needs.
        value: u64,
        /// What the device allows.
        limit: u64,
    },
    /// The plan needs a feature the device lacks.
    #[error("the device lacks a feature the plan needs: {0}")]
    MissingFeature(String),
    /// The GPU did not finish in time.
    #[error("GPU work did not finish within {seconds} s (TESSERA_POLL_TIMEOUT_S)")]
    PollTimeout {
        /// The timeout.
        seconds: f64,
    },
    /// Mapping a read-back buffer failed.
    #[error("could not map a read-back buffer: {0}")]
    Map(String),
    /// No input, param, state or output (or shared buffer) has this name.
    #[error("the plan has no binding named {0:?}")]
    UnknownBinding(String),
    /// A plan's param or state does not match the shared buffer of the same name.
    #[error("shared buffer {name:?}: {reason}")]
    SharedMismatch {
        /// Param or state name.
        name: String,
        /// What differs.
        reason: String,
    },
    /// Host data of the wrong length.
    #[error("{name} takes {expected} bytes, got {got}")]
    SizeMismatch {
        /// Binding name.
        name: String,
        /// Bytes the binding holds.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
}

impl RuntimeError {
    /// Converts an error captured by an error scope or the uncaptured-error handler.
    pub(crate) fn from_wgpu(error: wgpu::Error) -> RuntimeError {
        match error {
            wgpu::Error::OutOfMemory { source } => RuntimeError::OutOfMemory(source.to_string()),
            wgpu::Error::Validation { description, .. } => RuntimeError::Validation(description),
            wgpu::Error::Internal { description, .. } => {
                RuntimeError::Validation(format!("internal error: {description}"))
            }
        }
    }
}

/// Runs `f` inside out-of-memory, validation and internal error scopes and returns the first
/// error any of them caught. Scopes are thread-local, so concurrent callers do not mix errors.
pub(crate) fn scoped<T>(device: &wgpu::Device, f: impl FnOnce() -> T) -> Result<T, RuntimeError> {
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let value = f();
    // Pop in reverse order of the pushes.
    let caught = [
        pollster::block_on(validation.pop()),
        pollster::block_on(internal.pop()),
        pollster::block_on(oom.pop()),
    ];
    match caught.into_iter().flatten().next() {
        Some(error) => Err(RuntimeError::from_wgpu(error)),
        None => Ok(value),
    }
}

/// What the device reported outside any error scope: a loss (permanent) or an uncaptured error
/// (returned once by the next call).
#[derive(Debug, Default)]
pub(crate) struct DeviceHealth {
    lost: Mutex<Option<String>>,
    uncaptured: Mutex<Option<RuntimeError>>,
}

impl DeviceHealth {
    /// Installs the device-lost callback and the uncaptured-error handler.
    pub(crate) fn watch(device: &wgpu::Device) -> Arc<DeviceHealth> {
        let health = Arc::new(DeviceHealth::default());
        let on_lost = Arc::clone(&health);
        device.set_device_lost_callback(move |reason, message| {
            let reason = match reason {
                wgpu::DeviceLostReason::Unknown => "unknown reason",
                wgpu::DeviceLostReason::Destroyed => "destroyed",
            };
            if let Ok(mut lost) = on_lost.lost.lock() {
                *lost = Some(format!("{reason}: {message}"));
            }
        });
        let on_error = Arc::clone(&health);
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            tracing::error!("uncaptured wgpu error: {error}");
            if let Ok(mut slot) = on_error.uncaptured.lock() {
                slot.get_or_insert(RuntimeError::from_wgpu(error));
            }
        }));
        health
    }

    /// Records a loss the runtime caused itself (wgpu reports it only at the next poll).
    pub(crate) fn mark_lost(&self, reason: &str) {
        if let Ok(mut lost) = self.lost.lock() {
            lost.get_or_insert_with(|| reason.to_string());
        }
    }

    /// `Err` when the device is lost or reported an error since the last check.
    pub(crate) fn check(&self) -> Result<(), RuntimeError> {
        if let Some(reason) = self.lost.lock().ok().and_then(|lost| lost.clone()) {
            return Err(RuntimeError::DeviceLost(reason));
        }
        match self.uncaptured.lock().ok().and_then(|mut slot| slot.take()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
