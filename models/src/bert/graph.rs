//! The BERT encoder built in tessera's IR, one graph per (batch, length) bucket. It mirrors
//! transformers' `modeling_bert.py` (`BertModel.forward` without the pooler head): embeddings
//! `LayerNorm(word + position + token_type(0))`, then per layer
//! `h = LayerNorm(h + dense(attn(query(h), key(h), value(h))))` and
//! `h = LayerNorm(h + dense(act(intermediate(h))))`. Sentence-transformers' pooling (mean, CLS,
//! max over the valid tokens) and L2 normalization run in the same graph, so a run returns
//! `[batch, hidden]` embeddings. Sentences are right-padded: `lengths` (data, not shape) masks the
//! padded keys in attention and the padded rows in pooling, so one plan serves every batch that fits.

use crate::config::BertConfig;
use tessera_ir::{
    BinaryOp, DType, Graph, IrError, NodeId, Op, ReduceKind, Shape, SliceRange, UnaryOp, float,
};

/// Names of the encoder graph's inputs (both u32).
pub mod inputs {
    /// Token ids `[batch * seq]`, row-major by sentence, each right-padded to `seq`.
    pub const TOKENS: &str = "tokens";
    /// Valid tokens of each sentence `[batch]`.
    pub const LENGTHS: &str = "lengths";
}

/// The bucket one compiled plan serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EncodeShape {
    /// Sentences per run.
    pub batch: usize,
    /// Padded tokens per sentence.
    pub seq: usize,
}

/// How token vectors become one sentence vector (sentence-transformers' `Pooling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// Mean over the valid tokens (`pooling_mode_mean_tokens`).
    Mean,
    /// Sum over the valid tokens divided by sqrt(length) (`pooling_mode_mean_sqrt_len_tokens`).
    MeanSqrtLen,
    /// The first token, `[CLS]` (`pooling_mode_cls_token`).
    Cls,
    /// Per-feature maximum over the valid tokens (`pooling_mode_max_tokens`).
    Max,
}

/// The feed-forward activation named by `hidden_act`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact erf form.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
    /// `silu`, `swish`.
    Silu,
}

impl Activation {
    /// The activation transformers' `ACT2FN[name]` selects.
    pub fn from_name(name: &str) -> Result<Activation, String> {
        match name {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            "silu" | "swish" => Ok(Activation::Silu),
            other => Err(format!("hidden_act {other:?} is not supported (gelu, gelu_new, relu, silu)")),
        }
    }

    fn op(self) -> UnaryOp {
        match self {
            Activation::Gelu => UnaryOp::Gelu,
            Activation::GeluTanh => UnaryOp::GeluTanh,
            Activation::Relu => UnaryOp::Relu,
            Activation::Silu => UnaryOp::Silu,
        }
    }
}

/// sentence-transformers clamps the token count of mean pooling to this.
const MIN_COUNT: f64 = 1e-9;
/// `torch.nn.functional.normalize`'s default `eps`.
const NORM_EPS: f64 = 1e-12;
/// sentence-transformers' fill value for padded tokens in max pooling.
const MAX_POOL_FILL: f64 = -1e9;

