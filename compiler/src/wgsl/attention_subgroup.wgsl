// Attention on subgroups, the part its kernels share: one online softmax per subgroup over a
// range of one row's keys (subgroup sg takes keys first + sg, first + sg + n_sg, ...; no barrier
// until the end). The lanes split the head dims (d = lane + e * subgroup size), so a key's and a
// value's row are read whole and coalesced, and a score is one subgroupAdd. Each step loads KPS
// keys and their values together, so one memory round trip serves them all. The subgroups leave
// their (max, sum, value sums) in workgroup memory; `subgroups_*` rescale them to the largest max
// and add. f32 accumulation. Generated above: HQ, HKV, S, T, D, DV, DV_ROW (DV, at least 1), QP,
// VP (dims per lane at the smallest subgroup size), NSG (subgroups at that size), KPS, SCALE,
// load_q, load_k, load_v.
var<workgroup> sg_max: array<f32, NSG>;
var<workgroup> sg_sum: array<f32, NSG>;
var<workgroup> sg_acc: array<f32, NSG * DV_ROW>;

// Keys first..end of the cache rows from kv_base, scored against query row q_at.
fn subgroup_attend(ids: Ids, sgs: u32, q_at: u32, kv_base: u32, first: u32, end: u32) {
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
    for (var j0 = first + ids.sg_id; j0 < end; j0 = j0 + KPS * ids.n_sg) {
        // KPS keys per step, in flight together; those past the end reread key j0 with no weight.
        var js: array<u32, KPS>;
        var dots: array<f32, KPS>;
        for (var u = 0u; u < KPS; u = u + 1u) {
            let j = j0 + u * ids.n_sg;
            js[u] = select(j0, j, j < end);
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
            s[u] = select(f32_neg_inf(), subgroupAdd(dots[u]) * SCALE, j0 + u * ids.n_sg < end);
            top = max(top, s[u]);
        }
        let correction = exp(m - top);
        var p: array<f32, KPS>;
        var sum = 0.0;
        for (var u = 0u; u < KPS; u = u + 1u) {
            p[u] = select(0.0, exp(s[u] - top), j0 + u * ids.n_sg < end);
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
}

// The largest max of the n_sg subgroups; those that saw no key have a zero sum and are left
// out (their max is -inf).
fn subgroups_max(n_sg: u32) -> f32 {
    var top = f32_neg_inf();
    for (var g = 0u; g < n_sg; g = g + 1u) {
        if (sg_sum[g] > 0.0) {
            top = max(top, sg_max[g]);
        }
    }
    return top;
}

// The subgroups' sums of exponentials, rescaled to `top`.
fn subgroups_sum(n_sg: u32, top: f32) -> f32 {
    var total = 0.0;
    for (var g = 0u; g < n_sg; g = g + 1u) {
        if (sg_sum[g] > 0.0) {
            total = total + sg_sum[g] * exp(sg_max[g] - top);
        }
    }
    return total;
}

// The subgroups' value sums of dim d, rescaled to `top` (not yet divided by the total).
fn subgroups_acc(n_sg: u32, d: u32, top: f32) -> f32 {
    var y = 0.0;
    for (var g = 0u; g < n_sg; g = g + 1u) {
        if (sg_sum[g] > 0.0) {
            y = y + sg_acc[g * DV_ROW + d] * exp(sg_max[g] - top);
        }
    }
    return y;
}
