//! Keeps fused kernels IEEE where a driver folds literals wrongly: once fusion turns a constant
//! divisor into a WGSL literal, lavapipe evaluates `x / 0.0` to 0 (a runtime zero, as the
//! unfused kernel reads from a buffer, gives +-inf). `x / +-0` is exactly `x * +-inf` in IEEE
//! arithmetic (NaN for x = 0 or NaN, inf with the product's sign otherwise), and drivers
//! multiply by an infinite literal correctly, so float divisions by a constant zero are
//! rewritten into that multiplication before fusion (except `0 / 0`, which drivers fold to NaN
//! correctly while they fold `0 * inf` to 0).

use crate::CompileError;
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, float};

/// `graph` with every float division by a constant zero (possibly behind views) written as a
/// multiplication by an infinity, and where each old node went; `None` when there is none.
pub fn divisions_by_zero_as_infinities(graph: &Graph) -> Result<Option<(Graph, Vec<NodeId>)>, CompileError> {
    let zero_divisor = |node: &tessera_ir::Node| match node.op {
        // 0 / 0 stays: drivers fold it to NaN correctly, but fold `0 * inf` to 0.
        Op::Binary(BinaryOp::Div)
            if matches!(node.dtype, DType::F32 | DType::F16)
                && constant_zero(graph, node.inputs[0]).is_none() =>
        {
            constant_zero(graph, node.inputs[1])
        }
        _ => None,
    };
    if !graph.iter().any(|(_, node)| zero_divisor(node).is_some()) {
        return Ok(None);
    }
    let mut guarded = Graph::new();
    let mut moved: Vec<NodeId> = Vec::with_capacity(graph.len());
    for (_, node) in graph.iter() {
        let inputs: Vec<NodeId> = node.inputs.iter().map(|i| moved[i.index()]).collect();
        let id = match zero_divisor(node) {
            Some(negative_zero) => {
                let divisor = graph.node(node.inputs[1]);
                let infinity = if negative_zero { f64::NEG_INFINITY } else { f64::INFINITY };
                let value = float(infinity).ok_or_else(|| unsupported("an infinity is not a number"))?;
                let op = Op::Constant { value, shape: divisor.shape.clone(), dtype: divisor.dtype };
                let infinity = guarded.add(op, &[])?;
                guarded.add(Op::Binary(BinaryOp::Mul), &[inputs[0], infinity])?
            }
            None => guarded.add(node.op.clone(), &inputs)?,
        };
        moved.push(id);
    }
    guarded.set_outputs(graph.outputs().iter().map(|o| moved[o.index()]).collect())?;
    Ok(Some((guarded, moved)))
}

/// `Some(is -0.0)` when `id` is a constant zero, directly or through views of one.
fn constant_zero(graph: &Graph, mut id: NodeId) -> Option<bool> {
    loop {
        let node = graph.node(id);
        match &node.op {
            Op::Constant { value, .. } if value.into_inner() == 0.0 => {
                return Some(value.into_inner().is_sign_negative());
            }
            Op::Broadcast { .. } | Op::Reshape { .. } | Op::Permute { .. } | Op::Slice { .. } => {
                id = node.inputs[0];
            }
            _ => return None,
        }
    }
}

fn unsupported(reason: &str) -> CompileError {
    CompileError::Unsupported { op: "div".into(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::interp::{Tensor, run};
    use tessera_ir::{Shape, UnaryOp};

    fn divide_by(value: f64, through_broadcast: bool) -> Graph {
        let mut g = Graph::new();
        let x = g.input("x", [5], DType::F32);
        let value = float(value).unwrap_or_else(|| panic!("a number"));
        let shape: Shape = if through_broadcast { [1].into() } else { [5].into() };
        let mut c =
            g.add(Op::Constant { value, shape, dtype: DType::F32 }, &[]).unwrap_or_else(|e| panic!("{e}"));
        if through_broadcast {
            c = g.add(Op::Broadcast { shape: [5].into() }, &[c]).unwrap_or_else(|e| panic!("{e}"));
        }
        let y = g.add(Op::Binary(BinaryOp::Div), &[x, c]).unwrap_or_else(|e| panic!("{e}"));
        let z = g.add(Op::Unary(UnaryOp::Neg), &[y]).unwrap_or_else(|e| panic!("{e}"));
        g.set_outputs(vec![y, z]).unwrap_or_else(|e| panic!("{e}"));
        g
    }

    fn same_ieee(a: &[f64], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(p, q)| (p.is_nan() && q.is_nan()) || p.to_bits() == q.to_bits())
    }

    #[test]
    fn division_by_zero_becomes_multiplication_by_infinity_with_the_same_values() {
        let x = Tensor::new(vec![5], DType::F32, vec![1.5, -2.0, 0.0, -0.0, f64::INFINITY]);
        for (zero, broadcast) in [(0.0, false), (-0.0, false), (0.0, true), (-0.0, true)] {
            let g = divide_by(zero, broadcast);
            let (guarded, moved) = divisions_by_zero_as_infinities(&g)
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("{zero} divisor not guarded"));
            assert!(guarded.iter().all(|(_, n)| !matches!(n.op, Op::Binary(BinaryOp::Div))), "{guarded}");
            assert_eq!(moved.len(), g.len());
            let want = run(&g, &[("x", x.clone())]).unwrap_or_else(|e| panic!("{e}"));
            let got = run(&guarded, &[("x", x.clone())]).unwrap_or_else(|e| panic!("{e}"));
            for (w, o) in want.iter().zip(&got) {
                assert!(same_ieee(&w.data, &o.data), "{zero}: {:?} vs {:?}\n{guarded}", w.data, o.data);
            }
        }
    }

    #[test]
    fn other_divisions_are_left_alone() {
        let g = divide_by(2.0, true);
        assert!(divisions_by_zero_as_infinities(&g).unwrap_or_else(|e| panic!("{e}")).is_none());
        let mut zero_by_zero = Graph::new();
        let zero = Op::Constant {
            value: float(0.0).unwrap_or_else(|| panic!("0")),
            shape: [3].into(),
            dtype: DType::F32,
        };
        let z = zero_by_zero.add(zero, &[]).unwrap_or_else(|e| panic!("{e}"));
        let q = zero_by_zero.add(Op::Binary(BinaryOp::Div), &[z, z]).unwrap_or_else(|e| panic!("{e}"));
        zero_by_zero.add_output(q).unwrap_or_else(|e| panic!("{e}"));
        assert!(divisions_by_zero_as_infinities(&zero_by_zero).unwrap_or_else(|e| panic!("{e}")).is_none());
    }
}
