// Gemv over 16-byte weight chunks (decode: M <= 8 rows of x): y[m, n] = sum_k x[m, k] * w[n, k]
// for R output rows n per workgroup. Invocation `lid` takes the chunks v = lid, lid + WG, ... of
// all R rows, so a subgroup reads each row contiguously, with x loaded once for the R rows; the
// chunk format (gemv_chunk_quant.wgsl or gemv_chunk_dense.wgsl) turns a chunk into values.
// The R * M partials are then summed over the workgroup. With a fused RMSNorm (NORM), load_x
// gives x * weight and each invocation also sums the squares of the x it loads (every x once per
// workgroup), so the row's 1/rms scales the total at the end. Generated above: M, N, K, R, RM
// (= R * M), SLOTS (RM, plus M with NORM), VECS (chunks per row), CODES (values per chunk), WG,
// GRID_X, load_x, NORM, norm_sq, the chunk format (Chunk, fetch, weights4, row_dot, X_SCALE) and
// finish_rows (gemv_common.wgsl: the workgroup sum and the stores).

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let n0 = (ids.wid.x + ids.wid.y * GRID_X) * R;
    var acc: array<f32, SLOTS>;
    for (var v = ids.lid; v < VECS; v = v + WG) {
        let k0 = v * CODES;
        let c = fetch(n0, v);
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
                let xs = x * X_SCALE;
                for (var r = 0u; r < R; r = r + 1u) {
                    dots[r] = dots[r] + dot(weights4(c, r, j), xs);
                }
            }
            let s = xsum.x + xsum.y + xsum.z + xsum.w;
            for (var r = 0u; r < R; r = r + 1u) {
                acc[r * M + m] = acc[r * M + m] + row_dot(c, r, dots[r], s);
            }
            if (NORM) {
                acc[RM + m] = acc[RM + m] + sq.x + sq.y + sq.z + sq.w;
            }
        }
    }
    finish_rows(&acc, n0, ids);
}
