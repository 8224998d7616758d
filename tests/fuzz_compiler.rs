//! Differential fuzzing of the optimizer: seeded random graphs (elementwise chains, reductions,
//! matmuls, softmax, movement ops, odd shapes) run in the interpreter, as an unoptimized plan and
//! as an optimized plan on the GPU; all three must agree. A failure prints the seed and the graph.
//! `TESSERA_FUZZ_CASES` sets the number of graphs (default 1000), `TESSERA_FUZZ_FROM` the first seed.

mod common;

use common::{gpu, gpu_without_subgroups, rng, run_gpu_with};
use rand::Rng;
use rand::rngs::StdRng;
use tessera::layers::compiler::{CompileOptions, DeviceProfile, compile};
use tessera::layers::ir::interp::{self, Tensor};
use tessera::layers::ir::{
    BinaryOp, DType, Graph, NodeId, Op, ReduceKind, RopeStyle, Shape, SliceRange, UnaryOp, float,
};

const UNARY: [UnaryOp; 9] = [
    UnaryOp::Neg,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Silu,
    UnaryOp::Relu,
    UnaryOp::Abs,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Exp,
];
const BINARY: [BinaryOp; 5] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Max, BinaryOp::Min];

fn dims(rng: &mut StdRng) -> Vec<usize> {
    let rank = rng.random_range(1..=3);
    (0..rank).map(|_| [1, 2, 3, 4, 5, 6, 7][rng.random_range(0..7)]).collect()
}

fn constant(g: &mut Graph, v: f64, shape: Vec<usize>) -> NodeId {
    g.add(
        Op::Constant { value: float(v).expect("finite"), shape: Shape::from(shape), dtype: DType::F32 },
        &[],
    )
    .expect("constant")
}

/// One random op over the values built so far; `None` when the pick does not type-check.
fn step(g: &mut Graph, rng: &mut StdRng, values: &[NodeId]) -> Option<NodeId> {
    let a = values[rng.random_range(0..values.len())];
    let b = values[rng.random_range(0..values.len())];
    let sa = g.node(a).shape.dims().to_vec();
    if sa.is_empty() {
        let c = constant(g, 0.5, vec![3]);
        return g.add(Op::Binary(BinaryOp::Add), &[a, c]).ok();
    }
    let op = match rng.random_range(0..15) {
        0..=2 => {
            // exp only of bounded values keeps results finite.
            let u = UNARY[rng.random_range(0..UNARY.len())];
            if u == UnaryOp::Exp {
                let t = g.add(Op::Unary(UnaryOp::Tanh), &[a]).ok()?;
                return g.add(Op::Unary(u), &[t]).ok();
            }
            return g.add(Op::Unary(u), &[a]).ok();
        }
        3..=5 => {
            let op = Op::Binary(BINARY[rng.random_range(0..BINARY.len())]);
            return g.add(op.clone(), &[a, b]).ok().or_else(|| {
                let c = constant(g, rng.random_range(-1.5..1.5), vec![]);
                g.add(op, &[a, c]).ok()
            });
        }
        6 => {
            let c = g.add(Op::Binary(BinaryOp::Gt), &[a, b]).ok()?;
            return g.add(Op::Where, &[c, a, b]).ok();
        }
        7 => {
            // Identities and strength reduction; no division by zero (WGSL leaves it indeterminate).
            let k = [BinaryOp::Mul, BinaryOp::Add, BinaryOp::Div][rng.random_range(0..3)];
            let v = if k == BinaryOp::Div {
                [4.0, 0.5][rng.random_range(0..2)]
            } else {
                [1.0, 0.0][rng.random_range(0..2)]
            };
            let c = constant(g, v, vec![]);
            return g.add(Op::Binary(k), &[a, c]).ok();
        }
        8 => {
            let axis = rng.random_range(0..sa.len());
            let kind = [ReduceKind::Sum, ReduceKind::Max, ReduceKind::Mean][rng.random_range(0..3)];
            Op::Reduce { kind, axes: vec![axis], keepdims: rng.random_bool(0.5) }
        }
        9 => {
            let mut perm: Vec<usize> = (0..sa.len()).collect();
            perm.reverse();
            if rng.random_bool(0.5) {
                perm.rotate_left(1);
            }
            Op::Permute { perm }
        }
        10 => {
            let n: usize = sa.iter().product();
            let shape = if rng.random_bool(0.5) || n % 2 == 1 { vec![n] } else { vec![2, n / 2] };
            Op::Reshape { shape: Shape::from(shape) }
        }
        11 => {
            let mut shape = sa.clone();
            shape.insert(0, [2, 3][rng.random_range(0..2)]);
            Op::Broadcast { shape: Shape::from(shape) }
        }
        12 => {
            let ranges = sa
                .iter()
                .map(|&d| {
                    let start = rng.random_range(0..d);
                    SliceRange { start, stop: d, step: rng.random_range(1..=2) }
                })
                .collect();
            Op::Slice { ranges }
        }
        13 if sa[sa.len() - 1].is_multiple_of(2) => {
            // RoPE with per-pair angles as weights (fused into its consumers as index math).
            let half = sa[sa.len() - 1] / 2;
            let cos = g.param(&format!("cos{}", g.len()), [half], DType::F32);
            let sin = g.param(&format!("sin{}", g.len()), [half], DType::F32);
            let style = if rng.random_bool(0.5) { RopeStyle::HalfSplit } else { RopeStyle::Interleaved };
            return g.add(Op::Rope { style }, &[a, cos, sin]).ok();
        }
        _ => {
            if sa.len() >= 2 && rng.random_bool(0.5) {
                Op::Softmax { axis: sa.len() - 1 }
            } else {
                // x [.., k] @ w [k, n] with a fresh param.
                let k = *sa.last()?;
                let name = format!("w{}", g.len());
                let w = g.param(&name, [k, rng.random_range(1..6)], DType::F32);
                let x = if sa.len() == 1 {
                    g.add(Op::Reshape { shape: Shape::from([1, k]) }, &[a]).ok()?
                } else {
                    a
                };
                return g.add(Op::MatMul, &[x, w]).ok();
            }
        }
    };
    g.add(op, &[a]).ok()
}

