//! Scaled dot-product attention over a KV cache, computed directly from its definition.

use super::Tensor;

/// `softmax(q k^T * scale) v` per (batch, query head, query row), grouped-query heads, keys
/// limited to `j < kv_len[b]` and, when causal, `j <= kv_len[b] - S + i`. No visible key: zeros.
pub(super) fn attention(
    scale: f64,
    causal: bool,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    kv_len: &Tensor,
) -> Vec<f64> {
    let [b, hq, s, d] = dims4(q);
    let [_, hkv, t, _] = dims4(k);
    let dv = v.shape.dims()[3];
    let group = hq / hkv;
    let mut out = vec![0.0; b * hq * s * dv];
    for bi in 0..b {
        let len = (kv_len.data[bi] as usize).min(t);
        for h in 0..hq {
            let kh = h / group;
            for i in 0..s {
                let mut limit = len;
                if causal {
                    // Row i is absolute position kv_len - S + i; it sees keys up to itself.
                    limit = (len + i + 1).saturating_sub(s).min(len);
                }
                let qrow = &q.data[((bi * hq + h) * s + i) * d..][..d];
                let scores: Vec<f64> = (0..limit)
                    .map(|j| {
                        let krow = &k.data[((bi * hkv + kh) * t + j) * d..][..d];
                        qrow.iter().zip(krow).map(|(a, c)| a * c).sum::<f64>() * scale
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                let orow = &mut out[((bi * hq + h) * s + i) * dv..][..dv];
                for (j, w) in weights.iter().enumerate() {
                    let vrow = &v.data[((bi * hkv + kh) * t + j) * dv..][..dv];
                    for (o, x) in orow.iter_mut().zip(vrow) {
                        *o += w / total * x;
                    }
                }
            }
        }
    }
    out
}

fn dims4(t: &Tensor) -> [usize; 4] {
    let d = t.shape.dims();
    [d[0], d[1], d[2], d[3]]
}
