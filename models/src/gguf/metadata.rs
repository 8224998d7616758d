//! GGUF metadata values: the thirteen value types of the GGUF specification, arrays included.

/// The type tag of a metadata value, as stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataType {
    /// `GGUF_TYPE_UINT8` (0).
    U8,
    /// `GGUF_TYPE_INT8` (1).
    I8,
    /// `GGUF_TYPE_UINT16` (2).
    U16,
    /// `GGUF_TYPE_INT16` (3).
    I16,
    /// `GGUF_TYPE_UINT32` (4).
    U32,
    /// `GGUF_TYPE_INT32` (5).
    I32,
    /// `GGUF_TYPE_FLOAT32` (6).
    F32,
    /// `GGUF_TYPE_BOOL` (7).
    Bool,
    /// `GGUF_TYPE_STRING` (8): u64 length, UTF-8 bytes.
    String,
    /// `GGUF_TYPE_ARRAY` (9): element type, u64 count, elements.
    Array,
    /// `GGUF_TYPE_UINT64` (10).
    U64,
    /// `GGUF_TYPE_INT64` (11).
    I64,
    /// `GGUF_TYPE_FLOAT64` (12).
    F64,
}

impl MetadataType {
    /// The type for a GGUF value type id.
    pub fn from_id(id: u32) -> Option<Self> {
        use MetadataType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The GGUF value type id.
    pub fn id(self) -> u32 {
        use MetadataType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// The fewest bytes one value of this type takes in the file; bounds untrusted counts.
    pub fn min_encoded_len(self) -> u64 {
        use MetadataType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// Unsigned 8-bit.
    U8(u8),
    /// Signed 8-bit.
    I8(i8),
    /// Unsigned 16-bit.
    U16(u16),
    /// Signed 16-bit.
    I16(i16),
    /// Unsigned 32-bit.
    U32(u32),
    /// Signed 32-bit.
    I32(i32),
    /// 32-bit float.
    F32(f32),
    /// Boolean (one byte, 0 or 1).
    Bool(bool),
    /// UTF-8 string.
    String(String),
    /// Homogeneous array; elements may themselves be arrays.
    Array {
        /// The declared element type.
        element_type: MetadataType,
        /// The elements.
        values: Vec<MetadataValue>,
    },
    /// Unsigned 64-bit.
    U64(u64),
    /// Signed 64-bit.
    I64(i64),
    /// 64-bit float.
    F64(f64),
}

impl MetadataValue {
    /// The value's type tag.
    pub fn value_type(&self) -> MetadataType {
        match self {
            MetadataValue::U8(_) => MetadataType::U8,
            MetadataValue::I8(_) => MetadataType::I8,
            MetadataValue::U16(_) => MetadataType::U16,
            MetadataValue::I16(_) => MetadataType::I16,
            MetadataValue::U32(_) => MetadataType::U32,
            MetadataValue::I32(_) => MetadataType::I32,
            MetadataValue::F32(_) => MetadataType::F32,
            MetadataValue::Bool(_) => MetadataType::Bool,
            MetadataValue::String(_) => MetadataType::String,
            MetadataValue::Array { .. } => MetadataType::Array,
            MetadataValue::U64(_) => MetadataType::U64,
            MetadataValue::I64(_) => MetadataType::I64,
            MetadataValue::F64(_) => MetadataType::F64,
        }
    }

    /// Any integer type as `i128`, so every GGUF integer converts without loss.
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            MetadataValue::U8(v) => v.into(),
            MetadataValue::I8(v) => v.into(),
            MetadataValue::U16(v) => v.into(),
            MetadataValue::I16(v) => v.into(),
            MetadataValue::U32(v) => v.into(),
            MetadataValue::I32(v) => v.into(),
            MetadataValue::U64(v) => v.into(),
            MetadataValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// A float or integer value as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetadataValue::F32(v) => Some(v.into()),
            MetadataValue::F64(v) => Some(v),
            _ => self.as_integer().map(|v| v as f64),
        }
    }

    /// A string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// A boolean value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetadataValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// An array's elements.
    pub fn as_array(&self) -> Option<&[MetadataValue]> {
        match self {
            MetadataValue::Array { values, .. } => Some(values),
            _ => None,
        }
    }
}

/// One metadata key/value pair and where its value starts in the file (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataEntry {
    /// The key (`"llama.block_count"`).
    pub key: String,
    /// The value.
    pub value: MetadataValue,
    /// Absolute byte offset of the value's type tag.
    pub offset: u64,
}
