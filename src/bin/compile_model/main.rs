//! `compile-model`: ahead-of-time compilation. Today it compiles an IR graph in text form into
//! a Plan (JSON) for a capability tier; model artifacts (`--model`, `.tsr`) land with the
//! ahead-of-time issue.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera::layers::{compiler, ir};

#[derive(Parser)]
#[command(name = "compile-model", version, about = "Compile graphs and models ahead of time")]
struct Cli {
    /// An IR graph in tessera's text form.
    #[arg(long, conflicts_with = "model")]
    graph: Option<PathBuf>,
    /// A model (HF directory, mlx-community directory or .gguf).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where to write the result.
    #[arg(long)]
    out: PathBuf,
    /// Capability tier: `portable` (WebGPU defaults, no f16/subgroups) or `full`.
    #[arg(long, default_value = "portable")]
    target: String,
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
    let profile = match cli.target.as_str() {
        "portable" => compiler::DeviceProfile::portable(),
        "full" => compiler::DeviceProfile::full(),
        other => return Err(format!("unknown --target `{other}` (expected portable or full)").into()),
    };
    if cli.model.is_some() {
        return Err("compiling model artifacts (.tsr) is not supported yet; use --graph FILE".into());
    }
    let Some(path) = &cli.graph else {
        return Err("give --graph FILE (an IR graph in text form)".into());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let graph = ir::text::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let options = tessera::compile_options(cli.no_fuse, &cli.no_rules)?;
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
