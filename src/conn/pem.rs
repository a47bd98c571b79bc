//! Certificates and keys from PEM files, shared by the clients and the broker. Every error
//! names the file and says what to do: a DER file gets the openssl line that converts it, an
//! encrypted key the one that decrypts it.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::anyhow;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Every certificate in a PEM file.
pub fn read_certs(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(path, what, &e))?;
    if !certs.is_empty() {
        return Ok(certs);
    }
    let file = path.display();
    Err(if is_der(&bytes) {
        anyhow!(
            "reading {what} {file}: it is DER, not PEM: convert it with `openssl x509 -inform der -in {file} -out {}` and pass that",
            sibling(path, None)
        )
    } else if contains(&bytes, b"PRIVATE KEY-----") {
        anyhow!(
            "reading {what} {file}: no PEM certificate, only a private key: pass the certificate file (-----BEGIN CERTIFICATE-----)"
        )
    } else {
        anyhow!(
            "reading {what} {file}: no PEM certificate: the file needs a -----BEGIN CERTIFICATE----- block"
        )
    })
}

/// The private key in a PEM file.
pub fn read_key(path: &Path, what: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    let bytes = read(path, what)?;
    let file = path.display();
    if contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(&bytes, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(anyhow!(
            "reading {what} {file}: the key is encrypted, and smq cannot read encrypted keys yet: decrypt it with `openssl pkey -in {file} -out {}` (keep that file private) and pass that",
            sibling(path, Some("plain"))
        ));
    }
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) if is_der(&bytes) => Err(anyhow!(
            "reading {what} {file}: it is DER, not PEM: convert it with `openssl pkey -inform der -in {file} -out {}` and pass that",
            sibling(path, None)
        )),
        Err(pem::Error::NoItemsFound) if contains(&bytes, b"-----BEGIN CERTIFICATE-----") => {
            Err(anyhow!(
                "reading {what} {file}: no PEM private key, only a certificate: pass the key file (-----BEGIN PRIVATE KEY-----)"
            ))
        }
        Err(pem::Error::NoItemsFound) => Err(anyhow!(
            "reading {what} {file}: no PEM private key: the file needs a -----BEGIN PRIVATE KEY----- (or EC or RSA PRIVATE KEY) block"
        )),
        Err(e) => Err(not_pem(path, what, &e)),
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    fs::read(path).map_err(|e| {
        let fix = match e.kind() {
            io::ErrorKind::NotFound => ": check the path",
            io::ErrorKind::PermissionDenied => ": make the file readable by this user",
            io::ErrorKind::IsADirectory => ": pass the PEM file, not its directory",
            _ => "",
        };
        anyhow!("reading {what} {}: {e}{fix}", path.display())
    })
}

fn not_pem(path: &Path, what: &str, err: &pem::Error) -> anyhow::Error {
    let detail = match err {
        pem::Error::Io(e) => e.to_string(),
        other => format!("{other:?}"),
    };
    anyhow!(
        "reading {what} {}: not valid PEM ({detail}): check that the file is not truncated or edited",
        path.display()
    )
}

/// DER starts with a SEQUENCE tag; PEM with text.
fn is_der(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A file beside `path` for a converted copy: `dir/ca.der` → `dir/ca.pem`, or with `tag`
/// (or when that name is taken) `dir/k.key` → `dir/k-plain.pem`. Never `path` itself.
fn sibling(path: &Path, tag: Option<&str>) -> String {
    let stem = path
        .file_stem()
        .map_or_else(|| "file".to_owned(), |s| s.to_string_lossy().into_owned());
    let plain = path.with_file_name(format!("{stem}.pem"));
    let out = match tag {
        None if plain != path && !plain.exists() => plain,
        _ => path.with_file_name(format!("{stem}-{}.pem", tag.unwrap_or("converted"))),
    };
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_names() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("taken.pem");
        std::fs::write(&taken, "").unwrap();
        let name = |f: &str, tag| {
            sibling(&dir.path().join(f), tag).replace(&*dir.path().to_string_lossy(), "d")
        };
        assert_eq!(name("k.key", Some("plain")), "d/k-plain.pem");
        assert_eq!(name("ca.der", None), "d/ca.pem");
        assert_eq!(name("ca.pem", None), "d/ca-converted.pem");
        assert_eq!(name("taken.der", None), "d/taken-converted.pem");
    }
}
