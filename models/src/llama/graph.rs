//! The Llama decoder built in tessera's IR, one graph per step length. It mirrors
//! transformers' `modeling_llama.py` (`LlamaModel.forward`): embed, then per layer
//! `h += o_proj(attn(rope(q), rope(k), v))` on `input_layernorm(h)` and
//! `h += down_proj(silu(gate_proj(x)) * up_proj(x))` on `post_attention_layernorm(h)`, then
//! `norm` and `lm_head`. The KV cache is graph state, written in place; positions, the cache
//! length and the row whose logits are wanted are data, so one compiled step serves every token.

use super::weights::{Linear, WeightIndex};
use crate::config::LlamaConfig;
use std::collections::HashMap;
use tessera_compiler::{CompileOptions, DeviceProfile, f16_matmul_rows, int8_activation_rows};
use tessera_ir::{BinaryOp, DType, Graph, IrError, NodeId, Op, RopeStyle, Shape, SliceRange, UnaryOp, float};

/// Names of the step graph's inputs (all u32).
pub mod inputs {
    /// Token ids `[S]`.
    pub const TOKENS: &str = "tokens";
    /// Absolute position of each token `[S]`.
    pub const POSITIONS: &str = "positions";
    /// Cache rows valid after this step `[1]` (= offset + S).
    pub const KV_LEN: &str = "kv_len";
    /// Cache row the step's first token is written to `[1]`.
    pub const OFFSET: &str = "offset";
    /// Row of the step whose next-token logits are wanted `[1]`.
    pub const LAST: &str = "last";
}

/// Activations sharing one int8 scale where decode rounds them.
const INT8_BLOCK: u32 = 32;

/// Name of the inverse-frequency parameter RoPE angles are computed from.
pub const INV_FREQ: &str = "rope.inv_freq";

/// What one step graph computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StepShape {
    /// Tokens processed in the step (1 for decode; a bucket for prefill).
    pub seq: usize,
    /// Rows of the preallocated KV cache.
    pub max_context: usize,
    /// Leading cache rows the step's attention reads (`max_context` but for short decodes,
    /// [`StepShape::short_decode`]).
    pub attend: usize,
    /// Also output the logits of the `last` row (sampling, top-logprobs).
    pub logits: bool,
}

impl StepShape {
    /// A step of `seq` tokens whose attention may read every cache row.
    pub fn new(seq: usize, max_context: usize, logits: bool) -> StepShape {
        StepShape { seq, max_context, attend: max_context, logits }
    }

    /// A decode step for cache positions below `attend` rows: its attention reads only those,
    /// so it scores them in one kernel where a long cache would split them (flash decoding)
    /// and fold the parts in a second.
    pub fn short_decode(max_context: usize, attend: usize, logits: bool) -> StepShape {
        StepShape { seq: 1, max_context, attend: attend.min(max_context), logits }
    }

    /// Whether the step's attention reads only the leading `attend` cache rows.
    pub fn is_short(&self) -> bool {
        self.attend < self.max_context
    }
}

/// Projections that read the same input, and the name of their merged layer when
/// [`merge_projections`] stacked them (one gemv instead of several).
const QKV: (&[&str], &str) = (&["q_proj", "k_proj", "v_proj"], "qkv_proj");
const GATE_UP: (&[&str], &str) = (&["gate_proj", "up_proj"], "gate_up_proj");

/// Stacks each layer's q/k/v and gate/up weights into one matrix where their storage matches.
pub fn merge_projections(cfg: &LlamaConfig, w: &mut WeightIndex) {
    for i in 0..cfg.num_hidden_layers {
        for (block, (parts, merged)) in [("self_attn", QKV), ("mlp", GATE_UP)] {
            let prefix = format!("model.layers.{i}.{block}");
            let parts: Vec<String> = parts.iter().map(|p| format!("{prefix}.{p}")).collect();
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            w.merge_linears(&parts, &format!("{prefix}.{merged}"));
        }
    }
}

/// Names of the KV cache states of layer `i`.
pub fn cache_names(i: usize) -> (String, String) {
    (format!("cache.{i}.k"), format!("cache.{i}.v"))
}

/// Builds a step graph. Outputs: `[0]` the greedy next token (u32 `[1]`, argmax on the GPU),
/// and `[1]` the logits (f32 `[1, vocab]`) when `shape.logits`.
pub fn build_step(cfg: &LlamaConfig, w: &WeightIndex, shape: StepShape) -> Result<Graph, IrError> {
    build(cfg, w, shape, Precision { int8_x: false, f16_rows: None })
}

