//! GPU tier: every op x every legal dtype x awkward sizes {1, 3, 50, 783, 4096}, including
//! broadcast and non-contiguous operands, compiled and run on the GPU and compared with the
//! reference interpreter through the one tolerance table in `common`.

#[path = "../common/mod.rs"]
mod common;
mod model_ops;

use model_ops::{
    attention_cases, iota_cases, quant_gather_cases, quant_matmul_cases, round_int8_cases, state_cases,
    write_slice_cases,
};

use common::{Domain, compare, decode, encode, gpu, random, rng, run_gpu, tolerance};
use rand::rngs::StdRng;
use std::collections::HashMap;
use tessera::layers::compiler::{self, CompileOptions};
use tessera::layers::ir::interp::{self, Tensor};
use tessera::layers::ir::{
    BinaryOp, DType, Graph, NodeId, Op, ReduceKind, RopeStyle, Shape, SliceRange, TensorType, UnaryOp, float,
    infer,
};
use tessera::layers::runtime::{Gpu, GpuOptions};

const SIZES: [usize; 5] = [1, 3, 50, 783, 4096];

/// One graph with its input data.
struct Case {
    name: String,
    graph: Graph,
    bindings: Vec<(String, Tensor)>,
    /// The op under test (picks the tolerance row).
    op: Op,
    /// Elements accumulated per output value (widens float tolerance).
    reduce_len: usize,
}

/// Builds cases: inputs are declared with data, then the op under test is applied.
struct Builder<'a> {
    rng: &'a mut StdRng,
    graph: Graph,
    bindings: Vec<(String, Tensor)>,
}

