//! Llama weights as the step graph's parameters. Quantized GGUF matrices stay quantized: their
//! blocks are repacked once at load into the MLX affine layout the kernels read (u32 words of
//! codes, code `i` in bits `bits*i`, weight = scale * code + bias per group of 32), which holds
//! Q4_0 (bias = -8 scale), Q4_1 (bias = min) and Q8_0 (codes + 128, bias = -128 scale) exactly.
//! Float matrices keep the checkpoint's `[out, in]` rows, in f16 when the checkpoint has f16
//! (halving what decode streams), else f32; the gemv reads them as rows. Scales and biases are
//! f16 wherever every value converts exactly (always for GGUF blocks, whose scales are f16).

use crate::ModelError;
use crate::gguf::{GgmlType, GgufFile};
use std::collections::HashMap;
use tessera_ir::{DType, IrError};

/// How a linear layer's weight is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linear {
    /// Float rows `[n, k]` as in the checkpoint, param `{prefix}.weight` (also an embedding table).
    Dense {
        /// Input features.
        k: usize,
        /// Output features.
        n: usize,
        /// F32 or F16.
        dtype: DType,
    },
    /// Affine-quantized `{prefix}.weight` / `.scales` / `.biases`.
    Quant {
        /// Input features.
        k: usize,
        /// Output features.
        n: usize,
        /// Bits per code.
        bits: u32,
        /// Codes per scale/bias.
        group_size: u32,
        /// Dtype of the scales and biases (F32 or F16).
        scales: DType,
    },
}

impl Linear {
    /// Output features.
    pub fn n(&self) -> usize {
        match *self {
            Linear::Dense { n, .. } | Linear::Quant { n, .. } => n,
        }
    }
}

/// One parameter's data, ready to upload: little-endian elements of `dtype`.
#[derive(Clone, Debug)]
pub struct HostParam {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Bytes.
    pub bytes: Vec<u8>,
}

impl HostParam {
    /// The values of an F32 or F16 param as f32; `None` for other dtypes.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match self.dtype {
            DType::F32 => Some(
                self.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            ),
            DType::F16 => Some(
                self.bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            ),
            _ => None,
        }
    }
}

/// Every parameter of a Llama model by graph name, and how each linear layer is stored.
#[derive(Default)]
pub struct WeightIndex {
    linears: HashMap<String, Linear>,
    biases: HashMap<String, usize>,
    /// Parameter data by graph name.
    pub params: HashMap<String, HostParam>,
}

impl WeightIndex {
    /// How the linear layer at `prefix` (e.g. `model.layers.0.mlp.up_proj`) is stored.
    pub fn linear(&self, prefix: &str) -> Result<Linear, IrError> {
        self.linears.get(prefix).copied().ok_or_else(|| IrError::Graph(format!("no weight for `{prefix}`")))
    }

    /// Output features of the bias of `prefix`, when it has one.
    pub fn bias(&self, prefix: &str) -> Option<usize> {
        self.biases.get(prefix).copied()
    }

    /// Names of the float linear layers (an untied float embedding among them), sorted.
    pub fn dense_linears(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .linears
            .iter()
            .filter(|(_, l)| matches!(l, Linear::Dense { .. }))
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// True when a linear layer named `prefix` exists.
    pub fn has(&self, prefix: &str) -> bool {
        self.linears.contains_key(prefix)
    }

    /// Bytes of the parameters whose names start with `prefix`.
    pub fn params_bytes_with_prefix(&self, prefix: &str) -> usize {
        self.params.iter().filter(|(n, _)| n.starts_with(prefix)).map(|(_, p)| p.bytes.len()).sum()
    }

    /// Total bytes of parameter data.
    pub fn bytes(&self) -> usize {
        self.params.values().map(|p| p.bytes.len()).sum()
    }

    /// Adds a 1-D or 2-D float tensor under `name` as f32.
    pub fn insert_f32(&mut self, name: &str, shape: Vec<usize>, values: &[f32]) {
        self.insert_float(name, shape, values, DType::F32);
    }

    /// Adds a float tensor under `name`, stored as `dtype` (F32, or F16 rounding to nearest).
    pub fn insert_float(&mut self, name: &str, shape: Vec<usize>, values: &[f32], dtype: DType) {
        let dtype = if dtype == DType::F16 { DType::F16 } else { DType::F32 };
        // Sized up front: a flat_map collect regrows the vector, and an 8B model is 16 GB of it.
        let mut bytes = Vec::with_capacity(values.len() * dtype.size_bytes());
        for v in values {
            match dtype {
                DType::F16 => bytes.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes()),
                _ => bytes.extend_from_slice(&v.to_le_bytes()),
            }
        }
        self.params.insert(name.into(), HostParam { dtype, shape, bytes });
    }