/// [`build_step`] for a device: where its quantized gemvs multiply in integers, steps of at
/// most [`tessera_compiler::int8_activation_rows`] tokens (decode and short prompts) round the x
/// of each quantized projection to int8 per block of 32, as llama.cpp's Q8_1 activations do;
/// longer prompts keep f32 x, or multiply in f16 from [`tessera_compiler::f16_matmul_rows`]
/// rows (where the device has cooperative matrices).
pub fn build_step_for(
    cfg: &LlamaConfig,
    w: &WeightIndex,
    shape: StepShape,
    profile: &DeviceProfile,
    options: &CompileOptions,
) -> Result<Graph, IrError> {
    let precision = Precision {
        int8_x: shape.seq <= int8_activation_rows(profile, options),
        f16_rows: f16_matmul_rows(profile, options),
    };
    build(cfg, w, shape, precision)
}

/// How the quantized projections round their x.
#[derive(Clone, Copy, Debug)]
struct Precision {
    /// To int8 (`Op::RoundInt8`).
    int8_x: bool,
    /// To f16, with f16 weights and results, for x of at least this many rows.
    f16_rows: Option<usize>,
}

fn build(
    cfg: &LlamaConfig,
    w: &WeightIndex,
    shape: StepShape,
    precision: Precision,
) -> Result<Graph, IrError> {
    let mut b = Builder { g: Graph::new(), w, params: HashMap::new(), precision };
    let s = shape.seq;
    let (hq, hkv, d) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
    let tokens = b.g.input(inputs::TOKENS, [s], DType::U32);
    let positions = b.g.input(inputs::POSITIONS, [s], DType::U32);
    let kv_len = b.g.input(inputs::KV_LEN, [1], DType::U32);
    let offset = b.g.input(inputs::OFFSET, [1], DType::U32);
    let last = b.g.input(inputs::LAST, [1], DType::U32);

    // RoPE angles from positions as data: [S, 1] * [1, D/2].
    let inv_freq = b.param(INV_FREQ, &[1, d / 2], DType::F32);
    let pos = b.op(Op::Cast { to: DType::F32 }, &[positions])?;
    let pos = b.reshape(pos, &[s, 1])?;
    let angles = b.op(Op::Binary(BinaryOp::Mul), &[pos, inv_freq])?;
    let cos = b.op(Op::Unary(UnaryOp::Cos), &[angles])?;
    let sin = b.op(Op::Unary(UnaryOp::Sin), &[angles])?;

    let mut h = b.embed("model.embed_tokens", tokens)?;
    let eps = float(cfg.rms_norm_eps).ok_or_else(|| IrError::Graph("rms_norm_eps is NaN".into()))?;
    let scale = float(1.0 / (d as f64).sqrt()).ok_or_else(|| IrError::Graph("head_dim is 0".into()))?;
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let norm_w = b.param(&format!("{p}.input_layernorm.weight"), &[cfg.hidden_size], DType::F32);
        let x = b.op(Op::RmsNorm { eps }, &[h, norm_w])?;
        let [q, k, v] = b.linears(&format!("{p}.self_attn"), QKV, x, [hq * d, hkv * d, hkv * d])?;
        let q = b.heads(q, s, hq, d)?;
        let k = b.heads(k, s, hkv, d)?;
        let v = b.heads(v, s, hkv, d)?;
        let q = b.op(Op::Rope { style: RopeStyle::HalfSplit }, &[q, cos, sin])?;
        let k = b.op(Op::Rope { style: RopeStyle::HalfSplit }, &[k, cos, sin])?;
        let (kn, vn) = cache_names(i);
        let kc = b.g.add(
            Op::State { name: kn, shape: Shape::from([1, hkv, shape.max_context, d]), dtype: DType::F32 },
            &[],
        )?;
        let vc = b.g.add(
            Op::State { name: vn, shape: Shape::from([1, hkv, shape.max_context, d]), dtype: DType::F32 },
            &[],
        )?;
        let kc = b.op(Op::WriteSlice { axis: 2 }, &[kc, k, offset])?;
        let vc = b.op(Op::WriteSlice { axis: 2 }, &[vc, v, offset])?;
        let (kc, vc) = (b.leading_rows(kc, shape)?, b.leading_rows(vc, shape)?);
        let a = b.op(Op::Attention { scale, causal: true }, &[q, kc, vc, kv_len])?;
        let a = b.unheads(a, s, hq, d)?;
        let o = b.linear(&format!("{p}.self_attn.o_proj"), a)?;
        h = b.op(Op::Binary(BinaryOp::Add), &[h, o])?;

        let norm_w = b.param(&format!("{p}.post_attention_layernorm.weight"), &[cfg.hidden_size], DType::F32);
        let x = b.op(Op::RmsNorm { eps }, &[h, norm_w])?;
        let i = cfg.intermediate_size;
        let [gate, up] = b.linears(&format!("{p}.mlp"), GATE_UP, x, [i, i])?;
        let gate = b.op(Op::Unary(UnaryOp::Silu), &[gate])?;
        let act = b.op(Op::Binary(BinaryOp::Mul), &[gate, up])?;
        let down = b.linear(&format!("{p}.mlp.down_proj"), act)?;
        h = b.op(Op::Binary(BinaryOp::Add), &[h, down])?;
    }
    // The row is picked before the (row-wise) final norm: only it is normalized, and the norm
    // becomes the lm_head gemv's prologue instead of a dispatch of its own. A decode step has one
    // row (`last` is 0), so it needs no gather at all.
    let h_last = if s == 1 { h } else { b.op(Op::Gather, &[h, last])? };
    let norm_w = b.param("model.norm.weight", &[cfg.hidden_size], DType::F32);
    let h_last = b.op(Op::RmsNorm { eps }, &[h_last, norm_w])?;
    let head = if w.has("lm_head") { "lm_head" } else { "model.embed_tokens" };
    let logits = b.linear(head, h_last)?;
    let next = b.op(Op::ArgMax { axis: 1, keepdims: false }, &[logits])?;
    b.g.add_output(next)?;
    if shape.logits {
        b.g.add_output(logits)?;
    }
    Ok(b.g)
}

