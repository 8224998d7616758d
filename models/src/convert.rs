//! `tessera convert`: a Llama-family model (GGUF file or Hugging Face float directory) written
//! as an mlx-community style directory: config.json with `quantization: {group_size, bits}`
//! (plus per-module overrides where a module differs, as mlx-lm reads them), model.safetensors
//! with quantized linears as MLX affine triples (`weight` u32 codes, `scales`, `biases` in f16),
//! tokenizer.json and tokenizer_config.json. GGUF Q4_0/Q4_1/Q8_0 blocks convert losslessly;
//! float matrices stay float unless `quantize` asks for affine codes.

use crate::ModelError;
use crate::config::LlamaConfig;
use crate::gguf::{GgmlType, GgufFile};
use crate::llama::weights::QuantMatrix;
use crate::safetensors::{Dtype, ShardedSafetensors, TensorView, write_safetensors};
use crate::tokenizer::ModelTokenizer;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// How to convert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Quantize float linear weights to this many bits (4 or 8); `None` keeps them float.
    pub quantize: Option<u32>,
    /// Codes per scale/bias when quantizing (32, 64 or 128).
    pub group_size: u32,
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvertReport {
    /// Tensors written.
    pub tensors: usize,
    /// Linear modules stored quantized.
    pub quantized_modules: usize,
    /// Bytes of model.safetensors.
    pub bytes: u64,
}

/// One output tensor.
struct OutTensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
    /// `(bits, group_size)` on the codes of a quantized linear.
    quant: Option<(u32, u32)>,
}

/// Converts `src` (a .gguf file or a float model directory) into the directory `out`.
pub fn convert(src: &Path, out: &Path, options: ConvertOptions) -> Result<ConvertReport, ModelError> {
    if let Some(bits) = options.quantize {
        if !matches!(bits, 4 | 8) || !matches!(options.group_size, 32 | 64 | 128) {
            return Err(ModelError::Invalid(format!(
                "--quantize q{bits} --group-size {}: expected q4 or q8 and a group size of 32, 64 or 128",
                options.group_size
            )));
        }
    }
    let (config, tokenizer, tensors) = if src.is_dir() {
        let config = LlamaConfig::from_file(&src.join("config.json"))?;
        let tokenizer = ModelTokenizer::from_dir(src)?;
        let st = ShardedSafetensors::open_dir(src)
            .map_err(|e| ModelError::Invalid(format!("{}: {e}", src.display())))?;
        (config, tokenizer, tensors_from_dir(&st, options)?)
    } else {
        let gguf = GgufFile::open(src)?;
        (gguf.llama_config()?, ModelTokenizer::from_gguf(&gguf)?, tensors_from_gguf(&gguf, options)?)
    };
    std::fs::create_dir_all(out).map_err(|e| ModelError::Invalid(format!("{}: {e}", out.display())))?;
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|t| (t.name.as_str(), TensorView { dtype: t.dtype, shape: &t.shape, data: &t.data }))
        .collect();
    let st_path = out.join("model.safetensors");
    let metadata = BTreeMap::from([("format".to_string(), "mlx".to_string())]);
    write_safetensors(&st_path, &views, &metadata).map_err(|e| ModelError::Invalid(e.to_string()))?;
    let quantized = quantized_modules(&tensors);
    write_config(out, &config, &quantized)?;
    tokenizer.save_to_dir(out)?;
    let bytes = std::fs::metadata(&st_path).map(|m| m.len()).unwrap_or(0);
    Ok(ConvertReport { tensors: tensors.len(), quantized_modules: quantized.len(), bytes })
}

fn tensors_from_gguf(gguf: &GgufFile, options: ConvertOptions) -> Result<Vec<OutTensor>, ModelError> {
    let mut out = Vec::new();
    for t in gguf.hf_tensors()? {
        let shape = t.shape();
        let ty = t.tensor.info.ggml_type;
        let prefix = t.hf_name.strip_suffix(".weight");
        match (shape.as_slice(), prefix) {
            ([n, k], Some(prefix)) if matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0) => {
                let data = t.data_in_hf_order()?;
                let q = QuantMatrix::from_ggml(ty, *n, *k, &data)
                    .map_err(|e| ModelError::Invalid(format!("{}: {}: {e}", gguf.file_name(), t.hf_name)))?;
                push_quant(&mut out, prefix, &q);
            }
            _ => push_float(&mut out, &t.hf_name, shape, &t.to_f32()?, options),
        }
    }
    Ok(out)
}

