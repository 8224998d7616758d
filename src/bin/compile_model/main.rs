//! `compile-model`: ahead-of-time compilation. `--model` compiles a Llama-family model (GGUF,
//! HF or mlx-community directory) into one `.tsr` artifact that `tessera generate --model` runs
//! with no compile work; `--graph` compiles an IR graph in text form into a Plan (JSON).

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera::layers::{compiler, ir};
use tessera_models::artifact::backends::Backend;
use tessera_models::artifact::tiers::{TIER_NAMES, tier_profile};
use tessera_models::artifact::{ArtifactOptions, ArtifactReport, WeightsMode, compile_artifact};

#[derive(Parser)]
#[command(name = "compile-model", version, about = "Compile graphs and models ahead of time")]
struct Cli {
    /// An IR graph in tessera's text form (writes a Plan as JSON).
    #[arg(long, conflicts_with = "model")]
    graph: Option<PathBuf>,
    /// A model (HF directory, mlx-community directory or .gguf) to compile into a .tsr artifact.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where to write the result.
    #[arg(long)]
    out: PathBuf,
    /// Capability tier: `subgroup32` (f16 + subgroups of exactly 32), `full` (f16 + subgroups) or
    /// `portable` (WebGPU defaults). A model gets every tier unless one is named; a graph
    /// defaults to `portable`.
    #[arg(long)]
    target: Option<String>,
    /// KV cache rows of the model's plans; prefill buckets up to it are compiled
    /// (default: min(model context, 4096)).
    #[arg(long)]
    max_context: Option<usize>,
    /// Quantize float linear layers before compiling: q4 or q8 (group 32).
    #[arg(long, value_parser = ["q4", "q8"])]
    quantize: Option<String>,
    /// Weights inside the artifact (`embed`), or the source's path and content hash (`reference`).
    #[arg(long, default_value = "embed", value_parser = ["embed", "reference"])]
    weights: String,
    /// Write the artifact even when a backend has no tier whose kernels all translate.
    #[arg(long)]
    allow_backend_failures: bool,
    /// Compile without fusion (one kernel per op).
    #[arg(long)]
    no_fuse: bool,
    /// Switch off e-graph rule sets: algebra, layout or all (comma-separated).
    #[arg(long, value_delimiter = ',')]
    no_rules: Vec<String>,
    /// Also write `before.dot` and `after.dot` (Graphviz; fused kernels as clusters) into DIR.
    #[arg(long, value_name = "DIR")]
    dot: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(&Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    let options = tessera::compile_options(cli.no_fuse, &cli.no_rules)?;
    if let Some(model) = &cli.model {
        if cli.dot.is_some() {
            return Err("--dot works with --graph only".into());
        }
        return compile_model(cli, model, options);
    }
    let Some(path) = &cli.graph else {
        return Err("give --model PATH (a model to compile into a .tsr) or --graph FILE (an IR graph)".into());
    };
    let tier = cli.target.as_deref().unwrap_or("portable");
    let profile = tier_profile(tier)
        .ok_or_else(|| format!("unknown --target `{tier}` (expected one of: {})", TIER_NAMES.join(", ")))?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let graph = ir::text::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let compiler::Compiled { plan, optimized } = compiler::compile_with_graph(&graph, &profile, &options)?;
    if let Some(dir) = &cli.dot {
        let (before, after) = compiler::dot::write_dot_files(dir, "", &graph, &optimized, &plan)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        eprintln!("wrote {} and {}", before.display(), after.display());
    }
    std::fs::write(&cli.out, serde_json::to_vec_pretty(&plan)?)
        .map_err(|e| format!("{}: {e}", cli.out.display()))?;
    eprintln!(
        "{}: {} kernels, {} dispatches, {} buffers, {} bytes",
        cli.out.display(),
        plan.kernels.len(),
        plan.dispatches.len(),
        plan.buffers.len(),
        plan.peak_bytes
    );
    Ok(())
}

fn compile_model(
    cli: &Cli,
    model: &std::path::Path,
    compile: compiler::CompileOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let tiers = match &cli.target {
        Some(tier) if TIER_NAMES.contains(&tier.as_str()) => vec![tier.clone()],
        Some(other) => {
            return Err(
                format!("unknown --target `{other}` (expected one of: {})", TIER_NAMES.join(", ")).into()
            );
        }
        None => TIER_NAMES.iter().map(|t| t.to_string()).collect(),
    };
    let options = ArtifactOptions {
        max_context: cli.max_context,
        tiers,
        quantize: cli.quantize.as_deref().map(|q| if q == "q8" { 8 } else { 4 }),
        compile,
        no_rules: cli.no_rules.clone(),
        weights: if cli.weights == "reference" { WeightsMode::Reference } else { WeightsMode::Embed },
        require_every_backend: !cli.allow_backend_failures,
    };
    let report = compile_artifact(model, &cli.out, &options)?;
    print_report(&report);
    Ok(())
}

/// One line per tier with the translation result per backend, each failure on its own line.
fn print_report(report: &ArtifactReport) {
    for (tier, backends) in &report.tiers {
        let results: Vec<String> = Backend::ALL
            .iter()
            .map(|b| match backends.failed(*b) {
                0 => format!("{} ok", b.name()),
                n => format!("{} {n} FAILED", b.name()),
            })
            .collect();
        eprintln!(
            "tier {tier}: {} step shapes, {} distinct kernels validated by naga; {}",
            report.shapes,
            backends.kernels,
            results.join(", ")
        );
        for f in &backends.failures {
            let first_line = f.message.lines().next().unwrap_or("");
            eprintln!("  {} {}: {first_line}", f.backend.name(), f.kernel);
        }
    }
    eprintln!(
        "{}: {:.1} MB ({:.1} MB of weights), context {}, plans compiled in {:.1} s",
        report.path.display(),
        report.file_bytes as f64 / 1e6,
        report.weight_bytes as f64 / 1e6,
        report.max_context,
        report.compile_time.as_secs_f64()
    );
}
