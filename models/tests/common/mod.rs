//! Test support: a tiny GGUF writer (so reader tests build their own files), the GPU, and the path of the
//! real models in `$TESSERA_HOME`.
#![allow(dead_code)]

use std::path::PathBuf;

use tessera_models::gguf::MetadataValue;

/// One tensor to write: name, ggml dims (fastest first), ggml type id, raw data.
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
}

/// Builds GGUF bytes. Tensor data is laid out in order, each start aligned; dims are written as
/// given, whatever the data length, so tests can describe tensors the data does not hold.
pub struct GgufBuilder {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, MetadataValue)>,
    pub tensors: Vec<TensorSpec>,
}

impl GgufBuilder {
    pub fn new() -> Self {
        GgufBuilder { version: 3, alignment: 32, metadata: Vec::new(), tensors: Vec::new() }
    }

    pub fn kv(mut self, key: &str, value: MetadataValue) -> Self {
        self.metadata.push((key.to_string(), value));
        self
    }

    pub fn tensor(mut self, name: &str, dims: &[u64], type_id: u32, data: Vec<u8>) -> Self {
        self.tensors.push(TensorSpec { name: name.into(), dims: dims.to_vec(), type_id, data });
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            out.extend(value.value_type().id().to_le_bytes());
            write_value(&mut out, value);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            offsets.push(offset);
            offset = (offset + t.data.len() as u64).next_multiple_of(self.alignment);
        }
        for (t, offset) in self.tensors.iter().zip(&offsets) {
            write_string(&mut out, &t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.type_id.to_le_bytes());
            out.extend(offset.to_le_bytes());
        }
        if self.tensors.is_empty() {
            return out;
        }
        out.resize(out.len().next_multiple_of(self.alignment as usize), 0);
        let data_start = out.len();
        for (t, offset) in self.tensors.iter().zip(&offsets) {
            out.resize(data_start + *offset as usize, 0);
            out.extend(&t.data);
        }
        out
    }
}

pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

pub fn write_value(out: &mut Vec<u8>, value: &MetadataValue) {
    match value {
        MetadataValue::U8(v) => out.push(*v),
        MetadataValue::I8(v) => out.push(*v as u8),
        MetadataValue::U16(v) => out.extend(v.to_le_bytes()),
        MetadataValue::I16(v) => out.extend(v.to_le_bytes()),
        MetadataValue::U32(v) => out.extend(v.to_le_bytes()),
        MetadataValue::I32(v) => out.extend(v.to_le_bytes()),
        MetadataValue::F32(v) => out.extend(v.to_le_bytes()),
        MetadataValue::Bool(v) => out.push(u8::from(*v)),
        MetadataValue::String(s) => write_string(out, s),
        MetadataValue::Array { element_type, values } => {
            out.extend(element_type.id().to_le_bytes());
            out.extend((values.len() as u64).to_le_bytes());
            for v in values {
                write_value(out, v);
            }
        }
        MetadataValue::U64(v) => out.extend(v.to_le_bytes()),
        MetadataValue::I64(v) => out.extend(v.to_le_bytes()),
        MetadataValue::F64(v) => out.extend(v.to_le_bytes()),
    }
}

pub fn string(s: &str) -> MetadataValue {
    MetadataValue::String(s.to_string())
}

pub fn string_array(items: &[&str]) -> MetadataValue {
    MetadataValue::Array {
        element_type: tessera_models::gguf::MetadataType::String,
        values: items.iter().map(|s| string(s)).collect(),
    }
}

/// A real model file under `$TESSERA_HOME/models/`, or `None` (with a notice) when it is not
/// there. On CI (`CI` set) a missing model is a failure, never a silent skip.
pub fn real_model(relative: &str) -> Option<PathBuf> {
    let path = tessera_models::tessera_home().join("models").join(relative);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} is missing (CI is set, so this is a failure, not a skip)", path.display());
    }
    eprintln!("skipping: {} is not present", path.display());
    None
}

pub const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
pub const MINILM_DIR: &str = "all-MiniLM-L6-v2";

/// The test GPU. Without an adapter: panics when `CI` is set (a failure, never a silent skip),
/// else returns None so a developer without a driver can run the CPU tests.
pub fn gpu() -> Option<tessera_runtime::Gpu> {
    match tessera_runtime::Gpu::from_env() {
        Ok(g) => Some(g),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter under CI: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: no GPU adapter ({e})");
            None
        }
    }
}
