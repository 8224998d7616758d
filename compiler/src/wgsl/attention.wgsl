// Attention over a KV cache: one workgroup per query row (b, h, i), online softmax over chunks of
// WG keys. Each invocation scores one key of the chunk into workgroup memory, the chunk max
// rescales the running sums and accumulators, then GROUPS groups of GW invocations share the
// chunk's keys (group g takes keys g, g + GROUPS, ...), each invocation accumulating p_j * v_j[d]
// for its output dims d = t + e * GW; the groups' sums are added at the end (they share the
// running max, so they add exactly). Keys stop at the row's limit, computed from kv_len at run
// time (never the cache's capacity T); f32 accumulation. Generated above: QROWS, HQ, HKV, S, T,
// D, Q_ROW (D, at least 1), DV, DV_ROW (DV, at least 1), DV_PER, GROUPS, GW, GROUP_ACC, CAUSAL, SCALE, WG,
// GRID_X, attention_row (attention_row.wgsl), load_q, load_k, load_v, load_len, store_y, block_max.
var<workgroup> q_row: array<f32, Q_ROW>;
var<workgroup> p_chunk: array<f32, WG>;
// The groups' value sums (one element when GROUPS is 1: nothing to combine).
var<workgroup> group_acc: array<f32, GROUP_ACC>;
var<workgroup> group_l: array<f32, GROUPS>;

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    let at = attention_row(ids.wid.x + ids.wid.y * GRID_X);
    let valid = at.valid;
    let q_at = at.q_at;
    let kv_base = at.kv_base;
    let limit = at.limit;
    for (var d = ids.lid; d < D; d = d + WG) {
        q_row[d] = load_q(q_at * D + d);
    }
    workgroupBarrier();

    let g = ids.lid / GW;
    let t = ids.lid % GW;
    var m = f32_neg_inf();
    var l = 0.0;
    var acc: array<f32, DV_PER>;
    for (var c0 = 0u; c0 < limit; c0 = c0 + WG) {
        let j = c0 + ids.lid;
        var s = f32_neg_inf();
        if (j < limit) {
            let k_at = (kv_base + j) * D;
            var dot = 0.0;
            for (var d = 0u; d < D; d = d + 1u) {
                dot = dot + q_row[d] * load_k(k_at + d);
            }
            s = dot * SCALE;
        }
        // The chunk's first key is visible, so the new maximum is finite.
        let m_new = op_max_f32(m, block_max(s, ids));
        let correction = exp(m - m_new);
        p_chunk[ids.lid] = exp(s - m_new);
        workgroupBarrier();
        l = l * correction;
        for (var e = 0u; e < DV_PER; e = e + 1u) {
            acc[e] = acc[e] * correction;
        }
        let keys = min(WG, limit - c0);
        for (var jj = g; jj < keys; jj = jj + GROUPS) {
            let p = p_chunk[jj];
            l = l + p;
            let v_at = (kv_base + c0 + jj) * DV;
            for (var e = 0u; e < DV_PER; e = e + 1u) {
                let d = t + e * GW;
                if (d < DV) {
                    acc[e] = acc[e] + p * load_v(v_at + d);
                }
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    if (GROUPS == 1u) {
        if (valid) {
            for (var e = 0u; e < DV_PER; e = e + 1u) {
                let d = t + e * GW;
                if (d < DV) {
                    store_y(q_at * DV + d, select(0.0, acc[e] / l, l > 0.0));
                }
            }
        }
    } else {
        for (var e = 0u; e < DV_PER; e = e + 1u) {
            let d = t + e * GW;
            if (d < DV) {
                group_acc[g * DV_ROW + d] = acc[e];
            }
        }
        if (t == 0u) {
            group_l[g] = l;
        }
        workgroupBarrier();
        if (valid && g == 0u) {
            var total_l = 0.0;
            for (var gg = 0u; gg < GROUPS; gg = gg + 1u) {
                total_l = total_l + group_l[gg];
            }
            for (var e = 0u; e < DV_PER; e = e + 1u) {
                let d = t + e * GW;
                if (d < DV) {
                    var total = 0.0;
                    for (var gg = 0u; gg < GROUPS; gg = gg + 1u) {
                        total = total + group_acc[gg * DV_ROW + d];
                    }
                    store_y(q_at * DV + d, select(0.0, total / total_l, total_l > 0.0));
                }
            }
        }
    }
}
