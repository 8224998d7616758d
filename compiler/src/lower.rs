//! Lowering: one kernel (or, for a wide concat, a few) per computing node, dispatched in graph
//! order, then the copies that give every output a buffer of its own. Kernels with identical
//! WGSL are stored once in the plan. A `write_slice` into a state binds the state's buffer only
//! as its output (it updates it in place). Split kernels (flash-decoding attention) pass partial
//! results through one workspace buffer, shared by every such pair of the plan (they run in turn).

use crate::codegen::{
    Binds, Launch, Target, Value, attention, elementwise, matmul, movement, norm, quant, reduce, rope,
};
use crate::fuse::Schedule;
use crate::fuse::codegen::{fused_kernel, inline_of};
use crate::fuse::inline::{KernelFusion, Scatter};
use crate::memory::MemoryPlan;
use crate::{BufferDesc, BufferId, BufferRole, CompileError, Dispatch, IoBinding, KernelReport, Plan};
use std::collections::HashMap;
use std::sync::Arc;
use tessera_ir::{Graph, Node, NodeId, Op};

/// Builds the plan's kernels, dispatches and bindings for `graph` from its memory plan and
/// fusion schedule.
pub fn lower(
    graph: &Graph,
    target: &Target,
    memory: &MemoryPlan,
    schedule: &Schedule,
) -> Result<Plan, CompileError> {
    let mut plan = Plan { buffers: memory.buffers.clone(), ..Plan::default() };
    let mut kernel_index: HashMap<String, usize> = HashMap::new();
    let value = |id: NodeId| {
        let node = graph.node(id);
        Value { shape: node.shape.dims().to_vec(), dtype: node.dtype, storage: memory.storage[id.index()] }
    };
    let buffer = |id: NodeId| {
        memory.value_buffer[id.index()].ok_or_else(|| CompileError::Unsupported {
            op: graph.node(id).op.mnemonic(),
            reason: format!("{id} has no buffer"),
        })
    };
    let mut emit =
        |plan: &mut Plan, launch: Launch, buffers: Vec<BufferId>, ops: Vec<String>, nodes: &[NodeId]| {
            let next = plan.kernels.len();
            let bytes = buffers.iter().map(|b| plan.buffers[b.0 as usize].size).sum::<u64>();
            plan.report.push(KernelReport {
                dispatch: plan.dispatches.len(),
                kernel: launch.kernel.name.clone(),
                ops,
                bindings: buffers.len(),
                bytes,
                cost_us: crate::cost::LAUNCH_US + bytes as f64 / crate::cost::BYTES_PER_US,
                nodes: nodes.iter().map(|n| n.index()).collect(),
                rules: Vec::new(),
            });
            let kernel = *kernel_index.entry(launch.kernel.wgsl.clone()).or_insert(next);
            if kernel == next {
                plan.kernels.push(launch.kernel);
            }
            plan.dispatches.push(Dispatch { kernel, buffers, workgroups: launch.workgroups });
        };

    let mut workspace: Option<BufferId> = None;
    for (id, node) in graph.iter() {
        match &node.op {
            Op::Input { name, .. } => plan.inputs.push(io(name, buffer(id)?, &value(id))),
            Op::Param { name, .. } => plan.params.push(io(name, buffer(id)?, &value(id))),
            Op::State { name, .. } if memory.value_buffer[id.index()].is_some() => {
                plan.states.push(io(name, buffer(id)?, &value(id)))
            }
            _ => {}
        }
        if !memory.computes[id.index()] || node.shape.numel() == 0 {
            continue;
        }
        let out = value(id);
        let out_buffer = buffer(id)?;
        if schedule.fused_elementwise(graph, id) {
            let inline = inline_of(graph, schedule, &value, id, None);
            let mut bound = Vec::with_capacity(inline.leaves.len() + 1);
            for &l in &schedule.kernel_reads(graph, id) {
                bound.push(buffer(l)?);
            }
            bound.push(out_buffer);
            let ops = inline.ops.iter().map(|o| o.op.mnemonic()).collect();
            let nodes = group_nodes(graph, schedule, id, None);
            emit(&mut plan, fused_kernel(target, &inline, &out)?, bound, ops, &nodes);
            continue;
        }
        // A kernel with an epilogue is its host's kernel, storing this node's value.
        let host = schedule.epilogue[id.index()].unwrap_or(id);
        let host_node = graph.node(host);
        let in_place = memory.in_place[host.index()];
        let used = used_slots(host_node, in_place);
        let mut fusion = KernelFusion::default();
        let mut ops = vec![host_node.op.mnemonic()];
        for &k in &used {
            let operand = host_node.inputs[k];
            let prologue =
                schedule.inlined[operand.index()].then(|| inline_of(graph, schedule, &value, operand, None));
            if let Some(p) = &prologue {
                ops.extend(p.ops.iter().map(|o| o.op.mnemonic()));
            }
            fusion.prologues.push(prologue);
        }
        let tee = schedule.tee[id.index()].filter(|_| host == id);
        if let Some(w) = tee {
            fusion.tee = Some(scatter_of(graph, &value, w, id));
            ops.push("write_slice".into());
        }
        if host != id && matches!(node.op, Op::WriteSlice { .. }) {
            fusion.scatter = Some(scatter_of(graph, &value, id, host));
            ops.push("write_slice".into());
        } else if host != id {
            let epilogue = inline_of(graph, schedule, &value, id, Some(host));
            ops.extend(epilogue.ops.iter().map(|o| o.op.mnemonic()));
            fusion.epilogue = Some(epilogue);
        }
        let fused = fusion.epilogue.is_some()
            || fusion.scatter.is_some()
            || fusion.tee.is_some()
            || fusion.prologues.iter().any(Option::is_some);
        let host_target = Target { fusion: fused.then(|| Arc::new(fusion.clone())), ..target.clone() };
        let operands: Vec<Value> = host_node.inputs.iter().map(|&i| value(i)).collect();
        let host_out = value(host);
        let mut nodes = group_nodes(graph, schedule, host, None);
        if host != id {
            nodes.extend(group_nodes(graph, schedule, id, Some(host)));
        }
        if let Some(w) = tee {
            nodes.extend(group_nodes(graph, schedule, w, Some(host)));
        }
        for (launch_used, launch, binds) in launches(&host_target, host_node, &operands, &host_out, in_place)?
        {
            let mut bound: Vec<BufferId> = Vec::new();
            if binds == Binds::FromWorkspace {
                bound.push(workspace.ok_or_else(|| CompileError::Unsupported {
                    op: host_node.op.mnemonic(),
                    reason: "reads a workspace no kernel wrote".into(),
                })?);
            }
            // Prologue leaves are bound once per kernel, as `KernelWriter::read` binds them.
            let mut prologue_leaves = Vec::new();
            for (j, &k) in launch_used.iter().enumerate() {
                let operand = host_node.inputs[k];
                match fusion.prologues.get(j).and_then(Option::as_ref) {
                    Some(_) => {
                        for l in schedule.slot_leaves(graph, host, k) {
                            if !prologue_leaves.contains(&l) {
                                prologue_leaves.push(l);
                                bound.push(buffer(l)?);
                            }
                        }
                    }
                    None => bound.push(buffer(operand)?),
                }
            }
            if let Binds::ToWorkspace { bytes } = binds {
                bound.push(grow_workspace(&mut plan.buffers, &mut workspace, bytes));
                emit(&mut plan, launch, bound, ops.clone(), &nodes);
                continue;
            }
            bound.push(out_buffer);
            if host != id {
                for l in schedule.epilogue_leaves(graph, id, host) {
                    bound.push(buffer(l)?);
                }
            }
            if let Some(w) = tee {
                bound.push(buffer(w)?);
                bound.push(buffer(graph.node(w).inputs[2])?);
            }
            emit(&mut plan, launch, bound, ops.clone(), &nodes);
        }
    }
    for (k, slot) in memory.outputs.iter().enumerate() {
        let v = value(slot.node);
        if slot.copy && v.numel() > 0 {
            let launch = movement::copy(target, &v, &v)?;
            emit(&mut plan, launch, vec![buffer(slot.node)?, slot.buffer], vec!["copy".into()], &[]);
        }
        plan.outputs.push(io(&format!("output{k}"), slot.buffer, &v));
    }
    Ok(plan)
}

