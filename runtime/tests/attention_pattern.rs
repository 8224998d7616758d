//! The attention spelled out in primitives (`softmax(q k^T * scale) v`) is recognized by the
//! `attention-pattern` rule: the optimized plan runs the fused attention kernel, in fewer
//! dispatches, and agrees with the interpreter and with the plan compiled without the rule.

mod common;

use tessera_compiler::{CompileOptions, compile};
use tessera_ir::interp::{self, Tensor};
use tessera_ir::{BinaryOp, DType, Graph, Op, Shape, float};
use tessera_runtime::Gpu;

const Q: [usize; 4] = [2, 3, 5, 8];
const K: [usize; 4] = [2, 3, 13, 8];
const V: [usize; 4] = [2, 3, 13, 6];

fn spelled_out_attention() -> Graph {
    let mut g = Graph::new();
    let q = g.input("q", Q, DType::F32);
    let k = g.input("k", K, DType::F32);
    let v = g.input("v", V, DType::F32);
    let kt = g.add(Op::Permute { perm: vec![0, 1, 3, 2] }, &[k]).expect("permute");
    let scores = g.add(Op::MatMul, &[q, kt]).expect("q k^T");
    let scale = float(1.0 / 8f64.sqrt()).expect("a number");
    let c = g
        .add(Op::Constant { value: scale, shape: Shape::from([2, 3, 5, 13]), dtype: DType::F32 }, &[])
        .expect("scale");
    let scaled = g.add(Op::Binary(BinaryOp::Mul), &[scores, c]).expect("scale");
    let p = g.add(Op::Softmax { axis: 3 }, &[scaled]).expect("softmax");
    let y = g.add(Op::MatMul, &[p, v]).expect("p v");
    g.add_output(y).expect("output");
    g
}

fn run(
    gpu: &Gpu,
    g: &Graph,
    inputs: &[(&str, Vec<f32>)],
    options: &CompileOptions,
) -> (Vec<f32>, Vec<String>) {
    let plan = compile(g, gpu.profile(), options).expect("compile");
    let mut exe = gpu.load(&plan).expect("load");
    for (name, values) in inputs {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        exe.write_input(name, &bytes).expect("input");
    }
    let out = exe.run().expect("run");
    let values = out[0].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let kernels = plan.dispatches.iter().map(|d| plan.kernels[d.kernel].name.clone()).collect();
    (values, kernels)
}

#[test]
fn spelled_out_attention_runs_as_one_attention_kernel() {
    let gpu = gpu_or_skip!();
    let g = spelled_out_attention();
    // A fixed xorshift stream in [-2, 2).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = |n: usize| {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect::<Vec<f32>>()
    };
    let inputs = [
        ("q", random(Q.iter().product())),
        ("k", random(K.iter().product())),
        ("v", random(V.iter().product())),
    ];
    let bindings: Vec<(&str, Tensor)> = inputs
        .iter()
        .zip([Q, K, V])
        .map(|((n, v), shape)| {
            (*n, Tensor::new(shape.to_vec(), DType::F32, v.iter().map(|&x| f64::from(x)).collect()))
        })
        .collect();
    let want = &interp::run(&g, &bindings).expect("interpreter")[0].data;

    let mut without = CompileOptions::default();
    without.rules.patterns = false;
    let (plain, plain_kernels) = run(&gpu, &g, &inputs, &without);
    let (fused, fused_kernels) = run(&gpu, &g, &inputs, &CompileOptions::default());
    assert!(fused_kernels.iter().any(|k| k.starts_with("attention")), "{fused_kernels:?}");
    assert!(!plain_kernels.iter().any(|k| k.starts_with("attention")), "{plain_kernels:?}");
    assert!(fused_kernels.len() < plain_kernels.len(), "{fused_kernels:?} vs {plain_kernels:?}");
    for (what, got) in [("with the rule", &fused), ("without it", &plain)] {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((f64::from(*g) - w).abs() <= 1e-5 * (1.0 + w.abs()), "{what}: [{i}] got {g}, want {w}");
        }
    }
}
