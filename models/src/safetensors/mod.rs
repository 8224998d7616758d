//! safetensors reader and writer, following the format of Hugging Face's `safetensors` crate:
//! 8-byte little-endian header length, a JSON header mapping names to
//! `{dtype, shape, data_offsets}` (plus an optional `__metadata__` string map), then the data.
//! Files are memory-mapped and tensors are borrowed slices. The checks mirror the reference
//! reader: header within the file and at most 100 MB, offsets contiguous and covering the data,
//! byte lengths matching shape × dtype.

mod sharded;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

pub use sharded::ShardedSafetensors;
pub use writer::{serialize_safetensors, write_safetensors};

use crate::file_bytes::FileBytes;

/// The reference reader's cap on the JSON header size.
const MAX_HEADER_LEN: u64 = 100_000_000;

/// An error reading or writing safetensors.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file's path.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file's bytes are not valid safetensors, or a tensor is not what was asked for.
    #[error("{file}: {subject}: {problem} (at byte offset {offset})")]
    Malformed {
        /// The file's path.
        file: String,
        /// `header`, `tensor "model.embed_tokens.weight"`, `weight_map`.
        subject: String,
        /// Absolute byte offset in the file.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
}

/// Element types of the safetensors format (names as in the JSON header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms, non_camel_case_types)]
pub enum Dtype {
    /// Boolean, one byte.
    BOOL,
    /// Unsigned 8-bit.
    U8,
    /// Signed 8-bit.
    I8,
    /// 8-bit float, 4 exponent bits.
    F8_E4M3,
    /// 8-bit float, 5 exponent bits.
    F8_E5M2,
    /// Signed 16-bit.
    I16,
    /// Unsigned 16-bit.
    U16,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 32-bit.
    I32,
    /// Unsigned 32-bit.
    U32,
    /// 32-bit float.
    F32,
    /// Signed 64-bit.
    I64,
    /// Unsigned 64-bit.
    U64,
    /// 64-bit float.
    F64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::BOOL | Dtype::U8 | Dtype::I8 | Dtype::F8_E4M3 | Dtype::F8_E5M2 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }
}

/// A tensor: dtype, shape and little-endian bytes (borrowed from a mapped file when read).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorView<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Shape, row-major.
    pub shape: &'a [usize],
    /// Raw little-endian data, `shape.product() * dtype.size()` bytes.
    pub data: &'a [u8],
}

impl TensorView<'_> {
    /// Number of elements.
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values as f32, for F32, F16 and BF16 tensors; `None` for other dtypes.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match self.dtype {
            Dtype::F32 => Some(f32_from_le_bytes(self.data)),
            Dtype::F16 => Some(f16_to_f32(self.data)),
            Dtype::BF16 => Some(bf16_to_f32(self.data)),
            _ => None,
        }
    }
}

/// Little-endian f32 bytes to values (a trailing partial element is ignored).
pub fn f32_from_le_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Little-endian IEEE half bytes to f32.
pub fn f16_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
}

/// Little-endian bfloat16 bytes to f32 (exact: bf16 is the top half of an f32).
pub fn bf16_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
}

/// One header entry, as in the JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderEntry {
    dtype: Dtype,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

#[derive(Debug)]
struct TensorEntry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: usize,
    end: usize,
}

/// One safetensors file, header parsed and validated, data mapped.
#[derive(Debug)]
pub struct SafetensorsFile {
    file: String,
    bytes: FileBytes,
    tensors: Vec<TensorEntry>,
    index: HashMap<String, usize>,
    metadata: BTreeMap<String, String>,
    data_start: u64,
}

impl SafetensorsFile {
    /// Maps and parses `path`.
    pub fn open(path: &Path) -> Result<Self, SafetensorsError> {
        let file = path.display().to_string();
        let bytes =
            FileBytes::map(path).map_err(|source| SafetensorsError::Io { file: file.clone(), source })?;
        Self::parse(file, bytes)
    }

