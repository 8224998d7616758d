//! `tessera convert`: a GGUF (or float Hugging Face) Llama model to an mlx-community style
//! directory that `generate --model DIR` loads.

use std::path::PathBuf;
use tessera_models::convert::{ConvertOptions, convert};

#[derive(clap::Args)]
pub struct Args {
    /// The source: a .gguf file or a Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// The directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Quantize float linear weights: q4 or q8 (GGUF quantized weights convert as they are).
    #[arg(long, value_parser = ["q4", "q8"])]
    quantize: Option<String>,
    /// Weights per scale and bias when quantizing: 32, 64 or 128.
    #[arg(long, default_value_t = 64)]
    group_size: u32,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let quantize = args.quantize.as_deref().map(|q| if q == "q8" { 8 } else { 4 });
    let report = convert(&args.model, &args.out, ConvertOptions { quantize, group_size: args.group_size })?;
    eprintln!(
        "{}: {} tensors ({} quantized modules), model.safetensors {:.1} MB",
        args.out.display(),
        report.tensors,
        report.quantized_modules,
        report.bytes as f64 / 1e6
    );
    Ok(())
}
