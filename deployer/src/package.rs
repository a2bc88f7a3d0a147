//! Reproducible deployment packages: a zip holding `bootstrap`, and its `CodeSha256`.

use std::io::{Cursor, Write};
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::PackageError;

/// A zip ready for `CreateFunction`/`UpdateFunctionCode`.
#[derive(Clone, PartialEq, Eq)]
pub struct Package {
    pub bytes: Vec<u8>,
    /// Standard base64 (with padding) of the SHA-256 of `bytes`, exactly as Lambda reports
    /// `CodeSha256`, so that unchanged code is recognised and never uploaded again.
    pub code_sha256: String,
}

impl std::fmt::Debug for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Package")
            .field("len", &self.bytes.len())
            .field("code_sha256", &self.code_sha256)
            .finish()
    }
}

/// The `CodeSha256` Lambda computes for a zip.
pub fn code_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Zips a binary as `bootstrap`. Every input of the archive is fixed (timestamp 1980-01-01, mode
/// 0755, one entry, compression level), so the same binary always gives the same bytes and the
/// same `CodeSha256`: that is what lets a redeploy skip uploading unchanged code.
pub fn package_bootstrap(binary: &[u8]) -> Package {
    let bytes = zip_bootstrap(binary).expect("zipping into memory cannot fail");
    let code_sha256 = code_sha256(&bytes);
    Package { bytes, code_sha256 }
}

fn zip_bootstrap(binary: &[u8]) -> zip::result::ZipResult<Vec<u8>> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        // The fastest level: debug binaries for the emulator are tens of megabytes and are
        // zipped on every deploy and watch rebuild, where the default level takes several
        // times longer for zips only a tenth smaller.
        .compression_level(Some(1))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o755);
    writer.start_file("bootstrap", options)?;
    writer.write_all(binary)?;
    Ok(writer.finish()?.into_inner())
}

/// Reads a built binary and packages it.
pub fn package_file(path: &Path) -> Result<Package, PackageError> {
    let binary = std::fs::read(path).map_err(|source| PackageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = zip_bootstrap(&binary).map_err(|source| PackageError::Zip {
        path: path.to_path_buf(),
        source,
    })?;
    let code_sha256 = code_sha256(&bytes);
    Ok(Package { bytes, code_sha256 })
}