impl<'a> Builder<'a> {
    fn new(rng: &'a mut StdRng) -> Builder<'a> {
        Builder { rng, graph: Graph::new(), bindings: Vec::new() }
    }

    fn input(&mut self, shape: &[usize], dtype: DType, domain: Domain) -> NodeId {
        let name = format!("x{}", self.bindings.len());
        let id = self.graph.input(&name, shape.to_vec(), dtype);
        let t = random(self.rng, shape, dtype, domain);
        self.bindings.push((name, t));
        id
    }

    /// An operand of logical `shape` stored transposed, so the op reads a permuted view.
    fn transposed_input(&mut self, shape: &[usize], dtype: DType, domain: Domain) -> NodeId {
        let mut stored = shape.to_vec();
        stored.reverse();
        let x = self.input(&stored, dtype, domain);
        let perm = (0..shape.len()).rev().collect();
        self.op(Op::Permute { perm }, &[x])
    }

    /// An operand of logical shape `[n]` read with stride 2 from a `[2n]` input.
    fn strided_input(&mut self, n: usize, dtype: DType, domain: Domain) -> NodeId {
        let x = self.input(&[2 * n], dtype, domain);
        self.op(Op::Slice { ranges: vec![SliceRange { start: 1, stop: 2 * n, step: 2 }] }, &[x])
    }

    fn op(&mut self, op: Op, inputs: &[NodeId]) -> NodeId {
        self.graph.add(op, inputs).unwrap_or_else(|e| panic!("building a test case: {e}"))
    }

    fn finish(mut self, name: String, op: Op, out: NodeId, reduce_len: usize) -> Case {
        self.graph.add_output(out).expect("output");
        Case { name, graph: self.graph, bindings: self.bindings, op, reduce_len }
    }
}

/// True when `op` accepts operands of these types.
fn legal(op: &Op, operands: &[(&[usize], DType)]) -> bool {
    let types = operands.iter().map(|(s, d)| TensorType::new(Shape::from(*s), *d)).collect::<Vec<_>>();
    infer(op, &types).is_ok()
}

/// One representative of every op variant and every unary/binary/reduce kind.
fn representatives() -> Vec<Op> {
    let f = |x: f64| float(x).expect("not NaN");
    let mut ops = vec![
        Op::Input { name: "x".into(), shape: Shape::scalar(), dtype: DType::F32 },
        Op::Param { name: "w".into(), shape: Shape::scalar(), dtype: DType::F32 },
        Op::Constant { value: f(1.0), shape: Shape::scalar(), dtype: DType::F32 },
        Op::Where,
        Op::Cast { to: DType::F32 },
        Op::ArgMax { axis: 0, keepdims: false },
        Op::MatMul,
        Op::Reshape { shape: Shape::scalar() },
        Op::Permute { perm: vec![] },
        Op::Broadcast { shape: Shape::scalar() },
        Op::Slice { ranges: vec![] },
        Op::Concat { axis: 0 },
        Op::Gather,
        Op::Softmax { axis: 0 },
        Op::RmsNorm { eps: f(1e-5) },
        Op::LayerNorm { eps: f(1e-5) },
        Op::Rope { style: RopeStyle::HalfSplit },
        Op::State { name: "cache".into(), shape: Shape::scalar(), dtype: DType::F32 },
        Op::Iota { shape: Shape::scalar(), axis: 0, dtype: DType::F32 },
        Op::WriteSlice { axis: 0 },
        Op::Attention { scale: f(1.0), causal: false },
        Op::QuantMatMul { bits: 4, group_size: 32 },
        Op::QuantGather { bits: 4, group_size: 32 },
        Op::RoundInt8 { block: 32 },
    ];
    ops.extend(UnaryOp::ALL.map(Op::Unary));
    ops.extend(BinaryOp::ALL.map(Op::Binary));
    ops.extend(ReduceKind::ALL.map(|kind| Op::Reduce { kind, axes: vec![0], keepdims: false }));
    ops
}

/// Index of the op's variant; the exhaustive match breaks the build when a variant is added.
fn variant_index(op: &Op) -> usize {
    match op {
        Op::Input { .. } => 0,
        Op::Param { .. } => 1,
        Op::Constant { .. } => 2,
        Op::Unary(_) => 3,
        Op::Binary(_) => 4,
        Op::Where => 5,
        Op::Cast { .. } => 6,
        Op::Reduce { .. } => 7,
        Op::ArgMax { .. } => 8,
        Op::MatMul => 9,
        Op::Reshape { .. } => 10,
        Op::Permute { .. } => 11,
        Op::Broadcast { .. } => 12,
        Op::Slice { .. } => 13,
        Op::Concat { .. } => 14,
        Op::Gather => 15,
        Op::Softmax { .. } => 16,
        Op::RmsNorm { .. } => 17,
        Op::LayerNorm { .. } => 18,
        Op::Rope { .. } => 19,
        Op::State { .. } => 20,
        Op::Iota { .. } => 21,
        Op::WriteSlice { .. } => 22,
        Op::Attention { .. } => 23,
        Op::QuantMatMul { .. } => 24,
        Op::QuantGather { .. } => 25,
        Op::RoundInt8 { .. } => 26,
    }
}
const VARIANTS: usize = 27;

/// Every conformance case for the op `rep` stands for.
fn sweep(rep: &Op, rng: &mut StdRng) -> Vec<Case> {
    match rep {
        Op::Input { .. } | Op::Param { .. } => leaf_cases(rep, rng),
        Op::Constant { .. } => constant_cases(rng),
        Op::Unary(u) => unary_cases(*u, rng),
        Op::Binary(b) => binary_cases(*b, rng),
        Op::Where => where_cases(rng),
        Op::Cast { .. } => cast_cases(rng),
        Op::Reduce { kind, .. } => reduce_cases(*kind, rng),
        Op::ArgMax { .. } => argmax_cases(rng),
        Op::MatMul => matmul_cases(rng),
        Op::Reshape { .. } | Op::Permute { .. } | Op::Broadcast { .. } => layout_cases(rep, rng),
        Op::Slice { .. } | Op::Concat { .. } | Op::Gather => selection_cases(rep, rng),
        Op::Softmax { .. } | Op::RmsNorm { .. } | Op::LayerNorm { .. } => norm_cases(rep, rng),
        Op::Rope { .. } => rope_cases(rng),
        Op::State { .. } => state_cases(rng),
        Op::Iota { .. } => iota_cases(rng),
        Op::WriteSlice { .. } => write_slice_cases(rng),
        Op::Attention { .. } => attention_cases(rng),
        Op::QuantMatMul { .. } => quant_matmul_cases(rng),
        Op::QuantGather { .. } => quant_gather_cases(rng),
        Op::RoundInt8 { .. } => round_int8_cases(rng),
    }
}

fn leaf_cases(rep: &Op, rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dtype in DType::ALL {
        for n in SIZES {
            let mut b = Builder::new(rng);
            let name = format!("x{}", b.bindings.len());
            let t = random(b.rng, &[n], dtype, Domain::Any);
            let id = match rep {
                Op::Param { .. } => b.graph.param(&name, [n], dtype),
                _ => b.graph.input(&name, [n], dtype),
            };
            b.bindings.push((name, t));
            cases.push(b.finish(format!("{} {dtype}[{n}]", rep.mnemonic()), rep.clone(), id, 1));
        }
    }
    cases
}

fn constant_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dtype in DType::ALL {
        for (value, n) in [(1.5, 1), (-3.0, 783), (f64::NEG_INFINITY, 50), (7.0, 4096)] {
            let op = Op::Constant { value: float(value).expect("not NaN"), shape: Shape::from([n]), dtype };
            if !legal(&op, &[]) {
                continue;
            }
            let mut b = Builder::new(rng);
            let id = b.op(op.clone(), &[]);
            cases.push(b.finish(format!("constant {value} {dtype}[{n}]"), op, id, 1));
        }
    }
    cases
}

