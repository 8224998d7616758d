//! The byte layout of a `.tsr` file, and the checks that refuse a file from another version, a
//! truncated one or a corrupted one before anything in it is trusted.
//!
//! ```text
//! offset  size  field
//!      0     8  magic  89 'T' 'S' 'R' 0D 0A 1A 0A   (PNG-style: catches text-mode copies)
//!      8     4  format version, u32 LE
//!     12     4  header length, u32 LE (128)
//!     16    32  tessera version (CARGO_PKG_VERSION), UTF-8, zero-padded
//!     48     8  manifest offset, u64 LE (128)
//!     56     8  manifest length, u64 LE
//!     64     8  weights offset, u64 LE (a multiple of 256)
//!     72     8  weights length, u64 LE (0 when the weights are a reference)
//!     80    48  zero
//!    128     -  manifest: JSON (see manifest.rs)
//!      -     -  zero padding to the weights offset
//!      -     -  weights: each parameter at a 256-byte aligned offset
//!    end-32 32  BLAKE3 of every byte before it
//! ```

use crate::FileBytes;
use crate::ModelError;
use std::io::Write;
use std::path::Path;

/// First bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"\x89TSR\r\n\x1a\n";
/// Layout version this build writes and reads; bump on any incompatible change (2: short
/// decode plans, `StepRecord::attend`).
pub const FORMAT_VERSION: u32 = 2;
/// The tessera release that writes and reads artifacts: plans are only valid for the runtime
/// that compiled them.
pub const TESSERA_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 128;
/// Bytes of the checksum trailer.
pub const CHECKSUM_LEN: usize = 32;
/// Weights start at, and each parameter is padded to, this alignment: a storage binding offset
/// is valid at any multiple of 256 on every WebGPU device.
pub const WEIGHT_ALIGN: u64 = 256;

/// Where the sections of a verified file are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    /// Byte range of the manifest JSON.
    pub manifest: (usize, usize),
    /// Byte range of the weights section.
    pub weights: (usize, usize),
}

/// An artifact's bytes, checked: magic, versions, lengths and checksum.
pub struct VerifiedFile {
    /// The mapped file.
    pub bytes: FileBytes,
    /// Its sections.
    pub sections: Sections,
}

impl VerifiedFile {
    /// The manifest's JSON bytes.
    pub fn manifest(&self) -> &[u8] {
        &self.bytes[self.sections.manifest.0..self.sections.manifest.1]
    }

    /// The weights section.
    pub fn weights(&self) -> &[u8] {
        &self.bytes[self.sections.weights.0..self.sections.weights.1]
    }
}

/// Maps `path` and checks it, in the order that gives the most useful message: not an
/// artifact, another format, truncated or extended, corrupted, another tessera release.
pub fn open(path: &Path) -> Result<VerifiedFile, ModelError> {
    let fail = |cause: String| ModelError::Invalid(format!("{}: {cause}", path.display()));
    let bytes = FileBytes::map(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let len = bytes.len();
    if len < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(fail("not a tessera artifact (bad magic bytes); compile one with compile-model".into()));
    }
    if len < HEADER_LEN + CHECKSUM_LEN {
        return Err(fail(format!("truncated: {len} bytes, shorter than the {HEADER_LEN}-byte header")));
    }
    let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let format = u32_at(8);
    if format != FORMAT_VERSION {
        return Err(fail(format!(
            "artifact format {format}, this tessera reads format {FORMAT_VERSION}; recompile it with compile-model"
        )));
    }
    let (manifest_at, manifest_len) = (u64_at(48), u64_at(56));
    let (weights_at, weights_len) = (u64_at(64), u64_at(72));
    let expected = weights_at.checked_add(weights_len).and_then(|n| n.checked_add(CHECKSUM_LEN as u64));
    if expected != Some(len as u64) {
        let expected = expected.map_or("an impossible length".to_string(), |n| format!("{n} bytes"));
        return Err(fail(format!("truncated or extended: the header says {expected}, the file has {len}")));
    }
    let manifest_end = manifest_at.saturating_add(manifest_len);
    if u32_at(12) as usize != HEADER_LEN || manifest_at != HEADER_LEN as u64 || manifest_end > weights_at {
        return Err(fail("corrupted header: sections overlap or are out of order".into()));
    }
    let body = len - CHECKSUM_LEN;
    // Every core hashes: this check reads the whole file on every load.
    let checksum = blake3::Hasher::new().update_rayon(&bytes[..body]).finalize();
    if checksum.as_bytes()[..] != bytes[body..] {
        return Err(fail("checksum mismatch: the file is corrupted; recompile or copy it again".into()));
    }
    let version = &bytes[16..48];
    let version = String::from_utf8_lossy(version.split(|&b| b == 0).next().unwrap_or(version)).into_owned();
    if version != TESSERA_VERSION {
        return Err(fail(format!(
            "compiled by tessera {version}, this is tessera {TESSERA_VERSION}; recompile it with compile-model"
        )));
    }
    let sections = Sections {
        manifest: (manifest_at as usize, manifest_end as usize),
        weights: (weights_at as usize, (weights_at + weights_len) as usize),
    };
    Ok(VerifiedFile { bytes, sections })
}

