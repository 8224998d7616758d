//! Observability without a GPU: each dispatch's report names the rewrite rules that fired on
//! the nodes it computes (and only those), and the DOT of a compiled plan is well-formed with
//! one cluster per dispatch.

use std::collections::HashSet;
use tessera_compiler::dot::{plan_dot, write_dot_files};
use tessera_compiler::{CompileOptions, DeviceProfile, compile_with_graph};
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, ReduceKind, UnaryOp, float};

fn constant(g: &mut Graph, value: f64, n: usize) -> NodeId {
    let value = float(value).expect("a number");
    g.add(Op::Constant { value, shape: [n].into(), dtype: DType::F32 }, &[]).expect("constant")
}

fn op(g: &mut Graph, op: Op, inputs: &[NodeId]) -> NodeId {
    g.add(op, inputs).unwrap_or_else(|e| panic!("building the test graph: {e}"))
}

/// `sum(exp(x * 1))` and `sum(exp(y * 3))`: only the first has a multiplication to fold.
fn two_exp_sums() -> Graph {
    let n = 64;
    let mut g = Graph::new();
    let x = g.input("x", [n], DType::F32);
    let y = g.input("y", [n], DType::F32);
    let one = constant(&mut g, 1.0, n);
    let three = constant(&mut g, 3.0, n);
    let sum = Op::Reduce { kind: ReduceKind::Sum, axes: vec![0], keepdims: false };
    let x1 = op(&mut g, Op::Binary(BinaryOp::Mul), &[x, one]);
    let ex = op(&mut g, Op::Unary(UnaryOp::Exp), &[x1]);
    let sx = op(&mut g, sum.clone(), &[ex]);
    let y3 = op(&mut g, Op::Binary(BinaryOp::Mul), &[y, three]);
    let ey = op(&mut g, Op::Unary(UnaryOp::Exp), &[y3]);
    let sy = op(&mut g, sum, &[ey]);
    g.set_outputs(vec![sx, sy]).expect("outputs");
    g
}

#[test]
fn mul_one_is_reported_on_the_kernel_where_it_folded_and_no_other() {
    let compiled =
        compile_with_graph(&two_exp_sums(), &DeviceProfile::portable(), &CompileOptions::default())
            .expect("compile");
    let report = &compiled.plan.report;
    let listing: Vec<String> =
        report.iter().map(|r| format!("{} {:?} {:?}", r.kernel, r.ops, r.rules)).collect();
    let folded: Vec<_> = report.iter().filter(|r| r.rules.contains(&"mul-one".to_string())).collect();
    assert_eq!(folded.len(), 1, "{listing:#?}");
    assert!(folded[0].ops.contains(&"exp".to_string()), "{listing:#?}");
    assert!(!folded[0].ops.contains(&"mul".to_string()), "{listing:#?}");
    // The y branch keeps its multiplication, in a kernel that reports no mul-one.
    let kept = report.iter().find(|r| r.ops.contains(&"mul".to_string()));
    assert!(kept.is_some_and(|r| !r.rules.contains(&"mul-one".to_string())), "{listing:#?}");
}

#[test]
fn reports_name_the_optimized_graph_nodes_each_dispatch_computes() {
    let compiled =
        compile_with_graph(&two_exp_sums(), &DeviceProfile::portable(), &CompileOptions::default())
            .expect("compile");
    let mut seen = HashSet::new();
    for r in &compiled.plan.report {
        assert!(!r.nodes.is_empty(), "{} lists no nodes", r.kernel);
        for &n in &r.nodes {
            assert!(n < compiled.optimized.len(), "{} names node {n}", r.kernel);
            assert!(seen.insert(n), "node {n} computed by two dispatches");
        }
    }
}

/// Node names declared and edge endpoints of a DOT text (the lines `render` writes).
fn declared_and_edges(dot: &str) -> (HashSet<String>, Vec<(String, String)>) {
    let mut declared = HashSet::new();
    let mut edges = Vec::new();
    for line in dot.lines().map(str::trim) {
        if let Some((a, b)) = line.strip_suffix(';').and_then(|l| l.split_once(" -> ")) {
            edges.push((a.to_string(), b.to_string()));
        } else if let Some((name, _)) = line.split_once(" [label=") {
            declared.insert(name.to_string());
        }
    }
    (declared, edges)
}

#[test]
fn plan_dot_is_well_formed_with_one_cluster_per_dispatch() {
    let g = two_exp_sums();
    let compiled =
        compile_with_graph(&g, &DeviceProfile::portable(), &CompileOptions::default()).expect("compile");
    let dot = plan_dot(&compiled.optimized, &compiled.plan);
    assert!(dot.starts_with("digraph tessera {") && dot.trim_end().ends_with('}'), "{dot}");
    assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
    assert_eq!(dot.matches("subgraph cluster_").count(), compiled.plan.dispatches.len(), "{dot}");
    let (declared, edges) = declared_and_edges(&dot);
    assert!(!edges.is_empty(), "{dot}");
    for (a, b) in &edges {
        assert!(declared.contains(a) && declared.contains(b), "{a} -> {b} not declared\n{dot}");
    }
    for (k, r) in compiled.plan.report.iter().enumerate() {
        assert!(dot.contains(&format!("label=\"#{k} {}\"", r.kernel)), "cluster of dispatch {k}\n{dot}");
    }
}

#[test]
fn write_dot_files_writes_the_graph_before_and_after() {
    let g = two_exp_sums();
    let compiled =
        compile_with_graph(&g, &DeviceProfile::portable(), &CompileOptions::default()).expect("compile");
    let dir = std::env::temp_dir().join(format!("tessera-dot-test-{}", std::process::id()));
    let (before, after) =
        write_dot_files(&dir, "g.", &g, &compiled.optimized, &compiled.plan).expect("write the DOT files");
    let before = std::fs::read_to_string(before).expect("before.dot");
    let after = std::fs::read_to_string(after).expect("after.dot");
    // The graph as written still has both multiplications; the optimized one lost x * 1.
    assert_eq!(before.matches(" mul\\n").count(), 2, "{before}");
    assert_eq!(after.matches(" mul\\n").count(), 1, "{after}");
    assert!(!before.contains("subgraph") && after.contains("subgraph cluster_0"));
    let _ = std::fs::remove_dir_all(&dir);
}
