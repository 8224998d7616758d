// Attention on subgroups: one workgroup per query row (b, h, i), each subgroup an online softmax
// of its own over keys sg, sg + n_sg, ... (no barrier until the end). The lanes split the head
// dims (d = lane + e * subgroup size), so a key's and a value's row are read whole and coalesced,
// and a score is one subgroupAdd. Each step loads KPS keys and their values together, so one
// memory round trip serves them all. At the end the subgroups' (max, sum, value sums) are
// rescaled to the largest max and added. Keys stop at the row's limit from kv_len at run time,
// as in attention.wgsl; f32 accumulation.
// Generated above: ROWS, HQ, HKV, S, T, D, DV, DV_ROW (DV, at least 1), QP, VP (dims per lane at the
// smallest subgroup size), NSG (subgroups at that size), KPS, CAUSAL, SCALE, WG, GRID_X,
// attention_row (attention_row.wgsl), load_q, load_k, load_v, load_len, store_y.
var<workgroup> sg_max: array<f32, NSG>;
var<workgroup> sg_sum: array<f32, NSG>;
var<workgroup> sg_acc: array<f32, NSG * DV_ROW>;

@compute @workgroup_size(WG)
fn main(ids: Ids, @builtin(subgroup_size) sgs: u32) {
    let at = attention_row(ids.wid);
    let valid = at.valid;
    let q_at = at.q_at;
    let kv_base = at.kv_base;
    let limit = at.limit;
    let lane = ids.sg_lane;
    var q: array<f32, QP>;
    for (var e = 0u; e < QP; e = e + 1u) {
        let d = lane + e * sgs;
        if (d < D) {
            q[e] = load_q(q_at * D + d);
        }
    }

    var m = f32_neg_inf();
    var l = 0.0;
    var acc: array<f32, VP>;
    for (var j0 = ids.sg_id; j0 < limit; j0 = j0 + KPS * ids.n_sg) {
        // KPS keys per step, in flight together; those past the limit reread key j0 with no weight.
        var js: array<u32, KPS>;
        var dots: array<f32, KPS>;
        for (var u = 0u; u < KPS; u = u + 1u) {
            let j = j0 + u * ids.n_sg;
            js[u] = select(j0, j, j < limit);
        }
        for (var e = 0u; e < QP; e = e + 1u) {
            let d = lane + e * sgs;
            if (d < D) {
                for (var u = 0u; u < KPS; u = u + 1u) {
                    dots[u] = dots[u] + q[e] * load_k((kv_base + js[u]) * D + d);
                }
            }
        }
        // The value rows too, before the scores are reduced: one memory round trip per step.
        var vals: array<f32, KPS * VP>;
        for (var e = 0u; e < VP; e = e + 1u) {
            let d = lane + e * sgs;
            if (d < DV) {
                for (var u = 0u; u < KPS; u = u + 1u) {
                    vals[u * VP + e] = load_v((kv_base + js[u]) * DV + d);
                }
            }
        }
        // Key j0 is visible, so the new maximum is finite.
        var s: array<f32, KPS>;
        var top = m;
        for (var u = 0u; u < KPS; u = u + 1u) {
            s[u] = select(f32_neg_inf(), subgroupAdd(dots[u]) * SCALE, j0 + u * ids.n_sg < limit);
            top = max(top, s[u]);
        }
        let correction = exp(m - top);
        var p: array<f32, KPS>;
        var sum = 0.0;
        for (var u = 0u; u < KPS; u = u + 1u) {
            p[u] = select(0.0, exp(s[u] - top), j0 + u * ids.n_sg < limit);
            sum = sum + p[u];
        }
        l = l * correction + sum;
        for (var e = 0u; e < VP; e = e + 1u) {
            let d = lane + e * sgs;
            if (d < DV) {
                var a = acc[e] * correction;
                for (var u = 0u; u < KPS; u = u + 1u) {
                    a = a + p[u] * vals[u * VP + e];
                }
                acc[e] = a;
            }
        }
        m = top;
    }

    if (lane == 0u) {
        sg_max[ids.sg_id] = m;
        sg_sum[ids.sg_id] = l;
    }
    for (var e = 0u; e < VP; e = e + 1u) {
        let d = lane + e * sgs;
        if (d < DV) {
            sg_acc[ids.sg_id * DV_ROW + d] = acc[e];
        }
    }
    workgroupBarrier();
    // Subgroups that saw no key have a zero sum and are left out (their max is -inf).
    var top = f32_neg_inf();
    for (var g = 0u; g < ids.n_sg; g = g + 1u) {
        if (sg_sum[g] > 0.0) {
            top = max(top, sg_max[g]);
        }
    }
    var total = 0.0;
    for (var g = 0u; g < ids.n_sg; g = g + 1u) {
        if (sg_sum[g] > 0.0) {
            total = total + sg_sum[g] * exp(sg_max[g] - top);
        }
    }
    if (valid) {
        for (var d = ids.lid; d < DV; d = d + WG) {
            var y = 0.0;
            for (var g = 0u; g < ids.n_sg; g = g + 1u) {
                if (sg_sum[g] > 0.0) {
                    y = y + sg_acc[g * DV_ROW + d] * exp(sg_max[g] - top);
                }
            }
            store_y(q_at * DV + d, select(0.0, y / total, total > 0.0));
        }
    }
}
