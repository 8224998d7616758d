// Reduce: one workgroup per output element. Generated above: ROWS, RLEN, WG, GRID_X, `Acc`,
// row_base (offset of the row's first element), red_offset (offset of reduced element r),
// load_x, store_y, identity, combine, finish, and block_combine.
@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let row = ids.wid.x + ids.wid.y * GRID_X;
    let valid = row < ROWS;
    let base = row_base(min(row, ROWS - 1u));
    var acc = identity();
    if (valid) {
        for (var r = ids.lid; r < RLEN; r = r + WG) {
            acc = combine(acc, load_x(base + red_offset(r)));
        }
    }
    let total = block_combine(acc, ids);
    if (valid && ids.lid == 0u) {
        store_y(row, finish(total));
    }
}
