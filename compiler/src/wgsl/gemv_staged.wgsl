// Gemv over 16-byte weight chunks with x staged in workgroup memory (decode: M <= 8 rows of x):
// y[m, n] = sum_k x[m, k] * w[n, k] for R output rows n per workgroup. x goes through workgroup
// memory in tiles of TILE chunks: the invocations load it coalesced (applying a fused prologue
// once per element), one padding vec4 after each chunk so the per-chunk vec4 reads below hit
// distinct banks. Invocation `lid` then takes chunks v = lid, lid + WG, ... of the tile for all R
// rows, the chunk format (gemv_chunk_quant.wgsl or gemv_chunk_dense.wgsl) turning each into
// values in registers. Weights are not fetched a chunk ahead: the registers that takes cost
// more than it hides (H200, 8B q4 decode 153 tok/s without, 144 with). With a fused RMSNorm
// (NORM), load_x gives x * weight and the staging sums the squares, so the row's 1/rms scales
// the total at the end. Generated above: M, N, K, R, RM (= R * M), SLOTS (RM, plus M with NORM),
// VECS (chunks per row), CODES (values per chunk), TILE, WG, GRID_X, load_x, NORM, norm_sq, the
// chunk format (Chunk, fetch, weights4, row_dot, X_SCALE, X_UNSCALE) and finish_rows
// (gemv_common.wgsl: the workgroup sum and the stores).

// Vec4s of x per chunk, and per staged chunk with its padding.
const XQ: u32 = CODES / 4u;
const XQ_PAD: u32 = XQ + 1u;

var<workgroup> xs: array<vec4<f32>, M * TILE * XQ_PAD>;

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let n0 = (ids.wid.x + ids.wid.y * GRID_X) * R;
    var acc: array<f32, SLOTS>;
    for (var c0 = 0u; c0 < VECS; c0 = c0 + TILE) {
        let end = min(c0 + TILE, VECS);
        workgroupBarrier();
        for (var m = 0u; m < M; m = m + 1u) {
            var sq = vec4<f32>(0.0);
            for (var q = ids.lid; q < (end - c0) * XQ; q = q + WG) {
                let at = m * K + c0 * CODES + 4u * q;
                xs[(m * TILE) * XQ_PAD + q + q / XQ] =
                    vec4<f32>(load_x(at), load_x(at + 1u), load_x(at + 2u), load_x(at + 3u)) * X_SCALE;
                if (NORM) {
                    sq = sq + vec4<f32>(norm_sq(at), norm_sq(at + 1u), norm_sq(at + 2u), norm_sq(at + 3u));
                }
            }
            if (NORM) {
                acc[RM + m] = acc[RM + m] + sq.x + sq.y + sq.z + sq.w;
            }
        }
        workgroupBarrier();
        for (var v = c0 + ids.lid; v < end; v = v + WG) {
            let c = fetch(n0, v);
            for (var m = 0u; m < M; m = m + 1u) {
                var dots: array<f32, R>;
                var xsum = vec4<f32>(0.0);
                for (var j = 0u; j < XQ; j = j + 1u) {
                    let x = xs[(m * TILE + v - c0) * XQ_PAD + j];
                    xsum = xsum + x * X_UNSCALE;
                    for (var r = 0u; r < R; r = r + 1u) {
                        dots[r] = dots[r] + dot(weights4(c, r, j), x);
                    }
                }
                let s = xsum.x + xsum.y + xsum.z + xsum.w;
                for (var r = 0u; r < R; r = r + 1u) {
                    acc[r * M + m] = acc[r * M + m] + row_dot(c, r, dots[r], s);
                }
            }
        }
    }
    finish_rows(&acc, n0, ids);
}
