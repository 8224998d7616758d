//! GGUF reader (versions 2 and 3), mirroring ggml's `gguf.cpp` and the GGUF specification in
//! ggml's `docs/gguf.md`: header, metadata of every value type, tensor table, alignment, and
//! tensor data borrowed from a memory map.
//!
//! ```no_run
//! use tessera_models::gguf::{GgufFile, dequantize};
//! let gguf = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf".as_ref())?;
//! let config = gguf.llama_config()?;
//! let embed = gguf.tensor("token_embd.weight").expect("present");
//! let values: Vec<f32> = dequantize(&embed)?;
//! # Ok::<(), tessera_models::gguf::GgufError>(())
//! ```

mod dequantize;
mod error;
mod ggml_type;
mod hf_names;
mod hf_tensors;
mod llama_config;
mod metadata;
mod parse;

use std::collections::HashMap;
use std::path::Path;

pub use dequantize::{dequantize, dequantize_blocks};
pub use error::{GgufError, Problem};
pub use ggml_type::GgmlType;
pub use hf_names::{QkPermutation, hf_tensor_name, permuted_row_order, unpermute_rows};
pub use hf_tensors::HfTensor;
pub use metadata::{MetadataEntry, MetadataType, MetadataValue};
pub use parse::DEFAULT_ALIGNMENT;

use crate::file_bytes::FileBytes;
use parse::{ErrorContext, parse_layout};

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The GGUF tensor name (`"blk.0.attn_q.weight"`).
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the fastest-moving (a row's length).
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset relative to the start of the data section, as stored.
    pub offset: u64,
    /// Byte length of the data.
    pub byte_len: u64,
    /// Absolute offset of the data in the file.
    pub data_start: u64,
    /// Absolute offset of this entry in the tensor table.
    pub table_offset: u64,
}

impl TensorInfo {
    /// The shape in Hugging Face / row-major order (ggml's dims reversed).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Elements per row (`dims[0]`), 1 for a scalar.
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows: every dimension but the fastest multiplied together.
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }

    /// Bytes per row (whole quantization blocks).
    pub fn row_bytes(&self) -> u64 {
        self.row_len() / self.ggml_type.block_size() * self.ggml_type.type_size()
    }
}

/// A tensor's table entry and its bytes, borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub struct GgufTensor<'a> {
    /// The table entry.
    pub info: &'a TensorInfo,
    /// The raw (possibly quantized) data, exactly `info.byte_len` bytes.
    pub data: &'a [u8],
    /// The file's display name, for error messages.
    pub file: &'a str,
}

/// An open GGUF file: metadata and tensor table parsed and validated, data mapped.
#[derive(Debug)]
pub struct GgufFile {
    file: String,
    bytes: FileBytes,
    version: u32,
    metadata: Vec<MetadataEntry>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl GgufFile {
    /// Maps and parses `path`.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let file = path.display().to_string();
        let bytes = FileBytes::map(path).map_err(|source| GgufError::Io { file: file.clone(), source })?;
        Self::from_file_bytes(file, bytes)
    }

    /// Parses a GGUF held in memory; `name` is used in error messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::from_file_bytes(name.to_string(), FileBytes::Owned(bytes))
    }

    fn from_file_bytes(file: String, bytes: FileBytes) -> Result<Self, GgufError> {
        let layout = parse_layout(&bytes, &ErrorContext { file: &file })?;
        let metadata_index = layout.metadata.iter().enumerate().map(|(i, e)| (e.key.clone(), i)).collect();
        let tensor_index = layout.tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Ok(GgufFile {
            file,
            bytes,
            version: layout.version,
            metadata: layout.metadata,
            metadata_index,
            tensors: layout.tensors,
            tensor_index,
            alignment: layout.alignment,
            data_offset: layout.data_offset,
        })
    }

    /// The file's path as given (used in every error).
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata entries in file order.
    pub fn metadata(&self) -> &[MetadataEntry] {
        &self.metadata
    }

    /// The metadata entry for `key`.
    pub fn metadata_entry(&self, key: &str) -> Option<&MetadataEntry> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i])
    }

    /// The metadata value for `key`.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.metadata_entry(key).map(|e| &e.value)
    }

    /// All tensor table entries in file order.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name` (GGUF naming), with its data.
    pub fn tensor(&self, name: &str) -> Option<GgufTensor<'_>> {
        self.tensor_index.get(name).map(|&i| self.tensor_at(i))
    }

    /// Every tensor with its data, in file order.
    pub fn tensors(&self) -> impl Iterator<Item = GgufTensor<'_>> {
        (0..self.tensors.len()).map(|i| self.tensor_at(i))
    }

    fn tensor_at(&self, index: usize) -> GgufTensor<'_> {
        let info = &self.tensors[index];
        // Extents were validated against the file length when the table was parsed.
        let start = info.data_start as usize;
        let data = &self.bytes[start..start + info.byte_len as usize];
        GgufTensor { info, data, file: &self.file }
    }

    /// An error about metadata `key` (naming the file, the key and its offset).
    pub fn metadata_error(&self, key: &str, problem: Problem) -> GgufError {
        let offset = self.metadata_entry(key).map_or(0, |e| e.offset);
        ErrorContext { file: &self.file }.error(format!("metadata key {key:?}"), offset, problem)
    }

    /// An integer metadata value that fits `u64`; `Ok(None)` when absent.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let int = value.as_integer().and_then(|v| u64::try_from(v).ok());
        int.map(Some).ok_or_else(|| self.type_error(key, "a non-negative integer", value))
    }

    /// A numeric metadata value as `f64`; `Ok(None)` when absent.
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        value.as_f64().map(Some).ok_or_else(|| self.type_error(key, "a number", value))
    }

    /// A string metadata value; `Ok(None)` when absent.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        value.as_str().map(Some).ok_or_else(|| self.type_error(key, "a string", value))
    }

    /// A boolean metadata value; `Ok(None)` when absent.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        value.as_bool().map(Some).ok_or_else(|| self.type_error(key, "a bool", value))
    }

    /// An array of strings; `Ok(None)` when absent.
    pub fn get_str_array(&self, key: &str) -> Result<Option<Vec<&str>>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let strings = value.as_array().and_then(|items| items.iter().map(|v| v.as_str()).collect());
        strings.map(Some).ok_or_else(|| self.type_error(key, "an array of strings", value))
    }

    /// An array of integers; `Ok(None)` when absent.
    pub fn get_int_array(&self, key: &str) -> Result<Option<Vec<i64>>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let ints = value.as_array().and_then(|items| {
            items.iter().map(|v| v.as_integer().and_then(|i| i64::try_from(i).ok())).collect()
        });
        ints.map(Some).ok_or_else(|| self.type_error(key, "an array of integers", value))
    }

    fn type_error(&self, key: &str, wanted: &str, value: &MetadataValue) -> GgufError {
        let problem = Problem::BadValue(format!("expected {wanted}, found {:?}", value.value_type()));
        self.metadata_error(key, problem)
    }
}