fn unary_cases(u: UnaryOp, rng: &mut StdRng) -> Vec<Case> {
    let op = Op::Unary(u);
    let domain = match u {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt => Domain::Positive,
        UnaryOp::Recip => Domain::NonZero,
        _ => Domain::Any,
    };
    let mut cases = Vec::new();
    for dtype in DType::ALL.into_iter().filter(|&d| legal(&op, &[(&[1], d)])) {
        for n in SIZES {
            let mut b = Builder::new(rng);
            let x = b.input(&[n], dtype, domain);
            let y = b.op(op.clone(), &[x]);
            cases.push(b.finish(format!("{} {dtype}[{n}]", u.name()), op.clone(), y, 1));
        }
        let mut b = Builder::new(rng);
        let x = b.transposed_input(&[3, 50], dtype, domain);
        let y = b.op(op.clone(), &[x]);
        cases.push(b.finish(format!("{} {dtype}[3,50] transposed", u.name()), op.clone(), y, 1));
    }
    cases
}

fn binary_cases(bop: BinaryOp, rng: &mut StdRng) -> Vec<Case> {
    let op = Op::Binary(bop);
    let (lhs, rhs) = match bop {
        BinaryOp::Pow => (Domain::Positive, Domain::Small),
        BinaryOp::Div => (Domain::Any, Domain::NonZero),
        _ => (Domain::Any, Domain::Any),
    };
    let mut cases = Vec::new();
    for dtype in DType::ALL.into_iter().filter(|&d| legal(&op, &[(&[1], d), (&[1], d)])) {
        // Integer division by zero is defined (returns the dividend): include zeros.
        let rhs = if bop == BinaryOp::Div && dtype.is_int() { Domain::Small } else { rhs };
        let shapes: Vec<(Vec<usize>, Vec<usize>)> = SIZES
            .iter()
            .map(|&n| (vec![n], vec![n]))
            .chain([(vec![50, 1], vec![3]), (vec![], vec![783]), (vec![3, 1, 4], vec![5, 1])])
            .collect();
        for (sa, sb) in shapes {
            let mut b = Builder::new(rng);
            let x = b.input(&sa, dtype, lhs);
            let y = b.input(&sb, dtype, rhs);
            let z = b.op(op.clone(), &[x, y]);
            cases.push(b.finish(format!("{} {dtype}{sa:?}x{sb:?}", bop.name()), op.clone(), z, 1));
        }
        let mut b = Builder::new(rng);
        let x = b.strided_input(783, dtype, lhs);
        let y = b.transposed_input(&[783, 1], dtype, rhs);
        let y = b.op(Op::Reshape { shape: Shape::from([783]) }, &[y]);
        let z = b.op(op.clone(), &[x, y]);
        cases.push(b.finish(format!("{} {dtype}[783] strided", bop.name()), op.clone(), z, 1));
    }
    cases
}

fn where_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dtype in DType::ALL {
        for (sc, sa, sb) in [
            (vec![50], vec![50], vec![50]),
            (vec![783, 1], vec![1, 3], vec![]),
            (vec![4096], vec![1], vec![4096]),
        ] {
            let mut b = Builder::new(rng);
            let c = b.input(&sc, DType::Bool, Domain::Any);
            let x = b.input(&sa, dtype, Domain::Any);
            let y = b.input(&sb, dtype, Domain::Any);
            let z = b.op(Op::Where, &[c, x, y]);
            cases.push(b.finish(format!("where {dtype}{sc:?}{sa:?}{sb:?}"), Op::Where, z, 1));
        }
    }
    cases
}