/// The plan's workspace, made or grown to at least `bytes`.
fn grow_workspace(buffers: &mut Vec<BufferDesc>, workspace: &mut Option<BufferId>, bytes: u64) -> BufferId {
    let id = *workspace.get_or_insert_with(|| {
        buffers.push(BufferDesc { size: 4, role: BufferRole::Scratch, label: "workspace".into() });
        BufferId(buffers.len() as u32 - 1)
    });
    let desc = &mut buffers[id.0 as usize];
    desc.size = desc.size.max(bytes);
    id
}

/// `root` and the inlined values its kernel computes with it (not `stop`, an epilogue's host).
fn group_nodes(graph: &Graph, schedule: &Schedule, root: NodeId, stop: Option<NodeId>) -> Vec<NodeId> {
    let mut nodes = vec![root];
    let mut pending = graph.node(root).inputs.clone();
    while let Some(n) = pending.pop() {
        if Some(n) == stop || !schedule.inlined[n.index()] || nodes.contains(&n) {
            continue;
        }
        nodes.push(n);
        pending.extend(&graph.node(n).inputs);
    }
    nodes
}

/// The cache write `w` as an epilogue of `host`: the views between them, in order.
fn scatter_of(graph: &Graph, value: &dyn Fn(NodeId) -> Value, w: NodeId, host: NodeId) -> Scatter {
    let node = graph.node(w);
    let mut views = Vec::new();
    let mut v = node.inputs[1];
    while v != host {
        let n = graph.node(v);
        views.push((n.op.clone(), n.shape.dims().to_vec()));
        v = n.inputs[0];
    }
    views.reverse();
    let axis = match node.op {
        Op::WriteSlice { axis } => axis,
        _ => 0,
    };
    Scatter {
        producer: graph.node(host).shape.dims().to_vec(),
        views,
        axis,
        dst: node.shape.dims().to_vec(),
        out: value(w),
    }
}

