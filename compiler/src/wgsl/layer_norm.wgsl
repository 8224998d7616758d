// LayerNorm over the last axis: one workgroup per row, (x - mean) / sqrt(var + eps) * w + b with
// the biased variance, two passes in f32. Generated above: ROWS, LEN, EPS, WG, GRID_X, load_x,
// load_w, load_b, store_y, block_sum.
@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let row = ids.wid.x + ids.wid.y * GRID_X;
    let valid = row < ROWS;
    let base = min(row, ROWS - 1u) * LEN;
    var s = 0.0;
    if (valid) {
        for (var i = ids.lid; i < LEN; i = i + WG) {
            s = s + load_x(base + i);
        }
    }
    let mean = block_sum(s, ids) / f32(LEN);
    var sq = 0.0;
    if (valid) {
        for (var i = ids.lid; i < LEN; i = i + WG) {
            let d = load_x(base + i) - mean;
            sq = sq + d * d;
        }
    }
    let denom = sqrt(block_sum(sq, ids) / f32(LEN) + EPS);
    if (valid) {
        for (var i = ids.lid; i < LEN; i = i + WG) {
            store_y(base + i, (load_x(base + i) - mean) / denom * load_w(i) + load_b(i));
        }
    }
}
