//! An inlined value: a small DAG of elementwise and view ops over leaf buffers, rendered as a
//! WGSL function that computes one element from its flat index. Fused elementwise kernels,
//! hand-kernel prologues (`load_x`) and epilogues (`store_y`) are all such functions; the math
//! is calls into the prelude, the glue is index arithmetic.

use crate::CompileError;
use crate::codegen::elementwise::convert;
use crate::codegen::index::{coords, row_major};
use crate::codegen::{Binding, Scalar, Value};
use std::collections::HashMap;
use std::fmt::Write;
use tessera_ir::{NodeId, Op, RopeStyle};

/// Where an inlined op takes an operand from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Src {
    /// An earlier op of the same [`Inline`].
    Op(usize),
    /// A leaf buffer, by index into [`Inline::leaves`].
    Leaf(usize),
    /// The value the host kernel computed for this element (epilogues only).
    Acc,
}

/// One inlined op.
#[derive(Clone, Debug)]
pub struct InlineOp {
    /// The op (elementwise, view, constant or iota).
    pub op: Op,
    /// Its operands.
    pub args: Vec<Src>,
    /// Its result.
    pub value: Value,
}

/// A value computed inline from leaf buffers; the last op is the result.
#[derive(Clone, Debug)]
pub struct Inline {
    /// Values read from buffers, in binding order.
    pub leaves: Vec<Value>,
    /// The graph nodes of `leaves` (a kernel binds a node that several prologues read once).
    pub nodes: Vec<NodeId>,
    /// Ops in dependency order.
    pub ops: Vec<InlineOp>,
    /// The host kernel's own result type, for epilogues.
    pub acc: Option<Value>,
}

impl Inline {
    /// The result.
    pub fn value(&self) -> &Value {
        &self.ops[self.ops.len() - 1].value
    }

    /// `fn NAME(i: u32) -> T`: element `i` (flat, row-major) of the value.
    pub fn load_fn(&self, name: &str, leaves: &[Binding]) -> Result<String, CompileError> {
        let (lines, expr) = self.element(leaves)?;
        let mut text = format!("fn {name}(i: u32) -> {} {{\n", Scalar::of(self.value().dtype).wgsl());
        for l in lines {
            let _ = writeln!(text, "    {l}");
        }
        let _ = writeln!(text, "    return {expr};\n}}");
        Ok(text)
    }

    /// `fn NAME(i: u32, v: A)`: computes element `i` with `v` as the host kernel's value there and
    /// stores it into `out`.
    pub fn store_fn(&self, name: &str, leaves: &[Binding], out: &Binding) -> Result<String, CompileError> {
        let acc = self.acc.as_ref().map_or(Scalar::F32, |a| Scalar::of(a.dtype));
        let (lines, expr) = self.element(leaves)?;
        let mut text = format!("fn {name}(i: u32, v: {}) {{\n", acc.wgsl());
        for l in lines {
            let _ = writeln!(text, "    {l}");
        }
        let _ = writeln!(text, "    {}\n}}", out.store("i", &expr));
        Ok(text)
    }

    /// The block of a gemv prologue that rounds x to int8 (its root), which the gemv then
    /// applies itself while it stages x.
    pub fn int8_block(&self) -> Option<u32> {
        match self.ops.last()?.op {
            Op::RoundInt8 { block } => Some(block),
            _ => None,
        }
    }

    /// For an RMSNorm prologue of a gemv (`M` rows of `K`): the gemv is linear in x, so the
    /// prologue loads `x * weight` and the row's `1/rms` is applied to the finished dot product.
    /// Defines `const NORM = true`, `fn norm_sq(i)` (the square of x at `i`, summed by the gemv
    /// from the very loads it makes anyway) and `fn norm_scale(sum_sq)`. `None` without a norm.
    pub fn norm_fns(&self, leaves: &[Binding]) -> Option<String> {
        let mut root = self.ops.last()?;
        // Rounding to int8 per block commutes with the row scale, so the norm may sit below it.
        if let (Op::RoundInt8 { .. }, Src::Op(j)) = (&root.op, root.args[0]) {
            root = &self.ops[j];
        }
        let Op::RmsNorm { eps } = &root.op else { return None };
        let Src::Leaf(x) = root.args[0] else { return None };
        let load = leaves[x].load("i");
        let eps = Scalar::F32.literal(eps.into_inner());
        Some(format!(
            "const NORM: bool = true;\n\
             fn norm_sq(i: u32) -> f32 {{\n\
             \x20   let v = {load};\n\
             \x20   return v * v;\n\
             }}\n\
             fn norm_scale(sum_sq: f32) -> f32 {{\n\
             \x20   return inverseSqrt(sum_sq / f32(K) + {eps});\n\
             }}\n"
        ))
    }

