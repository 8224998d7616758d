// Chunk format of dense [N, K] float weights for gemv_chunks.wgsl and gemv_staged.wgsl: a 16-byte
// chunk holds CODES (4 f32 or 8 f16) consecutive values of a row, read as raw words so f16
// weights need no SHADER_F16. Generated above: R, N, VECS, CODES, load_w4, and `unpack4` (values
// 4j..4j+3 of a chunk's words as f32).

// x needs no prescaling (see gemv_chunk_quant.wgsl).
const X_SCALE: vec4<f32> = vec4<f32>(1.0);
const X_UNSCALE: vec4<f32> = vec4<f32>(1.0);

// The R rows' words of chunk `v`.
struct Chunk {
    w: array<vec4<u32>, R>,
}

fn fetch(n0: u32, v: u32) -> Chunk {
    var c: Chunk;
    for (var r = 0u; r < R; r = r + 1u) {
        // Rows past N (the last workgroup) repeat row N - 1 and are never stored.
        c.w[r] = load_w4(min(n0 + r, N - 1u) * VECS + v);
    }
    return c;
}

fn weights4(c: Chunk, r: u32, j: u32) -> vec4<f32> {
    return unpack4(c.w[r], j);
}

fn row_dot(c: Chunk, r: u32, dot: f32, xsum: f32) -> f32 {
    return dot;
}
