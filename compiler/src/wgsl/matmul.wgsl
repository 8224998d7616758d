// Batched matmul C[b] = A[b] x B[b], tiled through workgroup memory: each workgroup computes a
// BM x BN tile of C, each invocation a TM x TN register block (rows ty + i*(BM/TM), columns
// tx + j*(BN/TN)), stepping K by BK; f32 accumulation, bounds-checked for any M, N, K. The next
// step's tiles are loaded into registers while the current one is multiplied.
// Generated above: M, N, K, BM, BN, BK, TM, TN, WG, TILES_M, TILES_N, GROUPS, GRID_X,
// B_KMAJOR (B is the transpose of an [N, K] matrix: load its tile along K), a_batch, b_batch
// (batch offsets with broadcasting), load_a, load_b, store_c.

// Tile rows padded by one element: invocations storing down a tile column hit distinct banks.
const BMP: u32 = BM + 1u;
const BNP: u32 = BN + 1u;
var<workgroup> a_tile: array<f32, BK * BMP>;
var<workgroup> b_tile: array<f32, BK * BNP>;

// Elements of the A and B tiles each invocation loads per K step.
const A_PER: u32 = (BM * BK + WG - 1u) / WG;
const B_PER: u32 = (BK * BN + WG - 1u) / WG;

// (k, column) of B tile element i: along N, or along K when B is the transpose of [N, K] rows.
fn b_at(i: u32) -> vec2<u32> {
    if (B_KMAJOR == 1u) {
        return vec2<u32>(i % BK, i / BK);
    }
    return vec2<u32>(i / BN, i % BN);
}

// This invocation's elements of the A and B tiles at K step k0 (zero outside the matrices).
fn load_tiles(
    a: ptr<function, array<f32, A_PER>>,
    b: ptr<function, array<f32, B_PER>>,
    k0: u32,
    lid: u32,
    a_base: u32,
    b_base: u32,
    row0: u32,
    col0: u32,
) {
    for (var e = 0u; e < A_PER; e = e + 1u) {
        let i = lid + e * WG;
        let r = i / BK;
        let kk = i % BK;
        var v = 0.0;
        if (i < BM * BK && row0 + r < M && k0 + kk < K) {
            v = load_a(a_base + (row0 + r) * K + k0 + kk);
        }
        (*a)[e] = v;
    }
    for (var e = 0u; e < B_PER; e = e + 1u) {
        let i = lid + e * WG;
        let at = b_at(i);
        var v = 0.0;
        if (i < BK * BN && k0 + at.x < K && col0 + at.y < N) {
            v = load_b(b_base + (k0 + at.x) * N + col0 + at.y);
        }
        (*b)[e] = v;
    }
}

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
    // The next K step's tile elements of this invocation, loaded into registers before the
    // current step's products so their latency overlaps them.
    var a_next: array<f32, A_PER>;
    var b_next: array<f32, B_PER>;
    load_tiles(&a_next, &b_next, 0u, ids.lid, a_base, b_base, row0, col0);
    for (var k0 = 0u; k0 < K; k0 = k0 + BK) {
        for (var e = 0u; e < A_PER; e = e + 1u) {
            let i = ids.lid + e * WG;
            if (i < BM * BK) {
                a_tile[(i % BK) * BMP + i / BK] = a_next[e];
            }
        }
        for (var e = 0u; e < B_PER; e = e + 1u) {
            let i = ids.lid + e * WG;
            if (i < BK * BN) {
                let at = b_at(i);
                b_tile[at.x * BNP + at.y] = b_next[e];
            }
        }
        workgroupBarrier();
        if (k0 + BK < K) {
            load_tiles(&a_next, &b_next, k0 + BK, ids.lid, a_base, b_base, row0, col0);
        }
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
