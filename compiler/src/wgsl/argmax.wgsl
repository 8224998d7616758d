// ArgMax: one workgroup per output element; each invocation keeps its first maximum, then the
// workgroup picks the largest key with the smallest index. Generated above: ROWS, RLEN, WG,
// GRID_X, row_base, red_offset, load_key (value -> ordered u32 key), store_y.
@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let row = ids.wid.x + ids.wid.y * GRID_X;
    let valid = row < ROWS;
    let base = row_base(min(row, ROWS - 1u));
    var best_key = 0u;
    var best_idx = 0xffffffffu;
    if (valid) {
        for (var r = ids.lid; r < RLEN; r = r + WG) {
            let k = load_key(base + red_offset(r));
            if (argmax_pick(best_key, best_idx, k, r)) {
                best_key = k;
                best_idx = r;
            }
        }
    }
    let winner = block_argmax(best_key, best_idx, ids);
    if (valid && ids.lid == 0u) {
        store_y(row, winner);
    }
}
