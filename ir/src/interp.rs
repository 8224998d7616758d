//! The reference interpreter: the definition of every op.
//!
//! Deliberately plain: every value is an f64, every op computes in f64 and rounds its result once
//! to the result dtype with [`DType::round`], so an f32 op behaves like f32 storage and an f16 op
//! like f16 storage. Composite ops (softmax, norms, rope) are computed directly in f64 and rounded
//! once. GPU kernels, rewrite rules and models are all tested against this module; `ir/SPEC.md`
//! states the same rules in prose.

mod attention;
mod composite;
mod elementwise;
mod movement;
mod quant;
mod reduce;

use crate::infer::{TensorType, infer};
use crate::{DType, Graph, IrError, Op, Shape};
use std::collections::HashMap;

/// A host tensor: shape, dtype and row-major values, each already rounded to the dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape.
    pub shape: Shape,
    /// Element type the values are rounded to.
    pub dtype: DType,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl Tensor {
    /// Builds a tensor, rounding each value to `dtype`; panics if `data` has the wrong length.
    pub fn new(shape: impl Into<Shape>, dtype: DType, data: Vec<f64>) -> Tensor {
        match Tensor::try_new(shape, dtype, data) {
            Ok(t) => t,
            Err(e) => panic!("Tensor::new: {e}"),
        }
    }

    /// Builds a tensor, rounding each value to `dtype`; errors if `data` has the wrong length.
    pub fn try_new(shape: impl Into<Shape>, dtype: DType, data: Vec<f64>) -> Result<Tensor, IrError> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(IrError::Binding(format!(
                "{} values for a {dtype}{shape} tensor ({} expected)",
                data.len(),
                shape.numel()
            )));
        }
        let data = data.into_iter().map(|x| dtype.round(x)).collect();
        Ok(Tensor { shape, dtype, data })
    }

    /// A rank-0 tensor holding `value` (rounded to `dtype`).
    pub fn scalar(value: f64, dtype: DType) -> Tensor {
        Tensor { shape: Shape::scalar(), dtype, data: vec![dtype.round(value)] }
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Tensor {
        let shape = shape.into();
        let data = vec![0.0; shape.numel()];
        Tensor { shape, dtype, data }
    }

    /// Shape and dtype.
    pub fn ty(&self) -> TensorType {
        TensorType { shape: self.shape.clone(), dtype: self.dtype }
    }

    /// Errors when `data` does not match `shape` (the fields are public, so it can happen).
    fn check_len(&self) -> Result<(), IrError> {
        if self.data.len() != self.shape.numel() {
            return Err(IrError::Binding(format!(
                "tensor {}{} holds {} values ({} expected)",
                self.dtype,
                self.shape,
                self.data.len(),
                self.shape.numel()
            )));
        }
        Ok(())
    }
}

/// Evaluates `graph` with `bindings` (by name) for its Input and Param nodes; returns the outputs
/// in graph output order. Bindings whose name no node uses are ignored.
pub fn run(graph: &Graph, bindings: &[(&str, Tensor)]) -> Result<Vec<Tensor>, IrError> {
    let mut by_name: HashMap<&str, &Tensor> = HashMap::new();
    for (name, t) in bindings {
        if by_name.insert(name, t).is_some() {
            return Err(IrError::Binding(format!("`{name}` is bound twice")));
        }
    }
    let mut values: Vec<Tensor> = Vec::with_capacity(graph.len());
    for (id, node) in graph.iter() {
        let value = if let Op::Input { name, shape, dtype } | Op::Param { name, shape, dtype } = &node.op {
            bind(&node.op.mnemonic(), name, shape, *dtype, &by_name)?
        } else if let Op::State { name, shape, dtype } = &node.op {
            // A state nobody bound starts at zero, as a freshly loaded plan's does.
            match by_name.contains_key(name.as_str()) {
                true => bind("state", name, shape, *dtype, &by_name)?,
                false => Tensor::zeros(shape.clone(), *dtype),
            }
        } else {
            let mut operands = Vec::with_capacity(node.inputs.len());
            for &i in &node.inputs {
                if i.index() >= id.index() {
                    return Err(IrError::Graph(format!("{id} uses {i}, which does not precede it")));
                }
                operands.push(&values[i.index()]);
            }
            eval_op(&node.op, &operands)?
        };
        if value.shape != node.shape || value.dtype != node.dtype {
            return Err(IrError::Graph(format!(
                "{id} ({}) records {}{} but evaluates to {}{}",
                node.op.mnemonic(),
                node.dtype,
                node.shape,
                value.dtype,
                value.shape
            )));
        }
        values.push(value);
    }
    graph
        .outputs()
        .iter()
        .map(|&o| {
            graph.get(o)?;
            Ok(values[o.index()].clone())
        })
        .collect()
}

/// Runs `graph` like [`run`], with its `State` values taken from `states` (zeros when absent)
/// and, afterwards, each state replaced by what the `WriteSlice` on it produced: the same
/// update a compiled plan makes in place.
pub fn run_with_states(
    graph: &Graph,
    bindings: &[(&str, Tensor)],
    states: &mut HashMap<String, Tensor>,
) -> Result<Vec<Tensor>, IrError> {
    // Extra outputs: every WriteSlice applied to a State.
    let mut extended = graph.clone();
    let mut updates = Vec::new();
    for (id, node) in graph.iter() {
        if let Op::WriteSlice { .. } = node.op {
            if let Some(Op::State { name, .. }) = node.inputs.first().map(|&d| &graph.node(d).op) {
                updates.push(name.clone());
                extended.add_output(id)?;
            }
        }
    }
    let mut all: Vec<(&str, Tensor)> = bindings.to_vec();
    for (name, t) in states.iter() {
        all.push((name.as_str(), t.clone()));
    }
    let mut outs = run(&extended, &all)?;
    let new_states = outs.split_off(graph.outputs().len());
    for (name, t) in updates.into_iter().zip(new_states) {
        states.insert(name, t);
    }
    Ok(outs)
}