fn cast_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for from in DType::ALL {
        for to in DType::ALL {
            for n in [3, 783] {
                let op = Op::Cast { to };
                let mut b = Builder::new(rng);
                let x = b.input(&[n], from, Domain::Any);
                let y = b.op(op.clone(), &[x]);
                cases.push(b.finish(format!("cast {from}->{to}[{n}]"), op, y, 1));
            }
        }
    }
    cases
}

fn reduce_cases(kind: ReduceKind, rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    let layouts: Vec<(Vec<usize>, Vec<usize>, bool)> = SIZES
        .iter()
        .map(|&n| (vec![n], vec![0], false))
        .chain([
            (vec![3, 783], vec![1], false),
            (vec![783, 3], vec![0], true),
            (vec![50, 3, 2], vec![0, 2], true),
            (vec![2, 3, 4], vec![0, 1, 2], false),
            (vec![3, 4096], vec![], false),
        ])
        .collect();
    for dtype in DType::ALL {
        for (shape, axes, keepdims) in &layouts {
            let op = Op::Reduce { kind, axes: axes.clone(), keepdims: *keepdims };
            if !legal(&op, &[(shape, dtype)]) {
                continue;
            }
            let len = axes.iter().map(|&a| shape[a]).product::<usize>();
            let mut b = Builder::new(rng);
            let x = b.input(shape, dtype, Domain::Any);
            let y = b.op(op.clone(), &[x]);
            cases.push(b.finish(
                format!("reduce.{} {dtype}{shape:?} axes {axes:?}", kind.name()),
                op,
                y,
                len,
            ));
        }
        let op = Op::Reduce { kind, axes: vec![1], keepdims: false };
        if legal(&op, &[(&[50, 3], dtype)]) {
            let mut b = Builder::new(rng);
            let x = b.transposed_input(&[50, 3], dtype, Domain::Any);
            let y = b.op(op.clone(), &[x]);
            cases.push(b.finish(format!("reduce.{} {dtype}[50,3] transposed", kind.name()), op, y, 3));
        }
    }
    cases
}

fn argmax_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dtype in [DType::F32, DType::F16, DType::I32, DType::U32] {
        for (shape, axis, keepdims) in
            [(vec![1], 0, false), (vec![4096], 0, false), (vec![3, 783], 1, false), (vec![50, 3], 0, true)]
        {
            let op = Op::ArgMax { axis, keepdims };
            let mut b = Builder::new(rng);
            let x = b.input(&shape, dtype, Domain::Any);
            let y = b.op(op.clone(), &[x]);
            cases.push(b.finish(format!("argmax {dtype}{shape:?} axis {axis}"), op, y, 1));
        }
    }
    cases
}

fn matmul_cases(rng: &mut StdRng) -> Vec<Case> {
    let shapes: [(&[usize], &[usize]); 9] = [
        (&[1, 1], &[1, 1]),
        (&[3, 50], &[50, 3]),
        (&[50, 3], &[3, 783]),
        (&[1, 4096], &[4096, 3]),
        (&[3, 783], &[783, 50]),
        (&[64, 64], &[64, 64]),
        (&[2, 3, 50], &[50, 7]),
        (&[2, 1, 5, 3], &[3, 3, 4]),
        (&[1, 576], &[576, 50]),
    ];
    let mut cases = Vec::new();
    for dtype in [DType::F32, DType::F16] {
        for (sa, sb) in shapes {
            let mut b = Builder::new(rng);
            let x = b.input(sa, dtype, Domain::Any);
            let y = b.input(sb, dtype, Domain::Any);
            let z = b.op(Op::MatMul, &[x, y]);
            let k = sa[sa.len() - 1];
            cases.push(b.finish(format!("matmul {dtype}{sa:?}x{sb:?}"), Op::MatMul, z, k));
        }
        let mut b = Builder::new(rng);
        let x = b.input(&[50, 3], dtype, Domain::Any);
        let y = b.transposed_input(&[3, 50], dtype, Domain::Any);
        let z = b.op(Op::MatMul, &[x, y]);
        cases.push(b.finish(format!("matmul {dtype}[50,3]x[3,50] transposed"), Op::MatMul, z, 3));
    }
    // Both operands views of one input: the kernel binds it once for both prologues.
    let mut b = Builder::new(rng);
    let x = b.input(&[40, 40], DType::F32, Domain::Any);
    let t = b.op(Op::Permute { perm: vec![1, 0] }, &[x]);
    let (all, odd) = (SliceRange { start: 0, stop: 40, step: 1 }, SliceRange { start: 1, stop: 40, step: 2 });
    let s = b.op(Op::Slice { ranges: vec![all, odd] }, &[x]);
    let z = b.op(Op::MatMul, &[t, s]);
    cases.push(b.finish("matmul x^T x[:, 1::2], one input read by both prologues".into(), Op::MatMul, z, 40));
    cases
}

