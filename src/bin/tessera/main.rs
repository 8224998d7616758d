//! The `tessera` command line: `devices` (and, as the model layer lands, `generate`, `embed`,
//! `convert`, `bench`).

mod bench;
mod convert;
mod devices;
mod embed;
mod generate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "tessera", version, about = "Tensors, a graph compiler and LLMs on any GPU through WebGPU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List GPU adapters with their backend, type, driver, capabilities and key limits.
    Devices(devices::Args),
    /// Generate text with a Llama-family model (GGUF), streaming it to stdout.
    Generate(generate::Args),
    /// Embed sentences with a BERT-family sentence-transformers model (all-MiniLM-L6-v2).
    Embed(embed::Args),
    /// Convert a GGUF or Hugging Face model into an mlx-community style directory.
    Convert(convert::Args),
    /// Time kernels (GEMM, quantized GEMV vs copy bandwidth) and model prefill/decode.
    Bench(bench::Args),
}

/// When the process started: `time_to_first_token_s` counts from here.
fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn main() -> ExitCode {
    process_start();
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices(args) => devices::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Embed(args) => embed::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `TESSERA_LOG` is a tracing filter (`info`, `tessera_compiler=debug`, ...). By default the GL
/// probe's EGL noise on headless machines is silenced.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,wgpu_hal::gles::egl=off"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
