//! The compile pipeline, one named step per line, each with a switch in [`CompileOptions`].

use crate::codegen::Target;
use crate::egraph::{OptimizeReport, SaturationLimits};
use crate::rules::RuleSets;
use crate::{CompileError, DeviceProfile, Plan, egraph, fuse, lower, memory, rules, validate_kernel};
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
    let target = Target { profile, subgroups: profile.subgroups && options.subgroups, fusion: None };
    // 1. verify: every later step relies on recorded types matching inference.
    graph.verify()?;
    // 2. optimize: e-graph rewrites (algebra, layout), DAG-aware extraction.
    let (graph, report) = optimize(graph, options)?;
    if let (Some(r), true) = (&report, debug_level() >= 1) {
        eprintln!(
            "[tessera] e-graph: {} -> {} nodes, {} e-nodes / {} classes, {} iterations ({}), {:.1} ms, rules fired: {}",
            r.graph_nodes.0,
            r.graph_nodes.1,
            r.egraph_nodes,
            r.egraph_classes,
            r.iterations,
            r.stop_reason,
            r.elapsed.as_secs_f64() * 1e3,
            if r.rules_fired.is_empty() { "none".to_string() } else { r.rules_fired.join(", ") }
        );
    }
    let graph = &graph;
    if cfg!(debug_assertions) {
        graph.verify()?;
    }
    // 3. schedule: which values are computed inline (fused groups, prologues, epilogues).
    let (live, in_place) = memory::liveness(graph);
    let schedule = if options.fuse {
        fuse::schedule(graph, profile, &live, &in_place)
    } else {
        fuse::Schedule::unfused(graph.len())
    };
    // 4. memory: a buffer per materialized value, reshapes aliased, scratch reused by lifetime.
    let memory = memory::plan(graph, profile, options.reuse_buffers, &schedule)?;
    // 5. lower: one kernel per group, in graph order, plus output copies.
    let mut plan = lower::lower(graph, &target, &memory, &schedule)?;
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
    if debug_level() >= 1 {
        for r in &plan.report {
            eprintln!(
                "[tessera] dispatch {:>4} {:<40} bindings {:>2} bytes {:>10} est {:>8.2} us  ops {}",
                r.dispatch,
                r.kernel,
                r.bindings,
                r.bytes,
                r.cost_us,
                r.ops.join("+")
            );
        }
    }
    Ok(plan)
}

/// `TESSERA_DEBUG` as a number (0 when unset or unparsable).
fn debug_level() -> u32 {
    std::env::var("TESSERA_DEBUG").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}
