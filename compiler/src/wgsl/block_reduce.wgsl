// Workgroup-wide $NAME of one $T per invocation: tree reduction in workgroup memory (WG is a
// power of two). Every invocation gets the result; call from uniform control flow.
var<workgroup> block_$NAME_scratch: array<$T, WG>;

fn block_$NAME(v: $T, ids: Ids) -> $T {
    block_$NAME_scratch[ids.lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (ids.lid < s) {
            block_$NAME_scratch[ids.lid] = $COMBINE(block_$NAME_scratch[ids.lid], block_$NAME_scratch[ids.lid + s]);
        }
        workgroupBarrier();
    }
    let r = block_$NAME_scratch[0];
    workgroupBarrier();
    return r;
}
