//! Parsing the GGUF layout (ggml's `gguf.cpp` is the reference): header, metadata, tensor table,
//! alignment padding, data section. Every count read from the file is bounded by the bytes left
//! before anything is allocated, and every size is computed with checked arithmetic.

use std::collections::HashSet;

use super::TensorInfo;
use super::error::{GgufError, Problem};
use super::ggml_type::GgmlType;
use super::metadata::{MetadataEntry, MetadataType, MetadataValue};

/// `general.alignment` when the file does not set it.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Arrays of arrays are legal; this bounds recursion so a hostile file cannot exhaust the stack.
const MAX_ARRAY_NESTING: usize = 8;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Up-front reservation cap: counts are already bounded by the bytes left, but a parsed item
/// takes more memory than its smallest encoding, so vectors grow as items actually parse.
const MAX_RESERVE: u64 = 1 << 16;

fn reserve(count: u64) -> usize {
    count.min(MAX_RESERVE) as usize
}

/// A problem at an absolute byte offset, before the caller says what was being read.
pub(crate) struct Fault {
    offset: u64,
    problem: Problem,
}

/// A bounds-checked little-endian reader over the whole file.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos as u64
    }

    pub(crate) fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn fault(&self, problem: Problem) -> Fault {
        Fault { offset: self.position(), problem }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Fault> {
        if n > self.remaining() {
            return Err(self.fault(Problem::Truncated { needed: n, available: self.remaining() }));
        }
        let start = self.pos;
        // n <= remaining, which fits in usize.
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fault> {
        let slice = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Fault> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Fault> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Fault> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Fault> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32, Fault> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, Fault> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A count of items each at least `min_len` bytes long, checked against the bytes left.
    fn count(&mut self, what: &'static str, min_len: u64) -> Result<u64, Fault> {
        let at = self.position();
        let count = self.u64()?;
        let available = self.remaining();
        if count.checked_mul(min_len).is_none_or(|needed| needed > available) {
            return Err(Fault { offset: at, problem: Problem::AbsurdCount { what, count, available } });
        }
        Ok(count)
    }

    pub(crate) fn string(&mut self) -> Result<String, Fault> {
        let at = self.position();
        let len = self.count("string length", 1)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Fault { offset: at, problem: Problem::InvalidUtf8 })
    }

    fn value(&mut self, ty: MetadataType, depth: usize) -> Result<MetadataValue, Fault> {
        Ok(match ty {
            MetadataType::U8 => MetadataValue::U8(self.u8()?),
            MetadataType::I8 => MetadataValue::I8(self.u8()? as i8),
            MetadataType::U16 => MetadataValue::U16(self.u16()?),
            MetadataType::I16 => MetadataValue::I16(self.u16()? as i16),
            MetadataType::U32 => MetadataValue::U32(self.u32()?),
            MetadataType::I32 => MetadataValue::I32(self.u32()? as i32),
            MetadataType::F32 => MetadataValue::F32(self.f32()?),
            MetadataType::U64 => MetadataValue::U64(self.u64()?),
            MetadataType::I64 => MetadataValue::I64(self.u64()? as i64),
            MetadataType::F64 => MetadataValue::F64(self.f64()?),
            MetadataType::Bool => {
                let at = self.position();
                match self.u8()? {
                    0 => MetadataValue::Bool(false),
                    1 => MetadataValue::Bool(true),
                    other => {
                        return Err(Fault {
                            offset: at,
                            problem: Problem::BadValue(format!("bool byte {other} is neither 0 nor 1")),
                        });
                    }
                }
            }
            MetadataType::String => MetadataValue::String(self.string()?),
            MetadataType::Array => {
                if depth >= MAX_ARRAY_NESTING {
                    return Err(self.fault(Problem::NestingTooDeep(MAX_ARRAY_NESTING)));
                }
                let element_type = self.value_type()?;
                let count = self.count("array length", element_type.min_encoded_len())?;
                let mut values = Vec::with_capacity(reserve(count));
                for _ in 0..count {
                    values.push(self.value(element_type, depth + 1)?);
                }
                MetadataValue::Array { element_type, values }
            }
        })
    }

    fn value_type(&mut self) -> Result<MetadataType, Fault> {
        let at = self.position();
        let id = self.u32()?;
        MetadataType::from_id(id).ok_or(Fault { offset: at, problem: Problem::UnknownValueType(id) })
    }
}

/// What the header, metadata and tensor table say.
pub(crate) struct Layout {
    pub version: u32,
    pub metadata: Vec<MetadataEntry>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    pub data_offset: u64,
}

/// Builds errors that name the file.
pub(crate) struct ErrorContext<'a> {
    pub file: &'a str,
}

impl ErrorContext<'_> {
    pub(crate) fn error(&self, subject: impl Into<String>, offset: u64, problem: Problem) -> GgufError {
        GgufError::Malformed { file: self.file.to_string(), subject: subject.into(), offset, problem }
    }

    fn wrap_fault(&self, subject: impl Into<String>, fault: Fault) -> GgufError {
        self.error(subject, fault.offset, fault.problem)
    }
}