    /// Lines and the final expression of element `i` of the result.
    fn element(&self, leaves: &[Binding]) -> Result<(Vec<String>, String), CompileError> {
        let shape = &self.value().shape;
        let (names, lines) = coords("i", shape, "c");
        let mut e = Emitter { inline: self, leaves, lines, memo: HashMap::new(), next: 0 };
        let expr = e.emit(Src::Op(self.ops.len() - 1), &names)?;
        Ok((e.lines, expr))
    }
}

struct Emitter<'a> {
    inline: &'a Inline,
    leaves: &'a [Binding],
    lines: Vec<String>,
    memo: HashMap<(Src, Vec<String>), String>,
    next: usize,
}

/// `flat` as WGSL: the row-major index of `coords` in `shape`.
fn flat(coords: &[String], shape: &[usize]) -> String {
    let strides = row_major(shape);
    let terms: Vec<String> = coords
        .iter()
        .zip(&strides)
        .zip(shape)
        .filter(|((_, _), n)| **n != 1)
        .map(|((c, s), _)| if *s == 1 { c.clone() } else { format!("{c} * {s}u") })
        .collect();
    if terms.is_empty() { "0u".into() } else { format!("({})", terms.join(" + ")) }
}

/// Coordinates of a NumPy-broadcast operand of shape `operand` at `coords` of the result.
fn broadcast(coords: &[String], operand: &[usize]) -> Vec<String> {
    let lead = coords.len() - operand.len();
    operand
        .iter()
        .enumerate()
        .map(|(d, &n)| if n == 1 { "0u".into() } else { coords[lead + d].clone() })
        .collect()
}

