//! `cargo bench`: the benchmarks of `tessera bench` on the default adapter (copy bandwidth, f32
//! GEMM, 4-bit GEMV, and SmolLM2 prefill/decode when it is in the model cache), built in release
//! by cargo. Arguments after `--` go to `tessera bench`, for example
//! `cargo bench -- --config benches/configs/llama-1b.json --dummy-weights --quant q8 --json`.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    // cargo passes `--bench` to every bench target; `tessera bench` has no such flag.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match Command::new(env!("CARGO_BIN_EXE_tessera")).arg("bench").args(&args).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("tessera bench failed: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cannot run tessera bench: {e}");
            ExitCode::FAILURE
        }
    }
}
