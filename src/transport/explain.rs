//! Connection failures in plain words: each names the broker (or the file), the cause and the
//! fix. rustls and tungstenite report what went wrong in their own terms (`CaUsedAsEndEntity`,
//! `tls handshake eof`, `invalid HTTP version`); most of those have one or two usual causes,
//! such as a TLS client on a plain port or a CA that is really the broker's own certificate,
//! and the message says which, with the command that fixes it.

use std::io;

use anyhow::anyhow;
use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError, InvalidMessage};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;

use super::setup::{Endpoint, TransportSetup};
use super::tls::Context;
use crate::mqtt::Protocol;
use crate::x509::{self, Described};

/// The TLS handshake failed.
pub fn tls_handshake(err: &io::Error, setup: &TransportSetup) -> anyhow::Error {
    if let Some(e) = rustls_error(err) {
        return anyhow!(
            "TLS handshake with {} failed: {}",
            setup.describe(),
            rustls(e, setup)
        );
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => {
            let cert = match tls_context(setup).and_then(|c| c.client_cert.as_ref()) {
                Some((cert, _)) => {
                    format!(
                        "the broker refused the client certificate {}",
                        cert.display()
                    )
                }
                None => "the broker wants a client certificate (pass --cert and --key)".into(),
            };
            anyhow!(
                "{} closed the connection during the TLS handshake ({err}): either {} does not speak TLS ({}), or {cert}",
                setup.describe(),
                port(setup),
                plain_instead(setup)
            )
        }
        _ => anyhow!("TLS handshake with {} failed: {err}", setup.describe()),
    }
}

/// Reading or writing failed after the transport was up but before CONNACK.
pub fn before_connack(err: &io::Error, setup: &TransportSetup) -> anyhow::Error {
    if let Some(e) = rustls_error(err) {
        return anyhow!("TLS with {} failed: {}", setup.describe(), rustls(e, setup));
    }
    match err.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
            if setup.tls.is_none() =>
        {
            anyhow!(
                "{} reset the connection before CONNACK ({err}): if {} wants TLS, {}",
                setup.describe(),
                port(setup),
                tls_instead(setup)
            )
        }
        _ => anyhow!(
            "connection to {} lost before CONNACK: {err}",
            setup.describe()
        ),
    }
}

/// The broker closed the connection before CONNACK: under `-V auto`, what a broker that does
/// not speak MQTT 5 does (RabbitMQ 3.10), so a sign to try 3.1.1.
#[derive(Debug)]
pub struct ClosedBeforeConnack(pub(crate) String);

impl std::fmt::Display for ClosedBeforeConnack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClosedBeforeConnack {}

pub fn closed_before_connack(proto: Protocol, setup: &TransportSetup) -> ClosedBeforeConnack {
    let version = match proto {
        Protocol::V311 => "does it speak MQTT 3.1.1? try -V mqttv5",
        Protocol::V5 => "does it speak MQTT 5? try -V mqttv311",
    };
    closed(version, setup)
}

/// `-V auto`: the broker closed the connection before CONNACK to both versions.
pub fn closed_to_both(setup: &TransportSetup) -> ClosedBeforeConnack {
    closed("to an MQTT 5 and to an MQTT 3.1.1 CONNECT", setup)
}

fn closed(what: &str, setup: &TransportSetup) -> ClosedBeforeConnack {
    let tls = if setup.tls.is_none() {
        format!("; if {} wants TLS, {}", port(setup), tls_instead(setup))
    } else {
        String::new()
    };
    ClosedBeforeConnack(format!(
        "{} closed the connection before CONNACK ({what}){tls}",
        setup.describe()
    ))
}

/// What the broker sent instead of CONNACK, when that says it speaks another protocol: TLS
/// (a plain client on a TLS port) or HTTP (an MQTT client on a WebSocket port). `None` until
/// enough bytes arrived to tell, or when they could be MQTT.
pub fn not_mqtt(first: &[u8], setup: &TransportSetup) -> Option<anyhow::Error> {
    // A TLS record: content type 20-23, then major version 3.
    if let [20..=23, 3, ..] = first {
        return Some(anyhow!(
            "{} answered in TLS: {} wants TLS; {}",
            setup.describe(),
            port(setup),
            tls_instead(setup)
        ));
    }
    if first.starts_with(b"HTTP/") {
        let ws = if setup.tls.is_some() { "wss" } else { "ws" };
        return Some(anyhow!(
            "{} answered in HTTP: {} speaks MQTT over WebSocket; add --ws, or use {ws}://",
            setup.describe(),
            port(setup)
        ));
    }
    None
}

