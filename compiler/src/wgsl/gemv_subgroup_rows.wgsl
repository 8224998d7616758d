// Gemv over 16-byte weight chunks where each subgroup owns R output rows (decode: M <= 8 rows
// of x, subgroups of a fixed size SG): y[m, n] = sum_k x[m, k] * w[n, k]. x is staged through
// workgroup memory in tiles of TILE chunks as in gemv_staged.wgsl (coalesced, the prologue applied
// once per element per workgroup, one padding vec4 per chunk), and shared by the WG / SG
// subgroups of the workgroup, ROWS = R * WG / SG rows in all. Lane `sg_lane` of a subgroup takes
// chunks v = sg_lane, sg_lane + SG, ... of its R rows, so each lane does several chunks of a
// short row (K = 4096 at 4 bits is 128 chunks: 4 per lane) and the partials need only a
// subgroupAdd, not the workgroup sum and its barrier of the staged kernel. With a fused RMSNorm
// (NORM) the sums of squares of the staged x are summed over the workgroup once at the end
// (reduce_slots over SLOTS = M). Generated above: M, N, K, R, RM (= R * M), ROWS, SG, SLOTS,
// VECS, CODES, TILE, WG, GRID_X, load_x, NORM, norm_sq, norm_scale, store_y, the chunk format
// (Chunk, fetch, weights4, row_dot, X_SCALE, X_UNSCALE) and reduce_slots / slot_total.

const XQ: u32 = CODES / 4u;
const XQ_PAD: u32 = XQ + 1u;

var<workgroup> xs: array<vec4<f32>, M * TILE * XQ_PAD>;

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let n0 = (ids.wid.x + ids.wid.y * GRID_X) * ROWS + ids.sg_id * R;
    var acc: array<f32, RM>;
    var sq: array<f32, SLOTS>;
    for (var c0 = 0u; c0 < VECS; c0 = c0 + TILE) {
        let end = min(c0 + TILE, VECS);
        workgroupBarrier();
        for (var m = 0u; m < M; m = m + 1u) {
            var part = vec4<f32>(0.0);
            for (var q = ids.lid; q < (end - c0) * XQ; q = q + WG) {
                let at = m * K + c0 * CODES + 4u * q;
                xs[(m * TILE) * XQ_PAD + q + q / XQ] =
                    vec4<f32>(load_x(at), load_x(at + 1u), load_x(at + 2u), load_x(at + 3u)) * X_SCALE;
                if (NORM) {
                    part = part + vec4<f32>(norm_sq(at), norm_sq(at + 1u), norm_sq(at + 2u), norm_sq(at + 3u));
                }
            }
            if (NORM) {
                sq[m] = sq[m] + part.x + part.y + part.z + part.w;
            }
        }
        workgroupBarrier();
        for (var v = c0 + ids.sg_lane; v < end; v = v + SG) {
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
    store_subgroup_rows(&acc, &sq, n0, ids);
}
