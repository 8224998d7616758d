// Attention on subgroups, one workgroup per query row (b, h, i) over all of its keys (from kv_len
// at run time, cut by the causal mask). Generated above: QROWS, DV, WG, GRID_X, attention_row
// (attention_row.wgsl), subgroup_attend and subgroups_* (attention_subgroup.wgsl), store_y.
@compute @workgroup_size(WG)
fn main(ids: Ids, @builtin(subgroup_size) sgs: u32) {
    let at = attention_row(ids.wid.x + ids.wid.y * GRID_X);
    subgroup_attend(ids, sgs, at.q_at, at.kv_base, 0u, at.limit);
    let top = subgroups_max(ids.n_sg);
    let total = subgroups_sum(ids.n_sg, top);
    if (at.valid) {
        for (var d = ids.lid; d < DV; d = d + WG) {
            store_y(at.q_at * DV + d, select(0.0, subgroups_acc(ids.n_sg, d, top) / total, total > 0.0));
        }
    }
}