/// Whether `not_mqtt` needs more bytes to tell.
pub fn undecided(first: &[u8]) -> bool {
    first.first() != Some(&0x20) && first.len() < 5 && b"HTTP/".starts_with(first)
}

/// The WebSocket upgrade failed.
pub fn websocket(err: &WsError, url: &str, setup: &TransportSetup) -> anyhow::Error {
    let closed = || {
        let other = if setup.tls.is_some() {
            "MQTT over TLS, not WebSocket: drop --ws, or use mqtts://"
        } else {
            "plain MQTT, not WebSocket: drop --ws, or use mqtt://"
        };
        anyhow!(
            "{} closed the connection during the WebSocket upgrade: {} may speak {other}",
            setup.describe(),
            port(setup)
        )
    };
    match err {
        WsError::Io(e) if rustls_error(e).is_some() => before_connack(e, setup),
        WsError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => closed(),
        WsError::Protocol(ProtocolError::HandshakeIncomplete) => closed(),
        // What came back was not HTTP: on a plain connection, most likely a TLS alert.
        WsError::Protocol(ProtocolError::HttparseError(_)) if setup.tls.is_none() => anyhow!(
            "{} did not answer the WebSocket upgrade in HTTP: if {} wants TLS, {}",
            setup.describe(),
            port(setup),
            tls_instead(setup)
        ),
        other => anyhow!("WebSocket handshake with {url} failed: {other}"),
    }
}

fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
}

fn tls_context(setup: &TransportSetup) -> Option<&Context> {
    setup.tls.as_ref().map(|t| t.context.as_ref())
}

fn port(setup: &TransportSetup) -> String {
    match &setup.endpoint {
        Endpoint::Tcp { port, .. } => format!("port {port}"),
        Endpoint::Unix(path) => format!("socket {}", path.display()),
    }
}

/// How to turn TLS on for this connection.
fn tls_instead(setup: &TransportSetup) -> String {
    let scheme = if setup.ws.is_some() { "wss" } else { "mqtts" };
    format!(
        "add --cafile FILE (the CA that signed the broker's certificate) or --tls-use-os-certs, or use {scheme}://"
    )
}

/// How to turn TLS off for this connection.
fn plain_instead(setup: &TransportSetup) -> &'static str {
    if setup.ws.is_some() {
        "for plain WebSocket drop --cafile, --capath and --tls-use-os-certs, or use ws://; or connect to the broker's wss port"
    } else {
        "for plain MQTT drop --cafile, --capath and --tls-use-os-certs, or use mqtt://; or connect to the broker's TLS port, usually 8883"
    }
}

/// A rustls error as a sentence with its fix.
fn rustls(err: &rustls::Error, setup: &TransportSetup) -> String {
    use rustls::Error as E;
    let Some(ctx) = tls_context(setup) else {
        return format!("TLS failed: {err}");
    };
    let name = setup
        .tls
        .as_ref()
        .map(|t| t.server_name.to_str().into_owned())
        .unwrap_or_default();
    let chain: Vec<Option<Described>> = ctx.presented().iter().map(|c| x509::describe(c)).collect();
    let leaf = chain.first().cloned().flatten();
    let about = leaf
        .as_ref()
        .map_or_else(String::new, |c| format!(" ({})", c.subject));
    match err {
        E::InvalidCertificate(cert) => certificate(cert, ctx, &chain, &about, &name),
        E::AlertReceived(alert) => alert_received(*alert, ctx),
        E::InvalidMessage(InvalidMessage::InvalidContentType)
        | E::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => format!(
            "the broker did not answer in TLS: {} speaks plain MQTT or WebSocket; {}",
            port(setup),
            plain_instead(setup)
        ),
        E::NoCertificatesPresented => {
            "the broker sent no certificate: it is not set up for TLS on this port".into()
        }
        other => format!("TLS failed: {other}"),
    }
}

