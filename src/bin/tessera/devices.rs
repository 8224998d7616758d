//! `tessera devices [--json]`: every adapter wgpu can see, with what tessera cares about.

use tessera::layers::runtime::list_adapters;

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON array instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let adapters = list_adapters();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    if adapters.is_empty() {
        return Err(
            "no GPU adapter found (on Linux without a GPU: apt-get install -y mesa-vulkan-drivers)".into()
        );
    }
    for (i, a) in adapters.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{a}");
    }
    Ok(())
}
