//! The pipeline cache and the buffer pool: reuse across loads, and memory accounting.

mod common;

use common::vector_add;

#[test]
fn second_load_of_the_same_kernel_hits_the_pipeline_cache() {
    let gpu = gpu_or_skip!();
    let first = gpu.load(&vector_add(100, 1.0)).unwrap();
    assert_eq!((gpu.pipeline_stats().hits, gpu.pipeline_stats().misses), (0, 1));
    // Same WGSL, entry and constants at another size: the same pipeline.
    let second = gpu.load(&vector_add(500, 1.0)).unwrap();
    assert_eq!((gpu.pipeline_stats().hits, gpu.pipeline_stats().misses), (1, 1));
    // Another override constant is another pipeline.
    let third = gpu.load(&vector_add(100, 3.0)).unwrap();
    let stats = gpu.pipeline_stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 2));
    drop((first, second, third));
}

#[test]
fn released_buffers_are_reused_and_memory_is_tracked() {
    let gpu = gpu_or_skip!();
    assert_eq!(gpu.memory().current_bytes, 0);
    let plan = vector_add(1000, 1.0);
    let mut exe = gpu.load(&plan).unwrap();
    let held = exe.buffer_bytes();
    // 3 buffers of 4000 bytes and a staging buffer unless unified memory maps the output
    // itself, each in the 4096-byte class.
    let buffers = 3 + exe.staged_outputs();
    assert_eq!(exe.staged_outputs(), usize::from(!gpu.has_unified_memory()));
    assert_eq!(held, buffers as u64 * 4096);
    assert_eq!(gpu.memory().current_bytes, held);
    exe.write_input("a", &common::f32_bytes(&[1.0; 1000])).unwrap();
    exe.write_param("b", &common::f32_bytes(&[1.0; 1000])).unwrap();
    assert_eq!(common::f32s(&exe.run().unwrap()[0]), vec![2.0; 1000]);
    drop(exe);
    assert_eq!(gpu.pool_stats().free_buffers, buffers);
    assert_eq!(gpu.memory().current_bytes, held, "the pool's free buffers still count");

    let mut again = gpu.load(&plan).unwrap();
    let pool = gpu.pool_stats();
    assert_eq!((pool.reused, pool.allocated, pool.free_buffers), (buffers as u64, buffers as u64, 0));
    assert_eq!(
        gpu.memory(),
        tessera_runtime::MemoryStats { current_bytes: held, peak_bytes: held, copied_bytes: 0 }
    );
    // Reused buffers start zeroed, like fresh ones: the output reads as a + b with b never written.
    again.write_input("a", &common::f32_bytes(&[5.0; 1000])).unwrap();
    assert_eq!(common::f32s(&again.run().unwrap()[0]), vec![5.0; 1000]);

    // A second live plan allocates more; peak follows.
    let other = gpu.load(&plan).unwrap();
    assert_eq!(gpu.memory().current_bytes, 2 * held);
    drop((again, other));
    assert_eq!(gpu.memory().peak_bytes, 2 * held);
    gpu.trim_pool();
    assert_eq!(
        gpu.memory(),
        tessera_runtime::MemoryStats { current_bytes: 0, peak_bytes: 2 * held, copied_bytes: 0 }
    );
    gpu.reset_memory_peak();
    assert_eq!(gpu.memory().peak_bytes, 0, "the peak starts over from what is allocated now");
    let last = gpu.load(&plan).unwrap();
    assert_eq!(gpu.memory().peak_bytes, held);
    drop(last);
}
