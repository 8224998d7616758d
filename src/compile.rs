//! `tessera::compile`, like MLX's `mx.compile`: trace a function once per input signature
//! (shapes and dtypes) and reuse the optimized plan on every later call.

use crate::array::{Array, trace};
use crate::device::{Device, HostValue};
use crate::error::{Result, invalid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tessera_ir::{Graph, Op, Shape, TensorType};

/// A function of arrays traced once per signature. Build it with [`compile`].
pub struct Compiled<F> {
    f: F,
    traces: Mutex<HashMap<Vec<TensorType>, Arc<Trace>>>,
}

/// One traced signature: the graph and the arrays the function captured from outside.
struct Trace {
    graph: Graph,
    captured: Vec<(String, Arc<Vec<u8>>, tessera_ir::DType)>,
    arg_names: Vec<String>,
}

/// Wraps `f` so that calling it compiles once per input shape/dtype signature.
///
/// ```no_run
/// use tessera::{Array, Device};
/// let dev = Device::default()?;
/// let gelu_sum = tessera::compile(|x: &[Array]| Ok(vec![x[0].gelu()?.sum(&[-1], false)?]));
/// let x = Array::from_vec(vec![0.5f32; 8], &[2, 4], &dev)?;
/// let y = gelu_sum.call(&[x])?;
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn compile<F>(f: F) -> Compiled<F>
where
    F: Fn(&[Array]) -> Result<Vec<Array>>,
{
    Compiled { f, traces: Mutex::new(HashMap::new()) }
}

impl<F> Compiled<F>
where
    F: Fn(&[Array]) -> Result<Vec<Array>>,
{
    /// Calls the function: traces it on the first call with this signature, then runs the
    /// cached plan with the arguments' data. Returns evaluated arrays.
    pub fn call(&self, args: &[Array]) -> Result<Vec<Array>> {
        let device = match args.first() {
            Some(a) => a.device().clone(),
            None => Device::default()?,
        };
        let signature = args.iter().map(|a| a.node.ty.clone()).collect::<Vec<_>>();
        let cached = self
            .traces
            .lock()
            .map_err(|_| invalid("compile", "trace cache poisoned"))?
            .get(&signature)
            .cloned();
        let tr = match cached {
            Some(t) => t,
            None => {
                let t = Arc::new(self.trace(&signature, &device)?);
                self.traces
                    .lock()
                    .map_err(|_| invalid("compile", "trace cache poisoned"))?
                    .insert(signature, t.clone());
                t
            }
        };
        let mut feeds = Vec::with_capacity(tr.captured.len() + args.len());
        for (name, bytes, dtype) in &tr.captured {
            feeds.push((name.clone(), HostValue { bytes: bytes.clone(), dtype: *dtype }));
        }
        for (i, a) in args.iter().enumerate() {
            let name = format!("arg{i}");
            if tr.arg_names.contains(&name) {
                feeds.push((name, HostValue { bytes: a.bytes()?, dtype: a.dtype() }));
            }
        }
        let outputs = device.run(&tr.graph, &feeds)?;
        Ok(outputs
            .into_iter()
            .zip(tr.graph.outputs())
            .map(|(out, &id)| {
                let shape: Shape = tr.graph.node(id).shape.clone();
                let bytes = Arc::try_unwrap(out.bytes).unwrap_or_else(|b| (*b).clone());
                Array::materialized(bytes, shape, out.dtype, &device)
            })
            .collect())
    }

    fn trace(&self, signature: &[TensorType], device: &Device) -> Result<Trace> {
        let placeholders = signature
            .iter()
            .enumerate()
            .map(|(i, ty)| Array::placeholder(format!("arg{i}"), ty.clone(), device))
            .collect::<Vec<_>>();
        let outs = (self.f)(&placeholders)?;
        if outs.is_empty() {
            return Err(invalid("compile", "the function returned no arrays"));
        }
        let refs = outs.iter().collect::<Vec<_>>();
        let traced = trace(&refs)?;
        let arg_names = traced
            .graph
            .nodes()
            .iter()
            .filter_map(|n| match &n.op {
                Op::Input { name, .. } if name.starts_with("arg") => Some(name.clone()),
                _ => None,
            })
            .collect();
        let captured = traced.feeds.into_iter().map(|(name, v)| (name, v.bytes, v.dtype)).collect();
        Ok(Trace { graph: traced.graph, captured, arg_names })
    }
}
