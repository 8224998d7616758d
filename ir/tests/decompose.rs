//! Decompositions agree with the composite ops they replace, on seeded random and edge inputs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_ir::decompose::decompose;
use tessera_ir::interp::{Tensor, run};
use tessera_ir::{DType, Graph, IrError, NodeId, Op, OpClass, RopeStyle, Shape, float};

type Res = Result<(), IrError>;

/// How inputs are drawn.
#[derive(Clone, Copy)]
enum Fill {
    /// Uniform in `[-scale, scale]`.
    Uniform(f64),
    /// All zeros.
    Zeros,
}

fn random(shape: &Shape, dtype: DType, fill: Fill, rng: &mut StdRng) -> Tensor {
    let data = (0..shape.numel())
        .map(|_| match fill {
            Fill::Uniform(scale) => rng.random_range(-scale..=scale),
            Fill::Zeros => 0.0,
        })
        .collect();
    Tensor::new(shape.clone(), dtype, data)
}

/// Runs `g` and its decomposition on the same random bindings and compares every output.
fn check(g: &Graph, fills: &[Fill], seed: u64, tol: f64) -> Res {
    g.verify()?;
    let d = decompose(g)?;
    d.verify()?;
    assert!(d.nodes().iter().all(|n| n.op.class() != OpClass::Composite), "left a composite:\n{d}");
    let names = |g: &Graph, ids: Vec<NodeId>| ids.iter().map(|&i| g.node(i).op.clone()).collect::<Vec<_>>();
    assert_eq!(names(g, g.inputs()), names(&d, d.inputs()));
    assert_eq!(names(g, g.params()), names(&d, d.params()));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bindings = Vec::new();
    for (k, id) in g.inputs().into_iter().chain(g.params()).enumerate() {
        let node = g.node(id);
        let (Op::Input { name, .. } | Op::Param { name, .. }) = &node.op else { unreachable!() };
        let fill = fills.get(k).copied().unwrap_or(Fill::Uniform(1.0));
        bindings.push((name.as_str(), random(&node.shape, node.dtype, fill, &mut rng)));
    }
    let want = run(g, &bindings)?;
    let got = run(&d, &bindings)?;
    assert_eq!(want.len(), got.len());
    for (o, (w, gt)) in want.iter().zip(&got).enumerate() {
        assert_eq!((&w.shape, w.dtype), (&gt.shape, gt.dtype), "output {o}");
        for (i, (&a, &b)) in w.data.iter().zip(&gt.data).enumerate() {
            assert!(a.is_finite(), "output {o} element {i} of the composite is {a}\n{g}");
            let err = (a - b).abs();
            assert!(
                err <= tol * (1.0 + a.abs()),
                "output {o} element {i}: composite {a}, decomposed {b}\n{g}"
            );
        }
    }
    Ok(())
}

fn eps(x: f64) -> tessera_ir::Float {
    float(x).expect("not NaN")
}

fn single(op: Op, operands: &[(&str, Shape)], dtype: DType) -> Result<Graph, IrError> {
    let mut g = Graph::new();
    let ids = operands.iter().map(|(n, s)| g.input(n, s.clone(), dtype)).collect::<Vec<_>>();
    let y = g.add(op, &ids)?;
    g.add_output(y)?;
    Ok(g)
}

const F32_TOL: f64 = 2e-6;

#[test]
fn softmax_matches_on_awkward_shapes() -> Res {
    let cases: &[(&[usize], usize)] = &[
        (&[1], 0),
        (&[3], 0),
        (&[50], 0),
        (&[2, 3], 0),
        (&[2, 3], 1),
        (&[3, 50], 1),
        (&[2, 1, 3], 1),
        (&[4, 3, 5], 0),
    ];
    for (seed, &(dims, axis)) in cases.iter().enumerate() {
        let g = single(Op::Softmax { axis }, &[("x", Shape::from(dims))], DType::F32)?;
        check(&g, &[Fill::Uniform(3.0)], seed as u64, F32_TOL)?;
        // exp(90) overflows f32: only the max shift keeps the decomposition finite.
        check(&g, &[Fill::Uniform(1e4)], seed as u64 + 100, F32_TOL)?;
    }
    Ok(())
}

