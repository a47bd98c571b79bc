//! The TLS server side of mqtts:// and wss:// listeners: the rustls configuration from
//! `--cert`/`--key`/`--cafile`, the handshake with an error that says what went wrong, and the
//! common name of the client's certificate (for `use_identity_as_username`).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::exit::usage;
use crate::transport::Io;
use crate::transport::own_cert::{Own, own_version_1};
use crate::transport::pem::{read_certs, read_key};
use crate::x509;

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cafile: Option<PathBuf>,
    pub require_certificate: bool,
}

/// The rustls server configuration for mqtts/wss listeners. With `cafile`, client certificates
/// signed by that CA are checked (and required with `require_certificate`, as in mosquitto).
pub fn server_tls(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    // Explicit provider: the process default panics when two providers end up in the build.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the TLS provider supports neither TLS 1.2 nor 1.3")?;
    let builder = match &files.cafile {
        None if files.require_certificate => {
            return Err(usage(
                "--require-certificate needs --cafile: the CA that signs the client certificates",
            ));
        }
        None => builder.with_no_client_auth(),
        Some(cafile) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(cafile, "CA file")? {
                roots.add(cert).with_context(|| {
                    format!("CA file {} holds an unusable certificate", cafile.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if files.require_certificate {
                verifier
            } else {
                // A client certificate is checked when offered, but clients without one
                // still get in (mosquitto's cafile without require_certificate).
                verifier.allow_unauthenticated()
            };
            let verifier = verifier.build().with_context(|| {
                format!(
                    "CA file {} cannot verify client certificates",
                    cafile.display()
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = read_certs(&files.cert, "certificate")?;
    let key = read_key(&files.key, "key", None)?;
    let v1 = own_version_1(&chain, &files.cert, &files.key, Own::Broker);
    let config = builder.with_single_cert(chain, key).map_err(|e| match v1 {
        // rustls cannot read the key out of a version 1 certificate, so it calls them a
        // mismatch (UnsupportedCertVersion): the certificate is what needs fixing.
        Some(v1) => anyhow!("{v1}"),
        None => anyhow!(
            "the certificate {} and key {} do not belong together ({e})",
            files.cert.display(),
            files.key.display()
        ),
    })?;
    Ok(Arc::new(config))
}

/// The TLS handshake of one connection; the stream, and the subject common name of the client's
/// certificate when it sent one.
pub(super) async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> anyhow::Result<(Box<dyn Io>, Option<String>)> {
    let tls = acceptor.accept(stream).await.map_err(tls_error)?;
    let cn = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|cert| x509::subject_cn(cert));
    Ok((Box::new(tls), cn))
}

fn tls_error(err: io::Error) -> anyhow::Error {
    let rustls_error = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::NoCertificatesPresented) => anyhow!(
            "TLS handshake failed: the client sent no certificate, and --require-certificate wants one"
        ),
        Some(e) => anyhow!("TLS handshake failed: {e}"),
        None => anyhow!("TLS handshake failed: {err}"),
    }
}
