//! From a schedule to kernels: the [`Inline`] behind a value, and the generated per-element
//! kernel of a fused elementwise group.

use super::Schedule;
use super::inline::{Inline, InlineOp, Src};
use crate::CompileError;
use crate::codegen::grid::Grid;
use crate::codegen::{KernelWriter, Launch, Target, Value};
use std::collections::HashMap;
use tessera_ir::{Graph, NodeId};

/// The inline computation of `root` over the materialized values it reads (leaves in the
/// order [`Schedule::slot_leaves`] lists them); `acc` is an epilogue host read as `v`.
pub fn inline_of(
    graph: &Graph,
    schedule: &Schedule,
    value: &dyn Fn(NodeId) -> Value,
    root: NodeId,
    acc: Option<NodeId>,
) -> Inline {
    let mut b = Builder {
        graph,
        schedule,
        value,
        root,
        acc,
        leaves: Vec::new(),
        ops: Vec::new(),
        seen: HashMap::new(),
    };
    b.visit(root);
    let leaves = b.leaves.iter().map(|&l| value(l)).collect();
    Inline { leaves, nodes: b.leaves, ops: b.ops, acc: acc.map(value) }
}

struct Builder<'a> {
    graph: &'a Graph,
    schedule: &'a Schedule,
    value: &'a dyn Fn(NodeId) -> Value,
    root: NodeId,
    acc: Option<NodeId>,
    leaves: Vec<NodeId>,
    ops: Vec<InlineOp>,
    seen: HashMap<NodeId, Src>,
}

impl Builder<'_> {
    fn visit(&mut self, id: NodeId) -> Src {
        if Some(id) == self.acc {
            return Src::Acc;
        }
        if let Some(&s) = self.seen.get(&id) {
            return s;
        }
        let src = if id != self.root && !self.schedule.inlined[id.index()] {
            self.leaves.push(id);
            Src::Leaf(self.leaves.len() - 1)
        } else {
            let node = self.graph.node(id);
            let args = node.inputs.iter().map(|&i| self.visit(i)).collect();
            self.ops.push(InlineOp { op: node.op.clone(), args, value: (self.value)(id) });
            Src::Op(self.ops.len() - 1)
        };
        self.seen.insert(id, src);
        src
    }
}

/// One per-element kernel computing `inline` into `out`: binds the leaves, then `out`.
pub fn fused_kernel(target: &Target, inline: &Inline, out: &Value) -> Result<Launch, CompileError> {
    let wg = target.workgroup_size();
    let mut name = String::from("fused");
    for op in inline.ops.iter().rev().take(6) {
        name.push('_');
        name.push_str(&op.op.mnemonic().replace('.', "_"));
    }
    let n = target.check_numel(&name, out.numel())?;
    let grid = Grid::linear(n.div_ceil(wg) as u64, &target.profile.limits)?;
    let mut w = KernelWriter::new(name, wg);
    let leaves: Vec<_> = inline.leaves.iter().map(|v| w.read(v.dtype, v.storage)).collect();
    let o = w.write(out.dtype, out.storage);
    w.function(&inline.load_fn("fused", &leaves)?);
    let body = vec![o.store("idx", "fused(idx)")];
    Ok(Launch { kernel: w.finish_per_element(n, grid.grid_x, &body), workgroups: grid.workgroups })
}