fn certificate(
    err: &CertificateError,
    ctx: &Context,
    chain: &[Option<Described>],
    about: &str,
    name: &str,
) -> String {
    let leaf = chain.first().cloned().flatten();
    let san = if name.parse::<std::net::IpAddr>().is_ok() {
        format!("IP:{name}")
    } else {
        format!("DNS:{name}")
    };
    let cafile = ctx
        .cafile
        .as_ref()
        .map_or_else(|| "ca.pem".to_owned(), |p| p.display().to_string());
    // The CA's key is not ours to know: named after the CA file, as `openssl req` names it.
    let issue = |ca: &str| {
        let key = std::path::Path::new(ca).with_extension("key");
        format!(
            "openssl x509 -req -in server.csr -CA {ca} -CAkey {} -CAcreateserial -days 365 -out server.pem -extfile <(printf 'basicConstraints=CA:FALSE\\nsubjectAltName={san}')",
            key.display()
        )
    };
    let new_csr = format!(
        "openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN={name} -keyout server.key -out server.csr"
    );
    let new_ca = "openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj '/CN=my CA' -days 3650 -keyout ca.key -out ca.pem";
    match err {
        CertificateError::UnknownIssuer => unknown_issuer(ctx, leaf.as_ref(), about),
        CertificateError::NotValidForNameContext { presented, .. } if presented.is_empty() => {
            format!(
                "the broker's certificate{about} names no host (rustls reads only subjectAltName, never the CN): re-issue it with the name in subjectAltName, e.g. {}",
                issue(&cafile)
            )
        }
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<&str> = presented.iter().map(|n| plain_name(n)).collect();
            format!(
                "the broker's certificate is for {} but not for '{name}': connect with -h {} (a name on the certificate), or keep -h and set --servername {}; --insecure skips this check, as a last resort",
                names.join(", "),
                names[0],
                names[0]
            )
        }
        CertificateError::NotValidForName => format!(
            "the broker's certificate{about} is not valid for '{name}': connect with -h and a name on the certificate, or add --servername NAME; --insecure skips this check, as a last resort"
        ),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the broker's certificate{about} expired on {} (it is now {}): renew it on the broker, or check this computer's clock",
            date(not_after),
            date(time)
        ),
        CertificateError::Expired => format!(
            "the broker's certificate{about} has expired: renew it on the broker, or check this computer's clock"
        ),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the broker's certificate{about} is not valid until {} (it is now {}): check this computer's clock",
            date(not_before),
            date(time)
        ),
        // webpki found a trusted CA of the issuer's name, and its key did not sign this.
        CertificateError::BadSignature => format!(
            "the broker's certificate{about} names a trusted CA ({}) as its issuer, but that CA did not sign it: another CA has the same name (two `smq certs` labs, say); pass the CA that really signed it with --cafile",
            ctx.trust
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!(
                "the broker's certificate{about} is not for servers (its extended key usage lacks serverAuth): re-issue it with extendedKeyUsage=serverAuth in the -extfile"
            )
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => format!(
                "the broker's certificate{about} is a CA certificate (basicConstraints CA:TRUE), and rustls refuses a CA as the server's own certificate: give the broker a server certificate signed by that CA: {new_csr} && {}, and keep --cafile {cafile}",
                issue(&cafile)
            ),
            Some(webpki::Error::UnsupportedCertVersion) => {
                version_1(chain, &ctx.trust, about, &cafile, &new_csr, new_ca, &issue)
            }
            _ => format!(
                "the broker's certificate{about} was rejected: {other}; check it with `openssl x509 -noout -text -in FILE`"
            ),
        },
        other => format!("the broker's certificate{about} was rejected: {other}"),
    }
}

fn unknown_issuer(ctx: &Context, leaf: Option<&Described>, about: &str) -> String {
    let trust = &ctx.trust;
    let Some(leaf) = leaf else {
        return format!(
            "the broker's certificate is not signed by a trusted CA ({trust}): pass the CA that signed it with --cafile"
        );
    };
    if leaf.self_issued {
        return format!(
            "the broker's certificate{about} is self-signed and not signed by a trusted CA ({trust}): pass that certificate itself with --cafile, or better, have a CA sign the broker's certificate and pass the CA"
        );
    }
    let held: Vec<Described> = ctx
        .ca_certs
        .iter()
        .filter_map(|c| x509::describe(c))
        .collect();
    let own = ctx
        .presented()
        .first()
        .is_some_and(|p| ctx.ca_certs.contains(p));
    let holds = if own {
        format!(
            "; {} holds the broker's own certificate, not the CA that issued it",
            ctx.cafile
                .as_ref()
                .map_or("--cafile".into(), |p| p.display().to_string())
        )
    } else if held.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = held
            .iter()
            .take(3)
            .map(|c| {
                if c.is_ca || c.self_issued {
                    c.subject.clone()
                } else {
                    format!("{}, which is not a CA certificate", c.subject)
                }
            })
            .collect();
        format!("; it holds {}", list.join("; "))
    };
    format!(
        "the broker's certificate{about} is not signed by a trusted CA: it was issued by {}, which {trust} does not hold{holds}; pass the certificate of {} with --cafile",
        leaf.issuer, leaf.issuer
    )
}