#[test]
fn rms_norm_matches_on_awkward_shapes_and_zeros() -> Res {
    for (seed, dims) in [&[1usize][..], &[3], &[50], &[3, 50], &[2, 3, 1], &[50, 3]].into_iter().enumerate() {
        let last = Shape::from([*dims.last().unwrap_or(&1)]);
        let g = single(Op::RmsNorm { eps: eps(1e-6) }, &[("x", Shape::from(dims)), ("w", last)], DType::F32)?;
        check(&g, &[Fill::Uniform(2.0), Fill::Uniform(1.0)], seed as u64, F32_TOL)?;
        check(&g, &[Fill::Zeros, Fill::Uniform(1.0)], seed as u64, F32_TOL)?;
        check(&g, &[Fill::Uniform(1e4), Fill::Uniform(1.0)], seed as u64, F32_TOL)?;
    }
    Ok(())
}

#[test]
fn layer_norm_matches_on_awkward_shapes_and_zeros() -> Res {
    for (seed, dims) in [&[1usize][..], &[3], &[50], &[3, 50], &[2, 3, 1], &[50, 3]].into_iter().enumerate() {
        let last = Shape::from([*dims.last().unwrap_or(&1)]);
        let operands = [("x", Shape::from(dims)), ("w", last.clone()), ("b", last)];
        let g = single(Op::LayerNorm { eps: eps(1e-5) }, &operands, DType::F32)?;
        check(&g, &[Fill::Uniform(2.0), Fill::Uniform(1.0), Fill::Uniform(1.0)], seed as u64, F32_TOL)?;
        check(&g, &[Fill::Zeros, Fill::Uniform(1.0), Fill::Uniform(1.0)], seed as u64, F32_TOL)?;
        check(&g, &[Fill::Uniform(100.0), Fill::Uniform(1.0), Fill::Uniform(1.0)], seed as u64, F32_TOL)?;
    }
    Ok(())
}

#[test]
fn rope_matches_for_both_styles() -> Res {
    // (x shape, cos/sin shape)
    let cases: &[(&[usize], &[usize])] = &[
        (&[2], &[1]),
        (&[3, 6], &[3]),
        (&[3, 6], &[3, 3]),
        (&[2, 3, 50], &[3, 25]),
        (&[1, 50], &[1, 25]),
        (&[4, 1, 50], &[25]),
    ];
    for (seed, &(x, cs)) in cases.iter().enumerate() {
        for style in [RopeStyle::HalfSplit, RopeStyle::Interleaved] {
            let operands = [("x", Shape::from(x)), ("cos", Shape::from(cs)), ("sin", Shape::from(cs))];
            let g = single(Op::Rope { style }, &operands, DType::F32)?;
            check(&g, &[Fill::Uniform(3.0)], seed as u64, F32_TOL)?;
        }
    }
    Ok(())
}

#[test]
fn f16_composites_expand_at_f32_precision() -> Res {
    let x = Shape::from([3, 50]);
    let w = Shape::from([50]);
    // One f16 ulp near 1 is ~1e-3; computing in f32 keeps the two within one rounding.
    let tol = 1e-3;
    check(&single(Op::Softmax { axis: 1 }, &[("x", x.clone())], DType::F16)?, &[Fill::Uniform(8.0)], 1, tol)?;
    // 200^2 = 40000 sums past f16's 65504 over 50 elements: only f32 accumulation survives.
    let g = single(Op::RmsNorm { eps: eps(1e-6) }, &[("x", x.clone()), ("w", w.clone())], DType::F16)?;
    check(&g, &[Fill::Uniform(200.0)], 2, tol)?;
    let g = single(
        Op::LayerNorm { eps: eps(1e-5) },
        &[("x", x.clone()), ("w", w.clone()), ("b", w)],
        DType::F16,
    )?;
    check(&g, &[Fill::Uniform(4.0)], 3, tol)?;
    let cs = Shape::from([3, 25]);
    let g = single(
        Op::Rope { style: RopeStyle::Interleaved },
        &[("x", x), ("cos", cs.clone()), ("sin", cs)],
        DType::F16,
    )?;
    check(&g, &[Fill::Uniform(4.0)], 4, tol)
}

