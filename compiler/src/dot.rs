//! Graphviz DOT of a compiled plan: the optimized graph with each dispatch's nodes drawn as a
//! cluster labelled by its kernel, beside the graph as written. `compile-model --dot DIR` and
//! `TESSERA_DOT=DIR` write both files.

use crate::Plan;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use tessera_ir::dot::{Cluster, render};
use tessera_ir::{Graph, NodeId};

/// `optimized` (the graph the plan was lowered from) with one `subgraph cluster_k` per dispatch,
/// labelled `#dispatch kernel-name`.
pub fn plan_dot(optimized: &Graph, plan: &Plan) -> String {
    let clusters: Vec<Cluster> = plan
        .report
        .iter()
        .map(|r| Cluster {
            label: format!("#{} {}", r.dispatch, r.kernel),
            nodes: r.nodes.iter().map(|&n| NodeId(n as u32)).collect(),
        })
        .collect();
    render(optimized, &clusters)
}

/// A short stable name for a graph (12 hex digits of a hash of the graph), for file names.
pub fn graph_hash(graph: &Graph) -> String {
    let mut hasher = DefaultHasher::new();
    graph.hash(&mut hasher);
    format!("{:012x}", hasher.finish() >> 16)
}

/// Writes `{prefix}before.dot` (the graph as written) and `{prefix}after.dot` (optimized, fused
/// kernels as clusters) into `dir`, creating it; returns the two paths.
pub fn write_dot_files(
    dir: &Path,
    prefix: &str,
    before: &Graph,
    optimized: &Graph,
    plan: &Plan,
) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let before_path = dir.join(format!("{prefix}before.dot"));
    let after_path = dir.join(format!("{prefix}after.dot"));
    std::fs::write(&before_path, before.to_dot())?;
    std::fs::write(&after_path, plan_dot(optimized, plan))?;
    Ok((before_path, after_path))
}
