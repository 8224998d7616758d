// The end of the subgroup-rows gemvs (gemv_subgroup_rows.wgsl, gemv_int8_rows.wgsl): each of a
// subgroup's RM partials summed with subgroupAdd, a fused RMSNorm's row scale taken from the
// workgroup's sums of squares `sq`, rows n0..n0 + R stored. Call from uniform control flow.
// Where KS subgroups share rows (each summed a slice of K), their totals meet in workgroup
// memory and the first of them stores.

// Partials each lane stores: partial j is lane j % SG's number j / SG (more than one only where
// the integer-dot gemv takes more rows of x than a subgroup has lanes).
const RM_LANE: u32 = (RM + SG - 1u) / SG;
var<workgroup> kparts: array<f32, KPARTS>;

fn store_subgroup_rows(acc: ptr<function, array<f32, RM>>, sq: ptr<function, array<f32, SLOTS>>, n0: u32, ids: Ids) {
    if (NORM) {
        reduce_slots(sq, ids);
    }
    var total: array<f32, RM_LANE>;
    for (var j = 0u; j < RM; j = j + 1u) {
        let t = subgroupAdd((*acc)[j]);
        if (ids.sg_lane == j % SG) {
            total[j / SG] = t;
        }
    }
    if (KS > 1u) {
        for (var i = 0u; i < RM_LANE; i = i + 1u) {
            let j = i * SG + ids.sg_lane;
            if (j < RM) {
                kparts[ids.sg_id * RM + j] = total[i];
            }
        }
        workgroupBarrier();
        for (var i = 0u; i < RM_LANE; i = i + 1u) {
            let j = i * SG + ids.sg_lane;
            if (j < RM) {
                var t = 0.0;
                for (var s = 0u; s < KS; s = s + 1u) {
                    t = t + kparts[(ids.sg_id - ids.sg_id % KS + s) * RM + j];
                }
                total[i] = t;
            }
        }
    }
    for (var i = 0u; i < RM_LANE; i = i + 1u) {
        let j = i * SG + ids.sg_lane;
        if (j < RM && ids.sg_id % KS == 0u) {
            var y = total[i];
            if (NORM) {
                y = y * norm_scale(slot_total(j % M, ids));
            }
            let n = n0 + j / M;
            if (n < N) {
                store_y((j % M) * N + n, y);
            }
        }
    }
}