impl Emitter<'_> {
    fn fresh(&mut self, expr: String) -> String {
        let name = format!("t{}", self.next);
        self.next += 1;
        self.lines.push(format!("let {name} = {expr};"));
        name
    }

    fn shape(&self, src: Src) -> &[usize] {
        match src {
            Src::Op(k) => &self.inline.ops[k].value.shape,
            Src::Leaf(j) => &self.inline.leaves[j].shape,
            Src::Acc => self.inline.acc.as_ref().map_or(&[], |a| a.shape.as_slice()),
        }
    }

    fn emit(&mut self, src: Src, at: &[String]) -> Result<String, CompileError> {
        let key = (src, at.to_vec());
        if let Some(v) = self.memo.get(&key) {
            return Ok(v.clone());
        }
        let expr = match src {
            // The host's value as its dtype holds it (an f16 result is rounded before use).
            Src::Acc => match self.inline.acc.as_ref().map(|a| a.dtype) {
                Some(tessera_ir::DType::F16) => "round_f16(v)".to_string(),
                _ => "v".to_string(),
            },
            Src::Leaf(j) => {
                let index = flat(at, &self.inline.leaves[j].shape);
                self.leaves[j].load(&index)
            }
            Src::Op(k) => self.op(k, at)?,
        };
        let name = self.fresh(expr);
        self.memo.insert(key, name.clone());
        Ok(name)
    }

    /// RoPE at `at`: the element, its pair partner along the last axis, and the pair's cos/sin.
    fn rope(&mut self, k: usize, style: RopeStyle, at: &[String]) -> Result<String, CompileError> {
        let InlineOp { args, value, .. } = &self.inline.ops[k];
        let (args, d) = (args.clone(), value.shape.last().copied().unwrap_or(0));
        let (last, h) = (at.len() - 1, d / 2);
        let c = at[last].clone();
        let (first, pair, partner) = match style {
            RopeStyle::HalfSplit => (
                format!("({c} < {h}u)"),
                format!("select({c} - {h}u, {c}, {c} < {h}u)"),
                format!("select({c} - {h}u, {c} + {h}u, {c} < {h}u)"),
            ),
            RopeStyle::Interleaved => (
                format!("(({c} & 1u) == 0u)"),
                format!("({c} / 2u)"),
                format!("select({c} - 1u, {c} + 1u, ({c} & 1u) == 0u)"),
            ),
        };
        let first = self.fresh(first);
        let mut half = at.to_vec();
        half[last] = self.fresh(pair);
        let mut other_at = at.to_vec();
        other_at[last] = self.fresh(partner);
        let v = self.emit(args[0], at)?;
        let other = self.emit(args[0], &other_at)?;
        let cos_at = broadcast(&half, self.shape(args[1]));
        let sin_at = broadcast(&half, self.shape(args[2]));
        let cos = self.emit(args[1], &cos_at)?;
        let sin = self.emit(args[2], &sin_at)?;
        Ok(format!("select({v} * {cos} + {other} * {sin}, {v} * {cos} - {other} * {sin}, {first})"))
    }

    fn op(&mut self, k: usize, at: &[String]) -> Result<String, CompileError> {
        let InlineOp { op, args, value } = &self.inline.ops[k];
        let out = Scalar::of(value.dtype);
        let arg = |e: &mut Self, i: usize, coords: Vec<String>| e.emit(args[i], &coords);
        let bcast = |e: &Self, i: usize| broadcast(at, e.shape(args[i]));
        Ok(match op {
            Op::Unary(u) => {
                let a = arg(self, 0, at.to_vec())?;
                format!("op_{}_{}({a})", u.name(), out.wgsl())
            }
            Op::Binary(b) => {
                let (ca, cb) = (bcast(self, 0), bcast(self, 1));
                let x = arg(self, 0, ca)?;
                let y = arg(self, 1, cb)?;
                let ty = match args[0] {
                    Src::Op(j) => Scalar::of(self.inline.ops[j].value.dtype),
                    Src::Leaf(j) => Scalar::of(self.inline.leaves[j].dtype),
                    Src::Acc => self.inline.acc.as_ref().map_or(Scalar::F32, |a| Scalar::of(a.dtype)),
                };
                format!("op_{}_{}({x}, {y})", b.name(), ty.wgsl())
            }
            Op::Where => {
                let (cc, ca, cb) = (bcast(self, 0), bcast(self, 1), bcast(self, 2));
                let c = arg(self, 0, cc)?;
                let a = arg(self, 1, ca)?;
                let b = arg(self, 2, cb)?;
                format!("select({b}, {a}, {c})")
            }
            Op::Cast { .. } => {
                let from = match args[0] {
                    Src::Op(j) => Scalar::of(self.inline.ops[j].value.dtype),
                    Src::Leaf(j) => Scalar::of(self.inline.leaves[j].dtype),
                    Src::Acc => self.inline.acc.as_ref().map_or(Scalar::F32, |a| Scalar::of(a.dtype)),
                };
                let a = arg(self, 0, at.to_vec())?;
                convert(from, out, &a)
            }
            Op::Constant { value: c, .. } => out.literal(value.dtype.round(c.into_inner())),
            Op::Iota { axis, .. } => convert(Scalar::U32, out, &at[*axis]),
            Op::Reshape { .. } => {
                let f = self.fresh(flat(at, &value.shape));
                let (names, lines) = coords(&f, self.shape(args[0]), &format!("r{k}_{}", self.next));
                self.lines.extend(lines);
                return arg(self, 0, names);
            }
            Op::Permute { perm } => {
                let mut inner = vec![String::new(); perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inner[p] = at[i].clone();
                }
                return arg(self, 0, inner);
            }
            Op::Broadcast { .. } => {
                let c = bcast(self, 0);
                return arg(self, 0, c);
            }
            Op::Slice { ranges } => {
                let inner = at
                    .iter()
                    .zip(ranges)
                    .map(|(c, r)| match (r.start, r.step) {
                        (0, 1) => c.clone(),
                        (s, 1) => format!("({c} + {s}u)"),
                        (s, st) => format!("({c} * {st}u + {s}u)"),
                    })
                    .collect();
                return arg(self, 0, inner);
            }
            Op::Rope { style } => return self.rope(k, *style, at),
            // A gemv prologue's root only: the host gemv rounds x to int8 as it stages it.
            Op::RoundInt8 { .. } if k + 1 == self.inline.ops.len() => return arg(self, 0, at.to_vec()),
            Op::RmsNorm { .. } => {
                // The host gemv applies the row's 1/rms to its dot product (see `Inline::norm_fns`).
                let x = arg(self, 0, at.to_vec())?;
                let wc = bcast(self, 1);
                let w = arg(self, 1, wc)?;
                format!("{x} * {w}")
            }
            Op::Input { .. }
            | Op::Param { .. }
            | Op::State { .. }
            | Op::Reduce { .. }
            | Op::ArgMax { .. }
            | Op::MatMul
            | Op::Concat { .. }
            | Op::Gather
            | Op::Softmax { .. }
            | Op::RoundInt8 { .. }
            | Op::LayerNorm { .. }
            | Op::WriteSlice { .. }
            | Op::Attention { .. }
            | Op::QuantMatMul { .. }
            | Op::QuantGather { .. } => {
                return Err(CompileError::Unsupported {
                    op: op.mnemonic(),
                    reason: "cannot be computed inline".into(),
                });
            }
        })
    }
}

