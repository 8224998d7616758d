//! The e-graph optimizer without a GPU: every rule's witness, saturated with that rule alone,
//! extracts to a smaller graph the interpreter evaluates to the same values; graphs round-trip
//! through the e-graph unchanged in meaning; extraction pays for shared subterms once.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_compiler::egraph::{SaturationLimits, optimize};
use tessera_compiler::rules::{self, Rule};
use tessera_ir::interp::{Tensor, run};
use tessera_ir::{BinaryOp, DType, Graph, Op, UnaryOp};

const SHAPES: [&[usize]; 4] = [&[1], &[3, 5], &[2, 3, 4], &[1, 7, 2]];

/// Random positive values for every input of `g` (ints small, floats in [0.25, 2]).
fn bindings(g: &Graph, seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = StdRng::seed_from_u64(seed);
    g.nodes()
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name, shape, dtype } | Op::Param { name, shape, dtype } => {
                let data = (0..shape.numel())
                    .map(|_| match dtype {
                        DType::F32 | DType::F16 => rng.random_range(0.25..2.0),
                        DType::I32 | DType::U32 => rng.random_range(0..10) as f64,
                        DType::Bool => f64::from(rng.random_bool(0.5)),
                    })
                    .collect();
                Some((name.clone(), Tensor::new(shape.clone(), *dtype, data)))
            }
            _ => None,
        })
        .collect()
}

fn assert_same(a: &Graph, b: &Graph, seed: u64, what: &str) {
    let binds = bindings(a, seed);
    let refs: Vec<(&str, Tensor)> = binds.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let x = run(a, &refs).unwrap_or_else(|e| panic!("{what}: before: {e}"));
    let y = run(b, &refs).unwrap_or_else(|e| panic!("{what}: after: {e}\n{b}"));
    assert_eq!(x.len(), y.len(), "{what}");
    for (p, q) in x.iter().zip(&y) {
        assert_eq!((p.shape.clone(), p.dtype), (q.shape.clone(), q.dtype), "{what}");
        for (u, v) in p.data.iter().zip(&q.data) {
            assert!((u - v).abs() <= 1e-5 * (1.0 + u.abs()), "{what}: {u} vs {v}\nbefore:\n{a}\nafter:\n{b}");
        }
    }
}

#[test]
fn every_rule_fires_on_its_witness_and_preserves_values() {
    let all = rules::all();
    assert!(all.len() >= 16, "{} rules", all.len());
    let mut names: Vec<&str> = all.iter().map(|r| r.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len(), "rule names are unique");
    for rule in &all {
        for (k, shape) in SHAPES.iter().enumerate() {
            let g = (rule.witness)(shape).unwrap_or_else(|e| panic!("{}: witness: {e}", rule.name));
            let only: [Rule; 1] = [*rule];
            let (opt, report) = optimize(&g, &only, &SaturationLimits::default()).expect("optimize");
            assert!(
                report.rules_fired.iter().any(|r| r == rule.name),
                "{} did not fire on its witness {shape:?}:\n{g}",
                rule.name
            );
            assert!(
                opt.len() < g.len() || opt != g,
                "{} did not change its witness:\n{g}\n->\n{opt}",
                rule.name
            );
            opt.verify().expect("optimized graph verifies");
            assert_same(&g, &opt, 7 + k as u64, rule.name);
        }
    }
}

#[test]
fn round_trip_keeps_meaning_and_inputs() {
    let mut g = Graph::new();
    let x = g.input("x", [3, 4], DType::F32);
    let unused = g.input("unused", [2], DType::F32);
    let w = g.param("w", [4, 5], DType::F32);
    let m = g.add(Op::MatMul, &[x, w]).unwrap();
    let e = g.add(Op::Unary(UnaryOp::Exp), &[m]).unwrap();
    let s = g.add(Op::Binary(BinaryOp::Add), &[e, m]).unwrap();
    let r = g
        .add(Op::Reduce { kind: tessera_ir::ReduceKind::Sum, axes: vec![1], keepdims: false }, &[s])
        .unwrap();
    g.add_output(r).unwrap();
    g.add_output(e).unwrap();
    let (opt, _) = optimize(&g, &[], &SaturationLimits::default()).unwrap();
    assert_eq!(opt.inputs().len(), 2, "unused inputs stay bound:\n{opt}");
    assert_eq!(opt.node(opt.inputs()[1]).op, g.node(unused).op);
    assert_eq!(opt.len(), g.len());
    assert_same(&g, &opt, 1, "round trip");
}

#[test]
fn shared_subterms_are_not_duplicated() {
    // y = exp(x) used four times: the extracted graph keeps one exp.
    let mut g = Graph::new();
    let x = g.input("x", [8], DType::F32);
    let e = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let mut acc = e;
    for _ in 0..3 {
        acc = g.add(Op::Binary(BinaryOp::Mul), &[acc, e]).unwrap();
    }
    g.add_output(acc).unwrap();
    let (opt, _) = optimize(&g, &rules::all(), &SaturationLimits::default()).unwrap();
    let exps = opt.nodes().iter().filter(|n| n.op == Op::Unary(UnaryOp::Exp)).count();
    assert_eq!(exps, 1, "{opt}");
    assert_same(&g, &opt, 3, "shared");
}

#[test]
fn limits_stop_saturation_and_say_why() {
    let g = (rules::all()[0].witness)(&[4]).unwrap();
    let limits = SaturationLimits { nodes: 1, ..SaturationLimits::default() };
    let (_, report) = optimize(&g, &rules::all(), &limits).unwrap();
    assert!(
        report.stop_reason.contains("limit") || report.stop_reason == "saturated",
        "{}",
        report.stop_reason
    );
}
