// The end of the subgroup-rows gemvs (gemv_subgroup_rows.wgsl, gemv_int8_rows.wgsl): each of a
// subgroup's RM partials summed with subgroupAdd, a fused RMSNorm's row scale taken from the
// workgroup's sums of squares `sq`, rows n0..n0 + R stored. Call from uniform control flow.
fn store_subgroup_rows(acc: ptr<function, array<f32, RM>>, sq: ptr<function, array<f32, SLOTS>>, n0: u32, ids: Ids) {
    if (NORM) {
        reduce_slots(sq, ids);
    }
    // Lane j ends with the subgroup's total of partial j (RM <= SG).
    var total = 0.0;
    for (var j = 0u; j < RM; j = j + 1u) {
        let t = subgroupAdd((*acc)[j]);
        if (ids.sg_lane == j) {
            total = t;
        }
    }
    if (ids.sg_lane < RM) {
        if (NORM) {
            total = total * norm_scale(slot_total(ids.sg_lane % M, ids));
        }
        let n = n0 + ids.sg_lane / M;
        if (n < N) {
            store_y((ids.sg_lane % M) * N + n, total);
        }
    }
}