/// Builds the encoder for `shape`. Output `[0]`: f32 `[batch, hidden]` sentence embeddings,
/// pooled by `pooling` and L2-normalized when `normalize`.
pub fn build_encoder(
    cfg: &BertConfig,
    shape: EncodeShape,
    pooling: Pooling,
    normalize: bool,
) -> Result<Graph, IrError> {
    let (b, s, h) = (shape.batch, shape.seq, cfg.hidden_size);
    let heads = cfg.num_attention_heads;
    if heads == 0 || !h.is_multiple_of(heads) {
        return Err(IrError::Graph(format!("hidden_size {h} is not a multiple of {heads} attention heads")));
    }
    if b == 0 || s == 0 || s > cfg.max_position_embeddings {
        return Err(IrError::Graph(format!(
            "bucket of {b} x {s} tokens (the model has {} positions)",
            cfg.max_position_embeddings
        )));
    }
    let d = h / heads;
    let act = Activation::from_name(&cfg.hidden_act).map_err(IrError::Graph)?;
    let eps = float(cfg.layer_norm_eps).ok_or_else(|| IrError::Graph("layer_norm_eps is NaN".into()))?;
    let scale = float(1.0 / (d as f64).sqrt()).ok_or_else(|| IrError::Graph("head size is 0".into()))?;
    let mut g = Builder { g: Graph::new(), eps };
    let tokens = g.g.input(inputs::TOKENS, [b * s], DType::U32);
    let lengths = g.g.input(inputs::LENGTHS, [b], DType::U32);

    // Embeddings: word + absolute position (0..s) + token type 0, then LayerNorm.
    let words = g.g.param("embeddings.word_embeddings.weight", [cfg.vocab_size, h], DType::F32);
    let x = g.op(Op::Gather, &[words, tokens])?;
    let x = g.reshape(x, &[b, s, h])?;
    let positions =
        g.g.param("embeddings.position_embeddings.weight", [cfg.max_position_embeddings, h], DType::F32);
    let positions = g.rows(positions, 0, s, h)?;
    let mut x = g.op(Op::Binary(BinaryOp::Add), &[x, positions])?;
    if cfg.type_vocab_size > 0 {
        let types =
            g.g.param("embeddings.token_type_embeddings.weight", [cfg.type_vocab_size, h], DType::F32);
        let type0 = g.rows(types, 0, 1, h)?;
        x = g.op(Op::Binary(BinaryOp::Add), &[x, type0])?;
    }
    let x = g.reshape(x, &[b * s, h])?;
    let mut x = g.layer_norm("embeddings.LayerNorm", x, h)?;

    for i in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        let q = g.linear(&format!("{p}.attention.self.query"), x, h, h)?;
        let k = g.linear(&format!("{p}.attention.self.key"), x, h, h)?;
        let v = g.linear(&format!("{p}.attention.self.value"), x, h, h)?;
        let (q, k, v) =
            (g.heads(q, b, s, heads, d)?, g.heads(k, b, s, heads, d)?, g.heads(v, b, s, heads, d)?);
        let a = g.op(Op::Attention { scale, causal: false }, &[q, k, v, lengths])?;
        let a = g.unheads(a, b, s, h)?;
        let a = g.linear(&format!("{p}.attention.output.dense"), a, h, h)?;
        let a = g.op(Op::Binary(BinaryOp::Add), &[a, x])?;
        x = g.layer_norm(&format!("{p}.attention.output.LayerNorm"), a, h)?;

        let f = g.linear(&format!("{p}.intermediate.dense"), x, h, cfg.intermediate_size)?;
        let f = g.op(Op::Unary(act.op()), &[f])?;
        let f = g.linear(&format!("{p}.output.dense"), f, cfg.intermediate_size, h)?;
        let f = g.op(Op::Binary(BinaryOp::Add), &[f, x])?;
        x = g.layer_norm(&format!("{p}.output.LayerNorm"), f, h)?;
    }

    let x = g.reshape(x, &[b, s, h])?;
    let mut pooled = g.pool(x, lengths, pooling, b, s, h)?;
    if normalize {
        pooled = g.l2_normalize(pooled)?;
    }
    g.g.add_output(pooled)?;
    Ok(g.g)
}

struct Builder {
    g: Graph,
    eps: tessera_ir::Float,
}

