// Split attention, first half (flash decoding): each query row's keys are cut into PARTS ranges
// and item (row, part) = row * PARTS + part scores one of them, as attention_whole.wgsl does a
// whole row. It writes its range's max, sum and unnormalized value sums to the workspace at
// item * WS_STRIDE, for attention_combine.wgsl. The ranges cut the row's keys at run time
// (kv_len and the causal mask) into spans of at least MIN_KEYS, so a short cache busies few
// workgroups and the rest only mark their part empty (a zero sum). Workgroups take every
// GROUPS-th item; GROUPS is the grid's size, one item each (a smaller grid taking several measured
// slower on the H100: 8B decode after 2048 tokens 231 against 285 tok/s with 128 workgroups).
// Generated above: QROWS, PARTS, MIN_KEYS, WS_STRIDE (DV + 2), GROUPS, DV, WG, GRID_X,
// attention_row, subgroup_attend and subgroups_*, store_ws.
var<workgroup> part_busy: u32;

@compute @workgroup_size(WG)
fn main(ids: Ids, @builtin(subgroup_size) sgs: u32) {
    for (var item = ids.wid.x + ids.wid.y * GRID_X; item < QROWS * PARTS; item = item + GROUPS) {
        let part = item % PARTS;
        let at = attention_row(item / PARTS);
        let span = max((at.limit + PARTS - 1u) / PARTS, MIN_KEYS);
        let first = min(part * span, at.limit);
        let end = min(first + span, at.limit);
        let base = item * WS_STRIDE;
        // A part past the row's keys only marks itself empty (first == end for the whole workgroup).
        if (ids.lid == 0u) {
            part_busy = u32(first < end);
        }
        if (workgroupUniformLoad(&part_busy) == 0u) {
            if (ids.lid == 0u) {
                store_ws(base, f32_neg_inf());
                store_ws(base + 1u, 0.0);
            }
            continue;
        }
        subgroup_attend(ids, sgs, at.q_at, at.kv_base, first, end);
        let top = subgroups_max(ids.n_sg);
        let total = subgroups_sum(ids.n_sg, top);
        if (ids.lid == 0u) {
            store_ws(base, top);
            store_ws(base + 1u, total);
        }
        for (var d = ids.lid; d < DV; d = d + WG) {
            store_ws(base + 2u + d, subgroups_acc(ids.n_sg, d, top));
        }
        // The next item's subgroups overwrite what this one's folds read.
        workgroupBarrier();
    }
}