/// A cache write fused as a producer's epilogue: element `i` of the producer goes through
/// reshapes/permutes (and, for a tee, slices: elements outside them are not written) to an
/// element of `write_slice`'s source, which is stored into the state at row `offset[0] + a`
/// along `axis` (rows past the end dropped).
#[derive(Clone, Debug)]
pub struct Scatter {
    /// Shape of the producer's result.
    pub producer: Vec<usize>,
    /// The views from the producer to the source, in order, with their result shapes.
    pub views: Vec<(Op, Vec<usize>)>,
    /// The `write_slice` axis.
    pub axis: usize,
    /// Shape of the state written.
    pub dst: Vec<usize>,
    /// The state's value (dtype and storage of the output binding).
    pub out: Value,
}

impl Scatter {
    /// `fn NAME(i: u32, v: f32)` writing producer element `i` into `out` at its cache position.
    pub fn store_fn(&self, name: &str, offset: &Binding, out: &Binding) -> String {
        let (mut cur, mut lines) = coords("i", &self.producer, "p");
        let mut shape = self.producer.clone();
        let mut taken = Vec::new();
        for (k, (op, to)) in self.views.iter().enumerate() {
            match op {
                Op::Permute { perm } => cur = perm.iter().map(|&p| cur[p].clone()).collect(),
                Op::Slice { ranges } => {
                    for (c, r) in cur.iter_mut().zip(ranges) {
                        let (start, stop, step) = (r.start, r.stop, r.step.max(1));
                        taken.push(format!(
                            "{c} >= {start}u && {c} < {stop}u && ({c} - {start}u) % {step}u == 0u"
                        ));
                        *c = format!("(({c} - {start}u) / {step}u)");
                    }
                }
                _ => {
                    let f = format!("f{k}");
                    lines.push(format!("let {f} = {};", flat(&cur, &shape)));
                    let (names, more) = coords(&f, to, &format!("v{k}_"));
                    lines.extend(more);
                    cur = names;
                }
            }
            shape = to.clone();
        }
        let a = self.axis;
        let rows = self.dst[a];
        let inner: usize = self.dst[a + 1..].iter().product();
        let outer = flat(&cur[..a], &shape[..a]);
        let r = flat(&cur[a + 1..], &shape[a + 1..]);
        let mut text = format!("fn {name}(i: u32, v: f32) {{\n");
        for l in lines {
            let _ = writeln!(text, "    {l}");
        }
        let at = format!("({outer} * {rows}u + start + {}) * {}u + {r}", cur[a], inner.max(1));
        if !taken.is_empty() {
            let _ = writeln!(text, "    if (!({})) {{ return; }}", taken.join(" && "));
        }
        let _ = writeln!(text, "    let start = {};", offset.load_raw("0"));
        let _ = writeln!(text, "    if (start < {rows}u && {} < {rows}u - start) {{", cur[a]);
        let _ = writeln!(text, "        {}", out.store(&at, "v"));
        let _ = writeln!(text, "    }}\n}}");
        text
    }
}

/// What a kernel computes inline: per read (in the order the kernel binds its operands) an
/// optional prologue, and an optional epilogue replacing its store.
#[derive(Clone, Debug, Default)]
pub struct KernelFusion {
    /// `prologues[j]`: the value the kernel's `j`-th read loads, computed inline.
    pub prologues: Vec<Option<Inline>>,
    /// The value stored instead of the kernel's result (which it receives as `v`).
    pub epilogue: Option<Inline>,
    /// The kernel's result written into a state instead (a fused in-place `write_slice`).
    pub scatter: Option<Scatter>,
    /// Elements of the kernel's result also written into a state (a slice of it, `Scatter`
    /// views with a `Slice`), besides the kernel's own store.
    pub tee: Option<Scatter>,
}