fn version_1(
    chain: &[Option<Described>],
    trust: &str,
    about: &str,
    cafile: &str,
    new_csr: &str,
    new_ca: &str,
    issue: &dyn Fn(&str) -> String,
) -> String {
    let v1 = chain
        .iter()
        .position(|c| c.as_ref().is_some_and(|c| c.version == 1));
    match (v1, v1.and_then(|i| chain[i].as_ref())) {
        (Some(0), Some(c)) if c.self_issued => format!(
            "the broker's certificate ({}) is a self-signed X.509 version 1 certificate, and rustls accepts only version 3: make a v3 CA ({new_ca}; req -x509 writes v3 with CA:TRUE), sign the broker's certificate with it ({new_csr} && {}), and pass --cafile ca.pem",
            c.subject,
            issue("ca.pem")
        ),
        (Some(0), Some(c)) => format!(
            "the broker's certificate ({}, issued by {}) is X.509 version 1, and rustls accepts only version 3: re-issue it as v3 (openssl writes v3 when given extensions): {}",
            c.subject,
            c.issuer,
            issue(cafile)
        ),
        // A version 1 root is fine as a trust anchor; the broker sending one means the client
        // does not trust it yet.
        (Some(_), Some(c)) if c.self_issued => format!(
            "the broker's certificate{about} is not signed by a trusted CA: it chains to {}, an X.509 version 1 CA that rustls accepts only as a trusted CA, never from the broker, and {trust} does not hold it; pass the certificate of {} with --cafile (or re-sign it as a v3 CA with its own key and name: openssl x509 -in CA.pem -signkey CA.key -days 3650 -out CA-v3.pem -extfile <(printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=keyCertSign,cRLSign'))",
            c.subject,
            c.subject
        ),
        (Some(_), Some(c)) => {
            let ca_key = std::path::Path::new(cafile).with_extension("key");
            format!(
                "the intermediate CA certificate {} (issued by {}) that the broker sends is X.509 version 1, and rustls accepts only version 3: re-issue it as v3 with the same key and name, and have the broker send that: openssl x509 -x509toreq -in intermediate.pem -key intermediate.key -out intermediate.csr && openssl x509 -req -in intermediate.csr -CA {cafile} -CAkey {} -CAcreateserial -days 3650 -out intermediate-v3.pem -extfile <(printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=keyCertSign,cRLSign')",
                c.subject,
                c.issuer,
                ca_key.display()
            )
        }
        _ => "a certificate the broker sends is X.509 version 1, and rustls accepts only version 3: re-issue it as v3 (openssl writes v3 when given -extfile)".into(),
    }
}

fn alert_received(alert: AlertDescription, ctx: &Context) -> String {
    use AlertDescription as A;
    let cert = ctx
        .client_cert
        .as_ref()
        .map(|(c, _)| c.display().to_string());
    if let (Some(v1), Some(_)) = (&ctx.client_v1, &cert) {
        if alert != A::CertificateRequired {
            return format!("the broker refused the client certificate ({alert:?} alert): {v1}");
        }
    }
    match (alert, cert) {
        (A::CertificateRequired, _) | (A::HandshakeFailure, None) => format!(
            "the broker wants a client certificate ({alert:?} alert): pass --cert FILE and --key FILE"
        ),
        (
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::AccessDenied
            | A::DecryptError
            | A::HandshakeFailure,
            Some(cert),
        ) => format!(
            "the broker refused the client certificate {cert} ({alert:?} alert): it must be a valid client certificate signed by a CA the broker trusts (its cafile)"
        ),
        (A::ProtocolVersion | A::InsufficientSecurity, _) => format!(
            "the broker ended the TLS handshake ({alert:?} alert): it shares no TLS version or cipher suite with smq; check --tls-version and --ciphers"
        ),
        (other, _) => format!("the broker ended the TLS handshake ({other:?} alert)"),
    }
}

fn date(t: &UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || "an unknown date".into(),
            |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

/// rustls lists names as `DnsName("host")` and `IpAddress(127.0.0.1)`; people read `host`.
fn plain_name(name: &str) -> &str {
    match (name.find('"'), name.rfind('"')) {
        (Some(a), Some(b)) if b > a => &name[a + 1..b],
        _ => name
            .strip_prefix("IpAddress(")
            .and_then(|n| n.strip_suffix(')'))
            .unwrap_or(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_tls_and_http_answers_from_mqtt() {
        assert!(undecided(b""));
        assert!(undecided(b"HT"));
        assert!(!undecided(b"\x20\x02"));
        assert!(!undecided(b"\x15\x03\x03"));
    }

    #[test]
    fn plain_names() {
        assert_eq!(plain_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("other"), "other");
    }
}
