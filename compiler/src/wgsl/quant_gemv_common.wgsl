// Shared by the quantized gemv kernels. Generated above: M, N, R, RM (= R * M), SLOTS, BITS,
// PER_WORD, reduce_slots, slot_total, store_y, NORM, norm_scale.

// Sums every invocation's R * M partials (and a fused RMSNorm's sums of squares) over the
// workgroup and stores the outputs of rows n0..n0 + R, each scaled by its row's 1/rms with NORM.
// Call from uniform control flow.
fn finish_rows(acc: ptr<function, array<f32, SLOTS>>, n0: u32, ids: Ids) {
    reduce_slots(acc, ids);
    if (ids.lid < RM) {
        var total = slot_total(ids.lid, ids);
        if (NORM) {
            total = total * norm_scale(slot_total(RM + ids.lid % M, ids));
        }
        let n = n0 + ids.lid / M;
        if (n < N) {
            store_y((ids.lid % M) * N + n, total);
        }
    }
}

const MASK: u32 = (1u << BITS) - 1u;
const SHIFTS: vec4<u32> = vec4<u32>(0u, BITS, 2u * BITS, 3u * BITS);
// Vec4s of codes per u32 word (2 for 4-bit, 1 for 8-bit).
const QUADS: u32 = PER_WORD / 4u;
// 2^23 as f32 bits: OR-ing a code below 2^23 into the mantissa gives 2^23 + code exactly, so
// subtracting 2^23 converts it with two full-rate ops instead of a slow int-to-float.
const MAGIC: u32 = 0x4B000000u;

// Codes 4q..4q+3 of `word`, as floats.
fn quad(word: u32, q: u32) -> vec4<f32> {
    let codes = (vec4<u32>(word >> (4u * BITS * q)) >> SHIFTS) & vec4<u32>(MASK);
    return bitcast<vec4<f32>>(codes | vec4<u32>(MAGIC)) - vec4<f32>(8388608.0);
}
