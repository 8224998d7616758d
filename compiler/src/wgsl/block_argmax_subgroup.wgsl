// Workgroup-wide argmax of (key, index) pairs with subgroup max/min, then the per-subgroup
// winners through workgroup memory.
var<workgroup> block_argmax_key: array<u32, WG>;
var<workgroup> block_argmax_idx: array<u32, WG>;

fn argmax_pick(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return kb > ka || (kb == ka && ib < ia);
}

fn block_argmax(key: u32, idx: u32, ids: Ids) -> u32 {
    let k = subgroupMax(key);
    let i = subgroupMin(select(0xffffffffu, idx, key == k));
    if (ids.sg_lane == 0u) {
        block_argmax_key[ids.sg_id] = k;
        block_argmax_idx[ids.sg_id] = i;
    }
    workgroupBarrier();
    var bk = block_argmax_key[0];
    var bi = block_argmax_idx[0];
    for (var s = 1u; s < ids.n_sg; s = s + 1u) {
        if (argmax_pick(bk, bi, block_argmax_key[s], block_argmax_idx[s])) {
            bk = block_argmax_key[s];
            bi = block_argmax_idx[s];
        }
    }
    return bi;
}
