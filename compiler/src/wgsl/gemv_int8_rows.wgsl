// The subgroup-rows gemv (gemv_subgroup_rows.wgsl) over x rounded to int8 per block of 32 (a fused
// round_int8): codes times x are multiplied in integers, four at a time with dot4I8Packed, as
// llama.cpp's integer-dot paths do. Staging rounds x: invocation t of a tile loads the 4 values
// of x word t, the 8 invocations of a block share its largest magnitude through subgroup
// shuffles (the block's 8 words lie in one subgroup: SG is a multiple of 8), and each stores its
// word of 4 int8 codes, and the first of a chunk its scale d and d * (sum of its codes) for the
// bias term. A staged chunk of x is then 16 or 32 bytes of codes, not 64 or 128 of floats.
// A 4-bit word splits into its even and odd codes (w & 0x0F0F0F0F, w >> 4 & ...), so x word t of
// a 4-bit chunk holds every second value (XSTRIDE = 2); 8-bit codes are biased by 128 to signed
// bytes (w ^ 0x80808080), which the sum of codes corrects. Generated above: as for
// gemv_subgroup_rows.wgsl, plus BITS, KS, PREFETCH and the chunk format of
// gemv_chunk_quant.wgsl (fetch).

// x words per chunk (8 for 4-bit, 4 for 8-bit) and the vec4s holding them.
const XW: u32 = CODES / 4u;
const XV: u32 = (XW + 3u) / 4u;
const XSTRIDE: u32 = 8u / BITS;

// Word j of chunk c of row m at xq[(m * XV + j / 4) * TILE + c][j % 4]: lanes reading
// consecutive chunks read consecutive vec4s.
var<workgroup> xq: array<vec4<u32>, M * XV * TILE>;
var<workgroup> xd: array<vec2<f32>, M * TILE>;

// Position in the tile of value i of x word t.
fn x_pos(t: u32, i: u32) -> u32 {
    return 4u * XSTRIDE * (t / XSTRIDE) + t % XSTRIDE + XSTRIDE * i;
}

// Row r's contribution from chunk c against the staged x words and (d, d * sum of codes).
fn row_dot8(c: Chunk, r: u32, x: array<vec4<u32>, XV>, d: vec2<f32>) -> f32 {
    var s = 0;
    if (BITS == 4u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let w = c.w[r][j];
            let xv = x[j / 2u];
            let k = 2u * (j % 2u);
            s = s + dot4I8Packed(w & 0x0F0F0F0Fu, xv[k]) + dot4I8Packed((w >> 4u) & 0x0F0F0F0Fu, xv[k + 1u]);
        }
        return c.scale[r] * d.x * f32(s) + c.bias[r] * d.y;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        s = s + dot4I8Packed(c.w[r][j] ^ 0x80808080u, x[0][j]);
    }
    return c.scale[r] * (d.x * f32(s) + 128.0 * d.y) + c.bias[r] * d.y;
}

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    // KS subgroups share R rows, each taking every KS-th run of SG chunks.
    let n0 = (ids.wid.x + ids.wid.y * GRID_X) * ROWS + ids.sg_id / KS * R;
    let slice = ids.sg_id % KS;
    // The invocation's place in the tile by subgroup ids, which the shuffles pair lanes by.
    let me = ids.sg_id * SG + ids.sg_lane;
    var acc: array<f32, RM>;
    var sq: array<f32, SLOTS>;
    // With PREFETCH, the lane's first chunk is loaded before x is staged, so that its latency
    // from memory overlaps the staging's instead of following it.
    var first: Chunk;
    if (PREFETCH) {
        first = fetch(n0, min(slice * SG + ids.sg_lane, VECS - 1u));
    }
    for (var c0 = 0u; c0 < VECS; c0 = c0 + TILE) {
        let end = min(c0 + TILE, VECS);
        // Whole blocks: K and TILE are multiples of 32 values, so of 8 words.
        let words = (end - c0) * XW;
        workgroupBarrier();
        // The M rows' words in one pass, so that few rows of x still fill the workgroup; a
        // block's 8 words share a row (words is a multiple of 8).
        let total = M * words;
        for (var base = 0u; base < total; base = base + WG) {
            let f = base + me;
            let live = f < total;
            // (Decode, M = 1, keeps the single-row loop: no division.)
            let m = select(min(f / words, M - 1u), 0u, M == 1u);
            let t = select(f % words, f, M == 1u);
            var v = vec4<f32>(0.0);
            if (live) {
                let at = m * K + c0 * CODES;
                v = vec4<f32>(load_x(at + x_pos(t, 0u)), load_x(at + x_pos(t, 1u)),
                    load_x(at + x_pos(t, 2u)), load_x(at + x_pos(t, 3u)));
                if (NORM) {
                    sq[m] = sq[m] + norm_sq(at + x_pos(t, 0u)) + norm_sq(at + x_pos(t, 1u))
                        + norm_sq(at + x_pos(t, 2u)) + norm_sq(at + x_pos(t, 3u));
                }
            }
            var a = max(max(abs(v.x), abs(v.y)), max(abs(v.z), abs(v.w)));
            for (var o = 1u; o < 8u; o = o * 2u) {
                a = max(a, subgroupShuffleXor(a, o));
            }
            let inv = select(127.0 / a, 0.0, a == 0.0);
            let q = vec4<i32>(clamp(round(v * inv), vec4<f32>(-127.0), vec4<f32>(127.0)));
            var s = q.x + q.y + q.z + q.w;
            for (var o = 1u; o < XW; o = o * 2u) {
                s = s + subgroupShuffleXor(s, o);
            }
            if (live) {
                let c = t / XW;
                let j = t % XW;
                xq[(m * XV + j / 4u) * TILE + c][j % 4u] = pack4xI8(q);
                if (j == 0u) {
                    let d = a / 127.0;
                    xd[m * TILE + c] = vec2<f32>(d, d * f32(s));
                }
            }
        }
        workgroupBarrier();
        var v = c0 + slice * SG + ids.sg_lane;
        if (PREFETCH && c0 == 0u && v < end) {
            add_chunk(&acc, first, v);
            v = v + KS * SG;
        }
        for (; v < end; v = v + KS * SG) {
            add_chunk(&acc, fetch(n0, v), v - c0);
        }
    }
    store_subgroup_rows(&acc, &sq, n0, ids);
}

// Chunk c at tile position i, for the M rows of x, added to the R * M partials.
fn add_chunk(acc: ptr<function, array<f32, RM>>, c: Chunk, i: u32) {
    for (var m = 0u; m < M; m = m + 1u) {
        var x: array<vec4<u32>, XV>;
        for (var j = 0u; j < XV; j = j + 1u) {
            x[j] = xq[(m * XV + j) * TILE + i];
        }
        let d = xd[m * TILE + i];
        for (var r = 0u; r < R; r = r + 1u) {
            (*acc)[r * M + m] = (*acc)[r * M + m] + row_dot8(c, r, x, d);
        }
    }
}