fn tensors_from_dir(st: &ShardedSafetensors, options: ConvertOptions) -> Result<Vec<OutTensor>, ModelError> {
    let mut out = Vec::new();
    for name in st.names() {
        let Some(view) = st.tensor(name) else { continue };
        match view.to_f32() {
            Some(values) => push_float(&mut out, name, view.shape.to_vec(), &values, options),
            // Already quantized (u32 codes): copied as they are.
            None => out.push(OutTensor {
                name: name.into(),
                dtype: view.dtype,
                shape: view.shape.to_vec(),
                data: view.data.to_vec(),
                quant: None,
            }),
        }
    }
    Ok(out)
}

/// A float tensor: a linear weight is quantized when asked, anything else stays f32.
fn push_float(
    out: &mut Vec<OutTensor>,
    name: &str,
    shape: Vec<usize>,
    values: &[f32],
    options: ConvertOptions,
) {
    let linear = shape.len() == 2 && name.ends_with(".weight");
    match (options.quantize, linear) {
        (Some(bits), true) if shape[1].is_multiple_of(options.group_size as usize) => {
            let q = quantize_affine(values, shape[0], shape[1], bits, options.group_size);
            push_quant(out, name.trim_end_matches(".weight"), &q);
        }
        _ => out.push(OutTensor {
            name: name.into(),
            dtype: Dtype::F32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            quant: None,
        }),
    }
}

fn push_quant(out: &mut Vec<OutTensor>, prefix: &str, q: &QuantMatrix) {
    let groups = q.cols / q.group_size as usize;
    let f16s = |v: &[f32]| v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect();
    out.push(OutTensor {
        name: format!("{prefix}.weight"),
        dtype: Dtype::U32,
        shape: vec![q.rows, q.cols * q.bits as usize / 32],
        data: q.words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        quant: Some((q.bits, q.group_size)),
    });
    for (part, values) in [("scales", &q.scales), ("biases", &q.biases)] {
        let name = format!("{prefix}.{part}");
        out.push(OutTensor {
            name,
            dtype: Dtype::F16,
            shape: vec![q.rows, groups],
            data: f16s(values),
            quant: None,
        });
    }
}

/// MLX's affine quantization: per group, `scale = (max - min) / (2^bits - 1)`, `bias = min`,
/// `code = round((w - bias) / scale)`.
pub fn quantize_affine(values: &[f32], rows: usize, cols: usize, bits: u32, group_size: u32) -> QuantMatrix {
    let g = group_size as usize;
    let levels = ((1u32 << bits) - 1) as f32;
    let per_word = 32 / bits as usize;
    let mut q = QuantMatrix {
        rows,
        cols,
        bits,
        group_size,
        words: Vec::new(),
        scales: Vec::new(),
        biases: Vec::new(),
    };
    let mut codes = Vec::with_capacity(cols);
    for row in values.chunks_exact(cols) {
        codes.clear();
        for group in row.chunks_exact(g) {
            let (lo, hi) =
                group.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
            let scale = if hi > lo { (hi - lo) / levels } else { 1.0 };
            q.scales.push(scale);
            q.biases.push(lo);
            codes.extend(group.iter().map(|&x| ((x - lo) / scale).round().clamp(0.0, levels) as u32));
        }
        for chunk in codes.chunks_exact(per_word) {
            q.words.push(chunk.iter().enumerate().fold(0u32, |w, (i, &c)| w | (c << (bits as usize * i))));
        }
    }
    q
}

/// `(bits, group_size)` of every quantized module.
fn quantized_modules(tensors: &[OutTensor]) -> HashMap<String, (u32, u32)> {
    tensors.iter().filter_map(|t| Some((t.name.strip_suffix(".weight")?.to_string(), t.quant?))).collect()
}

fn write_config(
    out: &Path,
    config: &LlamaConfig,
    quantized: &HashMap<String, (u32, u32)>,
) -> Result<(), ModelError> {
    let mut json = serde_json::to_value(config).map_err(|e| ModelError::Invalid(e.to_string()))?;
    if json.get("architectures").is_none() {
        json["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
    }
    // The most common (bits, group) is global; other modules get per-path overrides.
    let mut counts: HashMap<(u32, u32), usize> = HashMap::new();
    for v in quantized.values() {
        *counts.entry(*v).or_default() += 1;
    }
    if let Some((&(bits, group), _)) = counts.iter().max_by_key(|(k, c)| (**c, **k)) {
        let mut q = serde_json::json!({ "group_size": group, "bits": bits });
        let mut names: Vec<&String> = quantized.keys().collect();
        names.sort();
        for name in names {
            let (b, g) = quantized[name];
            if (b, g) != (bits, group) {
                q[name] = serde_json::json!({ "group_size": g, "bits": b });
            }
        }
        json["quantization"] = q;
    }
    let path = out.join("config.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| ModelError::Invalid(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| ModelError::Invalid(format!("{}: {e}", path.display())))
}
