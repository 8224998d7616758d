// Quantized gemv (decode: M <= 8 rows of x): y[m, n] = sum_k x[m, k] * (scale * code + bias) for
// R output rows n per workgroup. Invocations stride over the R * WORDS packed words of those
// rows; the PER_WORD codes of a word share one group, so a word adds
// scale * sum(code * x) + bias * sum(x) to the register partial of (row, m), dequantizing in
// registers. The R * M partials are then summed over the workgroup. With a fused RMSNorm (NORM),
// load_x gives x * weight, the invocations of row 0 also sum the squares of the x they load, and
// the row's 1/rms scales the total at the end (as in gemv_chunks.wgsl). Generated above: M, N, K,
// R, RM (= R * M), SLOTS, BITS, PER_WORD, WORDS, GROUP, ROW_GROUPS, WG, GRID_X, load_x, load_w,
// load_scale, load_bias, NORM, norm_sq, and finish_rows (gemv_common.wgsl: the workgroup
// sum and the stores).
@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let n0 = (ids.wid.x + ids.wid.y * GRID_X) * R;
    var acc: array<f32, SLOTS>;
    for (var item = ids.lid; item < R * WORDS; item = item + WG) {
        let r = item / WORDS;
        let n = n0 + r;
        if (n < N) {
            let w = item % WORDS;
            let word = load_w(n * WORDS + w);
            let k0 = w * PER_WORD;
            let g = n * ROW_GROUPS + k0 / GROUP;
            let scale = load_scale(g);
            let bias = load_bias(g);
            for (var m = 0u; m < M; m = m + 1u) {
                var dot = 0.0;
                var sum = 0.0;
                var sq = 0.0;
                for (var i = 0u; i < PER_WORD; i = i + 1u) {
                    let x = load_x(m * K + k0 + i);
                    dot = dot + f32(extractBits(word, i * BITS, BITS)) * x;
                    sum = sum + x;
                    if (NORM && r == 0u) {
                        sq = sq + norm_sq(m * K + k0 + i);
                    }
                }
                acc[r * M + m] = acc[r * M + m] + scale * dot + bias * sum;
                if (NORM && r == 0u) {
                    acc[RM + m] = acc[RM + m] + sq;
                }
            }
        }
    }
    finish_rows(&acc, n0, ids);
}
