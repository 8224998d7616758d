//! Inference errors name the op and the operand types; verify catches graphs that were
//! tampered with after construction (here through serde, the one way in from outside).

use tessera_ir::{BinaryOp, DType, Graph, IrError, Op, ReduceKind, Shape};

fn add_err(g: &mut Graph, op: Op, inputs: &[tessera_ir::NodeId]) -> String {
    match g.add(op, inputs) {
        Err(e) => e.to_string(),
        Ok(id) => panic!("expected an error, got {id}"),
    }
}

#[test]
fn inference_errors_name_the_op_and_the_shapes() {
    let mut g = Graph::new();
    let a = g.input("a", [2, 3], DType::F32);
    let i = g.input("i", [2, 3], DType::I32);
    let h = g.input("h", [3], DType::F16);
    let cases = [
        (add_err(&mut g, Op::MatMul, &[a, a]), vec!["matmul", "f32[2,3], f32[2,3]", "3 vs 2"]),
        (
            add_err(&mut g, Op::Binary(BinaryOp::Add), &[a, i]),
            vec!["add", "f32[2,3], i32[2,3]", "dtypes differ"],
        ),
        (add_err(&mut g, Op::Binary(BinaryOp::Mul), &[a, h]), vec!["mul", "f16[3]"]),
        (add_err(&mut g, Op::Unary(tessera_ir::UnaryOp::Exp), &[i]), vec!["exp", "i32[2,3]"]),
        (add_err(&mut g, Op::Reshape { shape: Shape::from([4]) }, &[a]), vec!["reshape", "f32[2,3]", "[4]"]),
        (add_err(&mut g, Op::Permute { perm: vec![0, 0] }, &[a]), vec!["permute", "f32[2,3]"]),
        (
            add_err(&mut g, Op::Reduce { kind: ReduceKind::Mean, axes: vec![1], keepdims: false }, &[i]),
            vec!["reduce.mean", "i32"],
        ),
        (
            add_err(&mut g, Op::Reduce { kind: ReduceKind::Sum, axes: vec![2], keepdims: false }, &[a]),
            vec!["reduce.sum", "axis 2"],
        ),
        (add_err(&mut g, Op::Concat { axis: 0 }, &[a, h]), vec!["concat", "f32[2,3], f16[3]"]),
        (add_err(&mut g, Op::Gather, &[a, a]), vec!["gather", "i32 or u32"]),
        (add_err(&mut g, Op::Where, &[a, a, a]), vec!["where", "bool"]),
        (add_err(&mut g, Op::MatMul, &[a]), vec!["matmul", "expects 2 operand(s), got 1"]),
    ];
    for (msg, needles) in cases {
        for n in needles {
            assert!(msg.contains(n), "`{msg}` should mention `{n}`");
        }
    }
}

#[test]
fn verify_accepts_graphs_built_through_add() -> Result<(), IrError> {
    let mut g = Graph::new();
    let x = g.input("x", [2, 3], DType::F32);
    let y = g.add(Op::Unary(tessera_ir::UnaryOp::Exp), &[x])?;
    g.add_output(y)?;
    g.verify()
}

/// Serializes a small valid graph, lets `edit` change the JSON, and deserializes it.
fn tampered(edit: impl FnOnce(&mut serde_json::Value)) -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", [2, 3], DType::F32);
    let w = g.param("w", [3], DType::F32);
    let y = g.add(Op::Binary(BinaryOp::Add), &[x, w]).expect("valid");
    g.add_output(y).expect("valid");
    let mut json = serde_json::to_value(&g).expect("serializes");
    edit(&mut json);
    serde_json::from_value(json).expect("still deserializes")
}

#[test]
fn verify_catches_tampered_graphs() {
    let cases: Vec<(Graph, &str)> = vec![
        (
            tampered(|j| j["nodes"][2]["shape"] = serde_json::json!([2, 4])),
            "records f32[2,4] but infers f32[2,3]",
        ),
        (tampered(|j| j["nodes"][2]["dtype"] = serde_json::json!("F16")), "records f16[2,3]"),
        (tampered(|j| j["nodes"][2]["inputs"] = serde_json::json!([0, 2])), "does not precede"),
        (tampered(|j| j["nodes"][2]["inputs"] = serde_json::json!([0])), "expects 2 operand(s)"),
        (tampered(|j| j["nodes"][1]["op"]["Param"]["name"] = serde_json::json!("x")), "used twice"),
        (tampered(|j| j["outputs"] = serde_json::json!([])), "no outputs"),
        (tampered(|j| j["outputs"] = serde_json::json!([9])), "%9 does not exist"),
    ];
    for (g, needle) in cases {
        let err = g.verify().expect_err(needle).to_string();
        assert!(err.contains(needle), "`{err}` should mention `{needle}`");
    }
    // The interpreter refuses the same graphs instead of panicking.
    let g = tampered(|j| j["nodes"][2]["inputs"] = serde_json::json!([0, 2]));
    let bind = [
        ("x", tessera_ir::interp::Tensor::zeros([2, 3], DType::F32)),
        ("w", tessera_ir::interp::Tensor::zeros([3], DType::F32)),
    ];
    assert!(tessera_ir::interp::run(&g, &bind).is_err());
    let g = tampered(|j| j["nodes"][2]["shape"] = serde_json::json!([2, 4]));
    assert!(tessera_ir::interp::run(&g, &bind).is_err());
    let g = tampered(|j| j["outputs"] = serde_json::json!([9]));
    assert!(tessera_ir::interp::run(&g, &bind).is_err());
    assert!(tessera_ir::decompose::decompose(&g).is_err());
}