/// Parses everything but the tensor data, validating each tensor's extent against the file.
pub(crate) fn parse_layout(bytes: &[u8], ctx: &ErrorContext<'_>) -> Result<Layout, GgufError> {
    let mut cur = Cursor::new(bytes);
    let magic = cur.array::<4>().map_err(|f| ctx.wrap_fault("header", f))?;
    if &magic != b"GGUF" {
        return Err(ctx.error("header", 0, Problem::WrongMagic { found: magic.to_vec() }));
    }
    let version = cur.u32().map_err(|f| ctx.wrap_fault("header", f))?;
    if version != 2 && version != 3 {
        return Err(ctx.error("header", 4, Problem::UnsupportedVersion(version)));
    }
    // Minimum encoded sizes: a tensor entry is name length + n_dims + type + offset;
    // a metadata entry is key length + type + one byte of value.
    let tensor_count = cur.count("tensor count", 24).map_err(|f| ctx.wrap_fault("header", f))?;
    let kv_count = cur.count("metadata count", 13).map_err(|f| ctx.wrap_fault("header", f))?;

    let mut metadata = Vec::with_capacity(reserve(kv_count));
    let mut seen_keys = HashSet::new();
    for index in 0..kv_count {
        let entry_at = cur.position();
        let key = cur.string().map_err(|f| ctx.wrap_fault(format!("metadata entry #{index}"), f))?;
        let subject = format!("metadata key {key:?}");
        let offset = cur.position();
        let value =
            cur.value_type().and_then(|ty| cur.value(ty, 0)).map_err(|f| ctx.wrap_fault(&subject, f))?;
        if !seen_keys.insert(key.clone()) {
            return Err(ctx.error(subject, entry_at, Problem::Duplicate(key)));
        }
        metadata.push(MetadataEntry { key, value, offset });
    }

    let alignment = match metadata.iter().find(|e| e.key == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(entry) => {
            let subject = "metadata key \"general.alignment\"";
            let value = match entry.value {
                MetadataValue::U32(v) => u64::from(v),
                _ => {
                    let problem = Problem::BadValue("alignment must be a u32".into());
                    return Err(ctx.error(subject, entry.offset, problem));
                }
            };
            if !value.is_power_of_two() {
                return Err(ctx.error(subject, entry.offset, Problem::BadAlignment(value)));
            }
            value
        }
    };

    let mut tensors = Vec::with_capacity(reserve(tensor_count));
    let mut seen_names = HashSet::new();
    for index in 0..tensor_count {
        let info = parse_tensor_info(&mut cur, index, ctx)?;
        if !seen_names.insert(info.name.clone()) {
            let subject = format!("tensor {:?}", info.name);
            return Err(ctx.error(subject, info.table_offset, Problem::Duplicate(info.name)));
        }
        tensors.push(info);
    }

    let table_end = cur.position();
    let data_offset = table_end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| ctx.error("data section", table_end, Problem::Overflow("data section offset")))?;
    let file_len = bytes.len() as u64;
    for info in &mut tensors {
        let subject = || format!("tensor {:?}", info.name);
        if info.offset % alignment != 0 {
            let problem = Problem::Misaligned { offset: info.offset, alignment };
            return Err(ctx.error(subject(), info.table_offset, problem));
        }
        let start = data_offset
            .checked_add(info.offset)
            .ok_or_else(|| ctx.error(subject(), info.table_offset, Problem::Overflow("data offset")))?;
        let end = start.checked_add(info.byte_len);
        if end.is_none_or(|end| end > file_len) {
            let problem = Problem::DataPastEnd { start, len: info.byte_len, file_len };
            return Err(ctx.error(subject(), start.min(file_len), problem));
        }
        info.data_start = start;
    }
    Ok(Layout { version, metadata, tensors, alignment, data_offset })
}

fn parse_tensor_info(
    cur: &mut Cursor<'_>,
    index: u64,
    ctx: &ErrorContext<'_>,
) -> Result<TensorInfo, GgufError> {
    let table_offset = cur.position();
    let name = cur.string().map_err(|f| ctx.wrap_fault(format!("tensor table entry #{index}"), f))?;
    let subject = format!("tensor {name:?}");
    let fail = |f: Fault| ctx.wrap_fault(&subject, f);

    let dims_at = cur.position();
    let n_dims = cur.u32().map_err(fail)?;
    if n_dims > MAX_DIMS {
        return Err(ctx.error(&subject, dims_at, Problem::TooManyDimensions(n_dims)));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(cur.u64().map_err(fail)?);
    }
    let type_at = cur.position();
    let type_id = cur.u32().map_err(fail)?;
    let ggml_type = GgmlType::from_id(type_id)
        .ok_or_else(|| ctx.error(&subject, type_at, Problem::UnknownTensorType(type_id)))?;
    let offset = cur.u64().map_err(fail)?;

    // Zero dimensions skipped: every partial product (rows, elements) must fit, even when a
    // zero makes the total 0.
    dims.iter()
        .filter(|&&d| d != 0)
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| ctx.error(&subject, dims_at, Problem::Overflow("element count")))?;
    let n_elements: u64 = dims.iter().product();
    let row = dims.first().copied().unwrap_or(1);
    let block = ggml_type.block_size();
    if row % block != 0 {
        let problem = Problem::PartialBlock { row, ty: ggml_type.name(), block };
        return Err(ctx.error(&subject, dims_at, problem));
    }
    let byte_len = (n_elements / block)
        .checked_mul(ggml_type.type_size())
        .ok_or_else(|| ctx.error(&subject, dims_at, Problem::Overflow("tensor byte size")))?;
    Ok(TensorInfo { name, dims, ggml_type, offset, byte_len, data_start: 0, table_offset })
}
