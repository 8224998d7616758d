//! Scheduling and fusion: decides which values are computed inline inside the kernels that
//! read them (no buffer, no dispatch of their own) and which elementwise results are stored by
//! the kernel producing their input (epilogues). Three shapes of fusion, all through [`Inline`]:
//! - elementwise chains (with constants and views feeding them) become one per-element kernel;
//! - views (reshape/permute/broadcast/slice) feeding a hand kernel become its `load` prologue,
//!   and so does any elementwise chain feeding a quantized matmul's x (SwiGLU before down_proj);
//! - an RMSNorm read only by quantized gemvs becomes their prologue (row scale computed once
//!   per workgroup, then applied on each load);
//! - a `round_int8` read only by quantized gemvs that round x themselves (the integer-dot
//!   kernel) becomes their prologue's root, with the chain below it;
//! - an elementwise consumer of a matmul/reduction/norm/attention/rope/gather output, of the same
//!   shape and its only user, becomes that kernel's `store_y` epilogue (residual add, SwiGLU);
//! - a KV-cache `write_slice` of a matmul's result (through views) is stored by the matmul: in
//!   place of its result when it is the only reader, besides it (a tee) when the result is a
//!   merged projection sliced for other readers too.
//!
//! Every kernel stays within the profile's storage-buffer limit: an over-wide group is split
//! by materializing its widest inlined value until it fits.

pub mod codegen;
pub mod inline;

use crate::codegen::Target;
use crate::codegen::gemv::{GEMV_MAX_ROWS, int8_gemv};
use crate::cost::kernel_is_legal;
use tessera_ir::{DType, Graph, Node, NodeId, Op};

/// Where an inlined value may appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ctx {
    /// Nowhere: the value needs a buffer.
    None,
    /// Only index math (views, constants): the consumer may load an element many times.
    Views,
    /// Any elementwise op (each element is computed once).
    Full,
}

/// What fusion decided for a graph.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    /// Values computed inside their consumers' kernels.
    pub inlined: Vec<bool>,
    /// `epilogue[r] = Some(p)`: the kernel of `p` runs at `r` and stores `r` (p has no buffer).
    pub epilogue: Vec<Option<NodeId>>,
    /// `absorbed[p]`: `p`'s kernel runs as some node's epilogue host.
    pub absorbed: Vec<bool>,
    /// `tee[p] = Some(w)`: the kernel of `p` also stores the cache write `w` (a slice of its
    /// result, which keeps its buffer for its other readers).
    pub tee: Vec<Option<NodeId>>,
    /// `teed[w]`: the cache write `w` is done by its source's kernel (no dispatch of its own).
    pub teed: Vec<bool>,
}

impl Schedule {
    /// No fusion: every value materialized, every op its own kernel.
    pub fn unfused(n: usize) -> Schedule {
        Schedule {
            inlined: vec![false; n],
            epilogue: vec![None; n],
            absorbed: vec![false; n],
            tee: vec![None; n],
            teed: vec![false; n],
        }
    }

    /// Materialized values the kernel of `id` binds when reading operand `slot`: the operand,
    /// or the leaves of the inlined value behind it.
    pub fn slot_leaves(&self, graph: &Graph, id: NodeId, slot: usize) -> Vec<NodeId> {
        let mut leaves = Vec::new();
        self.collect_leaves(graph, graph.node(id).inputs[slot], &mut leaves);
        leaves
    }

    fn collect_leaves(&self, graph: &Graph, id: NodeId, out: &mut Vec<NodeId>) {
        if !self.inlined[id.index()] {
            if !out.contains(&id) {
                out.push(id);
            }
            return;
        }
        for &i in &graph.node(id).inputs {
            self.collect_leaves(graph, i, out);
        }
    }

    /// Leaves an epilogue root `r` reads besides its host's result `host` (for a fused cache
    /// write: only the offset; the state is the output).
    pub fn epilogue_leaves(&self, graph: &Graph, r: NodeId, host: NodeId) -> Vec<NodeId> {
        let node = graph.node(r);
        if let Op::WriteSlice { .. } = node.op {
            return vec![node.inputs[2]];
        }
        let mut leaves = Vec::new();
        for &i in &graph.node(r).inputs {
            self.collect_leaves(graph, i, &mut leaves);
        }
        leaves.retain(|&l| l != host);
        leaves
    }

