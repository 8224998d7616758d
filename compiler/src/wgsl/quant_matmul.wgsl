// Quantized matmul (prefill): Y[M, N] = X[M, K] x W[N, K]^T, tiled like matmul.wgsl, with the
// W tile dequantized (scale * code + bias) while it is loaded into workgroup memory: each load
// step unpacks one packed word (PER_WORD codes of one group; BK is a multiple of PER_WORD).
// Generated above: M, N, K, BM, BN, BK, TM, TN, WG, TILES_M, TILES_N, TILES, GRID_X, BITS,
// PER_WORD, WORDS, GROUP, ROW_GROUPS, load_x, load_w, load_scale, load_bias, store_y, weight (a
// dequantized weight in x's dtype: rounded to f16 with f16 x).
var<workgroup> a_tile: array<f32, BK * BM>;
var<workgroup> b_tile: array<f32, BK * BN>;

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let flat = ids.wid.x + ids.wid.y * GRID_X;
    let in_range = flat < TILES;
    let g = min(flat, TILES - 1u);
    let tile_n = g % TILES_N;
    let tile_m = g / TILES_N;
    let row0 = tile_m * BM;
    let col0 = tile_n * BN;
    let tx = ids.lid % (BN / TN);
    let ty = ids.lid / (BN / TN);

    var acc: array<f32, TM * TN>;
    for (var k0 = 0u; k0 < K; k0 = k0 + BK) {
        for (var i = ids.lid; i < BM * BK; i = i + WG) {
            let r = i / BK;
            let kk = i % BK;
            var v = 0.0;
            if (row0 + r < M && k0 + kk < K) {
                v = load_x((row0 + r) * K + k0 + kk);
            }
            a_tile[kk * BM + r] = v;
        }
        for (var i = ids.lid; i < BN * (BK / PER_WORD); i = i + WG) {
            let c = i / (BK / PER_WORD);
            let kw = (i % (BK / PER_WORD)) * PER_WORD;
            let n = col0 + c;
            let k = k0 + kw;
            var word = 0u;
            var scale = 0.0;
            var bias = 0.0;
            if (n < N && k < K) {
                word = load_w(n * WORDS + k / PER_WORD);
                scale = load_scale(n * ROW_GROUPS + k / GROUP);
                bias = load_bias(n * ROW_GROUPS + k / GROUP);
            }
            for (var j = 0u; j < PER_WORD; j = j + 1u) {
                b_tile[(kw + j) * BN + c] = weight(scale * f32(extractBits(word, j * BITS, BITS)) + bias);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk = kk + 1u) {
            var a_reg: array<f32, TM>;
            var b_reg: array<f32, TN>;
            for (var i = 0u; i < TM; i = i + 1u) {
                a_reg[i] = a_tile[kk * BM + ty + i * (BM / TM)];
            }
            for (var j = 0u; j < TN; j = j + 1u) {
                b_reg[j] = b_tile[kk * BN + tx + j * (BN / TN)];
            }
            for (var i = 0u; i < TM; i = i + 1u) {
                for (var j = 0u; j < TN; j = j + 1u) {
                    acc[i * TN + j] = acc[i * TN + j] + a_reg[i] * b_reg[j];
                }
            }
        }
        workgroupBarrier();
    }
    if (in_range) {
        for (var i = 0u; i < TM; i = i + 1u) {
            let r = row0 + ty + i * (BM / TM);
            for (var j = 0u; j < TN; j = j + 1u) {
                let c = col0 + tx + j * (BN / TN);
                if (r < M && c < N) {
                    store_y(r * N + c, acc[i * TN + j]);
                }
            }
        }
    }
}
