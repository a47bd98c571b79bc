//! Certificates and keys from PEM files, shared by the clients and the broker. Every error
//! names the file and says what to do: a DER file gets the openssl line that converts it, a
//! key in a format smq does not read the one that re-encodes it.
//!
//! Encrypted keys are PKCS#8 `ENCRYPTED PRIVATE KEY` (what `openssl genpkey -aes256` and
//! OpenSSL 3's `genrsa -des3` write: PBES2 with PBKDF2 and AES-CBC or 3DES). They are decrypted
//! by RustCrypto's `pkcs8`/`pkcs5` rather than by code of ours: a key derivation and a cipher
//! mode are exactly what is easy to get subtly wrong. The passphrase comes from --key-pw-file,
//! SMQ_KEY_PASSWORD, or a prompt on the terminal, in that order.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::anyhow;
use base64::Engine as _;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The environment variable that holds the passphrase of an encrypted key.
pub const KEY_PASSWORD_ENV: &str = "SMQ_KEY_PASSWORD";

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

/// The private key in a PEM file; an encrypted one is decrypted with the passphrase from
/// `pw_file`, `SMQ_KEY_PASSWORD` or the terminal.
pub fn read_key(
    path: &Path,
    what: &str,
    pw_file: Option<&Path>,
) -> anyhow::Result<PrivateKeyDer<'static>> {
    let bytes = read(path, what)?;
    let file = path.display();
    if contains(&bytes, b"Proc-Type: 4,ENCRYPTED") {
        return Err(anyhow!(
            "reading {what} {file}: the key is encrypted in OpenSSL's old format (Proc-Type: 4,ENCRYPTED), which smq does not read: convert it to PKCS#8, encrypted as well, with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in {file} -out {}` and pass that",
            sibling(path, Some("pkcs8"))
        ));
    }
    if let Some(der) = pem_block(&bytes, "ENCRYPTED PRIVATE KEY") {
        return decrypt(path, what, &der, pw_file);
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

/// The DER inside the first `-----BEGIN {label}-----` block, if there is one.
fn pem_block(bytes: &[u8], label: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = &text[text.find(&begin)? + begin.len()..];
    let body = &body[..body.find(&end)?];
    let b64: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn decrypt(
    path: &Path,
    what: &str,
    der: &[u8],
    pw_file: Option<&Path>,
) -> anyhow::Result<PrivateKeyDer<'static>> {
    let file = path.display();
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der).map_err(|e| {
        anyhow!(
            "reading {what} {file}: the ENCRYPTED PRIVATE KEY block is not valid PKCS#8 ({e}): check that the file is not truncated or edited"
        )
    })?;
    let pass = passphrase(path, what, pw_file)?;
    let plain = info.decrypt(pass.as_bytes()).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm { oid })
        | pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::AlgorithmParametersInvalid {
            oid,
        }) => anyhow!(
            "reading {what} {file}: the key is encrypted with an algorithm smq does not support (OID {oid}): re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in {file} -out {}` and pass that",
            sibling(path, Some("aes"))
        ),
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::NoPbes1CryptSupport) => anyhow!(
            "reading {what} {file}: the key is encrypted with old PKCS#5 v1.5 (PBES1), which smq does not support: re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in {file} -out {}` and pass that",
            sibling(path, Some("aes"))
        ),
        _ => anyhow!(
            "reading {what} {file}: the passphrase does not decrypt the key: check {}",
            source_name(pw_file)
        ),
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

/// Where the passphrase came from, as the fix names it.
fn source_name(pw_file: Option<&Path>) -> String {
    match pw_file {
        Some(f) => format!("--key-pw-file {}", f.display()),
        None if std::env::var_os(KEY_PASSWORD_ENV).is_some() => KEY_PASSWORD_ENV.to_owned(),
        None => "the passphrase typed".to_owned(),
    }
}

fn passphrase(path: &Path, what: &str, pw_file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(f) = pw_file {
        let text = fs::read_to_string(f)
            .map_err(|e| anyhow!("reading the key passphrase file {}: {e}", f.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if let Ok(pass) = std::env::var(KEY_PASSWORD_ENV) {
        return Ok(pass);
    }
    rpassword::prompt_password(format!("Passphrase for {}: ", path.display())).map_err(|e| {
        anyhow!(
            "reading {what} {}: the key is encrypted and there is no terminal to ask for its passphrase ({e}): set {KEY_PASSWORD_ENV}, or pass --key-pw-file FILE",
            path.display()
        )
    })
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
