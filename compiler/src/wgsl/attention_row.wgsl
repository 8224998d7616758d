// The query row a workgroup of the attention kernels computes, and the keys it sees.
struct AttentionRow {
    // False for the padding workgroups past QROWS (they see no key and store nothing).
    valid: bool,
    // Flat index of the row (b, h, i) in q and the output.
    q_at: u32,
    // First cache row of its kv head (query head h reads kv head h / (HQ / HKV)).
    kv_base: u32,
    // Keys it attends to: kv_len at run time, cut by the causal mask.
    limit: u32,
}

fn attention_row(row: u32) -> AttentionRow {
    let valid = row < QROWS;
    let q_at = min(row, QROWS - 1u);
    let i = q_at % S;
    let h = (q_at / S) % HQ;
    let b = q_at / (S * HQ);
    let len = min(load_len(b), T);
    // Causal: row i is position len - S + i and sees keys up to itself (none when that is < 0).
    var limit = len;
    if (CAUSAL == 1u) {
        limit = select(0u, min(len + i + 1u - S, len), len + i + 1u > S);
    }
    if (!valid) {
        limit = 0u;
    }
    return AttentionRow(valid, q_at, (b * HKV + h / (HQ / HKV)) * T, limit);
}
