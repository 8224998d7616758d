// Workgroup-wide argmax of (key, index) pairs: the largest key, then the smallest index.
var<workgroup> block_argmax_key: array<u32, WG>;
var<workgroup> block_argmax_idx: array<u32, WG>;

fn argmax_pick(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return kb > ka || (kb == ka && ib < ia);
}

fn block_argmax(key: u32, idx: u32, ids: Ids) -> u32 {
    block_argmax_key[ids.lid] = key;
    block_argmax_idx[ids.lid] = idx;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (ids.lid < s) {
            let kb = block_argmax_key[ids.lid + s];
            let ib = block_argmax_idx[ids.lid + s];
            if (argmax_pick(block_argmax_key[ids.lid], block_argmax_idx[ids.lid], kb, ib)) {
                block_argmax_key[ids.lid] = kb;
                block_argmax_idx[ids.lid] = ib;
            }
        }
        workgroupBarrier();
    }
    return block_argmax_idx[0];
}