fn random_graph(seed: u64) -> Graph {
    let mut r = rng(seed);
    let mut g = Graph::new();
    let mut values = Vec::new();
    let shape = dims(&mut r);
    for i in 0..r.random_range(1..=3) {
        // Inputs share a shape often (so binaries meet), or take a suffix of it (broadcast).
        let s = if i == 0 || r.random_bool(0.6) {
            shape.clone()
        } else {
            shape[r.random_range(0..shape.len())..].to_vec()
        };
        values.push(g.input(&format!("x{i}"), s, DType::F32));
    }
    for _ in 0..r.random_range(3..10) {
        if let Some(v) = step(&mut g, &mut r, &values) {
            values.push(v);
        }
    }
    let last = *values.last().expect("values");
    g.add_output(last).expect("output");
    if values.len() > 3 && r.random_bool(0.5) {
        let other = values[r.random_range(1..values.len() - 1)];
        g.add_output(other).expect("output");
    }
    g
}

fn bindings(g: &Graph, seed: u64) -> Vec<(String, Tensor)> {
    let mut r = rng(seed ^ 0x5eed);
    g.nodes()
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name, shape, .. } | Op::Param { name, shape, .. } => {
                let data = (0..shape.numel()).map(|_| r.random_range(-2.0..2.0)).collect();
                Some((name.clone(), Tensor::new(shape.clone(), DType::F32, data)))
            }
            _ => None,
        })
        .collect()
}

fn close(want: &Tensor, got: &Tensor) -> bool {
    want.shape == got.shape
        && want
            .data
            .iter()
            .zip(&got.data)
            .all(|(w, x)| (w.is_nan() && x.is_nan()) || w == x || (w - x).abs() <= 1e-4 + 1e-3 * w.abs())
}

