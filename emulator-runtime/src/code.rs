//! Deployment packages on disk: each zip is extracted once into `work_dir/code/<hex sha256>/`.

use std::fs;
use std::io::{self, Cursor, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Extracts a deployment package into `work_dir/code/<hex sha256>/` once (idempotent, atomic
/// rename), returning that directory.
///
/// The package is unpacked into a temporary sibling directory and renamed into place, so a
/// concurrent reader never sees half a package and a crash never leaves one behind under the
/// final name. Entries that would land outside the directory (`..`, absolute paths) and symbolic
/// links are refused, because the package is outside data.
pub fn prepare_code(work_dir: &Path, zip: &[u8]) -> io::Result<PathBuf> {
    let digest = Sha256::digest(zip);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    let code_root = work_dir.join("code");
    let target = code_root.join(&hex);
    if target.join(".complete").exists() {
        return Ok(target);
    }
    fs::create_dir_all(&code_root)?;
    let staging = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(&code_root)?;
    extract(zip, staging.path())?;
    // The marker lets the fast path above trust a directory without listing it.
    fs::write(staging.path().join(".complete"), b"")?;
    let staging = staging.keep();
    match fs::rename(&staging, &target) {
        Ok(()) => Ok(target),
        // Another caller extracted the same package first: theirs is identical, keep it.
        Err(_) if target.join(".complete").exists() => {
            let _ = fs::remove_dir_all(&staging);
            Ok(target)
        }
        Err(err) => {
            let _ = fs::remove_dir_all(&staging);
            Err(err)
        }
    }
}

fn extract(zip: &[u8], into: &Path) -> io::Result<()> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(invalid)?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(invalid)?;
        let name = entry.name().map_err(invalid)?.into_owned();
        let relative = safe_relative(&name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("deployment package entry `{name}` points outside the package"),
            )
        })?;
        if entry.is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "deployment package entry `{name}` is a symbolic link, which is not supported"
                ),
            ));
        }
        let path = into.join(&relative);
        if entry.is_dir() {
            fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 26));
        entry.read_to_end(&mut bytes)?;
        fs::write(&path, &bytes)?;
        let mut mode = entry.unix_mode().map_or(0o644, |mode| mode & 0o777);
        // Lambda executes `bootstrap` whatever mode the zip tool recorded (Windows zips carry none).
        if relative == Path::new("bootstrap") {
            mode |= 0o755;
        }
        // The owner must always be able to read the file, or the package could not be cleaned up.
        fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o600))?;
    }
    Ok(())
}

/// The entry name as a relative path made only of normal components, or `None` when it names
/// a parent directory, a root or a drive.
fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.contains('\0') {
        return None;
    }
    let mut relative = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!relative.as_os_str().is_empty()).then_some(relative)
}

fn invalid(err: zip::result::ZipError) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("deployment package is not a valid zip: {err}"),
    )
}
