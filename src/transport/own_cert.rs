//! One of our own certificates (serve-broker --cert, the client's --cert) in X.509 version 1,
//! which rustls refuses: the sentence that says so, with the openssl line that fixes it.

use crate::x509;

/// Whose certificate one of our own files holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own {
    /// serve-broker --cert.
    Broker,
    /// The client's --cert.
    Client,
}

/// If the first certificate of our own `cert` file is X.509 version 1 (what the mosquitto-tls(7)
/// recipe's `openssl x509 -req` makes without `-extfile`), the sentence that says so, with the
/// openssl line that re-issues it as version 3 with the same key and name.
pub fn own_version_1(
    chain: &[rustls::pki_types::CertificateDer<'_>],
    cert: &std::path::Path,
    key: &std::path::Path,
    own: Own,
) -> Option<String> {
    let c = x509::describe(chain.first()?)?;
    if c.version != 1 {
        return None;
    }
    let (whose, ext) = match own {
        Own::Broker => {
            let cn = c.subject.strip_prefix("CN=").unwrap_or("localhost");
            let san = if cn.parse::<std::net::IpAddr>().is_ok() {
                format!("IP:{cn}")
            } else {
                format!("DNS:{cn}")
            };
            (
                "the broker's certificate",
                format!("basicConstraints=CA:FALSE\\nsubjectAltName={san}"),
            )
        }
        Own::Client => (
            "the client certificate",
            "basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth".to_owned(),
        ),
    };
    let v3 = cert.with_file_name(format!(
        "{}-v3.pem",
        cert.file_stem()
            .map_or_else(|| "cert".into(), |s| s.to_string_lossy())
    ));
    let (cert, key, v3) = (cert.display(), key.display(), v3.display());
    let csr = "renew.csr";
    let sign = if c.self_issued {
        format!("-signkey {key}")
    } else {
        "-CA ca.pem -CAkey ca.key -CAcreateserial".to_owned()
    };
    let by = if c.self_issued {
        String::new()
    } else {
        format!(" (ca.pem and ca.key: the CA that signed it, {})", c.issuer)
    };
    Some(format!(
        "{whose} {cert} ({}) is X.509 version 1, and rustls accepts only version 3: re-issue it as v3 with the same key and name{by}: openssl x509 -x509toreq -in {cert} -key {key} -out {csr} && openssl x509 -req -in {csr} {sign} -days 365 -out {v3} -extfile <(printf '{ext}')",
        c.subject
    ))
}
