//! The e-graph optimizer: a graph goes into an egg e-graph over `ir::Op`, named rules saturate
//! it under node/iteration/time bounds, and a DAG-aware extractor writes the cheapest equivalent
//! graph back. The whole graph is one e-graph, *bounded* (not split per block): the rules are
//! local simplifications, so even the 30-layer SmolLM2 decode graph saturates in a few
//! iterations well under the node limit (see tests/compiler_model.rs for the measured time).

pub mod extract;
pub mod lang;

pub use lang::{ClassData, TEGraph, TNode, TypeAnalysis};

use crate::cost::op_cost;
use crate::rules::Rule;
use egg::{Id, Runner, StopReason, Symbol};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tessera_ir::{Graph, IrError, NodeId, Op};

/// Bounds on one saturation run (env overrides: `TESSERA_EGRAPH_NODES`, `TESSERA_EGRAPH_ITERS`,
/// `TESSERA_EGRAPH_TIME_MS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaturationLimits {
    /// Most e-nodes.
    pub nodes: usize,
    /// Most iterations.
    pub iterations: usize,
    /// Wall-clock bound.
    pub time: Duration,
}

impl Default for SaturationLimits {
    fn default() -> SaturationLimits {
        SaturationLimits { nodes: 50_000, iterations: 12, time: Duration::from_millis(400) }
    }
}

impl SaturationLimits {
    /// The defaults, overridden by the `TESSERA_EGRAPH_*` variables that parse.
    pub fn from_env() -> SaturationLimits {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let d = SaturationLimits::default();
        SaturationLimits {
            nodes: var("TESSERA_EGRAPH_NODES").map_or(d.nodes, |v| v as usize),
            iterations: var("TESSERA_EGRAPH_ITERS").map_or(d.iterations, |v| v as usize),
            time: var("TESSERA_EGRAPH_TIME_MS").map_or(d.time, Duration::from_millis),
        }
    }
}

/// What one optimization did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizeReport {
    /// Nodes in the graph before and after.
    pub graph_nodes: (usize, usize),
    /// E-nodes and e-classes at the end of saturation.
    pub egraph_nodes: usize,
    /// E-classes at the end of saturation.
    pub egraph_classes: usize,
    /// Iterations run.
    pub iterations: usize,
    /// Why saturation stopped.
    pub stop_reason: String,
    /// Rules that changed the e-graph, by name.
    pub rules_fired: Vec<String>,
    /// Each iteration's e-graph size and rule applications.
    pub per_iteration: Vec<IterationStats>,
    /// DAG cost of the graph as written (cost model microseconds).
    pub cost_before: f64,
    /// Extracted DAG cost (cost model microseconds).
    pub cost: f64,
    /// For each node of the optimized graph, the rules that rewrote its e-class or an operand
    /// class it used (sorted, deduplicated).
    pub node_rules: Vec<Vec<String>>,
    /// Wall time of the whole step.
    pub elapsed: Duration,
}

/// One saturation iteration, as egg reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IterationStats {
    /// E-nodes at the start of the iteration.
    pub egraph_nodes: usize,
    /// E-classes at the start of the iteration.
    pub egraph_classes: usize,
    /// Rules that changed the e-graph in this iteration, with how many times each did.
    pub applied: Vec<(String, usize)>,
}

