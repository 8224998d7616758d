//! The cost model, in one place: bytes moved, kernel launches and FLOPs of an op, weighed into
//! one number (time-like, in microseconds on a notional GPU), and the device limits that make a
//! fused kernel legal. Extraction and fusion reports both read it.

use crate::DeviceProfile;
use tessera_ir::{BinaryOp, Op, TensorType};

/// Microseconds one kernel launch costs (dispatch + barrier on a discrete GPU).
pub const LAUNCH_US: f64 = 4.0;
/// Bytes moved per microsecond (about 1 TB/s).
pub const BYTES_PER_US: f64 = 1.0e6;
/// FLOPs per microsecond (about 20 TFLOP/s).
pub const FLOPS_PER_US: f64 = 2.0e7;
/// Cost of a view that moves nothing (a reshape): strictly positive so extraction prefers fewer.
pub const VIEW_US: f64 = 1.0e-3;

/// What running something costs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Bytes read plus bytes written.
    pub bytes: f64,
    /// Kernel launches.
    pub launches: f64,
    /// Floating-point (or integer) operations.
    pub flops: f64,
}

impl Cost {
    /// The weighed total in microseconds.
    pub fn total(&self) -> f64 {
        self.launches * LAUNCH_US + self.bytes / BYTES_PER_US + self.flops / FLOPS_PER_US
    }

    /// Sum of two costs.
    pub fn plus(self, o: Cost) -> Cost {
        Cost {
            bytes: self.bytes + o.bytes,
            launches: self.launches + o.launches,
            flops: self.flops + o.flops,
        }
    }
}

fn bytes(t: &TensorType) -> f64 {
    (t.shape.numel() * t.dtype.size_bytes()) as f64
}

/// Cost of `op` run as its own kernel over operands of types `x`, producing `out`.
pub fn op_cost(op: &Op, x: &[TensorType], out: &TensorType) -> Cost {
    let io = x.iter().map(bytes).sum::<f64>() + bytes(out);
    let n = out.shape.numel() as f64;
    let kernel = |flops: f64| Cost { bytes: io, launches: 1.0, flops };
    match op {
        // Leaves are bound by the host: free.
        Op::Input { .. } | Op::Param { .. } | Op::State { .. } => Cost::default(),
        Op::Reshape { .. } => Cost { bytes: VIEW_US * BYTES_PER_US, launches: 0.0, flops: 0.0 },
        Op::Constant { .. } | Op::Iota { .. } => kernel(0.0),
        Op::Unary(_) | Op::Cast { .. } => kernel(n),
        // Division and pow cost several multiplies: strength reduction pays off.
        Op::Binary(BinaryOp::Div | BinaryOp::Pow) => kernel(8.0 * n),
        Op::Binary(_) | Op::Where => kernel(n),
        Op::Permute { .. } | Op::Broadcast { .. } | Op::Slice { .. } | Op::Concat { .. } => kernel(0.0),
        Op::Gather | Op::QuantGather { .. } => Cost { bytes: 2.0 * bytes(out), launches: 1.0, flops: 0.0 },
        Op::WriteSlice { .. } => {
            Cost { bytes: 2.0 * x.get(1).map(bytes).unwrap_or(0.0), launches: 1.0, flops: 0.0 }
        }
        Op::Reduce { .. } | Op::ArgMax { .. } => {
            kernel(x.first().map(|t| t.shape.numel() as f64).unwrap_or(0.0))
        }
        Op::Softmax { .. } | Op::RmsNorm { .. } | Op::LayerNorm { .. } | Op::Rope { .. } => kernel(5.0 * n),
        Op::RoundInt8 { .. } => kernel(4.0 * n),
        Op::MatMul => {
            let k = x.first().and_then(|t| t.shape.dims().last().copied()).unwrap_or(1) as f64;
            kernel(2.0 * n * k)
        }
        Op::QuantMatMul { .. } => {
            let k = x.first().and_then(|t| t.shape.dims().last().copied()).unwrap_or(1) as f64;
            kernel(2.0 * n * k)
        }
        Op::Attention { .. } => {
            let t = x.get(1).map(|k| k.shape.numel() as f64).unwrap_or(0.0);
            let q = x.first().map(|q| q.shape.numel() as f64).unwrap_or(0.0);
            kernel(4.0 * q * t.sqrt())
        }
    }
}

/// True when a kernel binding `storage_buffers` storage buffers and declaring `workgroup_bytes`
/// of workgroup memory may run on `profile`.
pub fn kernel_is_legal(profile: &DeviceProfile, storage_buffers: usize, workgroup_bytes: u32) -> bool {
    storage_buffers as u64 <= profile.limits.max_storage_buffers_per_shader_stage as u64
        && workgroup_bytes <= profile.limits.max_compute_workgroup_storage_size
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::DType;

    fn t(dims: &[usize]) -> TensorType {
        TensorType::new(dims.to_vec(), DType::F32)
    }

    #[test]
    fn elementwise_costs_a_launch_and_its_bytes() {
        let c = op_cost(&Op::Binary(BinaryOp::Add), &[t(&[256]), t(&[256])], &t(&[256]));
        assert_eq!(c.launches, 1.0);
        assert_eq!(c.bytes, 3.0 * 1024.0);
        assert!(c.total() > LAUNCH_US);
    }

    #[test]
    fn views_are_cheap_but_not_free() {
        let r = op_cost(&Op::Reshape { shape: [4, 4].into() }, &[t(&[16])], &t(&[4, 4]));
        let p = op_cost(&Op::Permute { perm: vec![1, 0] }, &[t(&[4, 4])], &t(&[4, 4]));
        assert!(r.total() > 0.0 && r.total() < p.total());
        let leaf =
            op_cost(&Op::Input { name: "x".into(), shape: [4].into(), dtype: DType::F32 }, &[], &t(&[4]));
        assert_eq!(leaf.total(), 0.0);
    }

    #[test]
    fn matmul_flops_grow_with_k() {
        let small = op_cost(&Op::MatMul, &[t(&[8, 4]), t(&[4, 8])], &t(&[8, 8]));
        let big = op_cost(&Op::MatMul, &[t(&[8, 400]), t(&[400, 8])], &t(&[8, 8]));
        assert_eq!(small.flops, 2.0 * 64.0 * 4.0);
        assert!(big.total() > small.total());
    }

    #[test]
    fn legality_reads_the_profile() {
        let mut p = DeviceProfile::portable();
        assert!(kernel_is_legal(&p, 8, 16384));
        assert!(!kernel_is_legal(&p, 9, 0));
        p.limits.max_storage_buffers_per_shader_stage = 4;
        assert!(!kernel_is_legal(&p, 5, 0));
    }
}
