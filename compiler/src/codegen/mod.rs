//! WGSL code generation: one kernel per op. Glue (bindings, index math, loads, stores) goes
//! through [`KernelWriter`]; elementwise math lives in `wgsl/prelude.wgsl`; hand kernels are the
//! other `.wgsl` files, specialised by the `const` declarations the writer puts before them.

pub mod attention;
pub mod elementwise;
pub mod gemv;
pub mod grid;
pub mod index;
pub mod matmul;
pub mod movement;
pub mod norm;
pub mod quant;
pub mod reduce;
pub mod rope;
pub mod writer;

pub use writer::{Binding, KernelWriter};

use crate::{CompileError, DeviceProfile, KernelSource};
use tessera_ir::DType;

/// Type of a value inside a kernel: floats compute in f32 (f16 is widened), bool is `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// `f32`
    F32,
    /// `i32`
    I32,
    /// `u32`
    U32,
    /// `bool`
    Bool,
}

impl Scalar {
    /// The compute type of a dtype.
    pub fn of(dtype: DType) -> Scalar {
        match dtype {
            DType::F32 | DType::F16 => Scalar::F32,
            DType::I32 => Scalar::I32,
            DType::U32 => Scalar::U32,
            DType::Bool => Scalar::Bool,
        }
    }

    /// WGSL spelling, also the suffix of prelude functions (`op_add_f32`).
    pub fn wgsl(self) -> &'static str {
        match self {
            Scalar::F32 => "f32",
            Scalar::I32 => "i32",
            Scalar::U32 => "u32",
            Scalar::Bool => "bool",
        }
    }

    /// A WGSL expression of this type for `value` (already rounded to the dtype). NaN and
    /// infinities come from bit patterns at run time: naga rejects non-finite literals.
    pub fn literal(self, value: f64) -> String {
        match self {
            Scalar::F32 => {
                let v = value as f32;
                if v.is_finite() {
                    if v.is_sign_negative() { format!("({v:?}f)") } else { format!("{v:?}f") }
                } else {
                    format!("f32_bits(0x{:08x}u)", v.to_bits())
                }
            }
            Scalar::I32 => {
                let v = value as i32;
                match v {
                    i32::MIN => "(-2147483647i - 1i)".into(),
                    v if v < 0 => format!("({v}i)"),
                    v => format!("{v}i"),
                }
            }
            Scalar::U32 => format!("{}u", value as u32),
            Scalar::Bool => (if value != 0.0 { "true" } else { "false" }).into(),
        }
    }
}

/// Element type of a device buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Storage {
    /// `array<f32>`
    F32,
    /// `array<f16>` (needs `SHADER_F16`)
    F16,
    /// `array<i32>`
    I32,
    /// `array<u32>` (also bool, as 0/1)
    U32,
}

impl Storage {
    /// How `dtype` is stored on `profile`: f16 falls back to f32, bool is u32.
    pub fn of(dtype: DType, profile: &DeviceProfile) -> Storage {
        match dtype {
            DType::F32 => Storage::F32,
            DType::F16 if profile.f16 => Storage::F16,
            DType::F16 => Storage::F32,
            DType::I32 => Storage::I32,
            DType::U32 | DType::Bool => Storage::U32,
        }
    }

    /// WGSL element type.
    pub fn wgsl(self) -> &'static str {
        match self {
            Storage::F32 => "f32",
            Storage::F16 => "f16",
            Storage::I32 => "i32",
            Storage::U32 => "u32",
        }
    }

    /// The dtype recorded in [`crate::IoBinding::storage`].
    pub fn dtype(self) -> DType {
        match self {
            Storage::F32 => DType::F32,
            Storage::F16 => DType::F16,
            Storage::I32 => DType::I32,
            Storage::U32 => DType::U32,
        }
    }

    /// Bytes per element.
    pub fn bytes(self) -> u64 {
        match self {
            Storage::F16 => 2,
            Storage::F32 | Storage::I32 | Storage::U32 => 4,
        }
    }
}

/// Bytes of the buffer holding `numel` elements: rounded up to 4, at least 4.
pub fn buffer_bytes(numel: usize, storage: Storage) -> u64 {
    ((numel as u64 * storage.bytes()).div_ceil(4) * 4).max(4)
}

/// A value as a kernel sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// Logical shape.
    pub shape: Vec<usize>,
    /// Logical dtype.
    pub dtype: DType,
    /// How its elements are stored.
    pub storage: Storage,
}

impl Value {
    /// Element count.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One kernel with its dispatch size; bindings are the operands in order, then the output.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The kernel.
    pub kernel: KernelSource,
    /// Workgroup counts.
    pub workgroups: [u32; 3],
}

/// How a launch binds its buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binds {
    /// The operands (or their prologues' leaves), then the output (or its epilogue's bindings).
    Node,
    /// The operands, then `bytes` of the plan's workspace: the first kernel of a split pair.
    ToWorkspace {
        /// Bytes the kernel writes.
        bytes: u64,
    },
    /// The workspace, then the output: the second kernel, folding what the first wrote.
    FromWorkspace,
}

/// What every kernel generator needs to know about the target.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// The device.
    pub profile: &'a DeviceProfile,
    /// Use subgroup builtins (the profile has them and the options allow them).
    pub subgroups: bool,
    /// Prologues/epilogues fused into the kernel being generated.
    pub fusion: Option<std::sync::Arc<crate::fuse::inline::KernelFusion>>,
}

impl Target<'_> {
    /// Invocations per workgroup for one-thread-per-element and one-workgroup-per-row kernels:
    /// 256 where allowed, otherwise the largest power of two the limits allow.
    pub fn workgroup_size(&self) -> u32 {
        let l = &self.profile.limits;
        let cap = l.max_compute_invocations_per_workgroup.min(l.max_compute_workgroup_size_x).min(256);
        if cap == 0 { 1 } else { 1 << (31 - cap.leading_zeros()) }
    }

    /// Element counts must fit the u32 index math.
    pub fn check_numel(&self, what: &str, numel: usize) -> Result<u32, CompileError> {
        u32::try_from(numel).map_err(|_| CompileError::Limit {
            what: format!("{what}: elements"),
            value: numel as u64,
            limit: u32::MAX as u64,
        })
    }
}
