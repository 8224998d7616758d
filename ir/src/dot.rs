//! Graphviz DOT of a graph: one box per node labelled `%id mnemonic` and `dtype[shape]`, one
//! edge per operand. Inputs, params, states, constants and outputs each have their own shape,
//! so a large graph stays readable; [`render`] also draws groups of nodes (fused kernels) as
//! clusters.
//!
//! ```
//! use tessera_ir::{DType, Graph, Op, UnaryOp};
//!
//! let mut g = Graph::new();
//! let x = g.input("x", [4], DType::F32);
//! let y = g.add(Op::Unary(UnaryOp::Exp), &[x])?;
//! g.add_output(y)?;
//! let dot = g.to_dot();
//! assert!(dot.starts_with("digraph tessera {") && dot.contains("n0 -> n1"));
//! # Ok::<(), tessera_ir::IrError>(())
//! ```

use crate::{Graph, Node, NodeId, Op};
use std::fmt::Write;

/// Nodes drawn together in a box (`subgraph cluster_k`), e.g. the ops of one fused kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cluster {
    /// Shown as the cluster's title (a kernel name).
    pub label: String,
    /// Nodes inside it; a node already drawn in an earlier cluster stays there.
    pub nodes: Vec<NodeId>,
}

impl Graph {
    /// The graph as a Graphviz `digraph` (`dot -Tsvg` draws it).
    pub fn to_dot(&self) -> String {
        render(self, &[])
    }
}

/// `graph` as a `digraph`, with each of `clusters` as a `subgraph cluster_k`. A cluster whose
/// nodes were all drawn already (a kernel dispatched twice, an output copy) gets a placeholder
/// node of its own, so there is always one cluster per entry.
pub fn render(graph: &Graph, clusters: &[Cluster]) -> String {
    let mut outputs: Vec<Vec<usize>> = vec![Vec::new(); graph.len()];
    for (k, o) in graph.outputs().iter().enumerate() {
        outputs[o.index()].push(k);
    }
    let statement = |id: NodeId| node_statement(id, graph.node(id), &outputs[id.index()]);
    let mut drawn = vec![false; graph.len()];
    let mut s =
        String::from("digraph tessera {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n");
    for (k, cluster) in clusters.iter().enumerate() {
        let _ = writeln!(
            s,
            "  subgraph cluster_{k} {{\n    label=\"{}\";\n    style=rounded;",
            escape(&cluster.label)
        );
        let mut any = false;
        for &id in &cluster.nodes {
            if id.index() < graph.len() && !drawn[id.index()] {
                drawn[id.index()] = true;
                any = true;
                let _ = writeln!(s, "    {}", statement(id));
            }
        }
        if !any {
            let _ = writeln!(s, "    k{k} [label=\"{}\", shape=note];", escape(&cluster.label));
        }
        s.push_str("  }\n");
    }
    for (id, _) in graph.iter().filter(|(id, _)| !drawn[id.index()]) {
        let _ = writeln!(s, "  {}", statement(id));
    }
    for (id, node) in graph.iter() {
        for input in &node.inputs {
            let _ = writeln!(s, "  n{} -> n{};", input.index(), id.index());
        }
    }
    s.push_str("}\n");
    s
}

/// `nK [label=..., shape=...]`: the shape says what kind of value the node is.
fn node_statement(id: NodeId, node: &Node, outputs: &[usize]) -> String {
    let mut label = format!("{id} {}", node.op.mnemonic());
    match &node.op {
        Op::Input { name, .. } | Op::Param { name, .. } | Op::State { name, .. } => {
            let _ = write!(label, " \"{name}\"");
        }
        Op::Constant { value, .. } => {
            let _ = write!(label, " {:?}", value.into_inner());
        }
        _ => {}
    }
    let _ = write!(label, "\n{}{}", node.dtype, node.shape);
    for k in outputs {
        let _ = write!(label, "\noutput {k}");
    }
    let style = match &node.op {
        Op::Input { .. } => "shape=invhouse, style=filled, fillcolor=\"#cfe8ff\"",
        Op::Param { .. } => "shape=box, style=\"filled,dashed\", fillcolor=\"#eeeeee\"",
        Op::State { .. } => "shape=cylinder, style=filled, fillcolor=\"#ffe9c7\"",
        Op::Constant { .. } | Op::Iota { .. } => "shape=plain",
        _ => "shape=box",
    };
    let output = if outputs.is_empty() { "" } else { ", peripheries=2, penwidth=2" };
    format!("n{} [label=\"{}\", {style}{output}];", id.index(), escape(&label))
}

/// A DOT double-quoted string body: quotes and backslashes escaped, newlines as `\n`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BinaryOp, DType, UnaryOp};

    /// Node names declared (`nK [`) and edge endpoints (`nA -> nB`) of a DOT text.
    fn declared_and_edges(dot: &str) -> (Vec<String>, Vec<(String, String)>) {
        let mut declared = Vec::new();
        let mut edges = Vec::new();
        for line in dot.lines().map(str::trim) {
            if let Some((a, b)) = line.strip_suffix(';').and_then(|l| l.split_once(" -> ")) {
                edges.push((a.to_string(), b.to_string()));
            } else if let Some((name, _)) = line.split_once(" [label=") {
                declared.push(name.to_string());
            }
        }
        (declared, edges)
    }

    fn small_graph() -> Graph {
        let mut g = Graph::new();
        let x = g.input("x \"quoted\"", [2, 3], DType::F32);
        let w = g.param("w", [2, 3], DType::F32);
        let y = g.add(Op::Binary(BinaryOp::Mul), &[x, w]).unwrap_or_else(|e| panic!("{e}"));
        let z = g.add(Op::Unary(UnaryOp::Exp), &[y]).unwrap_or_else(|e| panic!("{e}"));
        g.set_outputs(vec![z, y]).unwrap_or_else(|e| panic!("{e}"));
        g
    }

    #[test]
    fn dot_of_a_small_graph_declares_every_edge_endpoint_and_balances_braces() {
        let dot = small_graph().to_dot();
        assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
        let (declared, edges) = declared_and_edges(&dot);
        assert_eq!(declared, ["n0", "n1", "n2", "n3"], "{dot}");
        assert_eq!(edges.len(), 3, "{dot}");
        for (a, b) in &edges {
            assert!(declared.contains(a) && declared.contains(b), "{a} -> {b}\n{dot}");
        }
        assert!(
            dot.contains("n0 [label=\"%0 input \\\"x \\\"quoted\\\"\\\"\\nf32[2,3]\", shape=invhouse"),
            "{dot}"
        );
        assert!(dot.contains("output 1\", shape=box, peripheries=2"), "{dot}");
    }

    #[test]
    fn clusters_hold_their_nodes_once_and_empty_ones_get_a_placeholder() {
        let g = small_graph();
        let clusters = [
            Cluster { label: "fused_mul_exp".into(), nodes: vec![NodeId(3), NodeId(2)] },
            Cluster { label: "copy".into(), nodes: vec![NodeId(2)] },
        ];
        let dot = render(&g, &clusters);
        assert_eq!(dot.matches("subgraph cluster_").count(), 2, "{dot}");
        assert_eq!(dot.matches("n2 [label=").count(), 1, "{dot}");
        assert!(dot.contains("k1 [label=\"copy\", shape=note];"), "{dot}");
        assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
    }
}
