// Split attention, second half: folds the PARTS partial softmaxes of each query row (max, sum and
// unnormalized value sums from attention_split.wgsl) into its output row, rescaling each to the
// largest max; parts with a zero sum saw no key and weigh nothing. One workgroup per row: each
// part's weight exp(max - top) / total is computed once, then every value dim sums the parts.
// Generated above: ROWS, PARTS, WS_STRIDE, DV, WG, GRID_X, load_ws, store_y.
var<workgroup> weight: array<f32, PARTS>;

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let row = ids.wid.x + ids.wid.y * GRID_X;
    if (row >= ROWS) {
        return;
    }
    let base = row * PARTS * WS_STRIDE;
    var top = f32_neg_inf();
    for (var p = 0u; p < PARTS; p = p + 1u) {
        if (load_ws(base + p * WS_STRIDE + 1u) > 0.0) {
            top = max(top, load_ws(base + p * WS_STRIDE));
        }
    }
    var total = 0.0;
    for (var p = 0u; p < PARTS; p = p + 1u) {
        let l = load_ws(base + p * WS_STRIDE + 1u);
        if (l > 0.0) {
            total = total + l * exp(load_ws(base + p * WS_STRIDE) - top);
        }
    }
    for (var p = ids.lid; p < PARTS; p = p + WG) {
        let at = base + p * WS_STRIDE;
        let busy = load_ws(at + 1u) > 0.0 && total > 0.0;
        weight[p] = select(0.0, exp(load_ws(at) - top) / total, busy);
    }
    workgroupBarrier();
    for (var d = ids.lid; d < DV; d = d + WG) {
        var y = 0.0;
        for (var p = 0u; p < PARTS; p = p + 1u) {
            // An empty part's value sums were never written this step.
            if (weight[p] != 0.0) {
                y = y + load_ws(base + p * WS_STRIDE + 2u + d) * weight[p];
            }
        }
        store_y(row * DV + d, y);
    }
}