    /// Every materialized value the kernel dispatched at `id` reads (for buffer lifetimes).
    pub fn kernel_reads(&self, graph: &Graph, id: NodeId) -> Vec<NodeId> {
        let mut reads = Vec::new();
        let n = graph.node(id);
        for slot in 0..n.inputs.len() {
            for l in self.slot_leaves(graph, id, slot) {
                if !reads.contains(&l) {
                    reads.push(l);
                }
            }
        }
        if let Some(w) = self.tee[id.index()] {
            reads.push(graph.node(w).inputs[2]);
        }
        if let Some(host) = self.epilogue[id.index()] {
            reads.retain(|&l| l != host);
            for slot in 0..graph.node(host).inputs.len() {
                for l in self.slot_leaves(graph, host, slot) {
                    if !reads.contains(&l) {
                        reads.push(l);
                    }
                }
            }
        }
        reads
    }

    /// True when the kernel at `id` is one generated per-element kernel over inlined operands.
    pub fn fused_elementwise(&self, graph: &Graph, id: NodeId) -> bool {
        let n = graph.node(id);
        let root = n.op.is_elementwise()
            || matches!(n.op, Op::Permute { .. } | Op::Broadcast { .. } | Op::Slice { .. });
        root && self.epilogue[id.index()].is_none() && n.inputs.iter().any(|i| self.inlined[i.index()])
    }

    /// Buffers a hand kernel for `id` binds for its operands: one per operand it reads as it is,
    /// and each leaf of its prologues once (see [`Schedule::prologue_leaves`]).
    fn host_bindings(&self, graph: &Graph, id: NodeId) -> usize {
        let inputs = &graph.node(id).inputs;
        let plain = inputs.iter().filter(|i| !self.inlined[i.index()]).count();
        plain + self.prologue_leaves(graph, id).len()
    }

    /// The leaves of the prologues of the kernel for `id`, each once, in binding order (a node
    /// two prologues read, as in a matmul of two views of one tensor, is bound once).
    fn prologue_leaves(&self, graph: &Graph, id: NodeId) -> Vec<NodeId> {
        let mut leaves = Vec::new();
        for &i in &graph.node(id).inputs {
            if self.inlined[i.index()] {
                self.collect_leaves(graph, i, &mut leaves);
            }
        }
        leaves
    }

    /// Storage buffers the kernel dispatched at `id` binds, its output included.
    pub fn bindings(&self, graph: &Graph, id: NodeId) -> usize {
        if let Some(p) = self.epilogue[id.index()] {
            return self.host_bindings(graph, p) + 1 + self.epilogue_leaves(graph, id, p).len();
        }
        if self.fused_elementwise(graph, id) {
            return self.kernel_reads(graph, id).len() + 1;
        }
        // A tee binds the state it writes and the write's offset.
        self.host_bindings(graph, id) + 1 + 2 * usize::from(self.tee[id.index()].is_some())
    }
}

/// Ops a value may be inlined as, and in which context.
fn inline_kind(op: &Op) -> Ctx {
    match op {
        Op::Unary(_) | Op::Binary(_) | Op::Where => Ctx::Full,
        Op::Reshape { .. } | Op::Permute { .. } | Op::Broadcast { .. } | Op::Slice { .. } => Ctx::Views,
        // A conversion per load costs what index math does (f16 weights read by a matmul).
        Op::Cast { .. } => Ctx::Views,
        // Index math plus a few flops per element (two loads of x, one of cos and sin).
        Op::Constant { .. } | Op::Iota { .. } | Op::Rope { .. } => Ctx::Views,
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
        | Op::RmsNorm { .. }
        | Op::LayerNorm { .. }
        | Op::WriteSlice { .. }
        | Op::Attention { .. }
        | Op::QuantMatMul { .. }
        | Op::QuantGather { .. } => Ctx::None,
    }
}

