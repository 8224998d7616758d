// Batched matmul C[b] = A[b] x B[b], tiled through workgroup memory: each workgroup computes a
// BM x BN tile of C, each invocation a TM x TN register block (rows ty + i*(BM/TM), columns
// tx + j*(BN/TN)), stepping K by BK; f32 accumulation, bounds-checked for any M, N, K.
// Generated above: M, N, K, BM, BN, BK, TM, TN, WG, TILES_M, TILES_N, GROUPS, GRID_X,
// B_KMAJOR (B is the transpose of an [N, K] matrix: load its tile along K), a_batch, b_batch
// (batch offsets with broadcasting), load_a, load_b, store_c.

// Tile rows padded by one element: invocations storing down a tile column hit distinct banks.
const BMP: u32 = BM + 1u;
const BNP: u32 = BN + 1u;
var<workgroup> a_tile: array<f32, BK * BMP>;
var<workgroup> b_tile: array<f32, BK * BNP>;

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let flat = ids.wid.x + ids.wid.y * GRID_X;
    let in_range = flat < GROUPS;
    let g = min(flat, GROUPS - 1u);
    let tile_n = g % TILES_N;
    let tile_m = (g / TILES_N) % TILES_M;
    let batch = g / (TILES_N * TILES_M);
    let a_base = a_batch(batch);
    let b_base = b_batch(batch);
    let c_base = batch * M * N;
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
                v = load_a(a_base + (row0 + r) * K + k0 + kk);
            }
            a_tile[kk * BMP + r] = v;
        }
        for (var i = ids.lid; i < BK * BN; i = i + WG) {
            var kk = i / BN;
            var c = i % BN;
            if (B_KMAJOR == 1u) {
                kk = i % BK;
                c = i / BK;
            }
            var v = 0.0;
            if (k0 + kk < K && col0 + c < N) {
                v = load_b(b_base + (k0 + kk) * N + col0 + c);
            }
            b_tile[kk * BNP + c] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk = kk + 1u) {
            var a_reg: array<f32, TM>;
            var b_reg: array<f32, TN>;
            for (var i = 0u; i < TM; i = i + 1u) {
                a_reg[i] = a_tile[kk * BMP + ty + i * (BM / TM)];
            }
            for (var j = 0u; j < TN; j = j + 1u) {
                b_reg[j] = b_tile[kk * BNP + tx + j * (BN / TN)];
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
                    store_c(c_base + r * N + c, acc[i * TN + j]);
                }
            }
        }
    }
}
