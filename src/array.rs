//! `Array`: a lazy n-dimensional array. Ops build a graph; `eval` compiles it (cached by
//! structure, shapes and dtypes) and runs it on the array's device.

use crate::device::{Device, HostValue};
use crate::element::{self, Element};
use crate::error::{Result, invalid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tessera_ir::{DType, Graph, NodeId, Op, Shape, TensorType};

/// A lazy array on a device. Cloning is cheap and shares the node.
#[derive(Clone)]
pub struct Array {
    pub(crate) node: Arc<ArrayNode>,
}

pub(crate) struct ArrayNode {
    pub(crate) op: Op,
    /// Operands; cleared once the array is materialized so finished graphs can be freed.
    inputs: Mutex<Vec<Array>>,
    pub(crate) ty: TensorType,
    /// A Python-scalar-like constant that adopts the other operand's dtype in binary ops.
    pub(crate) weak: bool,
    pub(crate) device: Device,
    /// Logical little-endian element bytes once computed (or given).
    data: OnceLock<Arc<Vec<u8>>>,
}

impl Array {
    /// An array holding `data` with `shape` (row-major); the dtype follows `T`.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize], device: &Device) -> Result<Array> {
        let shape = Shape::from(shape);
        if data.len() != shape.numel() {
            return Err(invalid(
                "from_vec",
                format!("{} values do not fill shape {shape} ({} elements)", data.len(), shape.numel()),
            ));
        }
        let bytes = element::encode(data.iter().map(|v| v.to_f64()), T::DTYPE);
        Ok(Array::materialized(bytes, shape, T::DTYPE, device))
    }

    /// An f32 scalar. In binary ops it takes the other operand's dtype (like a Python scalar).
    pub fn scalar(value: f64, device: &Device) -> Result<Array> {
        let v = tessera_ir::float(value).ok_or_else(|| invalid("scalar", "NaN is not a valid constant"))?;
        let op = Op::Constant { value: v, shape: Shape::scalar(), dtype: DType::F32 };
        Ok(Array::leaf(op, TensorType::new(Shape::scalar(), DType::F32), true, device))
    }

    /// An array of `shape` filled with `value`.
    pub fn full(value: f64, shape: &[usize], dtype: DType, device: &Device) -> Result<Array> {
        let v = tessera_ir::float(value).ok_or_else(|| invalid("full", "NaN is not a valid constant"))?;
        let op = Op::Constant { value: v, shape: Shape::from(shape), dtype };
        let ty = tessera_ir::infer(&op, &[])?;
        Ok(Array::leaf(op, ty, false, device))
    }

    pub(crate) fn materialized(bytes: Vec<u8>, shape: Shape, dtype: DType, device: &Device) -> Array {
        let op = Op::Input { name: String::new(), shape: shape.clone(), dtype };
        let a = Array::leaf(op, TensorType::new(shape, dtype), false, device);
        let _ = a.node.data.set(Arc::new(bytes));
        a
    }

    /// A graph input with no data yet (used when tracing a function for [`crate::compile`]).
    pub(crate) fn placeholder(name: String, ty: TensorType, device: &Device) -> Array {
        let op = Op::Input { name, shape: ty.shape.clone(), dtype: ty.dtype };
        Array::leaf(op, ty, false, device)
    }

    fn leaf(op: Op, ty: TensorType, weak: bool, device: &Device) -> Array {
        Array {
            node: Arc::new(ArrayNode {
                op,
                inputs: Mutex::new(Vec::new()),
                ty,
                weak,
                device: device.clone(),
                data: OnceLock::new(),
            }),
        }
    }

    /// Applies `op` to `inputs` lazily, checking shapes and dtypes now.
    pub(crate) fn apply(op: Op, inputs: &[&Array]) -> Result<Array> {
        let first = inputs.first().ok_or_else(|| invalid("apply", "no operands"))?;
        let device = first.node.device.clone();
        if let Some(other) = inputs.iter().find(|a| !a.node.device.same(&device)) {
            return Err(invalid(
                "apply",
                format!("operands live on different devices ({device:?}, {:?})", other.node.device),
            ));
        }
        let types = inputs.iter().map(|a| a.node.ty.clone()).collect::<Vec<_>>();
        let ty = tessera_ir::infer(&op, &types)?;
        Ok(Array {
            node: Arc::new(ArrayNode {
                op,
                inputs: Mutex::new(inputs.iter().map(|a| (*a).clone()).collect()),
                ty,
                weak: false,
                device,
                data: OnceLock::new(),
            }),
        })
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        self.node.ty.shape.dims()
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.node.ty.shape.rank()
    }

    /// Number of elements.
    pub fn size(&self) -> usize {
        self.node.ty.shape.numel()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.node.ty.dtype
    }

    /// The device the array lives on.
    pub fn device(&self) -> &Device {
        &self.node.device
    }

    /// True once the array's values are computed.
    pub fn is_evaluated(&self) -> bool {
        self.node.data.get().is_some() || matches!(self.node.op, Op::Constant { .. })
    }

    /// Computes the array (and everything it depends on) now.
    pub fn eval(&self) -> Result<()> {
        eval(&[self])
    }

    /// Evaluates and returns the values converted to `T`, row-major.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let bytes = self.bytes()?;
        Ok(element::decode(&bytes, self.dtype()).into_iter().map(T::from_f64).collect())
    }

    /// Evaluates and returns the single value of a one-element array.
    pub fn item<T: Element>(&self) -> Result<T> {
        let v = self.to_vec::<T>()?;
        match v.as_slice() {
            [x] => Ok(*x),
            _ => Err(invalid("item", format!("array has {} elements, not 1", v.len()))),
        }
    }

    /// Evaluates and returns the logical little-endian element bytes.
    pub(crate) fn bytes(&self) -> Result<Arc<Vec<u8>>> {
        self.eval()?;
        if let Some(d) = self.node.data.get() {
            return Ok(d.clone());
        }
        Err(invalid("eval", "array has no data after evaluation"))
    }

    fn set_data(&self, bytes: Arc<Vec<u8>>) {
        let _ = self.node.data.set(bytes);
        if let Ok(mut inputs) = self.node.inputs.lock() {
            inputs.clear();
        }
    }
}

