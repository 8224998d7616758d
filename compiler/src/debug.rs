//! What `TESSERA_DEBUG` prints, all in one place. Levels are cumulative and everything goes to
//! stderr, each line prefixed `[tessera]`:
//! 1. pass summary: the e-graph in one line, one line per dispatch (ops, bytes, rules fired);
//! 2. the IR in text form after each pass: the input graph, the graph extracted from the
//!    e-graph, and the fused groups (each dispatch with the nodes it computes);
//! 3. the WGSL of each kernel;
//! 4. e-graph stats: size, per-iteration rule applications, stop reason, cost before/after.
//!
//! The `*_text` functions build the text (tests read them); [`print`] writes it when the level
//! is high enough.

use crate::Plan;
use crate::egraph::OptimizeReport;
use std::fmt::Write as _;
use std::io::Write as _;
use tessera_ir::{Graph, text};

/// Pass summary.
pub const SUMMARY: u32 = 1;
/// IR after each pass.
pub const IR: u32 = 2;
/// Generated WGSL.
pub const WGSL: u32 = 3;
/// E-graph statistics.
pub const EGRAPH_STATS: u32 = 4;

/// `TESSERA_DEBUG` as a number (0 when unset or unparsable).
pub fn level() -> u32 {
    std::env::var("TESSERA_DEBUG").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Writes `text()` to stderr, one `[tessera]` line per line, when `TESSERA_DEBUG >= min`
/// (the text is not built otherwise).
pub fn print(min: u32, text: impl FnOnce() -> String) {
    if level() < min {
        return;
    }
    // One lock for the whole block, so lines of concurrent compiles do not interleave.
    let mut err = std::io::stderr().lock();
    for line in text().lines() {
        let _ = writeln!(err, "[tessera] {line}");
    }
}

/// The e-graph step in one line.
pub fn egraph_summary_text(r: &OptimizeReport) -> String {
    format!(
        "e-graph: {} -> {} nodes, {} e-nodes / {} classes, {} iterations ({}), {:.1} ms, rules fired: {}",
        r.graph_nodes.0,
        r.graph_nodes.1,
        r.egraph_nodes,
        r.egraph_classes,
        r.iterations,
        r.stop_reason,
        r.elapsed.as_secs_f64() * 1e3,
        if r.rules_fired.is_empty() { "none".to_string() } else { r.rules_fired.join(", ") }
    )
}

/// E-graph size, each iteration's rule applications, stop reason and extraction cost.
pub fn egraph_stats_text(r: &OptimizeReport) -> String {
    let mut s = String::new();
    let change = if r.cost_before > 0.0 { 100.0 * (r.cost - r.cost_before) / r.cost_before } else { 0.0 };
    let _ = writeln!(
        s,
        "e-graph stats: {} classes, {} e-nodes, {} iterations, stop: {}, extraction cost {:.2} -> {:.2} us ({change:+.1}%)",
        r.egraph_classes, r.egraph_nodes, r.iterations, r.stop_reason, r.cost_before, r.cost
    );
    for (k, it) in r.per_iteration.iter().enumerate() {
        let applied: Vec<String> = it.applied.iter().map(|(rule, n)| format!("{rule} x{n}")).collect();
        let applied = if applied.is_empty() { "nothing".to_string() } else { applied.join(", ") };
        let _ = writeln!(
            s,
            "  iteration {k}: {} e-nodes / {} classes at start, applied {applied}",
            it.egraph_nodes, it.egraph_classes
        );
    }
    s
}

/// A graph in text form under a title.
pub fn ir_text(title: &str, graph: &Graph) -> String {
    let mut s = format!("IR {title} ({} nodes):\n", graph.len());
    for line in text::dump(graph).lines() {
        let _ = writeln!(s, "  {line}");
    }
    s
}

/// The fused groups: each dispatch with its kernel and the nodes (text form) it computes.
pub fn groups_text(graph: &Graph, plan: &Plan) -> String {
    let dump = text::dump(graph);
    let lines: Vec<&str> = dump.lines().collect();
    let mut s = format!("IR after fusion ({} dispatches):\n", plan.report.len());
    for r in &plan.report {
        let _ = writeln!(s, "  dispatch {} {}:", r.dispatch, r.kernel);
        let mut nodes = r.nodes.clone();
        nodes.sort_unstable();
        for n in nodes {
            if let Some(line) = lines.get(n) {
                let _ = writeln!(s, "    {line}");
            }
        }
    }
    s
}

/// One line per dispatch: kernel, bindings, bytes, estimated cost, ops and rules fired.
pub fn dispatch_text(plan: &Plan) -> String {
    let mut s = String::new();
    for r in &plan.report {
        let _ = write!(
            s,
            "dispatch {:>4} {:<40} bindings {:>2} bytes {:>10} est {:>8.2} us  ops {}",
            r.dispatch,
            r.kernel,
            r.bindings,
            r.bytes,
            r.cost_us,
            r.ops.join("+")
        );
        if !r.rules.is_empty() {
            let _ = write!(s, "  rules {}", r.rules.join(","));
        }
        s.push('\n');
    }
    s
}

/// Every distinct kernel's WGSL, under its name, entry point and override constants.
pub fn wgsl_text(plan: &Plan) -> String {
    let mut s = String::new();
    for (k, kernel) in plan.kernels.iter().enumerate() {
        let _ = write!(s, "WGSL kernel {k} {} (entry {}", kernel.name, kernel.entry);
        for (name, value) in &kernel.constants {
            let _ = write!(s, ", {name}={value}");
        }
        s.push_str("):\n");
        for line in kernel.wgsl.lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompileOptions, DeviceProfile, compile, pipeline};
    use tessera_ir::{BinaryOp, DType, Op, UnaryOp};

    fn exp_of_x_times_one() -> Graph {
        let mut g = Graph::new();
        let x = g.input("x", [8], DType::F32);
        let value = tessera_ir::float(1.0).unwrap_or_else(|| panic!("1.0 is a number"));
        let one = g.add(Op::Constant { value, dtype: DType::F32, shape: [8].into() }, &[]);
        let one = one.unwrap_or_else(|e| panic!("{e}"));
        let y = g.add(Op::Binary(BinaryOp::Mul), &[x, one]).unwrap_or_else(|e| panic!("{e}"));
        let z = g.add(Op::Unary(UnaryOp::Exp), &[y]).unwrap_or_else(|e| panic!("{e}"));
        g.add_output(z).unwrap_or_else(|e| panic!("{e}"));
        g
    }

    #[test]
    fn texts_of_each_level_name_what_they_show() {
        let g = exp_of_x_times_one();
        let options = CompileOptions::default();
        let (optimized, report) = pipeline::optimize(&g, &options).unwrap_or_else(|e| panic!("{e}"));
        let report = report.unwrap_or_else(|| panic!("rules are on by default"));
        assert!(egraph_summary_text(&report).contains("rules fired: mul-one"));
        let stats = egraph_stats_text(&report);
        assert!(stats.contains("iteration 0:") && stats.contains("mul-one x1"), "{stats}");
        assert!(stats.contains("stop: saturated"), "{stats}");
        assert!(ir_text("input", &g).contains("  %2 = mul %0, %1 : f32[8]"));
        let plan = compile(&g, &DeviceProfile::portable(), &options).unwrap_or_else(|e| panic!("{e}"));
        let groups = groups_text(&optimized, &plan);
        assert!(groups.contains("dispatch 0 ") && groups.contains("= exp %0 : f32[8]"), "{groups}");
        assert!(dispatch_text(&plan).contains("rules mul-one"), "{}", dispatch_text(&plan));
        assert!(wgsl_text(&plan).contains("@compute"), "{}", wgsl_text(&plan));
    }
}