#[test]
fn surrounding_graph_names_and_output_order_are_kept() -> Res {
    let mut g = Graph::new();
    let x = g.input("hidden", [3, 4], DType::F32);
    let w = g.param("model.norm.weight", [4], DType::F32);
    let m = g.param("lm_head.weight", [4, 5], DType::F32);
    let n = g.add(Op::RmsNorm { eps: eps(1e-5) }, &[x, w])?;
    let logits = g.add(Op::MatMul, &[n, m])?;
    let p = g.add(Op::Softmax { axis: 1 }, &[logits])?;
    let top = g.add(Op::ArgMax { axis: 1, keepdims: false }, &[p])?;
    g.set_outputs(vec![top, p, logits, x])?;
    check(&g, &[], 7, F32_TOL)?;
    let d = decompose(&g)?;
    // Graphs without composites come back unchanged.
    assert_eq!(decompose(&d)?, d);
    Ok(())
}

#[test]
fn attention_matches_masked_softmax_matmul() -> Res {
    // (B, Hq, Hkv, S, T, D, kv_len per batch, causal). Every query row sees at least one key.
    type Case = (usize, usize, usize, usize, usize, usize, &'static [f64], bool);
    let cases: &[Case] = &[
        (1, 1, 1, 1, 1, 2, &[1.0], true),
        (1, 4, 2, 3, 8, 6, &[5.0], true),
        (2, 3, 1, 1, 7, 4, &[7.0, 2.0], false),
        (1, 9, 3, 5, 12, 8, &[12.0], true),
        (2, 2, 2, 4, 4, 3, &[4.0, 3.0], false),
    ];
    for (seed, &(b, hq, hkv, s, t, d, lens, causal)) in cases.iter().enumerate() {
        let mut g = Graph::new();
        let q = g.input("q", [b, hq, s, d], DType::F32);
        let k = g.input("k", [b, hkv, t, d], DType::F32);
        let v = g.input("v", [b, hkv, t, d + 1], DType::F32);
        let len = g.input("kv_len", [b], DType::U32);
        let scale = float(1.0 / (d as f64).sqrt()).ok_or(IrError::Graph("NaN".into()))?;
        let y = g.add(Op::Attention { scale, causal }, &[q, k, v, len])?;
        g.add_output(y)?;
        let d2 = decompose(&g)?;
        d2.verify()?;
        assert!(d2.nodes().iter().all(|n| n.op.class() != OpClass::Composite), "left a composite:\n{d2}");
        let mut rng = StdRng::seed_from_u64(seed as u64);
        let bindings = [
            ("q", random(&Shape::from([b, hq, s, d]), DType::F32, Fill::Uniform(2.0), &mut rng)),
            ("k", random(&Shape::from([b, hkv, t, d]), DType::F32, Fill::Uniform(2.0), &mut rng)),
            ("v", random(&Shape::from([b, hkv, t, d + 1]), DType::F32, Fill::Uniform(2.0), &mut rng)),
            ("kv_len", Tensor::new([b], DType::U32, lens.to_vec())),
        ];
        let want = run(&g, &bindings)?;
        let got = run(&d2, &bindings)?;
        for (a, c) in want[0].data.iter().zip(&got[0].data) {
            assert!((a - c).abs() <= F32_TOL * (1.0 + a.abs()), "case {seed}: {a} vs {c}");
        }
    }
    Ok(())
}