fn layout_cases(rep: &Op, rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dtype in DType::ALL {
        for n in SIZES {
            let (op, shape): (Op, Vec<usize>) = match rep {
                Op::Reshape { .. } => (Op::Reshape { shape: Shape::from([1, n, 1]) }, vec![n]),
                Op::Permute { .. } => (Op::Permute { perm: vec![2, 0, 1] }, vec![3, n, 2]),
                _ => (Op::Broadcast { shape: Shape::from([2, n, 3]) }, vec![n, 1]),
            };
            let mut b = Builder::new(rng);
            let x = b.input(&shape, dtype, Domain::Any);
            let y = b.op(op.clone(), &[x]);
            cases.push(b.finish(format!("{} {dtype}{shape:?}", op.mnemonic()), op, y, 1));
        }
        let op = match rep {
            Op::Reshape { .. } => Op::Reshape { shape: Shape::from([150]) },
            Op::Permute { .. } => Op::Permute { perm: vec![1, 0] },
            _ => Op::Broadcast { shape: Shape::from([4, 3, 50]) },
        };
        let mut b = Builder::new(rng);
        let x = b.transposed_input(&[3, 50], dtype, Domain::Any);
        let y = b.op(op.clone(), &[x]);
        cases.push(b.finish(format!("{} {dtype}[3,50] transposed", op.mnemonic()), op, y, 1));
    }
    cases
}

fn selection_cases(rep: &Op, rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dtype in DType::ALL {
        for n in SIZES {
            let mut b = Builder::new(rng);
            let (op, out) = match rep {
                Op::Slice { .. } => {
                    let x = b.input(&[3, n], dtype, Domain::Any);
                    let op = Op::Slice {
                        ranges: vec![
                            SliceRange { start: 0, stop: 3, step: 2 },
                            SliceRange { start: n / 3, stop: n, step: 3 },
                        ],
                    };
                    (op.clone(), b.op(op, &[x]))
                }
                Op::Concat { .. } => {
                    let xs = [2, 5, 1].map(|w| b.input(&[n, w], dtype, Domain::Any));
                    let op = Op::Concat { axis: 1 };
                    (op.clone(), b.op(op, &xs))
                }
                _ => {
                    let table = b.input(&[50, 3], dtype, Domain::Any);
                    let name = format!("x{}", b.bindings.len());
                    let idx = b.graph.input(&name, [n], DType::I32);
                    let values = (0..n).map(|_| rand::Rng::random_range(b.rng, -3..60) as f64).collect();
                    b.bindings.push((name, Tensor::new([n], DType::I32, values)));
                    (Op::Gather, b.op(Op::Gather, &[table, idx]))
                }
            };
            cases.push(b.finish(format!("{} {dtype} n={n}", op.mnemonic()), op, out, 1));
        }
    }
    // Concat along axis 0, more inputs than the portable binding limit allows in one kernel.
    let mut b = Builder::new(rng);
    let xs = (0..12).map(|i| b.input(&[i + 1, 50], DType::F32, Domain::Any)).collect::<Vec<_>>();
    let op = Op::Concat { axis: 0 };
    let out = b.op(op.clone(), &xs);
    cases.push(b.finish("concat f32 12 inputs axis 0".into(), op, out, 1));
    // Gather with u32 indices from a 1-D table, read through a transposed table.
    let mut b = Builder::new(rng);
    let table = b.transposed_input(&[783, 2], DType::F32, Domain::Any);
    let idx = b.input(&[50], DType::U32, Domain::Any);
    let out = b.op(Op::Gather, &[table, idx]);
    cases.push(b.finish("gather f32 u32 indices transposed table".into(), Op::Gather, out, 1));
    cases
}

