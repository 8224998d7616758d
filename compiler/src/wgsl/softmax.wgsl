// Softmax along an axis: one workgroup per row; exp(x - max) / sum in f32. Generated above:
// ROWS, LEN, STRIDE (elements between neighbours along the axis), WG, GRID_X, row_base,
// load_x, store_y, block_max, block_sum.
@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let row = ids.wid.x + ids.wid.y * GRID_X;
    let valid = row < ROWS;
    let base = row_base(min(row, ROWS - 1u));
    var m = f32_neg_inf();
    if (valid) {
        for (var i = ids.lid; i < LEN; i = i + WG) {
            m = op_max_f32(m, load_x(base + i * STRIDE));
        }
    }
    let row_max = block_max(m, ids);
    var s = 0.0;
    if (valid) {
        for (var i = ids.lid; i < LEN; i = i + WG) {
            s = s + exp(load_x(base + i * STRIDE) - row_max);
        }
    }
    let total = block_sum(s, ids);
    if (valid) {
        for (var i = ids.lid; i < LEN; i = i + WG) {
            let at = base + i * STRIDE;
            store_y(at, exp(load_x(at) - row_max) / total);
        }
    }
}
