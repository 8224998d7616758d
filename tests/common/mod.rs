//! Shared test support: the GPU (a failure under CI when missing, never a silent skip),
//! seeded random tensors, running a graph on the GPU, and the one tolerance table.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::OnceLock;
use tessera::layers::compiler::{self, CompileOptions};
use tessera::layers::ir::interp::Tensor;
use tessera::layers::ir::{BinaryOp, DType, Graph, Op, UnaryOp};
use tessera::layers::runtime::{Gpu, GpuOptions};

/// The test GPU. Without an adapter: panics when `CI` is set, else returns None (skip).
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::from_env() {
        Ok(g) => Some(g),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter under CI: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: no GPU adapter ({e}); install mesa-vulkan-drivers");
            None
        }
    })
    .as_ref()
}

/// The test GPU's adapter opened without subgroups (as `TESSERA_NO_SUBGROUPS` forces), for the
/// workgroup-memory fallbacks of the subgroup kernels; None where `gpu()` is.
pub fn gpu_without_subgroups() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| {
        gpu()?;
        let options = GpuOptions { no_subgroups: true, ..GpuOptions::from_env().expect("env options") };
        Some(Gpu::new(&options).expect("a device without subgroups on the same adapter"))
    })
    .as_ref()
}

/// A seeded generator (every failure message prints the seed).
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Values an op can take without leaving its domain.
#[derive(Clone, Copy, Debug)]
pub enum Domain {
    /// Anything in [-2, 2] (ints: [-100, 100], u32: [0, 200]).
    Any,
    /// Strictly positive (log, sqrt, pow bases).
    Positive,
    /// Away from zero (recip, float div).
    NonZero,
    /// Small ints including zero (int div), [-1, 1] floats for pow exponents.
    Small,
}

/// Random tensor of `shape`/`dtype` in `domain`.
pub fn random(rng: &mut StdRng, shape: &[usize], dtype: DType, domain: Domain) -> Tensor {
    let n = shape.iter().product::<usize>();
    let data = (0..n)
        .map(|_| match (dtype, domain) {
            (DType::Bool, _) => f64::from(rng.random_bool(0.5)),
            (DType::F32 | DType::F16, Domain::Any) => rng.random_range(-2.0..2.0),
            (DType::F32 | DType::F16, Domain::Positive) => rng.random_range(0.1..3.0),
            (DType::F32 | DType::F16, Domain::NonZero) => {
                let m: f64 = rng.random_range(0.25..2.0);
                if rng.random_bool(0.5) { m } else { -m }
            }
            (DType::F32 | DType::F16, Domain::Small) => rng.random_range(-1.0..1.0),
            (DType::I32, Domain::Small) => rng.random_range(-5..=5) as f64,
            (DType::I32, _) => rng.random_range(-100..=100) as f64,
            (DType::U32, Domain::Small) => rng.random_range(0..=5) as f64,
            (DType::U32, _) => rng.random_range(0..=200) as f64,
        })
        .collect();
    Tensor::new(shape.to_vec(), dtype, data)
}

/// Compiles `graph` for `gpu`, runs it with `bindings`, returns outputs as interpreter tensors.
pub fn run_gpu(gpu: &Gpu, graph: &Graph, bindings: &[(&str, Tensor)]) -> Result<Vec<Tensor>, String> {
    run_gpu_with(gpu, graph, bindings, &CompileOptions::default())
}

/// As [`run_gpu`] with explicit compile options.
pub fn run_gpu_with(
    gpu: &Gpu,
    graph: &Graph,
    bindings: &[(&str, Tensor)],
    options: &CompileOptions,
) -> Result<Vec<Tensor>, String> {
    // Shaped as for a GPU (parallelism unknown), so that lavapipe also runs the kernels a GPU
    // would, such as the split decode attention; the profile's parallelism only shapes work.
    let profile = compiler::DeviceProfile { parallelism: 0, ..gpu.profile().clone() };
    let plan = compiler::compile(graph, &profile, options).map_err(|e| format!("compile: {e}"))?;
    let mut exe = gpu.load(&plan).map_err(|e| format!("load: {e}"))?;
    for (name, t) in bindings {
        if let Some(b) = plan.input(name) {
            exe.write_input(name, &encode(&t.data, b.storage)).map_err(|e| format!("write {name}: {e}"))?;
        } else if let Some(b) = plan.param(name) {
            exe.write_param(name, &encode(&t.data, b.storage)).map_err(|e| format!("write {name}: {e}"))?;
        }
    }
    let outs = exe.run().map_err(|e| format!("run: {e}"))?;
    Ok(outs
        .iter()
        .zip(&plan.outputs)
        .map(|(bytes, b)| {
            let n = b.shape.iter().product::<usize>();
            let values = decode(bytes, b.storage).into_iter().take(n).collect();
            Tensor::new(b.shape.clone(), b.dtype, values)
        })
        .collect())
}

/// Little-endian bytes of `values` as `dtype` (Bool as u32): the facade's own host encoding.
pub fn encode(values: &[f64], dtype: DType) -> Vec<u8> {
    tessera::encode(values.iter().copied(), dtype)
}

/// Values of little-endian `dtype` bytes.
pub fn decode(bytes: &[u8], dtype: DType) -> Vec<f64> {
    tessera::decode(bytes, dtype)
}

/// Absolute and relative tolerance: `|got - want| <= atol + rtol * |want|`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Absolute part.
    pub atol: f64,
    /// Relative part.
    pub rtol: f64,
}

/// The one tolerance table: by result dtype, with per-op overrides for transcendental
/// functions and for long accumulations (`reduce_len` elements summed per output).
pub fn tolerance(op: &Op, dtype: DType, reduce_len: usize) -> Tolerance {
    // Quantized weights reach scale * (2^bits - 1): with the test scales (up to 0.1) 8-bit terms
    // are ~16x the unit-sized terms the accumulation rule assumes, and so is f32 rounding.
    let magnitude = match op {
        Op::QuantMatMul { bits, .. } => ((1u64 << bits) as f64 / 16.0).max(1.0),
        _ => 1.0,
    };
    let accumulation = (reduce_len.max(1) as f64).sqrt() * magnitude;
    match dtype {
        DType::I32 | DType::U32 | DType::Bool => Tolerance { atol: 0.0, rtol: 0.0 },
        DType::F16 => Tolerance { atol: 2e-3 * accumulation, rtol: 2e-2 },
        DType::F32 => {
            let transcendental = match op {
                Op::Unary(u) => !matches!(u, UnaryOp::Neg | UnaryOp::Relu | UnaryOp::Abs),
                Op::Binary(b) => *b == BinaryOp::Pow,
                _ => false,
            };
            if transcendental {
                Tolerance { atol: 2e-6, rtol: 2e-5 }
            } else {
                Tolerance { atol: 1e-6 * accumulation, rtol: 2e-5 }
            }
        }
    }
}

/// Compares shapes and dtypes first, then values; the message names the first mismatches.
pub fn compare(got: &Tensor, want: &Tensor, tol: Tolerance) -> Result<(), String> {
    if got.shape != want.shape || got.dtype != want.dtype {
        return Err(format!("got {}{}, want {}{}", got.dtype, got.shape, want.dtype, want.shape));
    }
    let mut bad = Vec::new();
    for (i, (&g, &w)) in got.data.iter().zip(&want.data).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= tol.atol + tol.rtol * w.abs()
        };
        if !ok {
            bad.push(format!("[{i}] got {g} want {w}"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        let n = bad.len();
        bad.truncate(5);
        Err(format!("{n} of {} values differ ({tol:?}): {}", want.data.len(), bad.join(", ")))
    }
}
