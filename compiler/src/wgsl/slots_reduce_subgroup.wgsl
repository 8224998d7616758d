// Sums each of the SLOTS slots of every invocation's `acc` over the workgroup: subgroupAdd within
// each subgroup, the per-subgroup partials through workgroup memory. Call from uniform control
// flow, then read `slot_total`. NSG bounds the subgroups per workgroup.
var<workgroup> slots: array<f32, SLOTS * NSG>;

fn reduce_slots(acc: ptr<function, array<f32, SLOTS>>, ids: Ids) {
    for (var j = 0u; j < SLOTS; j = j + 1u) {
        let s = subgroupAdd((*acc)[j]);
        if (ids.sg_lane == 0u) {
            slots[j * NSG + ids.sg_id] = s;
        }
    }
    workgroupBarrier();
}

fn slot_total(j: u32, ids: Ids) -> f32 {
    var t = 0.0;
    for (var i = 0u; i < ids.n_sg; i = i + 1u) {
        t = t + slots[j * NSG + i];
    }
    return t;
}
