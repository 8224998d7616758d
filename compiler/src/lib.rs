//! tessera's graph compiler: turns a verified [`tessera_ir::Graph`] into a [`Plan`] of WGSL
//! kernels for a [`DeviceProfile`]: e-graph rewrites ([`egraph`], [`rules`]), fusion
//! ([`fuse`]), memory planning, lowering and naga validation ([`pipeline`]).
//!
//! ```
//! use tessera_compiler::{CompileOptions, DeviceProfile, compile};
//! use tessera_ir::{BinaryOp, DType, Graph, Op};
//!
//! let mut g = Graph::new();
//! let x = g.input("x", [2, 3], DType::F32);
//! let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x])?;
//! g.add_output(y)?;
//! let plan = compile(&g, &DeviceProfile::portable(), &CompileOptions::default())?;
//! assert_eq!(plan.dispatches.len(), 1);
//! assert_eq!(plan.outputs[0].name, "output0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod codegen;
pub mod cost;
pub mod debug;
pub mod dot;
pub mod egraph;
mod error;
pub mod fuse;
pub mod ieee_guard;
pub mod lower;
pub mod memory;
pub mod pipeline;
pub mod plan;
pub mod rules;
pub mod target;
mod validate;

pub use error::CompileError;
pub use pipeline::{
    CompileOptions, Compiled, F16Prefill, compile, compile_with_graph, f16_matmul_rows, int8_activation_rows,
    int8_activations,
};
pub use plan::{
    Access, BufferDesc, BufferId, BufferRole, Dispatch, IoBinding, KernelReport, KernelSource, Plan,
};
pub use target::{DeviceProfile, Limits};
pub use validate::{parse_and_validate, validate_kernel};
