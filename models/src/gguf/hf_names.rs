//! GGUF tensor names to Hugging Face names, and undoing the q/k row permutation that llama.cpp's
//! `convert_hf_to_gguf.py` (`LlamaModel.permute`) applies so its RoPE can rotate adjacent pairs.

/// The Hugging Face name of a GGUF tensor (`blk.3.attn_q.weight` →
/// `model.layers.3.self_attn.q_proj.weight`), or `None` for a name with no HF counterpart
/// (`rope_freqs.weight`, for instance).
pub fn hf_tensor_name(gguf_name: &str) -> Option<String> {
    let (stem, suffix) = gguf_name.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let global = match stem {
        "token_embd" => Some("model.embed_tokens"),
        "output_norm" => Some("model.norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(hf) = global {
        return Some(format!("{hf}.{suffix}"));
    }
    let rest = stem.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf_part = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf_part}.{suffix}"))
}

/// Which heads' rows llama.cpp permuted in a tensor, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QkPermutation {
    /// Heads the rows are grouped into (`n_head` for q, `n_head_kv` for k).
    pub n_head: usize,
}

impl QkPermutation {
    /// The permutation llama.cpp applied to GGUF tensor `gguf_name` of a model with this
    /// architecture and these head counts: only llama-arch `attn_q` / `attn_k` weights (and
    /// biases) are permuted; Qwen2 and others use NeoX RoPE and are stored as in HF.
    pub fn for_tensor(architecture: &str, gguf_name: &str, n_head: usize, n_head_kv: usize) -> Option<Self> {
        if architecture != "llama" {
            return None;
        }
        let stem = gguf_name.strip_suffix(".weight").or_else(|| gguf_name.strip_suffix(".bias"))?;
        if stem.starts_with("blk.") && stem.ends_with(".attn_q") {
            Some(QkPermutation { n_head })
        } else if stem.starts_with("blk.") && stem.ends_with(".attn_k") {
            Some(QkPermutation { n_head: n_head_kv })
        } else {
            None
        }
    }
}

/// For each Hugging Face row, the GGUF row that holds it, undoing
/// `w.reshape(n_head, 2, rows / n_head / 2, ...).swapaxes(1, 2).reshape(w.shape)`.
///
/// Within a head of `2h` rows, HF row `t * h + i` (t in {0, 1}) was stored at GGUF row `2i + t`.
/// Whole rows move, so this applies to quantized rows without dequantizing them.
/// `None` when `n_rows` is not divisible into `n_head` heads of an even row count.
pub fn permuted_row_order(n_rows: usize, n_head: usize) -> Option<Vec<usize>> {
    if n_head == 0 || !n_rows.is_multiple_of(n_head) || !(n_rows / n_head).is_multiple_of(2) {
        return None;
    }
    let head_rows = n_rows / n_head;
    let half = head_rows / 2;
    Some(
        (0..n_rows)
            .map(|hf_row| {
                let (head, within) = (hf_row / head_rows, hf_row % head_rows);
                let (t, i) = (within / half, within % half);
                head * head_rows + 2 * i + t
            })
            .collect(),
    )
}

/// Reorders the rows of `data` (rows of `row_bytes` bytes each, quantized or not) from GGUF
/// order to HF order. `None` when the sizes do not divide as [`permuted_row_order`] needs.
pub fn unpermute_rows(data: &[u8], row_bytes: usize, n_head: usize) -> Option<Vec<u8>> {
    if row_bytes == 0 || !data.len().is_multiple_of(row_bytes) {
        return None;
    }
    let order = permuted_row_order(data.len() / row_bytes, n_head)?;
    let mut out = Vec::with_capacity(data.len());
    for gguf_row in order {
        out.extend_from_slice(&data[gguf_row * row_bytes..(gguf_row + 1) * row_bytes]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward permutation exactly as convert_hf_to_gguf.py writes it, on row indices.
    fn llama_cpp_permute(rows: &[usize], n_head: usize) -> Vec<usize> {
        let half = rows.len() / n_head / 2;
        let mut out = Vec::new();
        for h in 0..n_head {
            for i in 0..half {
                for t in 0..2 {
                    out.push(rows[h * 2 * half + t * half + i]);
                }
            }
        }
        out
    }

    #[test]
    fn unpermuting_inverts_llama_cpp_permute() {
        for (n_rows, n_head) in [(8, 1), (576, 9), (192, 3), (12, 3)] {
            let hf: Vec<usize> = (0..n_rows).collect();
            let gguf = llama_cpp_permute(&hf, n_head);
            let order = permuted_row_order(n_rows, n_head).expect("divisible");
            let restored: Vec<usize> = order.iter().map(|&g| gguf[g]).collect();
            assert_eq!(restored, hf, "n_rows {n_rows} n_head {n_head}");
        }
    }

    #[test]
    fn unpermute_rows_moves_whole_rows() {
        // 4 rows of 3 bytes, one head: GGUF order is HF rows [0, 2, 1, 3].
        let gguf = [0, 0, 0, 2, 2, 2, 1, 1, 1, 3, 3, 3];
        let hf = unpermute_rows(&gguf, 3, 1).expect("divisible");
        assert_eq!(hf, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
        assert!(unpermute_rows(&gguf, 3, 3).is_none());
    }

    #[test]
    fn names_map_to_hugging_face() {
        let cases = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output_norm.weight", "model.norm.weight"),
            ("output.weight", "lm_head.weight"),
            ("blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"),
            ("blk.0.attn_k.bias", "model.layers.0.self_attn.k_proj.bias"),
            ("blk.0.attn_output.weight", "model.layers.0.self_attn.o_proj.weight"),
            ("blk.1.ffn_gate.weight", "model.layers.1.mlp.gate_proj.weight"),
            ("blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight"),
            ("blk.2.attn_norm.weight", "model.layers.2.input_layernorm.weight"),
            ("blk.2.ffn_norm.weight", "model.layers.2.post_attention_layernorm.weight"),
        ];
        for (gguf, hf) in cases {
            assert_eq!(hf_tensor_name(gguf).as_deref(), Some(hf));
        }
        assert_eq!(hf_tensor_name("rope_freqs.weight"), None);
        assert_eq!(hf_tensor_name("blk.x.attn_q.weight"), None);
    }
}