/// The data bound to an Input or Param, checked against its declared type.
fn bind(
    kind: &str,
    name: &str,
    shape: &Shape,
    dtype: DType,
    by_name: &HashMap<&str, &Tensor>,
) -> Result<Tensor, IrError> {
    let t =
        by_name.get(name).ok_or_else(|| IrError::Binding(format!("no data bound for {kind} `{name}`")))?;
    t.check_len()?;
    if &t.shape != shape || t.dtype != dtype {
        return Err(IrError::Binding(format!(
            "{kind} `{name}` is {dtype}{shape} but was bound to {}{}",
            t.dtype, t.shape
        )));
    }
    // Round again: the fields are public, so the caller may have skipped `Tensor::new`.
    Ok(Tensor { shape: shape.clone(), dtype, data: t.data.iter().map(|&x| dtype.round(x)).collect() })
}

/// Evaluates one op on operand tensors (types are checked with [`infer`] first).
/// Input and Param have no data here and are an error; bind them through [`run`].
pub fn eval_op(op: &Op, operands: &[&Tensor]) -> Result<Tensor, IrError> {
    for t in operands {
        t.check_len()?;
    }
    let types = operands.iter().map(|t| t.ty()).collect::<Vec<_>>();
    let out = infer(op, &types)?;
    let x = |i: usize| operands[i];
    let data = match op {
        Op::Input { name, .. } | Op::Param { name, .. } | Op::State { name, .. } => {
            return Err(IrError::Binding(format!("{} `{name}` has no data outside `run`", op.mnemonic())));
        }
        Op::Iota { shape, axis, .. } => movement::iota(shape, *axis),
        Op::Constant { value, shape, dtype } => vec![dtype.round(value.into_inner()); shape.numel()],
        Op::Unary(u) => elementwise::unary(*u, x(0)),
        Op::Binary(b) => elementwise::binary(*b, x(0), x(1), &out.shape),
        Op::Where => elementwise::select(x(0), x(1), x(2), &out.shape),
        Op::Cast { to } => x(0).data.iter().map(|&v| elementwise::cast(v, x(0).dtype, *to)).collect(),
        Op::Reduce { kind, axes, .. } => reduce::reduce(*kind, axes, x(0)),
        Op::ArgMax { axis, .. } => reduce::argmax(*axis, x(0)),
        Op::MatMul => reduce::matmul(x(0), x(1), &out.shape),
        Op::Reshape { .. } => x(0).data.clone(),
        Op::Permute { perm } => movement::permute(perm, x(0)),
        Op::Broadcast { shape } => movement::broadcast(x(0), shape),
        Op::Slice { ranges } => movement::slice(ranges, x(0)),
        Op::Concat { axis } => movement::concat(*axis, operands, &out.shape),
        Op::Gather => movement::gather(x(0), x(1)),
        Op::Softmax { axis } => composite::softmax(*axis, x(0)),
        Op::RmsNorm { eps } => composite::rms_norm(eps.into_inner(), x(0), x(1)),
        Op::LayerNorm { eps } => composite::layer_norm(eps.into_inner(), x(0), x(1), x(2)),
        Op::Rope { style } => composite::rope(*style, x(0), x(1), x(2)),
        Op::WriteSlice { axis } => movement::write_slice(*axis, x(0), x(1), x(2)),
        Op::Attention { scale, causal } => {
            attention::attention(scale.into_inner(), *causal, x(0), x(1), x(2), x(3))
        }
        Op::RoundInt8 { block } => quant::round_int8(*block, x(0)),
        Op::QuantMatMul { bits, group_size } => {
            quant::quant_matmul(*bits, *group_size, x(0), x(1), x(2), x(3))
        }
        Op::QuantGather { bits, group_size } => {
            quant::quant_gather(*bits, *group_size, x(0), x(1), x(2), x(3))
        }
    };
    let dtype = out.dtype;
    // Every op result is stored in its dtype: this single rounding is what makes f32/f16 ops
    // behave like storage of that width.
    let data = data.into_iter().map(|v| dtype.round(v)).collect();
    Ok(Tensor { shape: out.shape, dtype, data })
}

/// Offsets into a tensor of shape `from` for each element of `to`, under NumPy broadcasting.
/// `from` must broadcast to `to` (callers have run inference).
fn broadcast_offsets(from: &Shape, to: &Shape) -> Vec<usize> {
    let pad = to.rank() - from.rank();
    let from_strides = from.strides();
    // Stride 0 on broadcast axes: every output index along them reads the same element.
    let strides: Vec<usize> = (0..to.rank())
        .map(|i| if i < pad || from.dims()[i - pad] == 1 { 0 } else { from_strides[i - pad] })
        .collect();
    strided_offsets(to.dims(), &strides, 0)
}

/// `base + sum(idx[a] * strides[a])` for every multi-index `idx` of `dims`, in row-major order.
fn strided_offsets(dims: &[usize], strides: &[usize], base: usize) -> Vec<usize> {
    let numel: usize = dims.iter().product();
    let mut offsets = Vec::with_capacity(numel);
    let mut idx = vec![0usize; dims.len()];
    let mut off = base;
    for _ in 0..numel {
        offsets.push(off);
        // Odometer increment from the last axis.
        for a in (0..dims.len()).rev() {
            idx[a] += 1;
            off += strides[a];
            if idx[a] < dims[a] {
                break;
            }
            off -= strides[a] * idx[a];
            idx[a] = 0;
        }
    }
    offsets
}