    /// Adds an f16 linear weight `[n, k]` from its little-endian bytes.
    pub fn insert_f16_linear_bytes(&mut self, prefix: &str, n: usize, k: usize, bytes: Vec<u8>) {
        debug_assert_eq!(bytes.len(), 2 * n * k);
        let param = HostParam { dtype: DType::F16, shape: vec![n, k], bytes };
        self.params.insert(format!("{prefix}.weight"), param);
        self.linears.insert(prefix.into(), Linear::Dense { k, n, dtype: DType::F16 });
    }

    /// Adds a float linear weight (or embedding table) `[n, k]` of row-major values, stored as
    /// `dtype` (F32 or F16).
    pub fn insert_dense_linear(&mut self, prefix: &str, n: usize, k: usize, values: &[f32], dtype: DType) {
        self.insert_float(&format!("{prefix}.weight"), vec![n, k], values, dtype);
        let dtype = self.params[&format!("{prefix}.weight")].dtype;
        self.linears.insert(prefix.into(), Linear::Dense { k, n, dtype });
    }

    /// Adds an affine-quantized linear weight in the MLX layout; scales and biases in f16 when
    /// every one of them converts exactly.
    pub fn insert_quant_linear(&mut self, prefix: &str, q: QuantMatrix) {
        let (n, k, bits, group_size) = (q.rows, q.cols, q.bits, q.group_size);
        let mut words = Vec::with_capacity(4 * q.words.len());
        for w in &q.words {
            words.extend_from_slice(&w.to_le_bytes());
        }
        let groups = k / group_size as usize;
        self.params.insert(
            format!("{prefix}.weight"),
            HostParam { dtype: DType::U32, shape: vec![n, k * bits as usize / 32], bytes: words },
        );
        let exact = |v: &f32| half::f16::from_f32(*v).to_f32() == *v;
        let scales = if q.scales.iter().chain(&q.biases).all(exact) { DType::F16 } else { DType::F32 };
        self.insert_float(&format!("{prefix}.scales"), vec![n, groups], &q.scales, scales);
        self.insert_float(&format!("{prefix}.biases"), vec![n, groups], &q.biases, scales);
        self.linears.insert(prefix.into(), Linear::Quant { k, n, bits, group_size, scales });
    }

    /// Adds a bias vector of `n` values for the linear layer at `prefix`.
    pub fn insert_bias(&mut self, prefix: &str, values: &[f32]) {
        self.insert_f32(&format!("{prefix}.bias"), vec![values.len()], values);
        self.biases.insert(prefix.into(), values.len());
    }

