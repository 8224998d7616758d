// Workgroup-wide $NAME of one $T per invocation: $SUBGROUP within each subgroup, then the
// per-subgroup partials through workgroup memory. Every invocation gets the result.
var<workgroup> block_$NAME_scratch: array<$T, WG>;

fn block_$NAME(v: $T, ids: Ids) -> $T {
    let s = $SUBGROUP(v);
    if (ids.sg_lane == 0u) {
        block_$NAME_scratch[ids.sg_id] = s;
    }
    workgroupBarrier();
    var r = block_$NAME_scratch[0];
    for (var i = 1u; i < ids.n_sg; i = i + 1u) {
        r = $COMBINE(r, block_$NAME_scratch[i]);
    }
    workgroupBarrier();
    return r;
}
