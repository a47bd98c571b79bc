//! rustls client configuration from mosquitto's TLS flags, and TLS errors in plain words.
//!
//! The ring provider is passed explicitly: relying on the process default panics when two
//! providers end up in the build.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::cli::TlsArgs;
use crate::exit::usage;

/// Whether TLS is on: mosquitto turns it on with any CA option, and smq also with mqtts/wss.
pub fn wanted(args: &TlsArgs, scheme_tls: bool, port: Option<u16>) -> bool {
    !args.no_tls
        && (scheme_tls
            || args.cafile.is_some()
            || args.capath.is_some()
            || args.tls_use_os_certs
            || port == Some(8883))
}

pub fn reject_unsupported(args: &TlsArgs) -> anyhow::Result<()> {
    let openssl_only = [
        ("--keyform", args.keyform.is_some()),
        ("--tls-engine", args.tls_engine.is_some()),
        (
            "--tls-engine-kpass-sha1",
            args.tls_engine_kpass_sha1.is_some(),
        ),
        ("--psk", args.psk.is_some()),
        ("--psk-identity", args.psk_identity.is_some()),
    ];
    if let Some((flag, _)) = openssl_only.iter().find(|(_, set)| *set) {
        return Err(usage(format!(
            "{flag} is not supported by smq (rustls): use certificates (--cafile, --cert, --key)"
        )));
    }
    Ok(())
}

pub fn client_config(args: &TlsArgs, warn: &dyn Fn(&str)) -> anyhow::Result<Arc<ClientConfig>> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = &args.ciphers {
        let all = std::mem::take(&mut provider.cipher_suites);
        for name in list.split(':').filter(|n| !n.is_empty()) {
            let suite = all
                .iter()
                .find(|s| format!("{:?}", s.suite()).eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let known: Vec<String> =
                        all.iter().map(|s| format!("{:?}", s.suite())).collect();
                    usage(format!(
                        "--ciphers: unknown suite '{name}'; rustls knows {}",
                        known.join(", ")
                    ))
                })?;
            provider.cipher_suites.push(*suite);
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match args.tls_version.as_deref() {
        None | Some("tlsv1.2") => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some("tlsv1.3") => &[&rustls::version::TLS13],
        Some(v @ ("tlsv1.1" | "tlsv1")) => {
            return Err(usage(format!(
                "--tls-version {v} is not supported by smq (rustls): use tlsv1.2 or tlsv1.3"
            )));
        }
        Some(v) => {
            return Err(usage(format!(
                "--tls-version: unknown '{v}': use tlsv1.2 or tlsv1.3"
            )));
        }
    };
    let provider = Arc::new(provider);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .context("--ciphers leaves no cipher suite for the chosen --tls-version")?;

    let builder = if args.insecure {
        warn(
            "--insecure: the broker's certificate is NOT checked; anyone on the path can read and change this connection",
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(
                provider.signature_verification_algorithms,
            )))
    } else {
        let roots = root_store(args, warn)?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .context("building the certificate verifier")?;
        builder.with_webpki_verifier(verifier)
    };

    let mut config = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client certificate")?;
            let key = read_key(key, "client key")?;
            builder
                .with_client_auth_cert(chain, key)
                .context("the client certificate and key do not belong together")?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = args
        .tls_alpn
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    Ok(Arc::new(config))
}

fn root_store(args: &TlsArgs, warn: &dyn Fn(&str)) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    if let Some(file) = &args.cafile {
        for cert in read_certs(file, "CA file")? {
            roots.add(cert).with_context(|| {
                format!("CA file {} holds an unusable certificate", file.display())
            })?;
        }
    }
    if let Some(dir) = &args.capath {
        let entries =
            fs::read_dir(dir).with_context(|| format!("reading CA directory {}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(certs) = CertificateDer::pem_file_iter(&path) {
                for cert in certs.flatten() {
                    // A CA directory often holds other files too; unusable ones are skipped.
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            return Err(anyhow!(
                "CA directory {} holds no PEM certificates",
                dir.display()
            ));
        }
    }
    if args.tls_use_os_certs || (args.cafile.is_none() && args.capath.is_none()) {
        let native = rustls_native_certs::load_native_certs();
        for err in &native.errors {
            warn(&format!("skipping an OS CA certificate: {err}"));
        }
        let (_, unusable) = roots.add_parsable_certificates(native.certs);
        if unusable > 0 {
            warn(&format!("skipped {unusable} unusable OS CA certificates"));
        }
        if roots.is_empty() {
            return Err(anyhow!(
                "no trusted CA certificates: the OS store is empty; pass --cafile or --capath"
            ));
        }
    }
    Ok(roots)
}

/// Every certificate in a PEM file; errors name the file. Shared with the broker.
pub fn read_certs(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = fs::read(path).with_context(|| format!("reading {what} {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("reading {what} {}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(anyhow!(
            "{what} {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file; errors name the file. Shared with the broker.
pub fn read_key(path: &Path, what: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| anyhow!("reading {what} {}: {}", path.display(), pem_error(&e)))
}

fn pem_error(err: &rustls::pki_types::pem::Error) -> String {
    match err {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key found".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// Turns a handshake failure into a sentence that names the cause and the fix.
pub fn explain(err: &rustls::Error, name: &str) -> String {
    use rustls::Error as E;
    let date = |t: &UnixTime| {
        i64::try_from(t.as_secs())
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map_or_else(
                || "an unknown date".into(),
                |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
            )
    };
    match err {
        E::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "the broker's certificate is not signed by a trusted CA: pass the CA that signed it with --cafile".into(),
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the broker's certificate is for {} but not for '{name}': connect by one of those names, or set --servername",
                presented
                    .iter()
                    .map(|n| plain_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CertificateError::NotValidForName => format!(
                "the broker's certificate is not valid for '{name}': connect by a name it lists, or set --servername"
            ),
            CertificateError::ExpiredContext { not_after, .. } => {
                format!("the broker's certificate expired on {}", date(not_after))
            }
            CertificateError::Expired => "the broker's certificate has expired".into(),
            CertificateError::NotValidYetContext { not_before, .. } => {
                format!("the broker's certificate is not valid until {}", date(not_before))
            }
            other => format!("the broker's certificate was rejected: {other:?}"),
        },
        E::AlertReceived(alert) => format!(
            "the broker ended the TLS handshake ({alert:?}); if it wants a client certificate, pass --cert and --key"
        ),
        other => format!("TLS failed: {other}"),
    }
}

/// rustls lists names as `DnsName("host")`; people read `host`.
fn plain_name(name: &str) -> &str {
    match (name.find('"'), name.rfind('"')) {
        (Some(a), Some(b)) if b > a => &name[a + 1..b],
        _ => name,
    }
}

pub fn server_name(name: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned())
        .map_err(|_| usage(format!("'{name}' is not a valid TLS server name")))
}

/// `--insecure`: accepts every certificate, but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnything(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
