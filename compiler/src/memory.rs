//! Memory plan: one buffer per live value, with reshapes aliasing their operand, host-visible
//! roles for inputs, params and outputs, and a linear scan that lets scratch values whose
//! lifetimes do not overlap share a buffer. Every output gets a buffer of its own; where that
//! needs a copy (an input, param or reshape as output, or one node output twice), it is recorded.
//! A `write_slice` into a `state` updates the state's buffer in place: its value aliases it.

use crate::codegen::{Storage, buffer_bytes};
use crate::fuse::Schedule;
use crate::{BufferDesc, BufferId, BufferRole, CompileError, DeviceProfile};
use tessera_ir::{Graph, NodeId, Op};

/// Where every value lives.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// The physical buffers.
    pub buffers: Vec<BufferDesc>,
    /// Buffer of each node's value (`None` for values no output depends on).
    pub value_buffer: Vec<Option<BufferId>>,
    /// Storage type of each node's value.
    pub storage: Vec<Storage>,
    /// Nodes that run a kernel (live, not a leaf read from the host, not an aliasing reshape).
    pub computes: Vec<bool>,
    /// `write_slice` nodes whose destination is a `state`: they write into its buffer in place.
    pub in_place: Vec<bool>,
    /// One slot per graph output, in order.
    pub outputs: Vec<OutputSlot>,
}

/// A graph output's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputSlot {
    /// The node whose value is the output.
    pub node: NodeId,
    /// The output buffer.
    pub buffer: BufferId,
    /// True when a copy kernel fills `buffer` from the node's own buffer.
    pub copy: bool,
}

/// Which values some output or state update depends on, and which `write_slice` nodes update a
/// state in place.
pub fn liveness(graph: &Graph) -> (Vec<bool>, Vec<bool>) {
    let n = graph.len();
    let nodes = graph.nodes();
    // A write into a state is a side effect the next run sees: always live.
    let in_place: Vec<bool> = nodes
        .iter()
        .map(|node| {
            matches!(node.op, Op::WriteSlice { .. })
                && node.inputs.first().is_some_and(|&d| matches!(graph.node(d).op, Op::State { .. }))
        })
        .collect();
    let mut live = in_place.clone();
    for o in graph.outputs() {
        live[o.index()] = true;
    }
    for i in (0..n).rev() {
        if live[i] {
            for j in &nodes[i].inputs {
                live[j.index()] = true;
            }
        }
    }
    (live, in_place)
}