    /// Replaces the linear layers `parts` (same input, same storage kind) by one layer `merged`
    /// whose output features are theirs side by side, so decode reads the input once and runs
    /// one gemv instead of several (q/k/v, gate/up). Returns false, changing nothing, when the
    /// parts are missing or stored differently (mixed bits, biases on some only).
    pub fn merge_linears(&mut self, parts: &[&str], merged: &str) -> bool {
        let Some(kinds) = parts.iter().map(|p| self.linears.get(*p).copied()).collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        let with_bias = parts.iter().filter(|p| self.biases.contains_key(**p)).count();
        if kinds.is_empty() || (with_bias != 0 && with_bias != parts.len()) {
            return false;
        }
        let n: usize = kinds.iter().map(|l| l.n()).sum();
        let merged_kind = match kinds[0] {
            Linear::Dense { k, dtype, .. }
                if kinds.iter().all(
                    |l| matches!(l, Linear::Dense { k: pk, dtype: pd, .. } if (*pk, *pd) == (k, dtype)),
                ) =>
            {
                Linear::Dense { k, n, dtype }
            }
            Linear::Quant { k, bits, group_size, scales, .. }
                if kinds.iter().all(|l| {
                    matches!(l, Linear::Quant { k: pk, bits: pb, group_size: pg, scales: ps, .. }
                        if (*pk, *pb, *pg, *ps) == (k, bits, group_size, scales))
                }) =>
            {
                Linear::Quant { k, n, bits, group_size, scales }
            }
            _ => return false,
        };
        // Every part is row-major `[n_i, ..]`: they stack along rows.
        let suffixes: &[&str] = match merged_kind {
            Linear::Dense { .. } => &["weight"],
            Linear::Quant { .. } => &["weight", "scales", "biases"],
        };
        let mut suffixes = suffixes.to_vec();
        if with_bias != 0 {
            suffixes.push("bias");
        }
        for suffix in &suffixes {
            let names: Vec<String> = parts.iter().map(|p| format!("{p}.{suffix}")).collect();
            if names.iter().any(|n| !self.params.contains_key(n)) {
                return false;
            }
        }
        for suffix in suffixes {
            let taken: Vec<HostParam> =
                parts.iter().filter_map(|p| self.params.remove(&format!("{p}.{suffix}"))).collect();
            self.params.insert(format!("{merged}.{suffix}"), concat_rows(&taken));
        }
        for p in parts {
            self.linears.remove(*p);
            self.biases.remove(*p);
        }
        self.linears.insert(merged.into(), merged_kind);
        if with_bias != 0 {
            self.biases.insert(merged.into(), n);
        }
        true
    }

    /// Prepares every tensor of a GGUF Llama-family model.
    pub fn from_gguf(gguf: &GgufFile) -> Result<WeightIndex, ModelError> {
        let mut w = WeightIndex::default();
        let file = gguf.file_name().to_string();
        for t in gguf.hf_tensors()? {
            let shape = t.shape();
            let err =
                |reason: String| ModelError::Tensor { file: file.clone(), tensor: t.hf_name.clone(), reason };
            let Some(prefix) = t.hf_name.strip_suffix(".weight").or_else(|| t.hf_name.strip_suffix(".bias"))
            else {
                return Err(err("unexpected tensor name".into()));
            };
            let is_bias = t.hf_name.ends_with(".bias");
            let ty = t.tensor.info.ggml_type;
            match (shape.as_slice(), is_bias) {
                ([n], true) => w.insert_bias(prefix, &t.to_f32()?[..*n]),
                ([n], false) => w.insert_f32(&t.hf_name, vec![*n], &t.to_f32()?),
                ([n, k], false) => {
                    let quantized = matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0);
                    if quantized {
                        let data = t.data_in_hf_order()?;
                        let q = QuantMatrix::from_ggml(ty, *n, *k, &data).map_err(err)?;
                        w.insert_quant_linear(prefix, q);
                    } else {
                        // f16 stays f16; other float types (and dequantized k-quants) are f32.
                        let dtype = if ty == GgmlType::F16 { DType::F16 } else { DType::F32 };
                        w.insert_dense_linear(prefix, *n, *k, &t.to_f32()?, dtype);
                    }
                }
                _ => return Err(err(format!("unexpected shape {shape:?} for {ty}"))),
            }
        }
        Ok(w)
    }
}

/// Stacks row-major tensors `[n_i, c]` into `[sum n_i, c]`.
fn concat_rows(parts: &[HostParam]) -> HostParam {
    let rows: usize = parts.iter().map(|p| p.shape[0]).sum();
    let mut shape = parts[0].shape.clone();
    shape[0] = rows;
    let bytes = parts.iter().flat_map(|p| p.bytes.iter().copied()).collect();
    HostParam { dtype: parts[0].dtype, shape, bytes }
}

/// An affine-quantized `[rows, cols]` matrix in the MLX layout.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantMatrix {
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// Bits per code (4 or 8).
    pub bits: u32,
    /// Codes per scale/bias.
    pub group_size: u32,
    /// Row-major words, `cols * bits / 32` per row.
    pub words: Vec<u32>,
    /// `[rows, cols / group_size]`.
    pub scales: Vec<f32>,
    /// `[rows, cols / group_size]`.
    pub biases: Vec<f32>,
}

