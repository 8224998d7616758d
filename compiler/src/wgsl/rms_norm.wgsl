// RMSNorm over the last axis: one workgroup per row, x / sqrt(mean(x^2) + eps) * w in f32.
// Generated above: ROWS, LEN, EPS, WG, GRID_X, load_x, load_w, store_y, block_sum.
@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let row = ids.wid.x + ids.wid.y * GRID_X;
    let valid = row < ROWS;
    let base = min(row, ROWS - 1u) * LEN;
    var ss = 0.0;
    if (valid) {
        for (var i = ids.lid; i < LEN; i = i + WG) {
            let v = load_x(base + i);
            ss = ss + v * v;
        }
    }
    let total = block_sum(ss, ids);
    let denom = sqrt(total / f32(LEN) + EPS);
    if (valid) {
        for (var i = ids.lid; i < LEN; i = i + WG) {
            store_y(base + i, load_x(base + i) / denom * load_w(i));
        }
    }
}
