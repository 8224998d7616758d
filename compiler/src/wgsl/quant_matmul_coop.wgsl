// Quantized matmul on cooperative matrices (prefill with f16 x): Y[M, N] = X[M, K] x W[N, K]^T
// with x and the dequantized weights in f16 and f32 accumulation (QuantMatMul's f16 semantics).
// A workgroup computes a BM x BN tile of Y with SGM x SGN subgroups of SG lanes, each owning
// FM x FN accumulators of 16 x 16. Per K step of BK, the x tile (f16) and the W tile (dequantized
// a packed word at a time, as in quant_matmul.wgsl) go to workgroup memory, [row][k]; each
// subgroup then loads its 16 x 16 fragments from there and multiply-adds them. The next step's
// x values and packed words are loaded into registers before the products, so their latency
// overlaps them.
// Generated above: M, N, K, BM, BN, BK, WG, SG, SGN, FM, FN, TILES_N, TILES, GRID_X, BITS,
// PER_WORD, WORDS, GROUP, ROW_GROUPS, load_x, load_w, load_scale, load_bias, store_y; and the
// lines that declare, multiply into and store the FM x FN accumulators (the three placeholders).

// Rows padded by 8 halves: fragment loads stay 16-byte aligned and start in different banks.
const BKP: u32 = BK + 8u;
var<workgroup> x_tile: array<f16, BM * BKP>;
var<workgroup> w_tile: array<f16, BN * BKP>;
// One 16 x 16 fragment per subgroup on its way to store_y (bounds and epilogue per element).
var<workgroup> y_frag: array<f32, (WG / SG) * 256u>;

// This invocation's share of the next K step: x values, packed words with their group's scale
// and bias (zero outside the matrices).
const X_PER: u32 = (BM * BK + WG - 1u) / WG;
const W_WORDS: u32 = BN * (BK / PER_WORD);
const W_PER: u32 = (W_WORDS + WG - 1u) / WG;
var<private> x_next: array<f32, X_PER>;
var<private> w_next: array<u32, W_PER>;
var<private> scale_next: array<f32, W_PER>;
var<private> bias_next: array<f32, W_PER>;

fn fetch(k0: u32, row0: u32, col0: u32, lid: u32) {
    for (var e = 0u; e < X_PER; e = e + 1u) {
        let i = lid + e * WG;
        let r = i / BK;
        let kk = i % BK;
        var v = 0.0;
        if (i < BM * BK && row0 + r < M && k0 + kk < K) {
            v = load_x((row0 + r) * K + k0 + kk);
        }
        x_next[e] = v;
    }
    for (var e = 0u; e < W_PER; e = e + 1u) {
        let i = lid + e * WG;
        let n = col0 + i / (BK / PER_WORD);
        let k = k0 + (i % (BK / PER_WORD)) * PER_WORD;
        var word = 0u;
        var scale = 0.0;
        var bias = 0.0;
        if (i < W_WORDS && n < N && k < K) {
            word = load_w(n * WORDS + k / PER_WORD);
            scale = load_scale(n * ROW_GROUPS + k / GROUP);
            bias = load_bias(n * ROW_GROUPS + k / GROUP);
        }
        w_next[e] = word;
        scale_next[e] = scale;
        bias_next[e] = bias;
    }
}

// Writes the fetched step into the tiles: x as f16, the words dequantized to f16.
fn stage(lid: u32) {
    for (var e = 0u; e < X_PER; e = e + 1u) {
        let i = lid + e * WG;
        if (i < BM * BK) {
            x_tile[(i / BK) * BKP + i % BK] = f16(x_next[e]);
        }
    }
    for (var e = 0u; e < W_PER; e = e + 1u) {
        let i = lid + e * WG;
        if (i < W_WORDS) {
            let r = i / (BK / PER_WORD);
            let at = r * BKP + (i % (BK / PER_WORD)) * PER_WORD;
            // Each row starts its codes at a different one, so a subgroup's stores fall in
            // different banks (all 32 lanes in distinct ones for 4-bit codes).
            let rot = (2u * r) % PER_WORD;
            for (var j0 = 0u; j0 < PER_WORD; j0 = j0 + 1u) {
                let j = (j0 + rot) % PER_WORD;
                let code = f32(extractBits(w_next[e], j * BITS, BITS));
                w_tile[at + j] = f16(scale_next[e] * code + bias_next[e]);
            }
        }
    }
}

// Rows r.. r + 16 of the x tile at depth kk.., as the A operand.
fn x_frag(r: u32, kk: u32) -> coop_mat16x16<f16, A> {
    return coopLoadT<coop_mat16x16<f16, A>>(&x_tile[r * BKP + kk], BKP);
}

// Columns c.. c + 16 of Y (rows of the W tile) at depth kk.., as the B operand: W's [n][k]
// rows are B's columns, so B is loaded column-major.
fn w_frag(c: u32, kk: u32) -> coop_mat16x16<f16, B> {
    return coopLoad<coop_mat16x16<f16, B>>(&w_tile[c * BKP + kk], BKP);
}

// Stores accumulator `acc` at rows r0.., columns c0.. of Y through the subgroup's fragment.
// Call from uniform control flow.
fn store_frag(acc: coop_mat16x16<f32, C>, ids: Ids, store: bool, r0: u32, c0: u32) {
    let base = ids.sg_id * 256u;
    coopStoreT(acc, &y_frag[base], 16u);
    workgroupBarrier();
    for (var e = ids.sg_lane; e < 256u; e = e + SG) {
        let r = r0 + e / 16u;
        let c = c0 + e % 16u;
        if (store && r < M && c < N) {
            store_y(r * N + c, y_frag[base + e]);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let flat = ids.wid.x + ids.wid.y * GRID_X;
    let in_range = flat < TILES;
    let g = min(flat, TILES - 1u);
    let row0 = (g / TILES_N) * BM;
    let col0 = (g % TILES_N) * BN;
    // This subgroup's first row and column within the tile.
    let sr = (ids.sg_id / SGN) * FM * 16u;
    let sc = (ids.sg_id % SGN) * FN * 16u;
$ACCUMULATORS
    fetch(0u, row0, col0, ids.lid);
    for (var k0 = 0u; k0 < K; k0 = k0 + BK) {
        stage(ids.lid);
        workgroupBarrier();
        if (k0 + BK < K) {
            fetch(k0 + BK, row0, col0, ids.lid);
        }
        for (var kk = 0u; kk < BK; kk = kk + 16u) {
$PRODUCTS
        }
        workgroupBarrier();
    }
$STORES
}