fn norm_cases(rep: &Op, rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    let eps = float(1e-5).expect("not NaN");
    for dtype in [DType::F32, DType::F16] {
        for n in SIZES {
            let mut b = Builder::new(rng);
            let (op, out, len) = match rep {
                Op::Softmax { .. } => {
                    let x = b.input(&[3, n], dtype, Domain::Any);
                    let op = Op::Softmax { axis: 1 };
                    (op.clone(), b.op(op, &[x]), n)
                }
                Op::RmsNorm { .. } => {
                    let x = b.input(&[3, n], dtype, Domain::Any);
                    let w = b.input(&[n], dtype, Domain::Any);
                    let op = Op::RmsNorm { eps };
                    (op.clone(), b.op(op, &[x, w]), n)
                }
                _ => {
                    let x = b.input(&[3, n], dtype, Domain::Any);
                    let w = b.input(&[n], dtype, Domain::Any);
                    let bias = b.input(&[n], dtype, Domain::Any);
                    let op = Op::LayerNorm { eps };
                    (op.clone(), b.op(op, &[x, w, bias]), n)
                }
            };
            cases.push(b.finish(format!("{} {dtype}[3,{n}]", op.mnemonic()), op, out, len));
        }
    }
    if let Op::Softmax { .. } = rep {
        for dtype in [DType::F32, DType::F16] {
            let mut b = Builder::new(rng);
            let x = b.transposed_input(&[783, 3], dtype, Domain::Any);
            let op = Op::Softmax { axis: 0 };
            let out = b.op(op.clone(), &[x]);
            cases.push(b.finish(format!("softmax {dtype}[783,3] axis 0 transposed"), op, out, 783));
        }
    }
    cases
}

fn rope_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for style in [RopeStyle::HalfSplit, RopeStyle::Interleaved] {
        for dtype in [DType::F32, DType::F16] {
            for (heads, seq, dim) in [(1, 1, 2), (3, 50, 64), (2, 3, 6), (1, 783, 8)] {
                let mut b = Builder::new(rng);
                let x = b.input(&[heads, seq, dim], dtype, Domain::Any);
                let cos = b.input(&[seq, dim / 2], dtype, Domain::Any);
                let sin = b.input(&[seq, dim / 2], dtype, Domain::Any);
                let op = Op::Rope { style };
                let out = b.op(op.clone(), &[x, cos, sin]);
                cases.push(b.finish(
                    format!("rope {} {dtype}[{heads},{seq},{dim}]", style.name()),
                    op,
                    out,
                    2,
                ));
            }
        }
    }
    cases
}

#[test]
fn every_op_variant_has_conformance_cases() {
    let reps = representatives();
    let mut covered = [false; VARIANTS];
    let mut rng = rng(0);
    for rep in &reps {
        assert!(variant_index(rep) < VARIANTS, "VARIANTS is out of date");
        assert!(!sweep(rep, &mut rng).is_empty(), "no conformance case for {}", rep.mnemonic());
        covered[variant_index(rep)] = true;
    }
    assert!(covered.iter().all(|&c| c), "representatives() misses an Op variant: {covered:?}");
}

#[test]
fn gpu_matches_interpreter_for_every_op() {
    let Some(gpu) = gpu() else { return };
    check_every_op(gpu, "default");
}

/// The fallbacks stay tested: the same sweep on a device opened without f16 (f16 values stored
/// as f32) and without subgroups (workgroup-memory reductions), as TESSERA_NO_F16 /
/// TESSERA_NO_SUBGROUPS force.
#[test]
fn gpu_matches_interpreter_without_f16_and_subgroups() {
    let Some(_) = gpu() else { return };
    let options =
        GpuOptions { no_f16: true, no_subgroups: true, ..GpuOptions::from_env().expect("env options") };
    let fallback = Gpu::new(&options).expect("a fallback device on the same adapter");
    assert!(!fallback.profile().f16 && !fallback.profile().subgroups);
    check_every_op(&fallback, "no f16, no subgroups");
}

