//! The compile pipeline, one named step per line, each with a switch in [`CompileOptions`].

use crate::codegen::Target;
use crate::egraph::{OptimizeReport, SaturationLimits};
use crate::rules::RuleSets;
use crate::{
    CompileError, DeviceProfile, Plan, debug, dot, egraph, fuse, ieee_guard, lower, memory, rules,
    validate_kernel,
};
use std::path::Path;
use tessera_ir::{Graph, NodeId};

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
    /// Let model graphs round the activations of decode and short prompts to int8 where the
    /// quantized gemv multiplies in integers ([`int8_activation_rows`]);
    /// `TESSERA_INT8_ACTIVATIONS=0` turns it off. On by default: SmolLM2's perplexity moves 0.3%
    /// (tests/smollm2.rs) where 8B q4 decode gains 1.26x on the H200, though greedy tokens may
    /// leave those of f32 x (and of transformers) after a few steps.
    pub int8_activations: bool,
    /// When model graphs run the quantized projections of prefill in f16 ([`f16_matmul_rows`]).
    pub f16_prefill: F16Prefill,
}

/// When prefill's quantized projections multiply f16 x by f16 weights (f32 sums, f16 results;
/// see `Op::QuantMatMul`) instead of f32 by f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F16Prefill {
    /// Never (`TESSERA_F16_PREFILL=0`).
    Off,
    /// Where the device multiplies f16 in cooperative matrices (tensor cores), the default.
    Cooperative,
    /// On every device, through whichever kernel it has (tests of the f16 graphs).
    Always,
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
            int8_activations: std::env::var("TESSERA_INT8_ACTIVATIONS").map_or(true, |v| v != "0"),
            f16_prefill: match std::env::var("TESSERA_F16_PREFILL").as_deref() {
                Ok("0") => F16Prefill::Off,
                _ => F16Prefill::Cooperative,
            },
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

/// True when the quantized gemvs on `profile` (under `options`) multiply x rounded to int8 in
/// integers, so a model's decode graph may round its activations with `Op::RoundInt8` at no
/// extra dispatch (the gemvs fuse it). Elsewhere a `round_int8` costs a kernel of its own.
pub fn int8_activations(profile: &DeviceProfile, options: &CompileOptions) -> bool {
    int8_activation_rows(profile, options) > 0
}

/// The most rows of x (tokens of a step) for which the quantized gemvs on `profile` round x to
/// int8 themselves; 0 where they never do. Steps of more rows keep f32 x and the tiled matmul.
pub fn int8_activation_rows(profile: &DeviceProfile, options: &CompileOptions) -> usize {
    if !options.int8_activations {
        return 0;
    }
    let target = Target { profile, subgroups: profile.subgroups && options.subgroups, fusion: None };
    let takes = |m: usize| crate::codegen::gemv::int8_gemv(&target, m, 4096, 4096, 4, 32, 32);
    (1..=crate::codegen::gemv::INT8_GEMV_MAX_ROWS).rev().find(|&m| takes(m)).unwrap_or(0)
}

/// The fewest rows of x (tokens of a step) from which a model graph on `profile` should give its
/// quantized projections f16 x ([`F16Prefill`]): past the gemvs' rows, where the cooperative-matrix
/// kernel takes them. `None` where the options or the device rule it out.
pub fn f16_matmul_rows(profile: &DeviceProfile, options: &CompileOptions) -> Option<usize> {
    let target = Target { profile, subgroups: profile.subgroups && options.subgroups, fusion: None };
    let fast = crate::codegen::quant::CoopTile::for_target(&target).is_some();
    match options.f16_prefill {
        F16Prefill::Off => None,
        F16Prefill::Cooperative if !fast => None,
        F16Prefill::Cooperative | F16Prefill::Always => {
            Some(crate::codegen::gemv::GEMV_MAX_ROWS.max(int8_activation_rows(profile, options)) + 1)
        }
    }
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
    let mut node_rules = report.as_ref().map(|r| r.node_rules.clone()).unwrap_or_default();
    // 3. guard: float division by a constant zero as multiplication by an infinity, exact in
    //    IEEE, because drivers fold `x / 0.0` wrongly once fusion makes the zero a literal.
    let guarded = if options.fuse { ieee_guard::divisions_by_zero_as_infinities(&optimized)? } else { None };
    let optimized = match guarded {
        Some((guarded, moved)) => {
            node_rules = moved_rules(&node_rules, &moved, guarded.len());
            debug::print(debug::IR, || debug::ir_text("after the IEEE division guard", &guarded));
            guarded
        }
        None => optimized,
    };
    let g = &optimized;
    if cfg!(debug_assertions) {
        g.verify()?;
    }
    // 4. schedule: which values are computed inline (fused groups, prologues, epilogues).
    let (live, in_place) = memory::liveness(g);
    let schedule = if options.fuse {
        fuse::schedule(g, &target, &live, &in_place)
    } else {
        fuse::Schedule::unfused(g.len())
    };
    // 5. memory: a buffer per materialized value, reshapes aliased, scratch reused by lifetime.
    let memory = memory::plan(g, profile, options.reuse_buffers, &schedule)?;
    // 6. lower: one kernel per group, in graph order, plus output copies.
    let mut plan = lower::lower(g, &target, &memory, &schedule)?;
    attach_rules(&mut plan, &node_rules);
    // 7. validate: naga parse + validate of each distinct kernel, limits checked.
    if options.validate {
        for kernel in &plan.kernels {
            validate_kernel(kernel, profile)?;
        }
    }
    // 8. account: the device memory the plan needs.
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
    // 9. export: Graphviz files of the graph before and after, when `TESSERA_DOT` names a folder.
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

/// `rules` of an old graph's nodes, indexed by where `moved` put each node in a new graph.
fn moved_rules(rules: &[Vec<String>], moved: &[NodeId], len: usize) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); len];
    for (old, new) in moved.iter().enumerate() {
        if let Some(r) = rules.get(old) {
            out[new.index()] = r.clone();
        }
    }
    out
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
