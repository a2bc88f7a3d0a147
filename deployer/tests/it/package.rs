//! Packaging: reproducible zips whose CodeSha256 matches what Lambda computes.

use std::io::{Cursor, Read};

use base64::Engine;
use sha2::{Digest, Sha256};

use deployer::{package_bootstrap, package_file};

const BINARY: &[u8] = b"\x7fELF pretend this is a lambda binary \x00\x01\x02";

#[test]
fn same_binary_gives_byte_identical_zips() {
    let a = package_bootstrap(BINARY);
    let b = package_bootstrap(BINARY);
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(a.code_sha256, b.code_sha256);
    assert_ne!(package_bootstrap(b"other").code_sha256, a.code_sha256);
}

#[test]
fn code_sha256_is_base64_of_the_zip_sha256() {
    let p = package_bootstrap(BINARY);
    let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&p.bytes));
    assert_eq!(p.code_sha256, expected);
    assert_eq!(p.code_sha256.len(), 44);
    assert!(p.code_sha256.ends_with('='));
}

#[test]
fn zip_holds_an_executable_bootstrap() {
    let p = package_bootstrap(BINARY);
    let mut zip = zip::ZipArchive::new(Cursor::new(p.bytes)).expect("valid zip");
    assert_eq!(zip.len(), 1);
    let mut entry = zip.by_index(0).expect("one entry");
    assert_eq!(entry.name().expect("utf-8 name"), "bootstrap");
    assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut content = Vec::new();
    entry.read_to_end(&mut content).expect("readable");
    assert_eq!(content, BINARY);
}

#[test]
fn packaging_a_file_matches_packaging_its_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bootstrap");
    std::fs::write(&path, BINARY).expect("write");
    let from_file = package_file(&path).expect("packaged");
    assert_eq!(from_file, package_bootstrap(BINARY));

    let err = package_file(&dir.path().join("missing")).expect_err("missing file");
    assert!(err.to_string().contains("missing"), "{err}");
}
