//! Greedy DAG-aware extraction: a class's cost is the summed cost of the *set* of classes its
//! best node reaches, so a subterm shared by several users is paid once (egg's `Extractor` pays
//! it once per use). Nodes whose choice would reach their own class are skipped, so the result
//! is acyclic. Then the chosen nodes are written back into an `ir::Graph`.

use super::lang::{TEGraph, TNode};
use crate::cost::op_cost;
use egg::Id;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use tessera_ir::{Graph, IrError, NodeId, Op};

/// Best node of each class reachable from the roots.
pub struct Extraction {
    /// Chosen e-node per canonical class.
    pub choice: HashMap<Id, TNode>,
    /// Total DAG cost of the roots (microseconds).
    pub cost: f64,
}

type CostSet = Rc<BTreeMap<Id, f64>>;

/// The cost of one e-node by itself (its operands' costs not included).
fn node_cost(egraph: &TEGraph, node: &TNode) -> f64 {
    let x: Vec<_> = node.args.iter().map(|&a| egraph[a].data.ty.clone()).collect();
    let out = match super::lang::node_type(egraph, &node.op, &node.args) {
        Some(t) => t,
        None => return f64::INFINITY,
    };
    op_cost(&node.op, &x, &out).total()
}

/// Picks one node per class, minimizing the DAG cost of each class greedily to a fixpoint.
pub fn extract(egraph: &TEGraph, roots: &[Id]) -> Result<Extraction, IrError> {
    let mut best: HashMap<Id, (f64, CostSet, TNode)> = HashMap::new();
    let mut classes: Vec<Id> = egraph.classes().map(|c| c.id).collect();
    classes.sort();
    let mut changed = true;
    while changed {
        changed = false;
        for &class in &classes {
            for node in &egraph[class].nodes {
                let Some(set) = reach(egraph, &best, class, node) else { continue };
                let total: f64 = set.values().sum();
                let better = best.get(&class).is_none_or(|(old, _, _)| total < old - 1e-9);
                if better {
                    best.insert(class, (total, Rc::new(set), node.clone()));
                    changed = true;
                }
            }
        }
    }
    let mut root_set: BTreeMap<Id, f64> = BTreeMap::new();
    for r in roots {
        let r = egraph.find(*r);
        let (_, set, _) =
            best.get(&r).ok_or_else(|| IrError::Graph(format!("e-class {r} has no acyclic term")))?;
        root_set.extend(set.iter().map(|(k, v)| (*k, *v)));
    }
    let cost = root_set.values().sum();
    Ok(Extraction { choice: best.into_iter().map(|(k, (_, _, n))| (k, n)).collect(), cost })
}

/// The classes (with their own node costs) `node` reaches when chosen for `class`; `None` when an
/// operand has no cost yet or the choice would reach `class` itself (a cycle).
fn reach(
    egraph: &TEGraph,
    best: &HashMap<Id, (f64, CostSet, TNode)>,
    class: Id,
    node: &TNode,
) -> Option<BTreeMap<Id, f64>> {
    let mut set: BTreeMap<Id, f64> = BTreeMap::new();
    for &a in &node.args {
        let a = egraph.find(a);
        let (_, child, _) = best.get(&a)?;
        if a == class || child.contains_key(&class) {
            return None;
        }
        if set.is_empty() {
            set = (**child).clone();
        } else {
            set.extend(child.iter().map(|(k, v)| (*k, *v)));
        }
    }
    set.insert(class, node_cost(egraph, node));
    Some(set)
}

/// Writes the extracted term back as a graph: the original graph's inputs and params first, in
/// their order (so the plan binds the same names), then every reached node in dependency order.
/// Also returns the canonical e-class of each node of the new graph (for per-kernel reports).
pub fn rebuild(
    original: &Graph,
    egraph: &TEGraph,
    extraction: &Extraction,
    leaf_class: &[(NodeId, Id)],
    outputs: &[Id],
    effects: &[Id],
) -> Result<(Graph, Vec<Id>), IrError> {
    let mut g = Graph::new();
    let mut built: HashMap<Id, NodeId> = HashMap::new();
    for &(node, class) in leaf_class {
        let n = original.node(node);
        if matches!(n.op, Op::Input { .. } | Op::Param { .. }) {
            let id = g.add(n.op.clone(), &[])?;
            built.insert(egraph.find(class), id);
        }
    }
    let mut new_outputs = Vec::with_capacity(outputs.len());
    for &root in outputs.iter().chain(effects) {
        let id = build(&mut g, egraph, extraction, &mut built, root)?;
        new_outputs.push(id);
    }
    new_outputs.truncate(outputs.len());
    g.set_outputs(new_outputs)?;
    let mut class_of = vec![Id::from(0usize); g.len()];
    for (class, node) in built {
        class_of[node.index()] = class;
    }
    Ok((g, class_of))
}

/// Adds the chosen term of `class` (operands first, iteratively, so deep graphs do not recurse).
fn build(
    g: &mut Graph,
    egraph: &TEGraph,
    extraction: &Extraction,
    built: &mut HashMap<Id, NodeId>,
    class: Id,
) -> Result<NodeId, IrError> {
    let mut stack = vec![(egraph.find(class), false)];
    while let Some((c, expanded)) = stack.pop() {
        if built.contains_key(&c) {
            continue;
        }
        let node = extraction
            .choice
            .get(&c)
            .ok_or_else(|| IrError::Graph(format!("e-class {c} was not extracted")))?;
        if expanded {
            let inputs: Vec<NodeId> = node.args.iter().map(|&a| built[&egraph.find(a)]).collect();
            let id = g.add(node.op.clone(), &inputs)?;
            built.insert(c, id);
        } else {
            stack.push((c, true));
            for &a in node.args.iter().rev() {
                let a = egraph.find(a);
                if !built.contains_key(&a) {
                    stack.push((a, false));
                }
            }
        }
    }
    Ok(built[&egraph.find(class)])
}
