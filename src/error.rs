//! The facade's error type: one enum over every layer, so `?` works across them.

/// Anything that can go wrong in tessera's public API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A graph could not be built: bad shapes, dtypes or attributes (names the op and shapes).
    #[error(transparent)]
    Ir(#[from] tessera_ir::IrError),
    /// The compiler rejected a graph or could not fit it to the device.
    #[error(transparent)]
    Compile(#[from] tessera_compiler::CompileError),
    /// The GPU runtime failed: no adapter, out of memory, device lost, limits, timeouts.
    #[error(transparent)]
    Runtime(#[from] tessera_runtime::RuntimeError),
    /// An argument to an `Array` method is invalid (names the method and what is wrong).
    #[error("{op}: {reason}")]
    Invalid {
        /// The method called.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Shorthand for `Result<T, tessera::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid { op, reason: reason.into() }
}
