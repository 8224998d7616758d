// Shared by the gemv kernels. Generated above: M, N, R, RM (= R * M), SLOTS, reduce_slots,
// slot_total, store_y, NORM, norm_scale.

// Sums every invocation's R * M partials (and a fused RMSNorm's sums of squares) over the
// workgroup and stores the outputs of rows n0..n0 + R, each scaled by its row's 1/rms with NORM.
// Call from uniform control flow.
fn finish_rows(acc: ptr<function, array<f32, SLOTS>>, n0: u32, ids: Ids) {
    reduce_slots(acc, ids);
    if (ids.lid < RM) {
        var total = slot_total(ids.lid, ids);
        if (NORM) {
            total = total * norm_scale(slot_total(RM + ids.lid % M, ids));
        }
        let n = n0 + ids.lid / M;
        if (n < N) {
            store_y((ids.lid % M) * N + n, total);
        }
    }
}
