//! Compile errors: each names the op, kernel or limit involved.

use tessera_ir::IrError;

/// Why a graph could not be compiled for a device.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CompileError {
    /// The graph failed verification.
    #[error(transparent)]
    Ir(#[from] IrError),
    /// The op (with these operands) has no lowering on this device yet.
    #[error("{op}: unsupported: {reason}")]
    Unsupported {
        /// The op's mnemonic.
        op: String,
        /// What is missing.
        reason: String,
    },
    /// An emitted kernel did not parse or validate (a compiler bug); the message quotes the WGSL line.
    #[error("kernel `{kernel}` is invalid WGSL:\n{message}")]
    Invalid {
        /// Kernel name.
        kernel: String,
        /// naga's diagnostic, with the offending WGSL line.
        message: String,
    },
    /// A device limit would be exceeded.
    #[error("{what}: {value} exceeds the device limit {limit}")]
    Limit {
        /// What was measured (`buffer for %3 (bytes)`, `workgroups`).
        what: String,
        /// The value needed.
        value: u64,
        /// The device's limit.
        limit: u64,
    },
}
