//! BERT weights as the encoder graph's parameters: every tensor the graph reads, by its
//! Hugging Face name, checked against config.json's shapes and converted to f32. Linear weights
//! (`[out, in]` in the checkpoint) are stored transposed as `{prefix}.weight.T` (`[in, out]`) so
//! the graph multiplies without a permute. Checkpoints saved from `BertForMaskedLM` and the like
//! prefix names with `bert.`, and old TensorFlow conversions name LayerNorm `gamma`/`beta`:
//! both are accepted.

use crate::ModelError;
use crate::config::BertConfig;
use crate::llama::weights::HostParam;
use crate::safetensors::SafetensorsFile;
use std::collections::HashMap;
use tessera_ir::DType;

/// One tensor the encoder reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Hugging Face name (without a `bert.` prefix).
    pub name: String,
    /// Shape in the checkpoint (`[out, in]` for linear weights).
    pub shape: Vec<usize>,
    /// A linear layer's weight, stored transposed.
    pub linear: bool,
}

/// Every tensor of the encoder for `cfg`, in checkpoint order.
pub fn tensor_specs(cfg: &BertConfig) -> Vec<TensorSpec> {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut specs = Vec::new();
    let mut plain = |name: String, shape: Vec<usize>| specs.push(TensorSpec { name, shape, linear: false });
    plain("embeddings.word_embeddings.weight".into(), vec![cfg.vocab_size, h]);
    plain("embeddings.position_embeddings.weight".into(), vec![cfg.max_position_embeddings, h]);
    if cfg.type_vocab_size > 0 {
        plain("embeddings.token_type_embeddings.weight".into(), vec![cfg.type_vocab_size, h]);
    }
    plain("embeddings.LayerNorm.weight".into(), vec![h]);
    plain("embeddings.LayerNorm.bias".into(), vec![h]);
    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        let linears = [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", i, h),
            ("output.dense", h, i),
        ];
        for (name, out, inp) in linears {
            specs.push(TensorSpec {
                name: format!("{p}.{name}.weight"),
                shape: vec![out, inp],
                linear: true,
            });
            specs.push(TensorSpec { name: format!("{p}.{name}.bias"), shape: vec![out], linear: false });
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            specs.push(TensorSpec { name: format!("{p}.{norm}.weight"), shape: vec![h], linear: false });
            specs.push(TensorSpec { name: format!("{p}.{norm}.bias"), shape: vec![h], linear: false });
        }
    }
    specs
}

/// Every parameter of a BERT encoder by graph name, as f32 bytes ready to upload.
#[derive(Default)]
pub struct BertWeights {
    /// Parameter data by graph name.
    pub params: HashMap<String, HostParam>,
}

impl BertWeights {
    /// Fills every tensor of [`tensor_specs`] with `values(spec)` (checkpoint layout, row-major),
    /// checking each length.
    pub fn from_fn(
        cfg: &BertConfig,
        mut values: impl FnMut(&TensorSpec) -> Result<Vec<f32>, ModelError>,
    ) -> Result<BertWeights, ModelError> {
        let mut w = BertWeights::default();
        for spec in tensor_specs(cfg) {
            let v = values(&spec)?;
            let want: usize = spec.shape.iter().product();
            if v.len() != want {
                return Err(ModelError::Tensor {
                    file: "<weights>".into(),
                    tensor: spec.name,
                    reason: format!("{} values, expected {want} for shape {:?}", v.len(), spec.shape),
                });
            }
            w.insert(&spec, &v);
        }
        Ok(w)
    }

    /// Reads every tensor the encoder needs from a safetensors checkpoint.
    pub fn from_safetensors(file: &SafetensorsFile, cfg: &BertConfig) -> Result<BertWeights, ModelError> {
        BertWeights::from_fn(cfg, |spec| {
            let err = |reason: String| ModelError::Tensor {
                file: file.file_name().to_string(),
                tensor: spec.name.clone(),
                reason,
            };
            let name = checkpoint_name(file, &spec.name).ok_or_else(|| err("missing".into()))?;
            let view = file.tensor(&name).ok_or_else(|| err("missing".into()))?;
            if view.shape != spec.shape.as_slice() {
                return Err(err(format!("shape {:?}, config.json implies {:?}", view.shape, spec.shape)));
            }
            Ok(file.tensor_f32(&name)?)
        })
    }

    /// Total bytes of parameter data.
    pub fn bytes(&self) -> usize {
        self.params.values().map(|p| p.bytes.len()).sum()
    }

    fn insert(&mut self, spec: &TensorSpec, values: &[f32]) {
        let (name, shape, values) = match spec.shape.as_slice() {
            [n, k] if spec.linear => {
                let (n, k) = (*n, *k);
                let mut t = vec![0f32; n * k];
                for r in 0..n {
                    for c in 0..k {
                        t[c * n + r] = values[r * k + c];
                    }
                }
                (format!("{}.T", spec.name), vec![k, n], t)
            }
            _ => (spec.name.clone(), spec.shape.clone(), values.to_vec()),
        };
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.params.insert(name, HostParam { dtype: DType::F32, shape, bytes });
    }
}

/// The name `name` has in `file`: as is, with a `bert.` prefix, or with LayerNorm's TensorFlow
/// names `gamma`/`beta`.
fn checkpoint_name(file: &SafetensorsFile, name: &str) -> Option<String> {
    let tf = name.contains("LayerNorm.").then(|| {
        name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
    });
    let bases = std::iter::once(name.to_string()).chain(tf);
    bases
        .flat_map(|base| [base.clone(), format!("bert.{base}")])
        .find(|candidate| file.tensor(candidate).is_some())
}
