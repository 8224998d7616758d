//! GGUF errors: every one names the file, what was being read (header, metadata key, tensor)
//! and the byte offset where the problem is.

/// An error reading or interpreting a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file's path.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes do not form a valid GGUF file, or a value is not what the reader needs.
    #[error("{file}: {subject}: {problem} (at byte offset {offset})")]
    Malformed {
        /// The file's path (or `<memory>` for from-bytes parsing).
        file: String,
        /// What was being read: `header`, `metadata key "llama.block_count"`, `tensor "output.weight"`.
        subject: String,
        /// Absolute byte offset in the file.
        offset: u64,
        /// What is wrong.
        problem: Problem,
    },
}

impl GgufError {
    /// The problem, for errors about the file's content.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            GgufError::Io { .. } => None,
            GgufError::Malformed { problem, .. } => Some(problem),
        }
    }
}

/// What is wrong at a place in a GGUF file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// The first four bytes are not `GGUF`.
    #[error("wrong magic {found:?}, expected \"GGUF\"")]
    WrongMagic {
        /// The bytes found.
        found: Vec<u8>,
    },
    /// Only GGUF versions 2 and 3 are read.
    #[error("unsupported GGUF version {0} (supported: 2, 3)")]
    UnsupportedVersion(u32),
    /// The file ends before the item does.
    #[error("truncated: needs {needed} bytes, only {available} left in the file")]
    Truncated {
        /// Bytes the item needs.
        needed: u64,
        /// Bytes left from the item's offset to the end of the file.
        available: u64,
    },
    /// A count or length that cannot fit in the file (each item takes at least one byte).
    #[error("{what} of {count} cannot fit in the {available} bytes left in the file")]
    AbsurdCount {
        /// What was counted.
        what: &'static str,
        /// The count read.
        count: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// Arithmetic on sizes read from the file overflowed.
    #[error("{0} overflows")]
    Overflow(&'static str),
    /// A metadata value type id outside the GGUF specification.
    #[error("unknown metadata value type {0}")]
    UnknownValueType(u32),
    /// Arrays nested deeper than the reader allows.
    #[error("arrays nested deeper than {0} levels")]
    NestingTooDeep(usize),
    /// A string that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// The same metadata key or tensor name appears twice.
    #[error("duplicate name {0:?}")]
    Duplicate(String),
    /// `general.alignment` is zero or not a power of two.
    #[error("alignment {0} is not a power of two")]
    BadAlignment(u64),
    /// A tensor type id this reader does not know.
    #[error("unknown or unsupported tensor type id {0}")]
    UnknownTensorType(u32),
    /// A tensor with more dimensions than ggml allows.
    #[error("{0} dimensions (ggml allows at most 4)")]
    TooManyDimensions(u32),
    /// A quantized tensor whose rows are not whole blocks.
    #[error("row length {row} is not a multiple of the {ty} block size {block}")]
    PartialBlock {
        /// Elements per row (`ne[0]`).
        row: u64,
        /// Tensor type name.
        ty: &'static str,
        /// Block size of the type.
        block: u64,
    },
    /// A tensor offset that is not a multiple of the file's alignment.
    #[error("data offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned {
        /// The offset relative to the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor whose data extends past the end of the file.
    #[error("data of {len} bytes at {start} runs past the end of the file ({file_len} bytes)")]
    DataPastEnd {
        /// Absolute start of the tensor data.
        start: u64,
        /// Byte length of the tensor data.
        len: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// A required metadata key is absent.
    #[error("required key is missing")]
    MissingKey,
    /// A metadata value has the wrong type or an unusable value.
    #[error("{0}")]
    BadValue(String),
    /// The tensor type has no CPU dequantizer.
    #[error("no dequantizer for tensor type {0}")]
    NoDequantizer(&'static str),
}
