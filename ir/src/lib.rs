//! tessera's graph IR: one [`Op`] enum, shapes and dtypes, the [`Graph`] arena with inference
//! and verification, a stable text form, decompositions of composite ops, and the reference
//! interpreter that defines what every op means.
//!
//! ```
//! use tessera_ir::{DType, Graph, Op, BinaryOp, interp};
//!
//! let mut g = Graph::new();
//! let x = g.input("x", [2, 2], DType::F32);
//! let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x])?;
//! g.add_output(y)?;
//! let out = interp::run(&g, &[("x", interp::Tensor::new([2, 2], DType::F32, vec![1.0, 2.0, 3.0, 4.0]))])?;
//! assert_eq!(out[0].data, vec![1.0, 4.0, 9.0, 16.0]);
//! # Ok::<(), tessera_ir::IrError>(())
//! ```
#![warn(missing_docs)]

mod dtype;
mod error;
mod graph;
mod infer;
mod op;
mod shape;

pub mod decompose;
pub mod dot;
pub mod interp;
pub mod text;

pub use dtype::DType;
pub use error::IrError;
pub use graph::{Graph, Node, NodeId};
pub use infer::{TensorType, infer, reduced_shape};
pub use op::{BinaryOp, Float, Op, OpClass, ReduceKind, RopeStyle, SliceRange, UnaryOp, float};
pub use shape::Shape;