impl Builder {
    fn op(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId, IrError> {
        self.g.add(op, inputs)
    }

    fn reshape(&mut self, x: NodeId, dims: &[usize]) -> Result<NodeId, IrError> {
        self.op(Op::Reshape { shape: Shape::from(dims) }, &[x])
    }

    fn constant(&mut self, value: f64) -> Result<NodeId, IrError> {
        let value = float(value).ok_or_else(|| IrError::Graph("NaN constant".into()))?;
        self.op(Op::Constant { value, shape: Shape::from([1]), dtype: DType::F32 }, &[])
    }

    /// Rows `start..start + n` of a `[rows, h]` table.
    fn rows(&mut self, table: NodeId, start: usize, n: usize, h: usize) -> Result<NodeId, IrError> {
        let ranges = vec![SliceRange { start, stop: start + n, step: 1 }, SliceRange::full(h)];
        self.op(Op::Slice { ranges }, &[table])
    }

    /// `x @ W^T + bias` with the weight stored transposed (`{prefix}.weight.T`, `[k, n]`).
    fn linear(&mut self, prefix: &str, x: NodeId, k: usize, n: usize) -> Result<NodeId, IrError> {
        let wt = self.g.param(&format!("{prefix}.weight.T"), [k, n], DType::F32);
        let bias = self.g.param(&format!("{prefix}.bias"), [n], DType::F32);
        let y = self.op(Op::MatMul, &[x, wt])?;
        self.op(Op::Binary(BinaryOp::Add), &[y, bias])
    }

    fn layer_norm(&mut self, prefix: &str, x: NodeId, h: usize) -> Result<NodeId, IrError> {
        let w = self.g.param(&format!("{prefix}.weight"), [h], DType::F32);
        let bias = self.g.param(&format!("{prefix}.bias"), [h], DType::F32);
        self.op(Op::LayerNorm { eps: self.eps }, &[x, w, bias])
    }

    /// `[B*S, H*D]` -> `[B, H, S, D]`.
    fn heads(&mut self, x: NodeId, b: usize, s: usize, h: usize, d: usize) -> Result<NodeId, IrError> {
        let x = self.reshape(x, &[b, s, h, d])?;
        self.op(Op::Permute { perm: vec![0, 2, 1, 3] }, &[x])
    }

    /// `[B, H, S, D]` -> `[B*S, H*D]`.
    fn unheads(&mut self, x: NodeId, b: usize, s: usize, hidden: usize) -> Result<NodeId, IrError> {
        let x = self.op(Op::Permute { perm: vec![0, 2, 1, 3] }, &[x])?;
        self.reshape(x, &[b * s, hidden])
    }

    /// `[B, S, H]` token vectors -> `[B, H]`, reading only tokens `< lengths[b]`.
    fn pool(
        &mut self,
        x: NodeId,
        lengths: NodeId,
        pooling: Pooling,
        b: usize,
        s: usize,
        h: usize,
    ) -> Result<NodeId, IrError> {
        if pooling == Pooling::Cls {
            let ranges =
                vec![SliceRange::full(b), SliceRange { start: 0, stop: 1, step: 1 }, SliceRange::full(h)];
            let first = self.op(Op::Slice { ranges }, &[x])?;
            return self.reshape(first, &[b, h]);
        }
        // valid[b, t] = t < lengths[b]
        let index = self.op(Op::Iota { shape: Shape::from([b, s]), axis: 1, dtype: DType::U32 }, &[])?;
        let len = self.reshape(lengths, &[b, 1])?;
        let valid = self.op(Op::Binary(BinaryOp::Lt), &[index, len])?;
        let valid = self.reshape(valid, &[b, s, 1])?;
        let sum_axis = || Op::Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: false };
        match pooling {
            Pooling::Max => {
                let fill = self.constant(MAX_POOL_FILL)?;
                let masked = self.op(Op::Where, &[valid, x, fill])?;
                self.op(Op::Reduce { kind: ReduceKind::Max, axes: vec![1], keepdims: false }, &[masked])
            }
            Pooling::Mean | Pooling::MeanSqrtLen | Pooling::Cls => {
                let mask = self.op(Op::Cast { to: DType::F32 }, &[valid])?;
                let masked = self.op(Op::Binary(BinaryOp::Mul), &[x, mask])?;
                let sum = self.op(sum_axis(), &[masked])?;
                let count = self.op(sum_axis(), &[mask])?;
                let min = self.constant(MIN_COUNT)?;
                let mut count = self.op(Op::Binary(BinaryOp::Max), &[count, min])?;
                if pooling == Pooling::MeanSqrtLen {
                    count = self.op(Op::Unary(UnaryOp::Sqrt), &[count])?;
                }
                self.op(Op::Binary(BinaryOp::Div), &[sum, count])
            }
        }
    }

    /// `x / max(||x||_2, eps)` per row of `[B, H]` (sentence-transformers' `Normalize`).
    fn l2_normalize(&mut self, x: NodeId) -> Result<NodeId, IrError> {
        let sq = self.op(Op::Binary(BinaryOp::Mul), &[x, x])?;
        let ss = self.op(Op::Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: true }, &[sq])?;
        let norm = self.op(Op::Unary(UnaryOp::Sqrt), &[ss])?;
        let eps = self.constant(NORM_EPS)?;
        let norm = self.op(Op::Binary(BinaryOp::Max), &[norm, eps])?;
        self.op(Op::Binary(BinaryOp::Div), &[x, norm])
    }
}