/// Evaluates several arrays in one compiled graph (shared work is computed once).
pub fn eval(arrays: &[&Array]) -> Result<()> {
    let pending: Vec<&Array> = arrays.iter().copied().filter(|a| a.node.data.get().is_none()).collect();
    let Some(first) = pending.first() else {
        return Ok(());
    };
    let device = first.node.device.clone();
    let traced = trace(&pending)?;
    let outputs = device.run(&traced.graph, &traced.feeds)?;
    for (a, out) in pending.iter().zip(outputs) {
        a.set_data(out.bytes);
    }
    Ok(())
}

/// A graph built from lazy arrays, with the data of every materialized leaf.
pub(crate) struct Traced {
    pub(crate) graph: Graph,
    pub(crate) feeds: Vec<(String, HostValue)>,
}

/// Builds the graph computing `outputs`. Materialized arrays become inputs named `in{k}`;
/// placeholders keep their names. Iterative, so long op chains cannot overflow the stack.
pub(crate) fn trace(outputs: &[&Array]) -> Result<Traced> {
    let mut graph = Graph::new();
    let mut feeds = Vec::new();
    let mut ids: HashMap<*const ArrayNode, NodeId> = HashMap::new();
    for out in outputs {
        let mut stack: Vec<(Array, bool)> = vec![((*out).clone(), false)];
        while let Some((a, expanded)) = stack.pop() {
            let key = Arc::as_ptr(&a.node);
            if ids.contains_key(&key) {
                continue;
            }
            if let Some(data) = a.node.data.get() {
                let name = format!("in{}", feeds.len());
                let id = graph.input(&name, a.node.ty.shape.clone(), a.node.ty.dtype);
                feeds.push((name, HostValue { bytes: data.clone(), dtype: a.node.ty.dtype }));
                ids.insert(key, id);
                continue;
            }
            let inputs = a.node.inputs.lock().map_err(|_| invalid("eval", "array poisoned"))?.clone();
            if !expanded {
                stack.push((a.clone(), true));
                stack.extend(inputs.into_iter().rev().map(|i| (i, false)));
                continue;
            }
            let operand_ids = inputs
                .iter()
                .map(|i| ids.get(&Arc::as_ptr(&i.node)).copied())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("eval", "operand traced out of order"))?;
            let id = graph.add(a.node.op.clone(), &operand_ids)?;
            ids.insert(key, id);
        }
        let id = ids[&Arc::as_ptr(&out.node)];
        graph.add_output(id)?;
    }
    Ok(Traced { graph, feeds })
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Array({}{}, {})",
            self.dtype(),
            self.node.ty.shape,
            if self.is_evaluated() { "evaluated" } else { "lazy" }
        )
    }
}