    /// Parses safetensors held in memory; `name` is used in error messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, SafetensorsError> {
        Self::parse(name.to_string(), FileBytes::Owned(bytes))
    }

    fn parse(file: String, bytes: FileBytes) -> Result<Self, SafetensorsError> {
        let error = |subject: &str, offset: u64, problem: String| SafetensorsError::Malformed {
            file: file.clone(),
            subject: subject.to_string(),
            offset,
            problem,
        };
        let file_len = bytes.len() as u64;
        let Some(len_bytes) = bytes.get(..8) else {
            return Err(error(
                "header",
                0,
                format!("file of {file_len} bytes is shorter than the 8-byte header length"),
            ));
        };
        let mut len_array = [0u8; 8];
        len_array.copy_from_slice(len_bytes);
        let header_len = u64::from_le_bytes(len_array);
        if header_len > MAX_HEADER_LEN {
            return Err(error(
                "header",
                0,
                format!("header length {header_len} exceeds the {MAX_HEADER_LEN}-byte limit"),
            ));
        }
        let data_start = 8 + header_len;
        if data_start > file_len {
            return Err(error(
                "header",
                8,
                format!("header of {header_len} bytes runs past the end of the file ({file_len} bytes)"),
            ));
        }
        let header_bytes = &bytes[8..data_start as usize];
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(header_bytes).map_err(|e| {
                error("header", 8 + json_error_offset(header_bytes, &e), format!("invalid JSON header: {e}"))
            })?;

        let key_offset = |name: &str| {
            let quoted = serde_json::to_string(name).unwrap_or_default();
            let text = String::from_utf8_lossy(header_bytes);
            8 + text.find(&quoted).unwrap_or(0) as u64
        };
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(header.len());
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = serde_json::from_value(value).map_err(|e| {
                    error(
                        "header key \"__metadata__\"",
                        key_offset(&name),
                        format!("must map strings to strings: {e}"),
                    )
                })?;
                continue;
            }
            let subject = format!("tensor {name:?}");
            let entry: HeaderEntry = serde_json::from_value(value)
                .map_err(|e| error(&subject, key_offset(&name), format!("invalid header entry: {e}")))?;
            let (begin, end) = entry.data_offsets;
            let n_bytes =
                entry.shape.iter().try_fold(entry.dtype.size(), |acc, &d| acc.checked_mul(d)).ok_or_else(
                    || error(&subject, key_offset(&name), format!("shape {:?} overflows", entry.shape)),
                )?;
            let start = data_start.checked_add(begin);
            let stop = data_start.checked_add(end);
            let (Some(start), Some(stop)) = (start, stop) else {
                return Err(error(&subject, key_offset(&name), "data offsets overflow".into()));
            };
            if begin > end || stop > file_len {
                return Err(error(
                    &subject,
                    start.min(file_len),
                    format!(
                        "data_offsets [{begin}, {end}] do not fit the {} data bytes",
                        file_len - data_start
                    ),
                ));
            }
            if (end - begin) != n_bytes as u64 {
                return Err(error(
                    &subject,
                    start,
                    format!(
                        "data_offsets span {} bytes but shape {:?} of {:?} needs {n_bytes}",
                        end - begin,
                        entry.shape,
                        entry.dtype
                    ),
                ));
            }
            // start/stop <= file_len, which is a usize.
            tensors.push(TensorEntry {
                name,
                dtype: entry.dtype,
                shape: entry.shape,
                start: start as usize,
                end: stop as usize,
            });
        }

        // Like the reference reader: tensors tile the data section with no holes or overlaps.
        tensors.sort_by(|a, b| (a.start, a.end).cmp(&(b.start, b.end)).then_with(|| a.name.cmp(&b.name)));
        let mut expected = data_start as usize;
        for t in &tensors {
            if t.start != expected {
                return Err(error(
                    &format!("tensor {:?}", t.name),
                    t.start as u64,
                    format!(
                        "data starts at {} but the previous tensor ends at {expected} (holes and overlaps are invalid)",
                        t.start
                    ),
                ));
            }
            expected = t.end;
        }
        if expected as u64 != file_len {
            return Err(error(
                "data section",
                expected as u64,
                format!(
                    "{} bytes after the last tensor are not described by the header",
                    file_len - expected as u64
                ),
            ));
        }
        let index = tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Ok(SafetensorsFile { file, bytes, tensors, index, metadata, data_start })
    }

    /// The file's path as given.
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// `__metadata__` (empty when absent).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Absolute offset of the data section (8 + header length).
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Tensor names in data order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the file holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        let t = &self.tensors[*self.index.get(name)?];
        Some(TensorView { dtype: t.dtype, shape: &t.shape, data: &self.bytes[t.start..t.end] })
    }

    /// The tensor named `name` as f32 (F32/F16/BF16), or an error naming the file, tensor and
    /// offset when it is absent or of another dtype.
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>, SafetensorsError> {
        let error = |offset: u64, problem: String| SafetensorsError::Malformed {
            file: self.file.clone(),
            subject: format!("tensor {name:?}"),
            offset,
            problem,
        };
        let view = self.tensor(name).ok_or_else(|| error(0, "no such tensor".into()))?;
        let offset = self.index.get(name).map_or(0, |&i| self.tensors[i].start as u64);
        view.to_f32().ok_or_else(|| error(offset, format!("dtype {:?} does not convert to f32", view.dtype)))
    }
}

/// Byte offset within `text` of serde_json's line/column error position.
fn json_error_offset(text: &[u8], error: &serde_json::Error) -> u64 {
    let mut line = 1;
    for (i, &b) in text.iter().enumerate() {
        if line == error.line() {
            return (i + error.column().saturating_sub(1)).min(text.len()) as u64;
        }
        if b == b'\n' {
            line += 1;
        }
    }
    text.len() as u64
}
