// Chunk format of affine-quantized weights for gemv_chunks.wgsl and gemv_staged.wgsl: a 16-byte
// chunk holds CODES codes of one group of a row, so a row's part of the dot product is
// scale * sum(code * x) + bias * sum(x), dequantized in registers. Generated above: R, N, BITS,
// PER_WORD, VECS, CODES, GROUP, ROW_GROUPS, load_w4, load_scale, load_bias.

const MASK: u32 = (1u << BITS) - 1u;
// Lane t of quad q holds code 4q + t. The code is masked where it lies within its 16-bit half of
// the word (bit POS), not shifted down, so its float is code * 2^POS; x is prescaled by
// X_SCALE = 2^-POS to match, which is exact. That saves a shift per code for one multiply per x
// shared by the R rows (H200, 8B q4 decode 136 -> 144 tok/s). HALF brings down the upper half for
// lanes whose code lies there.
const LANE_BIT: vec4<u32> = vec4<u32>(0u, BITS, 2u * BITS, 3u * BITS);
const POS: vec4<u32> = LANE_BIT % vec4<u32>(16u);
const HALF: vec4<u32> = LANE_BIT - POS;
const MASKS: vec4<u32> = vec4<u32>(MASK) << POS;
const X_UNSCALE: vec4<f32> = vec4<f32>(vec4<u32>(1u) << POS);
const X_SCALE: vec4<f32> = vec4<f32>(1.0) / X_UNSCALE;
// Vec4s of codes per u32 word (2 for 4-bit, 1 for 8-bit).
const QUADS: u32 = PER_WORD / 4u;
// 2^23 as f32 bits: OR-ing a value below 2^23 into the mantissa gives 2^23 + value exactly, so
// subtracting 2^23 converts it with two full-rate ops instead of a slow int-to-float.
const MAGIC: u32 = 0x4B000000u;

// Codes 4q..4q+3 of `word` times X_UNSCALE, as floats (at most 255 * 2^8 < 2^23).
fn quad(word: u32, q: u32) -> vec4<f32> {
    let codes = (vec4<u32>(word >> (4u * BITS * q)) >> HALF) & MASKS;
    return bitcast<vec4<f32>>(codes | vec4<u32>(MAGIC)) - vec4<f32>(8388608.0);
}

// The R rows' codes, scales and biases of chunk `v`.
struct Chunk {
    w: array<vec4<u32>, R>,
    scale: array<f32, R>,
    bias: array<f32, R>,
}

fn fetch(n0: u32, v: u32) -> Chunk {
    var c: Chunk;
    let g = v * CODES / GROUP;
    for (var r = 0u; r < R; r = r + 1u) {
        // Rows past N (the last workgroup) repeat row N - 1 and are never stored.
        let n = min(n0 + r, N - 1u);
        c.w[r] = load_w4(n * VECS + v);
        c.scale[r] = load_scale(n * ROW_GROUPS + g);
        c.bias[r] = load_bias(n * ROW_GROUPS + g);
    }
    return c;
}

// Values 4j..4j+3 of row r in the chunk times X_UNSCALE (codes: row_dot applies the affine map).
fn weights4(c: Chunk, r: u32, j: u32) -> vec4<f32> {
    return quad(c.w[r][j / QUADS], j % QUADS);
}

// Row r's contribution from the chunk, given sum(weights4 * x) and sum(x).
fn row_dot(c: Chunk, r: u32, dot: f32, xsum: f32) -> f32 {
    return c.scale[r] * dot + c.bias[r] * xsum;
}
