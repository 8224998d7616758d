// Sums each of the SLOTS slots of every invocation's `acc` over the workgroup: a tree in workgroup
// memory (WG is a power of two). Call from uniform control flow, then read `slot_total`.
var<workgroup> slots: array<f32, SLOTS * WG>;

fn reduce_slots(acc: ptr<function, array<f32, SLOTS>>, ids: Ids) {
    for (var j = 0u; j < SLOTS; j = j + 1u) {
        slots[j * WG + ids.lid] = (*acc)[j];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (ids.lid < s) {
            for (var j = 0u; j < SLOTS; j = j + 1u) {
                slots[j * WG + ids.lid] = slots[j * WG + ids.lid] + slots[j * WG + ids.lid + s];
            }
        }
        workgroupBarrier();
    }
}

fn slot_total(j: u32, ids: Ids) -> f32 {
    return slots[j * WG];
}
