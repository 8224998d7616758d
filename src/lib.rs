//! tessera: lazy arrays, an e-graph graph compiler and LLM inference on any GPU through
//! WebGPU (Metal, Vulkan, DX12, GL, and Mesa lavapipe in headless CI).
//!
//! ```no_run
//! use tessera::{Array, Device};
//!
//! let dev = Device::default()?;
//! let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &dev)?;
//! let b = Array::from_vec(vec![0.5f32; 12], &[3, 4], &dev)?;
//! let c = a.matmul(&b)?.add(&Array::scalar(1.0, &dev)?)?.softmax(-1)?;   // lazy: builds a graph
//! let v: Vec<f32> = c.to_vec()?;                       // compiles (cached), runs, reads back
//! # Ok::<(), tessera::Error>(())
//! ```

mod array;
mod compile;
mod device;
mod element;
mod error;
mod ops;
mod switches;

pub use array::{Array, eval};
pub use compile::{Compiled, compile};
pub use device::Device;
pub use element::{Element, decode, encode};
pub use error::{Error, Result};
pub use switches::compile_options;
pub use tessera_ir::{DType, RopeStyle};

/// The layers underneath, for users who build graphs or plans directly.
pub mod layers {
    pub use tessera_compiler as compiler;
    pub use tessera_ir as ir;
    pub use tessera_runtime as runtime;
}
