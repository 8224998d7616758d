//! The driver pipeline cache on disk: written when the device drops, checksummed, and a corrupt
//! file is ignored and rewritten rather than handed to the driver or failing the device.

mod common;

use tessera_runtime::{Gpu, GpuOptions};

/// Opens the environment's device with its pipeline cache under `dir`.
fn gpu_caching_in(dir: &std::path::Path) -> Option<Gpu> {
    common::gpu()?;
    let options = GpuOptions { pipeline_cache_dir: Some(dir.to_path_buf()), ..GpuOptions::from_env().ok()? };
    Some(Gpu::new(&options).expect("device with a pipeline cache dir"))
}

/// Loads and runs a small plan so the cache holds a pipeline; checks the result.
fn run_vector_add(gpu: &Gpu) {
    let mut exe = gpu.load(&common::vector_add(8, 2.0)).expect("loads");
    exe.write_input("a", &common::f32_bytes(&[1.0; 8])).expect("a");
    exe.write_param("b", &common::f32_bytes(&[2.0; 8])).expect("b");
    let out = exe.run().expect("runs");
    assert_eq!(common::f32s(&out[0]), vec![1.0 + 2.0 * 2.0; 8]);
}

/// True when the file is a 32-byte BLAKE3 followed by the data it hashes.
fn checksum_holds(path: &std::path::Path) -> bool {
    let bytes = std::fs::read(path).expect("cache file");
    bytes.len() > 32 && blake3::hash(&bytes[32..]).as_bytes()[..] == bytes[..32]
}

#[test]
fn pipeline_cache_is_saved_on_drop_and_a_corrupt_file_is_rewritten() {
    let dir = tempfile_dir("pipeline-cache");
    let Some(gpu) = gpu_caching_in(&dir) else { return };
    let Some(file) = gpu.pipeline_cache_file().map(|p| p.to_path_buf()) else {
        assert!(
            !gpu.report().features.pipeline_cache,
            "the adapter offers a pipeline cache but none was opened"
        );
        eprintln!("SKIPPED: {} has no pipeline cache", gpu.report().name);
        return;
    };
    assert!(file.starts_with(&dir));
    run_vector_add(&gpu);
    drop(gpu);
    assert!(checksum_holds(&file), "saved with its checksum when the device dropped");

    // Garbage under the right name: ignored by the next device, which still works and rewrites it.
    std::fs::write(&file, b"not a pipeline cache at all, and long enough to have a header").expect("corrupt");
    let gpu = gpu_caching_in(&dir).expect("device opens despite the corrupt cache");
    run_vector_add(&gpu);
    drop(gpu);
    assert!(checksum_holds(&file), "rewritten after a corrupt read");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