#[test]
fn random_graphs_agree_interpreter_unoptimized_optimized() {
    let Some(gpu) = gpu() else { return };
    let cases: u64 = std::env::var("TESSERA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let optimized = CompileOptions::default();
    let plain = CompileOptions::unoptimized();
    let (mut before, mut after) = (0usize, 0usize);
    let from: u64 = std::env::var("TESSERA_FUZZ_FROM").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    for seed in from..from + cases {
        let g = random_graph(seed);
        g.verify().unwrap_or_else(|e| panic!("seed {seed}: generator built a bad graph: {e}\n{g}"));
        let owned = bindings(&g, seed);
        let binds: Vec<(&str, Tensor)> = owned.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        let want = interp::run(&g, &binds).unwrap_or_else(|e| panic!("seed {seed}: interpreter: {e}\n{g}"));
        for (what, options) in [("unoptimized", &plain), ("optimized", &optimized)] {
            let got = run_gpu_with(gpu, &g, &binds, options)
                .unwrap_or_else(|e| panic!("seed {seed} {what}: {e}\n{g}"));
            for (k, (w, x)) in want.iter().zip(&got).enumerate() {
                assert!(
                    close(w, x),
                    "seed {seed} {what} output {k}:\nwant {:?}\n got {:?}\n{g}",
                    w.data,
                    x.data
                );
            }
        }
        before += compile(&g, gpu.profile(), &plain).map(|p| p.dispatches.len()).unwrap_or(0);
        after += compile(&g, gpu.profile(), &optimized).map(|p| p.dispatches.len()).unwrap_or(0);
    }
    eprintln!("{cases} random graphs agree; dispatches {before} unoptimized -> {after} optimized");
    assert!(after < before);
}

/// With only 4 storage buffers per kernel, fusion splits its groups and results still match.
#[test]
fn fusion_respects_a_four_buffer_profile() {
    let mut g = Graph::new();
    let xs: Vec<NodeId> = (0..6).map(|i| g.input(&format!("x{i}"), [3, 5], DType::F32)).collect();
    let mut acc = g.add(Op::Unary(UnaryOp::Tanh), &[xs[0]]).expect("tanh");
    for &x in &xs[1..] {
        let t = g.add(Op::Unary(UnaryOp::Sigmoid), &[x]).expect("sigmoid");
        acc = g.add(Op::Binary(BinaryOp::Mul), &[acc, t]).expect("mul");
    }
    g.add_output(acc).expect("output");
    let mut profile = DeviceProfile::full();
    profile.limits.max_storage_buffers_per_shader_stage = 4;
    let plan = compile(&g, &profile, &CompileOptions::default()).expect("compiles");
    for (d, k) in plan.dispatches.iter().zip(&plan.report) {
        assert!(d.buffers.len() <= 4, "{} binds {}", k.kernel, d.buffers.len());
    }
    assert!(plan.dispatches.len() < 11, "{} dispatches (11 unfused)", plan.dispatches.len());
    let Some(gpu) = gpu() else { return };
    let owned = bindings(&g, 1);
    let binds: Vec<(&str, Tensor)> = owned.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let want = interp::run(&g, &binds).expect("interpreter");
    // The GPU's own limits are larger: check the values of the 4-buffer plan by running it there.
    let mut exe = gpu.load(&plan).expect("loads");
    for (name, t) in &binds {
        exe.write_input(name, &common::encode(&t.data, DType::F32)).expect("input");
    }
    let outs = exe.run().expect("runs");
    let got = Tensor::new(vec![3, 5], DType::F32, common::decode(&outs[0], DType::F32));
    assert!(close(&want[0], &got), "want {:?}\n got {:?}", want[0].data, got.data);
}

/// RMSNorm fused into the prologue of the quantized gemvs reading it (rows <= 8), plus residual
/// and SwiGLU epilogues, against the interpreter for odd row counts and widths, every gemv kernel
/// and 4/8-bit codes.
#[test]
fn norm_prologue_and_epilogues_of_quantized_gemv_match() {
    let Some(gpu) = gpu() else { return };
    for seed in 0..16u64 {
        let mut r = rng(seed);
        let m = [1, 2, 3, 5, 8, 9][r.random_range(0..6)];
        let (bits, group) = [(4u32, 32usize), (4, 8), (8, 32), (4, 64)][seed as usize % 4];
        let k = [64, 128, 192, 576, 2112][r.random_range(0..5)];
        let n = r.random_range(1..40);
        let kernels =
            check_norm_gemvs(gpu, &mut r, Case { m, k, n, weights: Weights::Quant { bits, group } });
        if m <= 8 {
            assert_eq!(kernels.len(), 3, "rms into 3 gemvs, silu*mul and add as epilogues: {kernels:?}");
        }
    }
}

/// Each quantized matmul kernel, picked for these shapes on lavapipe's limits (32 KiB of
/// workgroup memory, subgroups of 8). With subgroups, 4- and 8-bit gemvs run the subgroup-rows
/// kernel (x staged in one tile; in several for K = 8224, 257 chunks, for 2 rows at K = 4096 and
/// for 8 rows of x). Without subgroups they run the staged kernel in one or several tiles, or load
/// x per chunk when no tile fits beside 8 rows; 8-code groups run the word gemv, and longer
/// prompts the tiled kernel with its short 16- and 32-row tiles and its full 64-row tile.
#[test]
fn every_quantized_matmul_kernel_matches() {
    let (Some(gpu), Some(plain)) = (gpu(), gpu_without_subgroups()) else { return };
    let q = |bits, group| Weights::Quant { bits, group };
    let cases = [
        (Case { m: 1, k: 2112, n: 17, weights: q(4, 32) }, "gemv4r", "gemv4s"),
        (Case { m: 1, k: 8224, n: 5, weights: q(4, 32) }, "gemv4r", "gemv4s"),
        (Case { m: 2, k: 4096, n: 75, weights: q(4, 32) }, "gemv4r", "gemv4s"),
        (Case { m: 3, k: 2112, n: 9, weights: q(8, 32) }, "gemv4r", "gemv4s"),
        (Case { m: 8, k: 2112, n: 6, weights: q(4, 32) }, "gemv4r", "gemv4_"),
        (Case { m: 2, k: 576, n: 11, weights: q(4, 8) }, "gemv_", "gemv_"),
        (
            Case { m: 9, k: 576, n: 70, weights: q(4, 32) },
            "quant_matmul_q4g32_f32_16x64",
            "quant_matmul_q4g32_f32_16x64",
        ),
        (
            Case { m: 17, k: 128, n: 33, weights: q(8, 32) },
            "quant_matmul_q8g32_f32_32x64",
            "quant_matmul_q8g32_f32_32x64",
        ),
        (
            Case { m: 33, k: 64, n: 9, weights: q(4, 32) },
            "quant_matmul_q4g32_f32_64x64",
            "quant_matmul_q4g32_f32_64x64",
        ),
    ];
    for (i, (case, with_subgroups, without)) in cases.into_iter().enumerate() {
        for (device, kernel) in [(gpu, with_subgroups), (plain, without)] {
            let kernels = check_norm_gemvs(device, &mut rng(100 + i as u64), case);
            assert!(
                kernels.iter().any(|k| k.contains(kernel)),
                "{case:?} runs {kernels:?}, expected {kernel} (subgroups: {})",
                device.profile().subgroups
            );
        }
    }
}

/// Dense weights (f32 or f16 `[N, K]` rows, read through a transpose and a cast) in the gemv
/// for up to 8 rows of x, with the same fused RMSNorm prologue and epilogues as the quantized
/// ones; more rows run the tiled matmul loading the transposed B tile along K (a 16- or 32-row
/// tile for short prompts, 64 rows beyond). Both chunk kernels:
/// x staged for rows of fewer chunks than invocations, x read from memory for longer rows.
#[test]
fn dense_gemv_and_transposed_matmul_match() {
    let Some(gpu) = gpu() else { return };
    for (i, dtype) in [DType::F32, DType::F16].into_iter().enumerate() {
        let d = Weights::Dense(dtype);
        let cases = [
            (Case { m: 1, k: 576, n: 37, weights: d }, "dense_gemv4s"),
            (Case { m: 5, k: 200, n: 12, weights: d }, "dense_gemv4s"),
            (Case { m: 1, k: 8224, n: 5, weights: d }, "dense_gemv4_"),
            (Case { m: 3, k: 2112, n: 9, weights: d }, "dense_gemv4_"),
            (Case { m: 8, k: 4096, n: 6, weights: d }, "dense_gemv4_"),
            (Case { m: 9, k: 200, n: 70, weights: d }, "matmul_f32_16x64"),
            (Case { m: 32, k: 72, n: 65, weights: d }, "matmul_f32_32x64"),
            (Case { m: 70, k: 64, n: 33, weights: d }, "matmul_f32_64x64"),
        ];
        for (j, (case, kernel)) in cases.into_iter().enumerate() {
            let kernels = check_norm_gemvs(gpu, &mut rng(200 + 10 * i as u64 + j as u64), case);
            assert!(
                kernels.iter().any(|k| k.contains(kernel)),
                "{case:?} runs {kernels:?}, expected {kernel}"
            );
            if case.m <= 8 {
                assert_eq!(kernels.len(), 3, "rms into 3 gemvs, silu*mul and add fused: {kernels:?}");
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    m: usize,
    k: usize,
    n: usize,
    weights: Weights,
}

/// How the test's linear weights are stored.
#[derive(Clone, Copy, Debug)]
enum Weights {
    /// Affine-quantized `bits`-bit codes, `group` per scale and bias.
    Quant { bits: u32, group: usize },
    /// Float `[N, K]` rows of this dtype, multiplied as `x @ cast(w)^T`.
    Dense(DType),
}

/// `down(silu(gate(x)) * up(x)) + res` with `x = rms_norm(h)`, on the GPU against the
/// interpreter; returns the names of the kernels the plan dispatches.
fn check_norm_gemvs(gpu: &tessera::layers::runtime::Gpu, r: &mut StdRng, case: Case) -> Vec<String> {
    let Case { m, k, n, weights } = case;
    let mut g = Graph::new();
    let h = g.input("h", [m, k], DType::F32);
    let w = g.param("norm", [k], DType::F32);
    let x = g.add(Op::RmsNorm { eps: float(1e-5).expect("eps") }, &[h, w]).expect("rms");
    let proj = |g: &mut Graph, i: usize| match weights {
        Weights::Quant { bits, group } => {
            let words = g.param(&format!("w{i}"), [n, k * bits as usize / 32], DType::U32);
            let sc = g.param(&format!("s{i}"), [n, k / group], DType::F32);
            let b = g.param(&format!("b{i}"), [n, k / group], DType::F32);
            let op = Op::QuantMatMul { bits, group_size: group as u32 };
            g.add(op, &[x, words, sc, b]).expect("quant_matmul")
        }
        Weights::Dense(dtype) => {
            let w = g.param(&format!("w{i}"), [n, k], dtype);
            let w = g.add(Op::Cast { to: DType::F32 }, &[w]).expect("cast");
            let wt = g.add(Op::Permute { perm: vec![1, 0] }, &[w]).expect("permute");
            g.add(Op::MatMul, &[x, wt]).expect("matmul")
        }
    };
    let gate = proj(&mut g, 0);
    let up = proj(&mut g, 1);
    let gate = g.add(Op::Unary(UnaryOp::Silu), &[gate]).expect("silu");
    let act = g.add(Op::Binary(BinaryOp::Mul), &[gate, up]).expect("mul");
    let res = g.input("res", [m, n], DType::F32);
    let down = proj(&mut g, 2);
    let out = g.add(Op::Binary(BinaryOp::Add), &[res, down]).expect("add");
    g.set_outputs(vec![act, out]).expect("outputs");
    let mut owned = Vec::new();
    for node in g.nodes() {
        if let Op::Input { name, shape, dtype } | Op::Param { name, shape, dtype } = &node.op {
            let data = (0..shape.numel())
                .map(|_| match dtype {
                    DType::U32 => r.random_range(0..u32::MAX) as f64,
                    _ if name.starts_with('s') => r.random_range(0.005..0.02),
                    _ if name.starts_with('w') => dtype.round(r.random_range(-0.1..0.1)),
                    _ => r.random_range(-1.0..1.0),
                })
                .collect();
            owned.push((name.clone(), Tensor::new(shape.clone(), *dtype, data)));
        }
    }
    let binds: Vec<(&str, Tensor)> = owned.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let want = interp::run(&g, &binds).expect("interpreter");
    let got = run_gpu_with(gpu, &g, &binds, &CompileOptions::default()).expect("gpu");
    for (w, x) in want.iter().zip(&got) {
        assert!(close(w, x), "{case:?}:\nwant {:?}\n got {:?}", w.data, x.data);
    }
    let plan = compile(&g, gpu.profile(), &CompileOptions::default()).expect("plan");
    plan.dispatches.iter().map(|d| plan.kernels[d.kernel].name.clone()).collect()
}

/// Gathered f16 rows (a dequantized row with f16 scales, a dense f16 table) widened to f32 by a
/// cast that the gather stores as its epilogue: one kernel each, and bit-equal to the
/// interpreter, which rounds the gather's result to f16 before the cast (the epilogue must too:
/// scale * code + bias is rarely an f16 value).
#[test]
fn f16_gathers_widened_in_their_epilogue_match_exactly() {
    let Some(gpu) = gpu() else { return };
    let mut r = rng(7);
    let (n, k) = (5usize, 64usize);
    let mut g = Graph::new();
    let idx = g.input("idx", [3], DType::U32);
    let w = g.param("w", [n, k / 8], DType::U32);
    let s = g.param("s", [n, k / 32], DType::F16);
    let b = g.param("b", [n, k / 32], DType::F16);
    let rows = g.add(Op::QuantGather { bits: 4, group_size: 32 }, &[w, s, b, idx]).expect("quant_gather");
    let quant = g.add(Op::Cast { to: DType::F32 }, &[rows]).expect("cast");
    let table = g.param("t", [n, k], DType::F16);
    let rows = g.add(Op::Gather, &[table, idx]).expect("gather");
    let dense = g.add(Op::Cast { to: DType::F32 }, &[rows]).expect("cast");
    g.set_outputs(vec![quant, dense]).expect("outputs");
    let half = |r: &mut StdRng, lo: f64, hi: f64| DType::F16.round(r.random_range(lo..hi));
    let values =
        |r: &mut StdRng, count: usize, f: &dyn Fn(&mut StdRng) -> f64| (0..count).map(|_| f(r)).collect();
    let binds = vec![
        ("idx", Tensor::new(vec![3], DType::U32, vec![4.0, 0.0, 2.0])),
        (
            "w",
            Tensor::new(
                vec![n, k / 8],
                DType::U32,
                values(&mut r, n * k / 8, &|r| r.random_range(0..u32::MAX) as f64),
            ),
        ),
        ("s", Tensor::new(vec![n, k / 32], DType::F16, values(&mut r, n * k / 32, &|r| half(r, 0.01, 0.1)))),
        ("b", Tensor::new(vec![n, k / 32], DType::F16, values(&mut r, n * k / 32, &|r| half(r, -0.1, 0.1)))),
        ("t", Tensor::new(vec![n, k], DType::F16, values(&mut r, n * k, &|r| half(r, -2.0, 2.0)))),
    ];
    let want = interp::run(&g, &binds).expect("interpreter");
    let got = run_gpu_with(gpu, &g, &binds, &CompileOptions::default()).expect("gpu");
    for (w, x) in want.iter().zip(&got) {
        assert_eq!(w.data, x.data, "the widened rows differ from the interpreter's");
    }
    let plan = compile(&g, gpu.profile(), &CompileOptions::default()).expect("plan");
    let kernels: Vec<&str> = plan.dispatches.iter().map(|d| plan.kernels[d.kernel].name.as_str()).collect();
    assert_eq!(kernels.len(), 2, "each cast is its gather's epilogue: {kernels:?}");
}