fn check_every_op(gpu: &Gpu, label: &str) {
    let seed = 0x7e55e7a;
    let mut rng = rng(seed);
    let (mut passed, mut failures) = (0, Vec::new());
    for rep in representatives() {
        for case in sweep(&rep, &mut rng) {
            let bindings = case.bindings.iter().map(|(n, t)| (n.as_str(), t.clone())).collect::<Vec<_>>();
            let want = match interp::run(&case.graph, &bindings) {
                Ok(w) => w,
                Err(e) => {
                    failures.push(format!("{}: interpreter: {e}", case.name));
                    continue;
                }
            };
            let result = run_gpu(gpu, &case.graph, &bindings).and_then(|got| {
                let tol = tolerance(&case.op, want[0].dtype, case.reduce_len);
                compare(&got[0], &want[0], tol)
            });
            match result {
                Ok(()) => passed += 1,
                Err(e) => failures.push(format!("{}: {e}\n{}", case.name, case.graph)),
            }
        }
    }
    eprintln!("conformance ({label}): {passed} cases passed, {} failed (seed {seed:#x})", failures.len());
    assert!(
        failures.is_empty(),
        "{} conformance failures ({label}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A decode loop: one loaded plan run step after step keeps its KV cache states, as the
/// interpreter does with `run_with_states`, also with RoPE applied to the keys on their way into
/// the cache (the table recomputed inside the kernels applying it).
#[test]
fn kv_cache_states_persist_across_runs() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rng(0x5747e);
    for (dtype, rope) in [(DType::F32, false), (DType::F16, false), (DType::F32, true)] {
        let mut g = Graph::new();
        let state = |name: &str| Op::State { name: name.into(), shape: Shape::from([1, 2, 16, 8]), dtype };
        let q = g.input("q", [1, 4, 1, 8], dtype);
        let k_new = g.input("k_new", [1, 2, 1, 8], dtype);
        let v_new = g.input("v_new", [1, 2, 1, 8], dtype);
        let pos = g.input("pos", [1], DType::U32);
        let len = g.input("len", [1], DType::U32);
        let inv_freq = rope.then(|| g.input("inv_freq", [1, 4], DType::F32));
        let mut add = |op: Op, inputs: &[NodeId]| g.add(op, inputs).expect("building the decode graph");
        let k_new = if let Some(inv_freq) = inv_freq {
            let angles = add(Op::Cast { to: DType::F32 }, &[pos]);
            let angles = add(Op::Reshape { shape: Shape::from([1, 1]) }, &[angles]);
            let angles = add(Op::Binary(BinaryOp::Mul), &[angles, inv_freq]);
            let cos = add(Op::Unary(UnaryOp::Cos), &[angles]);
            let sin = add(Op::Unary(UnaryOp::Sin), &[angles]);
            add(Op::Rope { style: RopeStyle::HalfSplit }, &[k_new, cos, sin])
        } else {
            k_new
        };
        let (k_cache, v_cache) = (add(state("k"), &[]), add(state("v"), &[]));
        let k = add(Op::WriteSlice { axis: 2 }, &[k_cache, k_new, pos]);
        let v = add(Op::WriteSlice { axis: 2 }, &[v_cache, v_new, pos]);
        let op = Op::Attention { scale: float(0.35).expect("not NaN"), causal: true };
        let y = add(op.clone(), &[q, k, v, len]);
        g.add_output(y).expect("output");
        let plan = compiler::compile(&g, gpu.profile(), &CompileOptions::default()).expect("compile");
        let mut exe = gpu.load(&plan).expect("load");
        let mut states = HashMap::new();
        let freqs: Vec<f64> = (0..4).map(|i| 0.5f64.powi(i)).collect();
        for step in 0..6u32 {
            let mut bindings = vec![
                ("q", random(&mut rng, &[1, 4, 1, 8], dtype, Domain::Any)),
                ("k_new", random(&mut rng, &[1, 2, 1, 8], dtype, Domain::Any)),
                ("v_new", random(&mut rng, &[1, 2, 1, 8], dtype, Domain::Any)),
                ("pos", Tensor::new([1], DType::U32, vec![step as f64])),
                ("len", Tensor::new([1], DType::U32, vec![step as f64 + 1.0])),
            ];
            if rope {
                bindings.push(("inv_freq", Tensor::new([1, 4], DType::F32, freqs.clone())));
            }
            let want = interp::run_with_states(&g, &bindings, &mut states).expect("interpreter");
            for (name, t) in &bindings {
                let b = plan.input(name).expect("input binding");
                exe.write_input(name, &encode(&t.data, b.storage)).expect("write input");
            }
            let out = exe.run().expect("run");
            let b = &plan.outputs[0];
            let got = Tensor::new(
                b.shape.clone(),
                b.dtype,
                decode(&out[0], b.storage)[..want[0].data.len()].to_vec(),
            );
            compare(&got, &want[0], tolerance(&op, dtype, 16))
                .unwrap_or_else(|e| panic!("decode step {step} {dtype}, rope {rope}: {e}"));
        }
    }
}