/// Rewrites `graph` with `rules` into the cheapest equivalent graph found within `limits`.
pub fn optimize(
    graph: &Graph,
    rules: &[Rule],
    limits: &SaturationLimits,
) -> Result<(Graph, OptimizeReport), IrError> {
    let start = Instant::now();
    let mut egraph = TEGraph::default();
    let mut class_of: Vec<Id> = Vec::with_capacity(graph.len());
    let mut leaf_class = Vec::new();
    for (id, node) in graph.iter() {
        let args = node.inputs.iter().map(|i| class_of[i.index()]).collect();
        let class = egraph.add(TNode::new(node.op.clone(), args));
        if node.op.is_leaf() {
            leaf_class.push((id, class));
        }
        class_of.push(class);
    }
    let outputs: Vec<Id> = graph.outputs().iter().map(|o| class_of[o.index()]).collect();
    let effects: Vec<Id> = in_place_writes(graph).into_iter().map(|w| class_of[w.index()]).collect();
    let rewrites = crate::rules::rewrites(rules);
    let runner = Runner::<TNode, TypeAnalysis>::default()
        .with_egraph(egraph)
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time)
        .run(&rewrites);
    let stop_reason = match &runner.stop_reason {
        Some(StopReason::Saturated) => "saturated".to_string(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit {n}"),
        Some(StopReason::NodeLimit(n)) => format!("node limit {n}"),
        Some(StopReason::TimeLimit(s)) => format!("time limit {s}s"),
        Some(StopReason::Other(s)) => s.clone(),
        None => "not run".to_string(),
    };
    let per_iteration: Vec<IterationStats> = runner
        .iterations
        .iter()
        .map(|it| IterationStats {
            egraph_nodes: it.egraph_nodes,
            egraph_classes: it.egraph_classes,
            applied: it.applied.iter().filter(|(_, n)| **n > 0).map(|(r, n)| (r.to_string(), *n)).collect(),
        })
        .collect();
    let mut rules_fired: Vec<String> =
        per_iteration.iter().flat_map(|it| it.applied.iter().map(|(r, _)| r.clone())).collect();
    rules_fired.sort();
    rules_fired.dedup();
    let egraph = &runner.egraph;
    let roots: Vec<Id> = outputs.iter().chain(&effects).copied().collect();
    let extraction = extract::extract(egraph, &roots)?;
    let (optimized, node_class) =
        extract::rebuild(graph, egraph, &extraction, &leaf_class, &outputs, &effects)?;
    let report = OptimizeReport {
        graph_nodes: (graph.len(), optimized.len()),
        egraph_nodes: egraph.total_size(),
        egraph_classes: egraph.number_of_classes(),
        iterations: runner.iterations.len(),
        stop_reason,
        rules_fired,
        per_iteration,
        cost_before: graph_cost(graph),
        cost: extraction.cost,
        node_rules: rules_by_node(egraph, &node_class),
        elapsed: start.elapsed(),
    };
    tracing::debug!(
        nodes_before = report.graph_nodes.0,
        nodes_after = report.graph_nodes.1,
        egraph_nodes = report.egraph_nodes,
        iterations = report.iterations,
        stop = %report.stop_reason,
        rules = ?report.rules_fired,
        ms = report.elapsed.as_secs_f64() * 1e3,
        "e-graph optimized"
    );
    Ok((optimized, report))
}

/// The rules applied to each node's e-class, or to a class it used when the rule fired.
fn rules_by_node(egraph: &TEGraph, node_class: &[Id]) -> Vec<Vec<String>> {
    let mut by_class: HashMap<Id, BTreeSet<Symbol>> = HashMap::new();
    for application in &egraph.analysis.applications {
        for &class in std::iter::once(&application.class).chain(&application.users) {
            by_class.entry(egraph.find(class)).or_default().insert(application.rule);
        }
    }
    node_class
        .iter()
        .map(|class| {
            let rules = by_class.get(class).into_iter().flatten();
            let mut names: Vec<String> = rules.map(|r| r.to_string()).collect();
            names.sort();
            names
        })
        .collect()
}

/// The summed cost of every node of `graph`, each as its own kernel (what extraction would pay
/// for the graph as written).
fn graph_cost(graph: &Graph) -> f64 {
    graph
        .iter()
        .map(|(_, node)| {
            let operands: Vec<_> = node.inputs.iter().map(|&i| graph.node(i).ty()).collect();
            op_cost(&node.op, &operands, &node.ty()).total()
        })
        .sum()
}

/// `write_slice` nodes into a state: side effects kept even when no output reads them.
pub fn in_place_writes(graph: &Graph) -> Vec<NodeId> {
    graph
        .iter()
        .filter(|(_, n)| {
            matches!(n.op, Op::WriteSlice { .. })
                && n.inputs.first().is_some_and(|&d| matches!(graph.node(d).op, Op::State { .. }))
        })
        .map(|(id, _)| id)
        .collect()
}
