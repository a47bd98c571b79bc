//! rustls client configuration from mosquitto's TLS flags, and what a TLS error message
//! needs to know about it.
//!
//! The ring provider is passed explicitly: relying on the process default panics when two
//! providers end up in the build.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context as _, anyhow};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::own_cert::{Own, own_version_1};
use super::pem::{read_certs, read_key};
use crate::exit::usage;

/// The client's TLS flags, as the options layer hands them over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsOptions {
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    pub tls_use_os_certs: bool,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub key_pw_file: Option<PathBuf>,
    pub insecure: bool,
    /// The chain is checked but not the name in it: Mosquitto's `bridge_insecure`, which a
    /// remote reached by an address its certificate does not name needs.
    pub any_name: bool,
    pub tls_version: Option<String>,
    pub tls_alpn: Vec<String>,
    pub ciphers: Option<String>,
}

/// A client TLS setup: the rustls config, and what its errors may name.
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub context: Arc<Context>,
}

/// What TLS error messages name: where trust comes from, the client certificate, and the
/// certificates the broker presented in the last handshake.
#[derive(Debug)]
pub struct Context {
    /// `CA file ca.pem (--cafile)`, `the OS certificate store`, …
    pub trust: String,
    pub cafile: Option<PathBuf>,
    /// What --cafile holds, to recognise a broker certificate passed as its own CA.
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// --cert and --key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Why a broker on rustls refuses the client certificate, when it is X.509 version 1
    /// (OpenSSL brokers such as Mosquitto take it).
    pub client_v1: Option<String>,
    presented: Arc<Mutex<Vec<CertificateDer<'static>>>>,
}

impl Context {
    /// The broker's certificate chain from the last handshake, its own first.
    pub fn presented(&self) -> Vec<CertificateDer<'static>> {
        lock(&self.presented).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn client_config(args: &TlsOptions, warn: &dyn Fn(&str)) -> anyhow::Result<Tls> {
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

    let presented = Arc::new(Mutex::new(Vec::new()));
    let mut context = Context {
        trust: String::new(),
        cafile: args.cafile.clone(),
        ca_certs: Vec::new(),
        client_cert: args.cert.clone().zip(args.key.clone()),
        client_v1: None,
        presented: presented.clone(),
    };
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
        let roots = root_store(args, &mut context, warn)?;
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .context("building the certificate verifier")?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Recording {
                inner,
                presented,
                any_name: args.any_name,
            }))
    };

    let mut config = match &context.client_cert {
        Some((cert, key)) => {
            let chain = read_certs(cert, "client certificate")?;
            let private = read_key(key, "client key", args.key_pw_file.as_deref())?;
            let v1 = own_version_1(&chain, cert, key, Own::Client);
            let config = if v1.is_none() {
                builder
                    .with_client_auth_cert(chain, private)
                    .map_err(|e| mismatch(&e, cert, key))?
            } else {
                // rustls cannot read the public key out of a version 1 certificate to check
                // it against the key, but OpenSSL brokers (Mosquitto) accept such a client
                // certificate: it is sent unchecked, and a broker on rustls refusing it is
                // explained by `client_v1`.
                let signing = provider
                    .key_provider
                    .load_private_key(private)
                    .map_err(|e| anyhow!("client key {} cannot be used: {e}", key.display()))?;
                let own = Arc::new(rustls::sign::CertifiedKey::new(chain, signing));
                builder.with_client_cert_resolver(Arc::new(OwnCertificate(own)))
            };
            context.client_v1 = v1;
            config
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = args
        .tls_alpn
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    Ok(Tls {
        config: Arc::new(config),
        context: Arc::new(context),
    })
}

fn mismatch(err: &rustls::Error, cert: &std::path::Path, key: &std::path::Path) -> anyhow::Error {
    let (cert, key) = (cert.display(), key.display());
    match err {
        rustls::Error::InconsistentKeys(_) => anyhow!(
            "client certificate {cert} and client key {key} do not belong together: the key is not the one the certificate was made for; compare `openssl x509 -noout -pubkey -in {cert}` with `openssl pkey -pubout -in {key}`"
        ),
        other => anyhow!("client certificate {cert} cannot be used with key {key}: {other}"),
    }
}

fn root_store(
    args: &TlsOptions,
    context: &mut Context,
    warn: &dyn Fn(&str),
) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let mut trust = Vec::new();
    if let Some(file) = &args.cafile {
        for cert in read_certs(file, "CA file")? {
            roots.add(cert.clone()).map_err(|e| {
                anyhow!(
                    "CA file {} holds a certificate rustls cannot use as a CA ({e}): check it with `openssl x509 -noout -text -in {}`",
                    file.display(),
                    file.display()
                )
            })?;
            context.ca_certs.push(cert);
        }
        trust.push(format!("CA file {} (--cafile)", file.display()));
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
                "CA directory {} holds no PEM certificates: put the CA certificates there as PEM files, or pass one with --cafile",
                dir.display()
            ));
        }
        trust.push(format!("CA directory {} (--capath)", dir.display()));
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
        trust.push("the OS certificate store".to_owned());
    }
    context.trust = trust.join(" and ");
    Ok(roots)
}

pub fn server_name(name: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned())
        .map_err(|_| usage(format!("'{name}' is not a valid TLS server name")))
}

/// The webpki verifier, noting the certificates it was shown: an error message can then say
/// which certificate failed, and who issued it.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    presented: Arc<Mutex<Vec<CertificateDer<'static>>>>,
    any_name: bool,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *lock(&self.presented) = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        // webpki checks the name only once the chain is good, so this error means it was.
        match verified {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) if self.any_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client certificate, offered whatever the broker asks for.
#[derive(Debug)]
struct OwnCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for OwnCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
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
