// Quantized gemv over vec4 words (decode: M <= 8 rows of x): y[m, n] = sum_k x[m, k] *
// (scale * code + bias) for R output rows n per workgroup. Invocation `lid` takes the 16-byte
// chunks v = lid, lid + WG, ... of all R rows, so a subgroup reads each row contiguously; a chunk
// holds CODES codes of one group, so per (row, m) it adds scale * sum(code * x) + bias * sum(x),
// dequantizing in registers, with x loaded once for the R rows. The R * M partials are then
// summed over the workgroup. With a fused RMSNorm (NORM), load_x gives x * weight and each
// invocation also sums the squares of the x it loads (every x once per workgroup), so the row's
// 1/rms scales the total at the end. Generated above: M, N, K, R, RM (= R * M), SLOTS (RM, plus M
// with NORM), BITS, PER_WORD, VECS (chunks per row), CODES (codes per chunk), GROUP, ROW_GROUPS,
// WG, GRID_X, load_x, load_w4, load_scale, load_bias, NORM, norm_sq, and from
// quant_gemv_common.wgsl quad and finish_rows (the workgroup sum and the stores).

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let n0 = (ids.wid.x + ids.wid.y * GRID_X) * R;
    var acc: array<f32, SLOTS>;
    for (var v = ids.lid; v < VECS; v = v + WG) {
        let k0 = v * CODES;
        let g = k0 / GROUP;
        var w: array<vec4<u32>, R>;
        var scale: array<f32, R>;
        var bias: array<f32, R>;
        for (var r = 0u; r < R; r = r + 1u) {
            // Rows past N (the last workgroup) repeat row N - 1 and are never stored.
            let n = min(n0 + r, N - 1u);
            w[r] = load_w4(n * VECS + v);
            scale[r] = load_scale(n * ROW_GROUPS + g);
            bias[r] = load_bias(n * ROW_GROUPS + g);
        }
        for (var m = 0u; m < M; m = m + 1u) {
            var dots: array<f32, R>;
            var xsum = vec4<f32>(0.0);
            var sq = vec4<f32>(0.0);
            for (var j = 0u; j < CODES / 4u; j = j + 1u) {
                let at = m * K + k0 + 4u * j;
                let x = vec4<f32>(load_x(at), load_x(at + 1u), load_x(at + 2u), load_x(at + 3u));
                xsum = xsum + x;
                if (NORM) {
                    sq = sq + vec4<f32>(norm_sq(at), norm_sq(at + 1u), norm_sq(at + 2u), norm_sq(at + 3u));
                }
                for (var r = 0u; r < R; r = r + 1u) {
                    dots[r] = dots[r] + dot(quad(w[r][j / QUADS], j % QUADS), x);
                }
            }
            let s = xsum.x + xsum.y + xsum.z + xsum.w;
            for (var r = 0u; r < R; r = r + 1u) {
                acc[r * M + m] = acc[r * M + m] + scale[r] * dots[r] + bias[r] * s;
            }
            if (NORM) {
                acc[RM + m] = acc[RM + m] + sq.x + sq.y + sq.z + sq.w;
            }
        }
    }
    finish_rows(&acc, n0, ids);
}