struct Builder<'a> {
    g: Graph,
    w: &'a WeightIndex,
    /// Params by name: a tied embedding is read by both the lookup and the head.
    params: HashMap<String, NodeId>,
    precision: Precision,
}

impl Builder<'_> {
    fn op(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId, IrError> {
        self.g.add(op, inputs)
    }

    fn param(&mut self, name: &str, dims: &[usize], dtype: DType) -> NodeId {
        if let Some(&id) = self.params.get(name) {
            return id;
        }
        let id = self.g.param(name, dims.to_vec(), dtype);
        self.params.insert(name.to_string(), id);
        id
    }

    fn reshape(&mut self, x: NodeId, dims: &[usize]) -> Result<NodeId, IrError> {
        self.op(Op::Reshape { shape: Shape::from(dims) }, &[x])
    }

    /// The cache rows a step's attention reads: all, or a view of the first `shape.attend`.
    fn leading_rows(&mut self, cache: NodeId, shape: StepShape) -> Result<NodeId, IrError> {
        if !shape.is_short() {
            return Ok(cache);
        }
        let dims = self.g.node(cache).shape.dims().to_vec();
        let mut ranges: Vec<SliceRange> = dims.iter().map(|&d| SliceRange::full(d)).collect();
        ranges[2] = SliceRange { start: 0, stop: shape.attend, step: 1 };
        self.op(Op::Slice { ranges }, &[cache])
    }

    /// `[S, H*D]` -> `[1, H, S, D]`.
    fn heads(&mut self, x: NodeId, s: usize, h: usize, d: usize) -> Result<NodeId, IrError> {
        let x = self.reshape(x, &[s, h, d])?;
        let x = self.op(Op::Permute { perm: vec![1, 0, 2] }, &[x])?;
        self.reshape(x, &[1, h, s, d])
    }

    /// `[1, H, S, D]` -> `[S, H*D]`.
    fn unheads(&mut self, x: NodeId, s: usize, h: usize, d: usize) -> Result<NodeId, IrError> {
        let x = self.reshape(x, &[h, s, d])?;
        let x = self.op(Op::Permute { perm: vec![1, 0, 2] }, &[x])?;
        self.reshape(x, &[s, h * d])
    }

    /// `x @ W^T (+ bias)` for the module at `prefix`, dense or affine-quantized.
    fn linear(&mut self, prefix: &str, x: NodeId) -> Result<NodeId, IrError> {
        let y = match self.w.linear(prefix)? {
            Linear::Dense { k, n, dtype } => {
                // x @ W^T reading the [n, k] rows: the compiler runs this as a gemv over rows.
                let w = self.param(&format!("{prefix}.weight"), &[n, k], dtype);
                let w = self.widen(w, dtype)?;
                let wt = self.op(Op::Permute { perm: vec![1, 0] }, &[w])?;
                self.op(Op::MatMul, &[x, wt])?
            }
            Linear::Quant { k, n, bits, group_size, scales } => {
                let [w, s, b] = self.quant_params(prefix, k, n, bits, group_size, scales);
                let rows = self.g.node(x).shape.numel() / k.max(1);
                let op = Op::QuantMatMul { bits, group_size };
                if self.precision.f16_rows.is_some_and(|from| rows >= from) {
                    let x = self.op(Op::Cast { to: DType::F16 }, &[x])?;
                    let y = self.op(op, &[x, w, s, b])?;
                    self.op(Op::Cast { to: DType::F32 }, &[y])?
                } else {
                    let x = match self.precision.int8_x && k.is_multiple_of(INT8_BLOCK as usize) {
                        true => self.op(Op::RoundInt8 { block: INT8_BLOCK }, &[x])?,
                        false => x,
                    };
                    self.op(op, &[x, w, s, b])?
                }
            }
        };
        match self.w.bias(prefix) {
            Some(n) => {
                let bias = self.param(&format!("{prefix}.bias"), &[n], DType::F32);
                self.op(Op::Binary(BinaryOp::Add), &[y, bias])
            }
            None => Ok(y),
        }
    }

    /// The projections `names.0` under `block` applied to `x`, as one merged matmul sliced
    /// into its parts when the weights were merged, else one matmul each.
    fn linears<const P: usize>(
        &mut self,
        block: &str,
        names: (&[&str], &str),
        x: NodeId,
        widths: [usize; P],
    ) -> Result<[NodeId; P], IrError> {
        let merged = format!("{block}.{}", names.1);
        if !self.w.has(&merged) {
            let mut out = [x; P];
            for (o, name) in out.iter_mut().zip(names.0) {
                *o = self.linear(&format!("{block}.{name}"), x)?;
            }
            return Ok(out);
        }
        let y = self.linear(&merged, x)?;
        let dims = self.g.node(y).shape.dims().to_vec();
        let mut out = [y; P];
        let mut start = 0;
        for (o, width) in out.iter_mut().zip(widths) {
            let mut ranges: Vec<SliceRange> = dims.iter().map(|&d| SliceRange::full(d)).collect();
            if let Some(last) = ranges.last_mut() {
                *last = SliceRange { start, stop: start + width, step: 1 };
            }
            *o = self.op(Op::Slice { ranges }, &[y])?;
            start += width;
        }
        Ok(out)
    }

    /// Rows of the embedding table picked by `tokens`.
    fn embed(&mut self, prefix: &str, tokens: NodeId) -> Result<NodeId, IrError> {
        match self.w.linear(prefix)? {
            Linear::Dense { k, n, dtype } => {
                let table = self.param(&format!("{prefix}.weight"), &[n, k], dtype);
                let rows = self.op(Op::Gather, &[table, tokens])?;
                self.widen(rows, dtype)
            }
            Linear::Quant { k, n, bits, group_size, scales } => {
                let [w, s, b] = self.quant_params(prefix, k, n, bits, group_size, scales);
                let rows = self.op(Op::QuantGather { bits, group_size }, &[w, s, b, tokens])?;
                self.widen(rows, scales)
            }
        }
    }

    /// `x` as f32 (a cast when it is stored narrower).
    fn widen(&mut self, x: NodeId, dtype: DType) -> Result<NodeId, IrError> {
        if dtype == DType::F32 { Ok(x) } else { self.op(Op::Cast { to: DType::F32 }, &[x]) }
    }

    fn quant_params(
        &mut self,
        prefix: &str,
        k: usize,
        n: usize,
        bits: u32,
        group: u32,
        scales: DType,
    ) -> [NodeId; 3] {
        let words = k * bits as usize / 32;
        let groups = k / group as usize;
        [
            self.param(&format!("{prefix}.weight"), &[n, words], DType::U32),
            self.param(&format!("{prefix}.scales"), &[n, groups], scales),
            self.param(&format!("{prefix}.biases"), &[n, groups], scales),
        ]
    }
}
