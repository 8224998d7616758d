//! Writing safetensors: the layout the reference writer produces (header padded with spaces to
//! a multiple of 8 bytes, tensors laid out back to back in the order given).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::{SafetensorsError, TensorView};

/// The bytes of a safetensors file holding `tensors` (in that order) and `metadata`.
/// Fails when a tensor's data length does not match its shape and dtype.
pub fn serialize_safetensors(
    tensors: &[(&str, TensorView<'_>)],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, SafetensorsError> {
    let mut header = Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), json!(metadata));
    }
    let mut offset = 0usize;
    for (name, view) in tensors {
        let expected = view.shape.iter().try_fold(view.dtype.size(), |acc, &d| acc.checked_mul(d));
        if expected != Some(view.data.len()) {
            return Err(SafetensorsError::Malformed {
                file: "<writing>".into(),
                subject: format!("tensor {name:?}"),
                offset: offset as u64,
                problem: format!(
                    "{} data bytes for shape {:?} of {:?}",
                    view.data.len(),
                    view.shape,
                    view.dtype
                ),
            });
        }
        let end = offset + view.data.len();
        let entry = json!({"dtype": view.dtype, "shape": view.shape, "data_offsets": [offset, end]});
        if header.insert((*name).to_string(), entry).is_some() {
            return Err(SafetensorsError::Malformed {
                file: "<writing>".into(),
                subject: format!("tensor {name:?}"),
                offset: offset as u64,
                problem: "name given twice".into(),
            });
        }
        offset = end;
    }
    let mut header_bytes = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| SafetensorsError::Io { file: "<writing>".into(), source: std::io::Error::other(e) })?;
    header_bytes.resize(header_bytes.len().next_multiple_of(8), b' ');

    let mut out = Vec::with_capacity(8 + header_bytes.len() + offset);
    out.extend_from_slice(&(header_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&header_bytes);
    for (_, view) in tensors {
        out.extend_from_slice(view.data);
    }
    Ok(out)
}

/// Writes `tensors` and `metadata` to `path` as safetensors (what `tessera convert` emits).
pub fn write_safetensors(
    path: &Path,
    tensors: &[(&str, TensorView<'_>)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), SafetensorsError> {
    let bytes = serialize_safetensors(tensors, metadata).map_err(|e| match e {
        SafetensorsError::Malformed { subject, offset, problem, .. } => {
            SafetensorsError::Malformed { file: path.display().to_string(), subject, offset, problem }
        }
        other => other,
    })?;
    let io_error = |source| SafetensorsError::Io { file: path.display().to_string(), source };
    let mut file = std::fs::File::create(path).map_err(io_error)?;
    file.write_all(&bytes).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}