/// What a (non-inlined) kernel of `op` accepts inline at operand `slot`; `gemv` marks a matmul
/// the dense gemv runs (see [`dense_gemv`]).
fn accepts(op: &Op, slot: usize, in_place: bool, gemv: bool) -> Ctx {
    match op {
        // The gemv reads x once per row block, as the quantized matmuls do.
        Op::MatMul if gemv && slot == 0 => Ctx::Full,
        Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast { .. } => Ctx::Full,
        Op::Permute { .. } | Op::Broadcast { .. } | Op::Slice { .. } => Ctx::Full,
        // Hand kernels read operands through `load` functions, some elements many times.
        Op::MatMul | Op::Reduce { .. } | Op::ArgMax { .. } | Op::Softmax { .. } => Ctx::Views,
        Op::RoundInt8 { .. } => Ctx::Views,
        Op::RmsNorm { .. } | Op::LayerNorm { .. } | Op::Rope { .. } => Ctx::Views,
        // The quantized matmuls read x once per row block: a SwiGLU `silu(gate) * up` (or any
        // elementwise chain) is cheap next to dequantizing the weights, and saves a dispatch.
        Op::QuantMatMul { .. } if slot == 0 => Ctx::Full,
        // q, and k and v as views of the cache (a short decode step reads its leading rows).
        Op::Attention { .. } if slot < 3 => Ctx::Views,
        Op::WriteSlice { .. } if in_place && slot == 1 => Ctx::Views,
        Op::QuantMatMul { .. } | Op::Attention { .. } | Op::WriteSlice { .. } => Ctx::None,
        Op::Input { .. }
        | Op::Param { .. }
        | Op::Constant { .. }
        | Op::State { .. }
        | Op::Iota { .. }
        | Op::Reshape { .. }
        | Op::Concat { .. }
        | Op::Gather
        | Op::QuantGather { .. } => Ctx::None,
    }
}

/// True for a matmul the dense gemv runs (`codegen::matmul`): at most [`GEMV_MAX_ROWS`] rows of
/// f32 x times the transpose of a 2-D float matrix (possibly widened from f16 by a cast) whose
/// rows are whole 16-byte chunks in either storage (K a multiple of 8).
fn dense_gemv(graph: &Graph, node: &Node) -> bool {
    if node.op != Op::MatMul || node.dtype != DType::F32 {
        return false;
    }
    let b = graph.node(node.inputs[1]);
    let Op::Permute { perm } = &b.op else { return false };
    let mut w = graph.node(b.inputs[0]);
    if let Op::Cast { to: DType::F32 } = w.op {
        w = graph.node(w.inputs[0]);
    }
    let k = b.shape.dims()[0];
    let x_rows = graph.node(node.inputs[0]).shape.numel() / k.max(1);
    perm == &[1, 0]
        && w.shape.rank() == 2
        && w.dtype.is_float()
        && k.is_multiple_of(8)
        && x_rows <= GEMV_MAX_ROWS
}

/// Kernels that store through a binding an epilogue can replace (`store_y`/`store_c` of the hand
/// kernels, the gathers' per-element store: a dequantized f16 row widened as it is stored).
fn hosts_epilogue(op: &Op) -> bool {
    match op {
        Op::MatMul
        | Op::QuantMatMul { .. }
        | Op::Reduce { .. }
        | Op::Softmax { .. }
        | Op::RmsNorm { .. }
        | Op::LayerNorm { .. }
        | Op::Attention { .. }
        | Op::Rope { .. }
        | Op::Gather
        | Op::QuantGather { .. } => true,
        Op::Input { .. }
        | Op::Param { .. }
        | Op::Constant { .. }
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Where
        | Op::Cast { .. }
        | Op::ArgMax { .. }
        | Op::Reshape { .. }
        | Op::Permute { .. }
        | Op::Broadcast { .. }
        | Op::Slice { .. }
        | Op::Concat { .. }
        | Op::State { .. }
        | Op::Iota { .. }
        | Op::RoundInt8 { .. }
        | Op::WriteSlice { .. } => false,
    }
}

/// Elements up to which a rotary table (RoPE's angles, their cos and their sin, computed from
/// the graph's inputs and parameters alone) is recomputed by every kernel applying RoPE: a
/// decode step's table, a few dozen values each, then costs no dispatch of its own.
const SMALL_TABLE: usize = 4096;

/// `small[i]`: node `i` is an elementwise or view op of at most [`SMALL_TABLE`] elements over
/// inputs, parameters and constants only (no kernel's result, no state).
fn small_tables(graph: &Graph) -> Vec<bool> {
    let mut small = vec![false; graph.len()];
    for (id, node) in graph.iter() {
        let source =
            matches!(node.op, Op::Input { .. } | Op::Param { .. } | Op::Constant { .. } | Op::Iota { .. });
        let computed = inline_kind(&node.op) != Ctx::None
            && !matches!(node.op, Op::Rope { .. })
            && node.inputs.iter().all(|i| small[i.index()]);
        small[id.index()] = node.shape.numel() <= SMALL_TABLE && (source || computed);
    }
    small
}