/// Writes an artifact to `path` (through a temporary file renamed into place, so a failed write
/// never leaves a half file under the final name): header, `manifest`, then each of `weights` at
/// its aligned offset, then the checksum.
pub fn write(path: &Path, manifest: &[u8], weights: &[&[u8]]) -> Result<u64, ModelError> {
    let fail = |e: std::io::Error| ModelError::Invalid(format!("{}: cannot write: {e}", path.display()));
    let weights_at = (HEADER_LEN + manifest.len()) as u64;
    let weights_at = weights_at.next_multiple_of(WEIGHT_ALIGN);
    let weights_len = weights_section_len(weights.iter().map(|w| w.len() as u64));
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    let version = TESSERA_VERSION.as_bytes();
    header[16..16 + version.len().min(32)].copy_from_slice(&version[..version.len().min(32)]);
    header[48..56].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
    header[56..64].copy_from_slice(&(manifest.len() as u64).to_le_bytes());
    header[64..72].copy_from_slice(&weights_at.to_le_bytes());
    header[72..80].copy_from_slice(&weights_len.to_le_bytes());

    let tmp = path.with_extension(format!("tsr.tmp{}", std::process::id()));
    let result = (|| {
        let mut out = HashingWriter::new(std::io::BufWriter::new(std::fs::File::create(&tmp)?));
        out.write_all(&header)?;
        out.write_all(manifest)?;
        out.pad_to(weights_at)?;
        for w in weights {
            out.write_all(w)?;
            out.pad_to(out.written.next_multiple_of(WEIGHT_ALIGN))?;
        }
        let checksum = out.hasher.finalize();
        let mut file = out.inner;
        file.write_all(checksum.as_bytes())?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(weights_at + weights_len + CHECKSUM_LEN as u64)
}

/// Offsets of parameters of `lens` bytes within the weights section, each 256-aligned.
pub fn weight_offsets(lens: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut at = 0;
    lens.into_iter()
        .map(|len| {
            let here = at;
            at = (at + len).next_multiple_of(WEIGHT_ALIGN);
            here
        })
        .collect()
}

fn weights_section_len(lens: impl IntoIterator<Item = u64>) -> u64 {
    lens.into_iter().fold(0, |at, len| (at + len).next_multiple_of(WEIGHT_ALIGN))
}

/// A writer that hashes what passes through and counts it (the checksum is computed while the
/// file is written, never by reading it back).
struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: blake3::Hasher::new(), written: 0 }
    }

    fn pad_to(&mut self, offset: u64) -> std::io::Result<()> {
        let zeros = [0u8; WEIGHT_ALIGN as usize];
        while self.written < offset {
            let n = ((offset - self.written) as usize).min(zeros.len());
            self.write_all(&zeros[..n])?;
        }
        Ok(())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