/// Plans buffers for `graph` on `profile` under the fusion `schedule` (inlined values and
/// epilogue hosts get no buffer); `reuse` enables sharing of scratch buffers.
pub fn plan(
    graph: &Graph,
    profile: &DeviceProfile,
    reuse: bool,
    schedule: &Schedule,
) -> Result<MemoryPlan, CompileError> {
    let n = graph.len();
    let nodes = graph.nodes();
    let storage: Vec<Storage> = nodes.iter().map(|node| Storage::of(node.dtype, profile)).collect();
    let size = |i: usize| buffer_bytes(nodes[i].shape.numel(), storage[i]);
    let limit = profile.limits.max_storage_buffer_binding_size.min(profile.limits.max_buffer_size);
    let (live, in_place) = liveness(graph);
    let is_leaf_or_alias =
        |op: &Op| matches!(op, Op::Input { .. } | Op::Param { .. } | Op::State { .. } | Op::Reshape { .. });
    let fused_away = |i: usize| schedule.inlined[i] || schedule.absorbed[i] || schedule.teed[i];
    // Splitting tensors larger than one binding comes later; until then it is an error. Values
    // computed inline (an f16 weight widened as a matmul loads it) never get a buffer.
    for (i, node) in nodes.iter().enumerate() {
        if size(i) > limit && !fused_away(i) {
            return Err(CompileError::Limit {
                what: format!("{} ({}{}) buffer bytes", NodeId(i as u32), node.dtype, node.shape),
                value: size(i),
                limit,
            });
        }
    }
    let computes: Vec<bool> =
        (0..n).map(|i| live[i] && !is_leaf_or_alias(&nodes[i].op) && !fused_away(i)).collect();

    // Outputs that a node's own buffer can serve directly, and those that need a copy.
    let mut direct = vec![None; n];
    let mut copies = Vec::new();
    for (k, o) in graph.outputs().iter().enumerate() {
        if computes[o.index()] && !in_place[o.index()] && direct[o.index()].is_none() {
            direct[o.index()] = Some(k);
        } else {
            copies.push(k);
        }
    }

    // Root value (owner of the buffer) of each value, and the last step each root is read at.
    let mut root: Vec<usize> = (0..n).collect();
    let mut end: Vec<usize> = (0..n).collect();
    for (i, node) in nodes.iter().enumerate() {
        let alias = matches!(node.op, Op::Reshape { .. }) && !schedule.inlined[i];
        if alias || in_place[i] {
            root[i] = root[node.inputs[0].index()];
        }
        let reads = if computes[i] {
            schedule.kernel_reads(graph, NodeId(i as u32))
        } else if alias && live[i] {
            node.inputs.clone()
        } else {
            Vec::new()
        };
        for j in reads {
            let r = root[j.index()];
            end[r] = end[r].max(i);
        }
    }
    for &k in &copies {
        let r = root[graph.outputs()[k].index()];
        end[r] = n;
    }

    let mut buffers: Vec<BufferDesc> = Vec::new();
    let mut new_buffer = |size: u64, role: BufferRole, label: String| {
        buffers.push(BufferDesc { size, role, label });
        BufferId(buffers.len() as u32 - 1)
    };
    let mut value_buffer: Vec<Option<BufferId>> = vec![None; n];
    let mut free: Vec<BufferId> = Vec::new();
    let mut scratch_of_root: Vec<Option<BufferId>> = vec![None; n];
    let mut ending: Vec<Vec<usize>> = vec![Vec::new(); n + 1];
    let mut scratch_sizes: Vec<u64> = Vec::new();
    let mut scratch_count = 0usize;
    for i in 0..n {
        let node = &nodes[i];
        let id = match &node.op {
            Op::Input { name, .. } => Some(new_buffer(size(i), BufferRole::Input, name.clone())),
            Op::Param { name, .. } => Some(new_buffer(size(i), BufferRole::Param, name.clone())),
            Op::State { name, .. } => Some(new_buffer(size(i), BufferRole::State, name.clone())),
            Op::Reshape { .. } if schedule.inlined[i] => None,
            Op::Reshape { .. } => value_buffer[node.inputs[0].index()],
            Op::WriteSlice { .. } if in_place[i] => value_buffer[node.inputs[0].index()],
            Op::Constant { .. }
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Where
            | Op::Cast { .. }
            | Op::Reduce { .. }
            | Op::ArgMax { .. }
            | Op::MatMul
            | Op::Permute { .. }
            | Op::Broadcast { .. }
            | Op::Slice { .. }
            | Op::Concat { .. }
            | Op::Gather
            | Op::Softmax { .. }
            | Op::RoundInt8 { .. }
            | Op::RmsNorm { .. }
            | Op::LayerNorm { .. }
            | Op::Rope { .. }
            | Op::Iota { .. }
            | Op::WriteSlice { .. }
            | Op::Attention { .. }
            | Op::QuantMatMul { .. }
            | Op::QuantGather { .. } => match (computes[i], direct[i]) {
                (false, _) => None,
                (true, Some(k)) => Some(new_buffer(size(i), BufferRole::Output, format!("output{k}"))),
                (true, None) => {
                    let want = size(i);
                    let reused = if reuse { take_free(&mut free, &scratch_sizes, want) } else { None };
                    let id = match reused {
                        Some(id) => id,
                        None => {
                            let id = new_buffer(want, BufferRole::Scratch, format!("scratch{scratch_count}"));
                            scratch_count += 1;
                            id
                        }
                    };
                    scratch_sizes.resize(scratch_sizes.len().max(id.0 as usize + 1), 0);
                    scratch_sizes[id.0 as usize] = scratch_sizes[id.0 as usize].max(want);
                    scratch_of_root[i] = Some(id);
                    ending[end[i]].push(i);
                    Some(id)
                }
            },
        };
        value_buffer[i] = id;
        // Buffers whose last reader is this step become free after it (never for its own output).
        for r in std::mem::take(&mut ending[i]) {
            if let Some(id) = scratch_of_root[r] {
                free.push(id);
            }
        }
    }
    let mut outputs: Vec<OutputSlot> = Vec::new();
    for (k, o) in graph.outputs().iter().enumerate() {
        let slot = match direct[o.index()] {
            Some(d) if d == k => OutputSlot {
                node: *o,
                buffer: value_buffer[o.index()].ok_or_else(|| missing(*o))?,
                copy: false,
            },
            _ => {
                let id = new_buffer(size(o.index()), BufferRole::Output, format!("output{k}"));
                OutputSlot { node: *o, buffer: id, copy: true }
            }
        };
        outputs.push(slot);
    }
    for (id, &s) in scratch_sizes.iter().enumerate() {
        if s > 0 {
            buffers[id].size = s;
        }
    }
    Ok(MemoryPlan { buffers, value_buffer, storage, computes, in_place, outputs })
}

fn missing(id: NodeId) -> CompileError {
    CompileError::Unsupported { op: format!("{id}"), reason: "value has no buffer".into() }
}

/// The smallest free scratch buffer that fits `want`, else the largest one (it grows).
fn take_free(free: &mut Vec<BufferId>, sizes: &[u64], want: u64) -> Option<BufferId> {
    let size = |id: &BufferId| sizes[id.0 as usize];
    let pick = free
        .iter()
        .enumerate()
        .filter(|(_, id)| size(id) >= want)
        .min_by_key(|(_, id)| size(id))
        .or_else(|| free.iter().enumerate().max_by_key(|(_, id)| size(id)))
        .map(|(pos, _)| pos)?;
    Some(free.swap_remove(pick))
}