/// True when `user` is a quantized gemv at operand `slot` 0 that rounds an x of `node`'s shape
/// to int8 itself (so `node`, a `round_int8`, can be its prologue's root).
fn int8_gemv_reads(target: &Target, graph: &Graph, node: &Node, user: NodeId, slot: usize) -> bool {
    let (Op::RoundInt8 { block }, u) = (&node.op, graph.node(user)) else { return false };
    let Op::QuantMatMul { bits, group_size } = u.op else { return false };
    let k = node.shape.dims().last().copied().unwrap_or(0);
    let m = node.shape.numel() / k.max(1);
    let n = u.shape.dims().last().copied().unwrap_or(0);
    slot == 0 && int8_gemv(target, m, n, k, bits, group_size, *block)
}

/// Plans fusion for `graph` on `target`; `live`/`in_place` as in the memory plan.
pub fn schedule(graph: &Graph, target: &Target, live: &[bool], in_place: &[bool]) -> Schedule {
    let profile = target.profile;
    let n = graph.len();
    let nodes = graph.nodes();
    let mut users: Vec<Vec<(NodeId, usize)>> = vec![Vec::new(); n];
    for (id, node) in graph.iter() {
        if live[id.index()] {
            for (slot, i) in node.inputs.iter().enumerate() {
                users[i.index()].push((id, slot));
            }
        }
    }
    let mut is_output = vec![false; n];
    for o in graph.outputs() {
        is_output[o.index()] = true;
    }
    let mut s = Schedule::unfused(n);
    let mut ctx_of = vec![Ctx::None; n];
    let gemv: Vec<bool> = nodes.iter().map(|node| dense_gemv(graph, node)).collect();
    let small = small_tables(graph);
    // `table[i]`: a small table whose every reader is RoPE's cos or sin, or such a table.
    let mut table = vec![false; n];
    for i in (0..n).rev() {
        let rotary = |&(u, slot): &(NodeId, usize)| match nodes[u.index()].op {
            Op::Rope { .. } => slot > 0,
            _ => table[u.index()],
        };
        table[i] = small[i] && !users[i].is_empty() && users[i].iter().all(rotary);
    }
    for i in (0..n).rev() {
        let node = &nodes[i];
        if let Op::RoundInt8 { .. } = node.op {
            // Into the integer-dot gemvs reading it, which round x as they stage it.
            let by_gemv = |&(u, slot): &(NodeId, usize)| {
                !s.inlined[u.index()] && int8_gemv_reads(target, graph, node, u, slot)
            };
            if live[i] && !is_output[i] && !users[i].is_empty() && users[i].iter().all(by_gemv) {
                s.inlined[i] = true;
                ctx_of[i] = Ctx::Full;
            }
            continue;
        }
        if let Op::RmsNorm { .. } = node.op {
            // Into the prologue of the quantized gemvs reading it (each computes the row scale once).
            let reads_as_gemv = |&(u, slot): &(NodeId, usize)| {
                let x = &nodes[u.index()];
                let k = node.shape.dims().last().copied().unwrap_or(0).max(1);
                let quant = matches!(x.op, Op::QuantMatMul { .. }) && node.shape.numel() / k <= GEMV_MAX_ROWS;
                // Or through a round_int8 that is an integer-dot gemv's prologue root.
                let rounded = matches!(x.op, Op::RoundInt8 { .. }) && s.inlined[u.index()];
                slot == 0 && (rounded || !s.inlined[u.index()] && (quant || gemv[u.index()]))
            };
            let weight_is_row = nodes[node.inputs[1].index()].shape.rank() == 1;
            if live[i] && !is_output[i] && node.dtype == DType::F32 && weight_is_row && !users[i].is_empty() {
                s.inlined[i] = users[i].iter().all(reads_as_gemv);
            }
            continue;
        }
        let kind = inline_kind(&node.op);
        if !live[i] || is_output[i] || kind == Ctx::None || users[i].is_empty() {
            continue;
        }
        let mut ctx = Ctx::Full;
        for &(u, slot) in &users[i] {
            let c = if s.inlined[u.index()] {
                ctx_of[u.index()]
            } else {
                accepts(&nodes[u.index()].op, slot, in_place[u.index()], gemv[u.index()])
            };
            ctx = ctx.min(c);
        }
        if users[i].len() > 1 && !table[i] {
            ctx = ctx.min(Ctx::Views);
        }
        // Prologue loads return the compute type where a raw load is expected: f32 only there.
        if ctx == Ctx::Views && node.dtype != DType::F32 {
            ctx = Ctx::None;
        }
        if ctx != Ctx::None && (kind <= ctx || table[i]) {
            s.inlined[i] = true;
            ctx_of[i] = ctx;
        }
    }
    // Legality: split groups over the binding limit by materializing their widest inlined value.
    let is_kernel = |s: &Schedule, i: usize| live[i] && !s.inlined[i] && !nodes[i].op.is_leaf();
    loop {
        let mut changed = false;
        for i in 0..n {
            if !is_kernel(&s, i) || kernel_is_legal(profile, s.bindings(graph, NodeId(i as u32)), 0) {
                continue;
            }
            let mut widest: Option<(usize, usize)> = None;
            let mut stack: Vec<NodeId> = nodes[i].inputs.clone();
            while let Some(v) = stack.pop() {
                if s.inlined[v.index()] {
                    let mut leaves = Vec::new();
                    s.collect_leaves(graph, v, &mut leaves);
                    if widest.is_none_or(|(_, w)| leaves.len() > w) {
                        widest = Some((v.index(), leaves.len()));
                    }
                    stack.extend(nodes[v.index()].inputs.iter().copied());
                }
            }
            if let Some((v, _)) = widest {
                s.inlined[v] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Epilogues: an elementwise kernel absorbed into the kernel producing one of its inputs.
    for r in 0..n {
        let node = &nodes[r];
        if !is_kernel(&s, r) || !node.op.is_elementwise() {
            continue;
        }
        let rid = NodeId(r as u32);
        let mut best: Option<NodeId> = None;
        let mut stack: Vec<NodeId> = node.inputs.clone();
        while let Some(v) = stack.pop() {
            let vn = &nodes[v.index()];
            if s.inlined[v.index()] {
                // Only through same-shape elementwise ops, so element i of r is element i of p.
                if vn.op.is_elementwise() && vn.shape == node.shape {
                    stack.extend(vn.inputs.iter().copied());
                }
                continue;
            }
            let single_use = users[v.index()].len() == 1;
            let ok = hosts_epilogue(&vn.op)
                && single_use
                && !is_output[v.index()]
                && !s.absorbed[v.index()]
                && vn.shape == node.shape
                && best.is_none_or(|b| v > b);
            if ok {
                best = Some(v);
            }
        }
        if let Some(p) = best {
            let extra = s.epilogue_leaves(graph, rid, p).len();
            if kernel_is_legal(profile, s.host_bindings(graph, p) + extra + 1, 0) {
                s.epilogue[r] = Some(p);
                s.absorbed[p.index()] = true;
            }
        }
    }
    // Cache writes: a state's write_slice whose source is a matmul's result seen through views
    // is stored by that matmul. Through reshapes/permutes from its only reader: in place of its
    // result (an epilogue). Otherwise, as a slice of a merged projection with other readers:
    // besides its result (a tee). Moving the write to the matmul is safe: a state's only reader
    // is its one write_slice.
    for w in 0..n {
        if !live[w] || !in_place[w] {
            continue;
        }
        let node = &nodes[w];
        let (mut v, mut sliced) = (node.inputs[1], false);
        while s.inlined[v.index()]
            && matches!(nodes[v.index()].op, Op::Reshape { .. } | Op::Permute { .. } | Op::Slice { .. })
        {
            sliced |= matches!(nodes[v.index()].op, Op::Slice { .. });
            v = nodes[v.index()].inputs[0];
        }
        let p = &nodes[v.index()];
        let host = !s.inlined[v.index()]
            && matches!(p.op, Op::QuantMatMul { .. } | Op::MatMul)
            && !s.absorbed[v.index()]
            && p.dtype == DType::F32
            && node.dtype == DType::F32
            && !s.inlined[node.inputs[2].index()];
        if !host {
            continue;
        }
        if !sliced
            && users[v.index()].len() == 1
            && !is_output[v.index()]
            && kernel_is_legal(profile, s.host_bindings(graph, v) + 2, 0)
        {
            s.epilogue[w] = Some(v);
            s.absorbed[v.index()] = true;
        } else if !is_output[w]
            && s.tee[v.index()].is_none()
            && kernel_is_legal(profile, s.bindings(graph, v) + 2, 0)
        {
            s.tee[v.index()] = Some(NodeId(w as u32));
            s.teed[w] = true;
        }
    }
    s
}