/// Operand slots the kernel of `node` binds, in order (an in-place write skips its destination).
fn used_slots(node: &Node, in_place: bool) -> Vec<usize> {
    if in_place && matches!(node.op, Op::WriteSlice { .. }) {
        vec![1, 2]
    } else {
        (0..node.inputs.len()).collect()
    }
}

fn io(name: &str, buffer: BufferId, v: &Value) -> IoBinding {
    IoBinding {
        name: name.into(),
        buffer,
        shape: v.shape.clone(),
        dtype: v.dtype,
        storage: v.storage.dtype(),
    }
}

/// The kernels computing `node`, each with the indices of the operands it binds (in order,
/// before the output) and how it binds them; `in_place` marks a `write_slice` whose output
/// buffer is its destination.
fn launches(
    target: &Target,
    node: &Node,
    x: &[Value],
    out: &Value,
    in_place: bool,
) -> Result<Vec<(Vec<usize>, Launch, Binds)>, CompileError> {
    let every = || (0..x.len()).collect::<Vec<usize>>();
    let all = |launch: Launch| Ok(vec![(every(), launch, Binds::Node)]);
    match &node.op {
        Op::Input { .. } | Op::Param { .. } | Op::State { .. } | Op::Reshape { .. } => Ok(Vec::new()),
        Op::Constant { value, .. } => all(elementwise::fill(target, value.into_inner(), out)?),
        Op::Unary(u) => all(elementwise::unary(target, *u, &x[0], out)?),
        Op::Binary(b) => all(elementwise::binary(target, *b, &x[0], &x[1], out)?),
        Op::Where => all(elementwise::select(target, &x[0], &x[1], &x[2], out)?),
        Op::Cast { .. } => all(elementwise::cast(target, &x[0], out)?),
        Op::Reduce { kind, axes, .. } => all(reduce::reduce(target, *kind, axes, &x[0], out)?),
        Op::ArgMax { axis, .. } => all(reduce::argmax(target, *axis, &x[0], out)?),
        Op::MatMul => all(matmul::matmul(target, &x[0], &x[1], out)?),
        Op::Permute { perm } => all(movement::permute(target, &x[0], perm, out)?),
        Op::Broadcast { .. } => all(movement::broadcast(target, &x[0], out)?),
        Op::Slice { ranges } => all(movement::slice(target, &x[0], ranges, out)?),
        Op::Concat { axis } => {
            let parts: Vec<&Value> = x.iter().collect();
            let launches = movement::concat(target, &parts, *axis, out)?;
            Ok(launches.into_iter().map(|(used, launch)| (used, launch, Binds::Node)).collect())
        }
        Op::Gather => all(movement::gather(target, &x[0], &x[1], out)?),
        Op::Softmax { axis } => all(norm::softmax(target, *axis, &x[0], out)?),
        Op::RmsNorm { eps } => all(norm::rms_norm(target, eps.into_inner(), &x[0], &x[1], out)?),
        Op::LayerNorm { eps } => all(norm::layer_norm(target, eps.into_inner(), &x[0], &x[1], &x[2], out)?),
        Op::Rope { style } => all(rope::rope(target, *style, &x[0], &x[1], &x[2], out)?),
        Op::Iota { axis, .. } => all(elementwise::iota(target, *axis, out)?),
        Op::WriteSlice { axis } if in_place => {
            // The destination is the output buffer itself; an empty source writes nothing.
            if x[1].numel() == 0 {
                return Ok(Vec::new());
            }
            Ok(vec![(vec![1, 2], movement::write_slice_in_place(target, *axis, &x[1], out)?, Binds::Node)])
        }
        Op::WriteSlice { axis } => all(movement::write_slice(target, *axis, &x[0], &x[1], out)?),
        Op::Attention { scale, causal } => {
            let cache = attention::KvCache { k: &x[1], v: &x[2], len: &x[3] };
            let launches = attention::attention(target, scale.into_inner(), *causal, &x[0], &cache, out)?;
            // The combine binds only the workspace (then the output).
            let used = |binds| if binds == Binds::FromWorkspace { Vec::new() } else { every() };
            Ok(launches.into_iter().map(|(launch, binds)| (used(binds), launch, binds)).collect())
        }
        Op::RoundInt8 { block } => all(quant::round_int8(target, *block, &x[0], out)?),
        Op::QuantMatMul { bits, group_size } => {
            let weights = quant::Packed {
                bits: *bits,
                group_size: *group_size,
                w: &x[1],
                scales: &x[2],
                biases: &x[3],
            };
            all(quant::quant_matmul(target, &x[0], &weights, out)?)
        }
        Op::QuantGather { bits, group_size } => {
            let table = quant::Packed {
                bits: *bits,
                group_size: *group_size,
                w: &x[0],
                scales: &x[1],
                biases: &x[2],
            };
            all(quant::quant_gather(target, &table, &x[3], out)?)
        }
    }
}
