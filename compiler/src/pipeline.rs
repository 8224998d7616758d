//! The compile pipeline, one named step per line, each with a switch in [`CompileOptions`].

use crate::codegen::Target;
use crate::egraph::{OptimizeReport, SaturationLimits};
use crate::rules::RuleSets;
use crate::{
    CompileError, DeviceProfile, Plan, debug, dot, egraph, fuse, lower, memory, rules, validate_kernel,
};
use std::path::Path;
use tessera_ir::Graph;

/// Switches of the compile pipeline (each step can be turned off to bisect a wrong result).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// Validate every kernel with naga (cached by hash of its WGSL).
    pub validate: bool,
    /// Let scratch values with disjoint lifetimes share a buffer.
    pub reuse_buffers: bool,
    /// Use subgroup kernels where the profile has subgroups (off: workgroup-memory fallback).
    pub subgroups: bool,
    /// Rule sets the e-graph optimizer runs (all off: the e-graph step is skipped).
    pub rules: RuleSets,
    /// Bounds on e-graph saturation.
    pub egraph: SaturationLimits,
    /// Fuse elementwise chains, views and epilogues into fewer kernels.
    pub fuse: bool,
}

impl Default for CompileOptions {
    fn default() -> CompileOptions {
        CompileOptions {
            validate: true,
            reuse_buffers: true,
            subgroups: true,
            rules: RuleSets::default(),
            egraph: SaturationLimits::from_env(),
            fuse: true,
        }
    }
}

impl CompileOptions {
    /// Options with every optimization off (one kernel per op, as written).
    pub fn unoptimized() -> CompileOptions {
        CompileOptions { rules: RuleSets::none(), fuse: false, ..CompileOptions::default() }
    }
}

/// Runs the e-graph step alone: `graph` rewritten by the enabled rule sets.
pub fn optimize(
    graph: &Graph,
    options: &CompileOptions,
) -> Result<(Graph, Option<OptimizeReport>), CompileError> {
    if options.rules == RuleSets::none() {
        return Ok((graph.clone(), None));
    }
    let (g, report) = egraph::optimize(graph, &rules::enabled(&options.rules), &options.egraph)?;
    Ok((g, Some(report)))
}

/// Compiles `graph` into a [`Plan`] of naga-validated WGSL kernels for `profile`.
pub fn compile(
    graph: &Graph,
    profile: &DeviceProfile,
    options: &CompileOptions,
) -> Result<Plan, CompileError> {
    compile_with_graph(graph, profile, options).map(|compiled| compiled.plan)
}

/// A plan together with the optimized graph it was lowered from (its reports' node indices
/// refer to that graph).
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The plan.
    pub plan: Plan,
    /// The graph after the e-graph step (the input graph when no rules ran).
    pub optimized: Graph,
}

/// As [`compile`], keeping the optimized graph (for DOT export and reports).
pub fn compile_with_graph(
    graph: &Graph,
    profile: &DeviceProfile,
    options: &CompileOptions,
) -> Result<Compiled, CompileError> {
    let target = Target { profile, subgroups: profile.subgroups && options.subgroups, fusion: None };
    // 1. verify: every later step relies on recorded types matching inference.
    graph.verify()?;
    debug::print(debug::IR, || debug::ir_text("input", graph));
    // 2. optimize: e-graph rewrites (algebra, layout), DAG-aware extraction.
    let (optimized, report) = optimize(graph, options)?;
    if let Some(r) = &report {
        debug::print(debug::SUMMARY, || debug::egraph_summary_text(r));
        debug::print(debug::EGRAPH_STATS, || debug::egraph_stats_text(r));
        debug::print(debug::IR, || debug::ir_text("after e-graph extraction", &optimized));
    }
    let g = &optimized;
    if cfg!(debug_assertions) {
        g.verify()?;
    }
    // 3. schedule: which values are computed inline (fused groups, prologues, epilogues).
    let (live, in_place) = memory::liveness(g);
    let schedule = if options.fuse {
        fuse::schedule(g, profile, &live, &in_place)
    } else {
        fuse::Schedule::unfused(g.len())
    };
    // 4. memory: a buffer per materialized value, reshapes aliased, scratch reused by lifetime.
    let memory = memory::plan(g, profile, options.reuse_buffers, &schedule)?;
    // 5. lower: one kernel per group, in graph order, plus output copies.
    let mut plan = lower::lower(g, &target, &memory, &schedule)?;
    if let Some(r) = &report {
        attach_rules(&mut plan, &r.node_rules);
    }
    // 6. validate: naga parse + validate of each distinct kernel, limits checked.
    if options.validate {
        for kernel in &plan.kernels {
            validate_kernel(kernel, profile)?;
        }
    }
    // 7. account: the device memory the plan needs.
    plan.peak_bytes = plan.buffers.iter().map(|b| b.size).sum();
    tracing::debug!(
        kernels = plan.kernels.len(),
        dispatches = plan.dispatches.len(),
        peak_bytes = plan.peak_bytes,
        "compiled"
    );
    debug::print(debug::IR, || debug::groups_text(g, &plan));
    debug::print(debug::SUMMARY, || debug::dispatch_text(&plan));
    debug::print(debug::WGSL, || debug::wgsl_text(&plan));
    // 8. export: Graphviz files of the graph before and after, when `TESSERA_DOT` names a folder.
    if let Some(dir) = std::env::var_os("TESSERA_DOT") {
        let prefix = format!("{}.", dot::graph_hash(graph));
        match dot::write_dot_files(Path::new(&dir), &prefix, graph, g, &plan) {
            Ok((before, after)) => {
                debug::print(debug::SUMMARY, || format!("wrote {} and {}", before.display(), after.display()))
            }
            Err(e) => eprintln!("[tessera] TESSERA_DOT={}: {e}", Path::new(&dir).display()),
        }
    }
    Ok(Compiled { plan, optimized })
}

/// Gives each dispatch the rules that rewrote the nodes it computes.
fn attach_rules(plan: &mut Plan, node_rules: &[Vec<String>]) {
    for r in &mut plan.report {
        let mut rules: Vec<String> =
            r.nodes.iter().filter_map(|&n| node_rules.get(n)).flatten().cloned().collect();
        rules.sort();
        rules.dedup();
        r.rules = rules;
    }
}
