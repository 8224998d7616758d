//! The bytes of a model file: memory-mapped from disk, or owned (parsed from memory, as the fuzz
//! targets do). Readers borrow tensor data from here, so a 4 GB checkpoint costs no copy.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

/// A model file's bytes, mapped or owned; derefs to `[u8]`.
#[derive(Debug)]
pub enum FileBytes {
    /// Memory-mapped read-only from a file on disk.
    Mapped(Mmap),
    /// Held in memory (from-bytes entry points, and empty files, which cannot be mapped).
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Maps `path` read-only.
    pub fn map(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only. As with every mmap-based loader (llama.cpp, safetensors),
        // a file truncated or rewritten by another process while mapped is outside our control;
        // model files are treated as immutable while loaded.
        let map = unsafe { Mmap::map(&file)? };
        Ok(FileBytes::Mapped(map))
    }
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Owned(bytes) => bytes,
        }
    }
}
