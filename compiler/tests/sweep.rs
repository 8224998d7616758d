//! Null tier: lowers every op x every legal dtype x awkward sizes on the portable and full
//! profiles and one of a fixed subgroup size; every emitted kernel must validate with naga
//! (compile validates each kernel).

use tessera_compiler::{BufferRole, CompileOptions, DeviceProfile, Plan, compile};
use tessera_ir::{
    BinaryOp, DType, Graph, NodeId, Op, ReduceKind, RopeStyle, Shape, SliceRange, TensorType, UnaryOp, float,
    infer,
};

const SIZES: [usize; 5] = [1, 3, 50, 783, 4096];

fn profiles() -> [(&'static str, DeviceProfile); 3] {
    [
        ("portable", DeviceProfile::portable()),
        ("full", DeviceProfile::full()),
        ("fixed-32", fixed_subgroups()),
    ]
}

/// An NVIDIA-like profile: one subgroup size (32), 48 KiB of workgroup memory, 1024 invocations,
/// where the gemvs of 4- and 8-bit weights take the subgroup-rows kernel.
fn fixed_subgroups() -> DeviceProfile {
    let mut p = DeviceProfile::full();
    p.subgroup_min_size = 32;
    p.subgroup_max_size = 32;
    p.limits.max_compute_workgroup_storage_size = 48 << 10;
    p.limits.max_compute_invocations_per_workgroup = 1024;
    p.limits.max_compute_workgroup_size_x = 1024;
    p
}

/// A graph applying `op` to fresh inputs of the given types; `None` when inference rejects it.
fn graph_of(op: Op, operands: &[TensorType]) -> Option<Graph> {
    infer(&op, operands).ok()?;
    let mut g = Graph::new();
    let ids: Vec<NodeId> = operands
        .iter()
        .enumerate()
        .map(|(i, t)| g.input(&format!("x{i}"), t.shape.clone(), t.dtype))
        .collect();
    let y = g.add(op, &ids).ok()?;
    g.add_output(y).ok()?;
    Some(g)
}

fn t(shape: &[usize], dtype: DType) -> TensorType {
    TensorType::new(Shape::from(shape), dtype)
}

fn compile_all(label: &str, g: &Graph) -> usize {
    let mut kernels = 0;
    for (name, profile) in profiles() {
        let plan: Plan = compile(g, &profile, &CompileOptions::default())
            .unwrap_or_else(|e| panic!("{label} on {name}: {e}"));
        kernels += plan.kernels.len();
        for d in &plan.dispatches {
            assert!(d.workgroups.iter().all(|&w| w <= profile.limits.max_compute_workgroups_per_dimension));
        }
    }
    kernels
}

/// One representative set of graphs per op, built by an exhaustive match: a new `Op` variant
/// does not compile until it is added here.
fn cases(op: &Op, n: usize, dtype: DType) -> Vec<(Op, Vec<TensorType>)> {
    let eps = float(1e-5).unwrap_or_default();
    match op {
        // Leaves are covered by `leaves_as_outputs_are_copied` (they need no operands), states by
        // `states_are_updated_in_place` (their only use is a write_slice).
        Op::Input { .. } | Op::Param { .. } | Op::State { .. } => Vec::new(),
        Op::Constant { .. } => vec![(
            Op::Constant { value: float(2.5).unwrap_or_default(), shape: Shape::from([n]), dtype },
            vec![],
        )],
        Op::Unary(_) => UnaryOp::ALL.iter().map(|&u| (Op::Unary(u), vec![t(&[n], dtype)])).collect(),
        Op::Binary(_) => BinaryOp::ALL
            .iter()
            .flat_map(|&b| {
                [
                    (Op::Binary(b), vec![t(&[n], dtype), t(&[n], dtype)]),
                    (Op::Binary(b), vec![t(&[2, n], dtype), t(&[n], dtype)]),
                    (Op::Binary(b), vec![t(&[n, 1], dtype), t(&[1, 3], dtype)]),
                ]
            })
            .collect(),
        Op::Where => vec![(Op::Where, vec![t(&[n, 1], DType::Bool), t(&[n, 2], dtype), t(&[2], dtype)])],
        Op::Cast { .. } => DType::ALL.iter().map(|&to| (Op::Cast { to }, vec![t(&[n], dtype)])).collect(),
        Op::Reduce { .. } => ReduceKind::ALL
            .iter()
            .flat_map(|&kind| {
                [
                    (Op::Reduce { kind, axes: vec![1], keepdims: false }, vec![t(&[3, n], dtype)]),
                    (Op::Reduce { kind, axes: vec![0, 2], keepdims: true }, vec![t(&[n, 3, 2], dtype)]),
                    (Op::Reduce { kind, axes: vec![0], keepdims: false }, vec![t(&[0, n], dtype)]),
                    (Op::Reduce { kind, axes: vec![], keepdims: false }, vec![t(&[n], dtype)]),
                ]
            })
            .collect(),
        Op::ArgMax { .. } => vec![
            (Op::ArgMax { axis: 1, keepdims: false }, vec![t(&[3, n], dtype)]),
            (Op::ArgMax { axis: 0, keepdims: true }, vec![t(&[n, 2], dtype)]),
        ],
        Op::MatMul => vec![
            (Op::MatMul, vec![t(&[n, 3], dtype), t(&[3, 50], dtype)]),
            (Op::MatMul, vec![t(&[2, 1, 3, n], dtype), t(&[4, n, 5], dtype)]),
        ],
        Op::Reshape { .. } => vec![(Op::Reshape { shape: Shape::from([n, 1]) }, vec![t(&[n], dtype)])],
        Op::Permute { .. } => vec![(Op::Permute { perm: vec![2, 0, 1] }, vec![t(&[n, 3, 2], dtype)])],
        Op::Broadcast { .. } => vec![(Op::Broadcast { shape: Shape::from([3, n]) }, vec![t(&[n], dtype)])],
        Op::Slice { .. } => vec![(
            Op::Slice {
                ranges: vec![
                    SliceRange { start: 1, stop: 3, step: 2 },
                    SliceRange { start: 0, stop: n, step: 3 },
                ],
            },
            vec![t(&[3, n], dtype)],
        )],
        Op::Concat { .. } => vec![
            (Op::Concat { axis: 1 }, vec![t(&[2, n], dtype), t(&[2, 3], dtype), t(&[2, 1], dtype)]),
            (Op::Concat { axis: 0 }, vec![t(&[n], dtype)]),
        ],
        Op::Gather => [DType::I32, DType::U32]
            .iter()
            .map(|&it| (Op::Gather, vec![t(&[n, 4], dtype), t(&[2, 3], it)]))
            .collect(),
        Op::Softmax { .. } => vec![
            (Op::Softmax { axis: 1 }, vec![t(&[2, n], dtype)]),
            (Op::Softmax { axis: 0 }, vec![t(&[n, 3], dtype)]),
        ],
        Op::RmsNorm { .. } => vec![(Op::RmsNorm { eps }, vec![t(&[3, n], dtype), t(&[n], dtype)])],
        Op::LayerNorm { .. } => {
            vec![(Op::LayerNorm { eps }, vec![t(&[3, n], dtype), t(&[n], dtype), t(&[n], dtype)])]
        }
        Op::Rope { .. } => [RopeStyle::HalfSplit, RopeStyle::Interleaved]
            .iter()
            .map(|&style| {
                (Op::Rope { style }, vec![t(&[3, 2 * n], dtype), t(&[2 * n / 2], dtype), t(&[3, n], dtype)])
            })
            .collect(),
        Op::Iota { .. } => vec![
            (Op::Iota { shape: Shape::from([3, n]), axis: 1, dtype }, vec![]),
            (Op::Iota { shape: Shape::from([n, 2, 3]), axis: 0, dtype }, vec![]),
        ],
        Op::WriteSlice { .. } => vec![
            (
                Op::WriteSlice { axis: 1 },
                vec![t(&[3, n], dtype), t(&[3, n.min(2)], dtype), t(&[1], DType::U32)],
            ),
            (Op::WriteSlice { axis: 0 }, vec![t(&[n, 2], dtype), t(&[1, 2], dtype), t(&[1], DType::U32)]),
        ],
        Op::Attention { .. } => [(1, 1, 8, 8), (1, n, 64, 64), (7, n, 64, 64), (3, 16, 8, n)]
            .iter()
            .flat_map(|&(s, kv, d, dv)| {
                [false, true].map(|causal| {
                    let op = Op::Attention { scale: float(0.125).unwrap_or_default(), causal };
                    let operands = vec![
                        t(&[1, 9, s, d], dtype),
                        t(&[1, 3, kv, d], dtype),
                        t(&[1, 3, kv, dv], dtype),
                        t(&[1], DType::U32),
                    ];
                    (op, operands)
                })
            })
            .collect(),
        Op::QuantMatMul { .. } => [(4, 32, 1), (8, 32, 3), (4, 16, 50), (8, 64, 8), (4, 64, 9)]
            .iter()
            .map(|&(bits, group_size, m)| {
                let k = 64;
                let w = t(&[n, k * bits as usize / 32], DType::U32);
                let g = t(&[n, k / group_size as usize], dtype);
                (Op::QuantMatMul { bits, group_size }, vec![t(&[m, k], dtype), w, g.clone(), g])
            })
            .collect(),
        Op::RoundInt8 { .. } => vec![(Op::RoundInt8 { block: 32 }, vec![t(&[n, 64], dtype)])],
        Op::QuantGather { .. } => [(4, 32, DType::I32), (8, 16, DType::U32)]
            .iter()
            .map(|&(bits, group_size, it)| {
                let k = 64;
                let w = t(&[n, k * bits as usize / 32], DType::U32);
                let g = t(&[n, k / group_size as usize], dtype);
                (Op::QuantGather { bits, group_size }, vec![w, g.clone(), g, t(&[2, 3], it)])
            })
            .collect(),
    }
}

fn every_op() -> Vec<Op> {
    let eps = float(1e-5).unwrap_or_default();
    vec![
        Op::Input { name: String::new(), shape: Shape::scalar(), dtype: DType::F32 },
        Op::Param { name: String::new(), shape: Shape::scalar(), dtype: DType::F32 },
        Op::Constant { value: eps, shape: Shape::scalar(), dtype: DType::F32 },
        Op::Unary(UnaryOp::Neg),
        Op::Binary(BinaryOp::Add),
        Op::Where,
        Op::Cast { to: DType::F32 },
        Op::Reduce { kind: ReduceKind::Sum, axes: vec![], keepdims: false },
        Op::ArgMax { axis: 0, keepdims: false },
        Op::MatMul,
        Op::Reshape { shape: Shape::scalar() },
        Op::Permute { perm: vec![] },
        Op::Broadcast { shape: Shape::scalar() },
        Op::Slice { ranges: vec![] },
        Op::Concat { axis: 0 },
        Op::Gather,
        Op::Softmax { axis: 0 },
        Op::RmsNorm { eps },
        Op::LayerNorm { eps },
        Op::Rope { style: RopeStyle::HalfSplit },
        Op::State { name: String::new(), shape: Shape::scalar(), dtype: DType::F32 },
        Op::Iota { shape: Shape::scalar(), axis: 0, dtype: DType::F32 },
        Op::WriteSlice { axis: 0 },
        Op::Attention { scale: eps, causal: false },
        Op::QuantMatMul { bits: 4, group_size: 32 },
        Op::QuantGather { bits: 4, group_size: 32 },
        Op::RoundInt8 { block: 32 },
    ]
}

#[test]
fn every_op_dtype_and_size_lowers_to_valid_kernels() {
    let mut graphs = 0;
    let mut kernels = 0;
    for op in every_op() {
        let mut covered = 0;
        for dtype in DType::ALL {
            for n in SIZES {
                for (op, operands) in cases(&op, n, dtype) {
                    let label = format!("{} {:?} {dtype} n={n}", op.mnemonic(), operands);
                    let Some(g) = graph_of(op, &operands) else { continue };
                    kernels += compile_all(&label, &g);
                    graphs += 1;
                    covered += 1;
                }
            }
        }
        let leaf = matches!(op, Op::Input { .. } | Op::Param { .. } | Op::State { .. });
        assert!(leaf || covered > 0, "{} was never lowered", op.mnemonic());
    }
    eprintln!("{graphs} graphs, {kernels} kernels validated");
    assert!(graphs > 1000);
}

#[test]
fn leaves_as_outputs_are_copied() {
    for dtype in DType::ALL {
        for n in SIZES {
            let mut g = Graph::new();
            let x = g.input("x", [n], dtype);
            let p = g.param("p", [n, 2], dtype);
            let _ = g.set_outputs(vec![x, p]);
            assert!(compile_all(&format!("leaves {dtype} n={n}"), &g) > 0);
        }
    }
}

#[test]
fn states_are_updated_in_place() {
    for dtype in [DType::F32, DType::F16] {
        for n in SIZES {
            // A KV cache of capacity n: the new rows are written into the state's own buffer, and
            // attention reads the updated buffer.
            let mut g = Graph::new();
            let state = Op::State { name: "k".into(), shape: Shape::from([1, 1, n, 8]), dtype };
            let cache = g.add(state, &[]).expect("state");
            let new = g.input("new", [1, 1, 1, 8], dtype);
            let pos = g.input("pos", [1], DType::U32);
            let q = g.input("q", [1, 2, 1, 8], dtype);
            let k = g.add(Op::WriteSlice { axis: 2 }, &[cache, new, pos]).expect("write_slice");
            let op = Op::Attention { scale: float(0.5).unwrap_or_default(), causal: true };
            let y = g.add(op, &[q, k, k, pos]).expect("attention");
            g.add_output(y).expect("output");
            for (name, profile) in profiles() {
                let plan = compile(&g, &profile, &CompileOptions::default())
                    .unwrap_or_else(|e| panic!("state {dtype} n={n} on {name}: {e}"));
                let state = plan.state("k").expect("state binding");
                assert_eq!(plan.buffers[state.buffer.0 as usize].role, BufferRole::State);
                let write = &plan.dispatches[0];
                assert_eq!(
                    write.buffers,
                    vec![
                        plan.input("new").expect("new").buffer,
                        plan.input("pos").expect("pos").buffer,
                        state.buffer
                    ]
                );
                assert!(plan.dispatches[1].buffers.contains(&state.buffer), "attention reads the state");
            }
        }
    }
}

#[test]
fn a_state_write_runs_even_when_no_output_reads_it() {
    let mut g = Graph::new();
    let state = Op::State { name: "cache".into(), shape: Shape::from([4, 3]), dtype: DType::F32 };
    let cache = g.add(state, &[]).expect("state");
    let row = g.input("row", [1, 3], DType::F32);
    let pos = g.input("pos", [1], DType::U32);
    let _ = g.add(Op::WriteSlice { axis: 0 }, &[cache, row, pos]).expect("write_slice");
    let y = g.add(Op::Unary(UnaryOp::Neg), &[row]).expect("neg");
    g.add_output(y).expect("output");
    let plan = compile(&g, &DeviceProfile::portable(), &CompileOptions::default()).expect("compile");
    let state = plan.state("cache").expect("state binding");
    assert_eq!(plan.dispatches.len(), 2);
    assert!(plan.dispatches.iter().any(|d| d.buffers.last() == Some(&state.buffer)));
}

/// The sweep above reaches the subgroup-rows gemv: the fixed-size profile picks it for 4- and
/// 8-bit weights, and profiles of several subgroup sizes keep the staged kernel.
#[test]
fn fixed_subgroup_profile_lowers_quantized_gemv_to_subgroup_rows() {
    for (bits, want_fixed) in [(4u32, "gemv4r"), (8, "gemv4r")] {
        let (k, n) = (4096, 4096);
        let operands = vec![
            t(&[1, k], DType::F32),
            t(&[n, k * bits as usize / 32], DType::U32),
            t(&[n, k / 32], DType::F16),
            t(&[n, k / 32], DType::F16),
        ];
        let g = graph_of(Op::QuantMatMul { bits, group_size: 32 }, &operands).expect("a quantized gemv");
        for (profile, want) in [(fixed_subgroups(), want_fixed), (DeviceProfile::full(), "gemv4s")] {
            let plan = compile(&g, &profile, &CompileOptions::default()).expect("compiles");
            let names: Vec<&str> = plan.kernels.iter().map(|k| k.name.as_str()).collect();
            assert!(names.iter().any(|n| n.contains(want)), "q{bits}: {names:?}, expected {want}");
        }
    }
}

/// x rounded to int8 before a quantized gemv: on the fixed-size profile the integer-dot kernel
/// takes it (one kernel, no round_int8 of its own) for 1..32 rows of x, one tile of x or several
/// (K = 14336 at 8 rows does not fit 48 KiB), 4- and 8-bit weights; every kernel validates.
#[test]
fn round_int8_fuses_into_the_integer_dot_gemv_on_fixed_subgroups() {
    for (bits, group_size) in [(4u32, 32u32), (4, 64), (8, 16), (8, 32)] {
        for (m, k, n) in
            [(1, 64, 3), (3, 576, 783), (8, 14336, 50), (5, 4096, 4096), (16, 4096, 6144), (32, 576, 64)]
        {
            let mut g = Graph::new();
            let x = g.input("x", [m, k], DType::F32);
            let x = g.add(Op::RoundInt8 { block: 32 }, &[x]).expect("round_int8");
            let w = g.param("w", [n, k * bits as usize / 32], DType::U32);
            let s = g.param("s", [n, k / group_size as usize], DType::F16);
            let b = g.param("b", [n, k / group_size as usize], DType::F16);
            let y = g.add(Op::QuantMatMul { bits, group_size }, &[x, w, s, b]).expect("quant_matmul");
            g.add_output(y).expect("output");
            let plan = compile(&g, &fixed_subgroups(), &CompileOptions::default()).expect("compiles");
            let names: Vec<&str> = plan.kernels.iter().map(|k| k.name.as_str()).collect();
            assert_eq!(names.len(), 1, "q{bits} g{group_size} [{m},{k}]x[{n},{k}]: {names:?}");
            assert!(names[0].contains("gemv4i8"), "{names:?}");
        }
    }
}