impl QuantMatrix {
    /// Repacks ggml Q4_0 / Q4_1 / Q8_0 blocks (32 values each, rows in order) without loss.
    pub fn from_ggml(ty: GgmlType, rows: usize, cols: usize, data: &[u8]) -> Result<QuantMatrix, String> {
        let (bits, block_bytes) = match ty {
            GgmlType::Q4_0 => (4, 18),
            GgmlType::Q4_1 => (4, 20),
            GgmlType::Q8_0 => (8, 34),
            other => return Err(format!("{other} is not an affine 32-block type")),
        };
        if !cols.is_multiple_of(32) {
            return Err(format!("row length {cols} is not a multiple of 32"));
        }
        let blocks = rows * cols / 32;
        if data.len() != blocks * block_bytes {
            let want = blocks * block_bytes;
            return Err(format!("{} bytes, expected {want} ({blocks} blocks of {block_bytes})", data.len()));
        }
        let per_word = 32 / bits as usize;
        let mut m = QuantMatrix {
            rows,
            cols,
            bits,
            group_size: 32,
            words: Vec::with_capacity(rows * cols / per_word),
            scales: Vec::with_capacity(blocks),
            biases: Vec::with_capacity(blocks),
        };
        let f16 = |b: &[u8], at: usize| half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32();
        let mut codes = [0u8; 32];
        for block in data.chunks_exact(block_bytes) {
            let (scale, bias) = match ty {
                GgmlType::Q4_0 => {
                    split_nibbles(&block[2..18], &mut codes);
                    (f16(block, 0), -8.0 * f16(block, 0))
                }
                GgmlType::Q4_1 => {
                    split_nibbles(&block[4..20], &mut codes);
                    (f16(block, 0), f16(block, 2))
                }
                _ => {
                    for (c, &q) in codes.iter_mut().zip(&block[2..34]) {
                        *c = (q as i8 as i16 + 128) as u8;
                    }
                    (f16(block, 0), -128.0 * f16(block, 0))
                }
            };
            m.scales.push(scale);
            m.biases.push(bias);
            for chunk in codes.chunks_exact(per_word) {
                let word = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |w, (i, &c)| w | (u32::from(c) << (bits as usize * i)));
                m.words.push(word);
            }
        }
        Ok(m)
    }
}

/// ggml 4-bit blocks keep value `j` in the low nibble of byte `j` and value `j + 16` in its
/// high nibble.
fn split_nibbles(qs: &[u8], codes: &mut [u8; 32]) {
    for (j, &q) in qs.iter().enumerate() {
        codes[j] = q & 0x0F;
        codes[j + 16] = q >> 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(scales: Vec<f32>, biases: Vec<f32>) -> QuantMatrix {
        QuantMatrix {
            rows: 2,
            cols: 32,
            bits: 4,
            group_size: 32,
            words: vec![0x7654_3210; 8],
            scales,
            biases,
        }
    }

    /// f16 scales and biases only when every value survives the conversion; the merge keeps
    /// layers with different scale dtypes apart.
    #[test]
    fn scales_are_f16_only_when_exact_and_merges_need_one_dtype() {
        let mut w = WeightIndex::default();
        w.insert_quant_linear("a", matrix(vec![0.125, 0.0625], vec![-1.0, -0.5]));
        w.insert_quant_linear("b", matrix(vec![0.1, 0.0625], vec![-1.0, -0.5]));
        let scales = |w: &WeightIndex, name: &str| match w.linear(name) {
            Ok(Linear::Quant { scales, .. }) => Some(scales),
            _ => None,
        };
        assert_eq!(scales(&w, "a"), Some(DType::F16));
        assert_eq!(scales(&w, "b"), Some(DType::F32), "0.1 is not an f16 value");
        assert_eq!(w.params["a.scales"].bytes.len(), 2 * 2);
        assert_eq!(w.params["b.biases"].to_f32(), Some(vec![-1.0, -0.5]));
        assert!(!w.merge_linears(&["a", "b"], "ab"), "mixed scale dtypes stay separate");
        w.insert_quant_linear("c", matrix(vec![0.25, 0.5], vec![-2.0, -4.0]));
        assert!(w.merge_linears(&["a", "c"], "ac"));
        assert_eq!(w.params["ac.scales"].to_f32(), Some(vec![0.125, 0.0625, 0.25, 0.5]));
    }
}
