//! The listeners end to end: real sockets on 127.0.0.1, real TLS with certificates made at test
//! time, real WebSocket clients. The fixtures here (`Certs`, `UPGRADE`, `spec`, `is_usage`)
//! serve the unit tests of `spec.rs` and `websocket.rs` too.

use super::*;
use std::path::PathBuf;
use std::sync::Arc;

use crate::broker::http_head::MAX_HTTP_HEAD;
use crate::exit::Failure;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub(super) fn is_usage(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| matches!(e.downcast_ref::<Failure>(), Some(Failure::Usage(_))))
}

pub(super) fn spec(url: &str) -> ListenSpec {
    parse_listen(url).expect("a valid --listen URL")
}

pub(super) const UPGRADE: &str = "GET /any/path?x=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\
    Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM
/// files in a temp dir.
struct Certs {
    dir: tempfile::TempDir,
    ca_der: CertificateDer<'static>,
    client_der: CertificateDer<'static>,
    client_key: String,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "listener test CA");
        let ca_key = KeyPair::generate().expect("a CA key");
        let ca = ca_params.self_signed(&ca_key).expect("a CA cert");

        let leaf = |sans: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(sans).expect("leaf params");
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().expect("a leaf key");
            let cert = params.signed_by(&key, &ca, &ca_key).expect("a leaf cert");
            (cert, key)
        };
        let (server, server_key) = leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client, client_key) = leaf(
            Vec::new(),
            "phone-1 ünïcode",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("writing a test cert");
        };
        write("ca.pem", &ca.pem());
        write("server.pem", &server.pem());
        write("server.key", &server_key.serialize_pem());
        write("client.key", &client_key.serialize_pem());
        Certs {
            ca_der: ca.der().clone(),
            client_der: client.der().clone(),
            client_key: client_key.serialize_pem(),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn files(&self, cafile: bool, require_certificate: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            cafile: cafile.then(|| self.path("ca.pem")),
            require_certificate,
        }
    }

    fn client_config(&self, with_cert: bool) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("the test CA");
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots);
        let config = if with_cert {
            let key =
                PrivateKeyDer::from_pem_slice(self.client_key.as_bytes()).expect("the client key");
            builder
                .with_client_auth_cert(vec![self.client_der.clone()], key)
                .expect("client auth")
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(config)
    }

    async fn connect_tls(
        &self,
        addr: SocketAddr,
        with_cert: bool,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(self.client_config(with_cert))
            .connect(ServerName::try_from("localhost").expect("a name"), tcp)
            .await
    }
}

async fn bind_one(url: &str, tls: Option<Arc<ServerConfig>>) -> Listener {
    let mut listeners = bind(&[spec(url)], tls).await.expect("binding");
    listeners.pop().expect("one listener")
}

/// Accepts one connection and upgrades it, as the broker will.
async fn serve_one(listener: &Listener) -> anyhow::Result<Accepted> {
    let (stream, peer) = listener.accept().await?;
    assert!(peer.ip().is_loopback());
    assert_eq!(stream.nodelay().ok(), Some(true));
    match listener.upgrader().upgrade(stream).await? {
        Upgraded::Mqtt(accepted) => Ok(accepted),
        Upgraded::Http(start) => Err(anyhow!("an HTTP request: {:?}", start.head)),
    }
}

/// Bytes from the client arrive through the Reader; bytes given to the Writer reach the
/// client.
async fn check_stream<S: AsyncRead + AsyncWrite + Unpin>(server: &mut Accepted, client: &mut S) {
    client.write_all(b"\x10hello").await.expect("client write");
    client.flush().await.expect("client flush");
    let mut got = BytesMut::new();
    while got.len() < 6 {
        let n = server.reader.read(&mut got).await.expect("server read");
        assert!(n > 0, "closed early");
    }
    assert_eq!(&got[..], b"\x10hello");
    let mut out = BytesMut::from(&b"\x20\x02\x00\x00"[..]);
    while !out.is_empty() {
        server.writer.write(&mut out).await.expect("server write");
    }
    let mut reply = [0u8; 4];
    client.read_exact(&mut reply).await.expect("client read");
    assert_eq!(&reply, b"\x20\x02\x00\x00");
    server.writer.shutdown().await.expect("server shutdown");
    let mut rest = Vec::new();
    // TLS may report the close as an error when the other side did not answer it.
    let _ = client.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
}

async fn check_ws<S: AsyncRead + AsyncWrite + Unpin>(
    server: &mut Accepted,
    client: &mut WebSocketStream<S>,
) {
    client
        .send(Message::binary(&b"\x10hello"[..]))
        .await
        .expect("client send");
    let mut got = BytesMut::new();
    server.reader.read(&mut got).await.expect("server read");
    assert_eq!(&got[..], b"\x10hello");
    let mut out = BytesMut::from(&b"\x20\x02\x00\x00"[..]);
    server.writer.write(&mut out).await.expect("server write");
    match client.next().await {
        Some(Ok(Message::Binary(data))) => assert_eq!(&data[..], b"\x20\x02\x00\x00"),
        other => panic!("expected a binary frame, got {other:?}"),
    }
    server.writer.shutdown().await.expect("server close");
    assert!(matches!(client.next().await, Some(Ok(Message::Close(_)))));
}

#[tokio::test]
async fn mqtt_over_tcp() {
    let listener = bind_one("mqtt://127.0.0.1:0", None).await;
    assert_eq!(listener.scheme(), Scheme::Mqtt);
    assert_ne!(listener.local_addr().port(), 0);
    assert_eq!(
        listener.url(),
        format!("mqtt://127.0.0.1:{}", listener.local_addr().port())
    );
    assert!(listener.lan_urls().is_empty());
    let (server, client) = tokio::join!(
        serve_one(&listener),
        TcpStream::connect(listener.local_addr())
    );
    let (mut server, mut client) = (server.expect("upgrade"), client.expect("connect"));
    assert_eq!(server.cert_cn, None);
    check_stream(&mut server, &mut client).await;
}

async fn ws_client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &str,
    offer: Option<&str>,
) -> anyhow::Result<(WebSocketStream<S>, Option<String>)> {
    let mut request = url.into_client_request()?;
    if let Some(offer) = offer {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(offer)?);
    }
    let (ws, response) = tokio_tungstenite::client_async(request, stream).await?;
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((ws, chosen))
}

#[tokio::test]
async fn mqtt_over_websocket_any_path_and_subprotocol() {
    let listener = bind_one("ws://127.0.0.1:0", None).await;
    let addr = listener.local_addr();
    let cases = [
        ("/mqtt", Some("mqtt"), Some("mqtt")),
        ("/", Some("mqttv3.1"), Some("mqttv3.1")),
        ("/some/other/path?x=1", Some("chat, mqtt"), Some("mqtt")),
        ("/", None, None),
    ];
    for (path, offer, chosen) in cases {
        let url = format!("ws://127.0.0.1:{}{path}", addr.port());
        let client = async {
            let tcp = TcpStream::connect(addr).await?;
            ws_client(tcp, &url, offer).await
        };
        let (server, client) = tokio::join!(serve_one(&listener), client);
        let (mut server, (mut client, got)) =
            (server.expect("upgrade"), client.expect("ws connect"));
        assert_eq!(got.as_deref(), chosen, "{path} {offer:?}");
        check_ws(&mut server, &mut client).await;
    }
}

/// Sends `request` to a fresh connection and returns the whole answer.
async fn raw_exchange(listener: &Listener, request: &[u8]) -> (anyhow::Error, String) {
    let client = async {
        let mut tcp = TcpStream::connect(listener.local_addr()).await?;
        tcp.write_all(request).await?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await?;
        io::Result::Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    let (server, client) = tokio::join!(serve_one(listener), client);
    let Err(err) = server else {
        panic!("the server accepted {request:?}")
    };
    (err, client.expect("the client read the answer"))
}

#[tokio::test]
async fn websocket_port_answers_plain_http_and_garbage() {
    let listener = bind_one("ws://127.0.0.1:0", None).await;
    let (err, answer) = raw_exchange(&listener, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Upgrade: websocket\r\n"), "{answer}");
    assert!(
        answer.ends_with("connect with a WebSocket client\n"),
        "{answer}"
    );
    assert!(err.to_string().contains("426"), "{err}");

    // A body the broker never reads must not turn the close into a reset.
    let body = "x".repeat(20_000);
    let post = format!(
        "POST /data HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (_, answer) = raw_exchange(&listener, post.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");

    let (err, answer) = raw_exchange(&listener, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c").await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(err.to_string().contains("not MQTT over TCP"), "{err}");

    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(MAX_HTTP_HEAD));
    let (_, answer) = raw_exchange(&listener, huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
}

#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_kept() {
    let listener = bind_one("ws://127.0.0.1:0", None).await;
    let mut bytes = format!("{UPGRADE}\r\n").into_bytes();
    // A masked binary frame (RFC 6455 §5.3) in the same write as the request.
    let mask = [1u8, 2, 3, 4];
    bytes.extend_from_slice(&[0x82, 0x80 | 6]);
    bytes.extend_from_slice(&mask);
    bytes.extend(
        b"\x10hello"
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m),
    );
    let client = async {
        let mut tcp = TcpStream::connect(listener.local_addr()).await?;
        tcp.write_all(&bytes).await?;
        io::Result::Ok(tcp)
    };
    let (server, client) = tokio::join!(serve_one(&listener), client);
    let (mut server, _client) = (server.expect("upgrade"), client.expect("connect"));
    let mut got = BytesMut::new();
    server.reader.read(&mut got).await.expect("server read");
    assert_eq!(&got[..], b"\x10hello");
}

#[tokio::test]
async fn with_http_other_requests_are_handed_over_and_upgrades_still_work() {
    let mut listener = bind_one("ws://127.0.0.1:0", None).await;
    listener.serve_http();
    let post = b"POST /data HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    let client = async {
        let mut tcp = TcpStream::connect(listener.local_addr()).await?;
        tcp.write_all(post).await?;
        io::Result::Ok(tcp)
    };
    let (server, _client) = tokio::join!(
        async {
            let (stream, _) = listener.accept().await?;
            listener.upgrade(stream).await
        },
        client
    );
    match server.expect("handed over") {
        Upgraded::Http(start) => {
            assert_eq!(
                (start.head.method.as_str(), start.head.target.as_str()),
                ("POST", "/data")
            );
            assert_eq!(start.tail, b"{}");
        }
        Upgraded::Mqtt(_) => panic!("a POST became an MQTT connection"),
    }
    let client = async {
        let mut tcp = TcpStream::connect(listener.local_addr()).await?;
        tcp.write_all(format!("{UPGRADE}\r\n").as_bytes()).await?;
        io::Result::Ok(tcp)
    };
    let (server, _client) = tokio::join!(serve_one(&listener), client);
    server.expect("the upgrade still works");
}

#[tokio::test]
async fn a_silent_client_times_out() {
    let mut listener = bind_one("ws://127.0.0.1:0", None).await;
    listener.set_handshake_timeout(Duration::from_millis(200));
    let client = TcpStream::connect(listener.local_addr());
    let (server, client) = tokio::join!(serve_one(&listener), client);
    let err = server.err().expect("a timeout");
    assert!(err.to_string().contains("within 0.2 s"), "{err}");
    let mut rest = Vec::new();
    let n = client
        .expect("connect")
        .read_to_end(&mut rest)
        .await
        .expect("EOF");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn mqtt_over_tls() {
    let certs = Certs::new();
    let tls = server_tls(&certs.files(false, false)).expect("server TLS");
    let listener = bind_one("mqtts://127.0.0.1:0", Some(tls)).await;
    let (server, client) = tokio::join!(
        serve_one(&listener),
        certs.connect_tls(listener.local_addr(), false)
    );
    let (mut server, mut client) = (server.expect("upgrade"), client.expect("TLS"));
    assert_eq!(server.cert_cn, None);
    check_stream(&mut server, &mut client).await;
}

#[tokio::test]
async fn client_certificates_required() {
    let certs = Certs::new();
    let tls = server_tls(&certs.files(true, true)).expect("server TLS");
    let listener = bind_one("mqtts://127.0.0.1:0", Some(tls)).await;

    let (server, client) = tokio::join!(
        serve_one(&listener),
        certs.connect_tls(listener.local_addr(), true)
    );
    let (mut server, mut client) = (server.expect("upgrade"), client.expect("TLS"));
    assert_eq!(server.cert_cn.as_deref(), Some("phone-1 ünïcode"));
    check_stream(&mut server, &mut client).await;

    let client = async {
        // With TLS 1.3 the client may finish before the server refuses; then the refusal
        // arrives as the first read.
        let mut tls = certs.connect_tls(listener.local_addr(), false).await?;
        let mut byte = [0u8; 1];
        tls.read(&mut byte).await
    };
    let (server, client) = tokio::join!(serve_one(&listener), client);
    let err = server.err().expect("refused without a client certificate");
    assert!(err.to_string().contains("sent no certificate"), "{err}");
    assert!(!matches!(client, Ok(n) if n > 0));
}

#[tokio::test]
async fn client_certificates_optional() {
    let certs = Certs::new();
    let tls = server_tls(&certs.files(true, false)).expect("server TLS");
    let listener = bind_one("mqtts://127.0.0.1:0", Some(tls)).await;
    for (with_cert, cn) in [(true, Some("phone-1 ünïcode")), (false, None)] {
        let (server, client) = tokio::join!(
            serve_one(&listener),
            certs.connect_tls(listener.local_addr(), with_cert)
        );
        let (mut server, mut client) = (server.expect("upgrade"), client.expect("TLS"));
        assert_eq!(server.cert_cn.as_deref(), cn);
        check_stream(&mut server, &mut client).await;
    }
}

#[tokio::test]
async fn mqtt_over_secure_websocket() {
    let certs = Certs::new();
    let tls = server_tls(&certs.files(true, true)).expect("server TLS");
    let listener = bind_one("wss://127.0.0.1:0", Some(tls)).await;
    let url = format!("wss://localhost:{}/mqtt", listener.local_addr().port());
    let client = async {
        let tls = certs.connect_tls(listener.local_addr(), true).await?;
        ws_client(tls, &url, Some("mqtt")).await
    };
    let (server, client) = tokio::join!(serve_one(&listener), client);
    let (mut server, (mut client, chosen)) =
        (server.expect("upgrade"), client.expect("wss connect"));
    assert_eq!(chosen.as_deref(), Some("mqtt"));
    assert_eq!(server.cert_cn.as_deref(), Some("phone-1 ünïcode"));
    check_ws(&mut server, &mut client).await;
}

#[tokio::test]
async fn binding_errors() {
    let err = bind(
        &[spec("mqtt://127.0.0.1:0"), spec("wss://127.0.0.1:0")],
        None,
    )
    .await
    .err()
    .expect("TLS is needed");
    assert!(is_usage(&err));
    assert_eq!(
        err.to_string(),
        "--listen wss://127.0.0.1:0 needs --cert and --key"
    );

    let taken = bind_one("mqtt://127.0.0.1:0", None).await;
    let again = format!("ws://{}", taken.local_addr());
    let err = bind(&[spec(&again)], None)
        .await
        .err()
        .expect("port in use");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("cannot listen on {again}: ")),
        "{msg}"
    );
    assert!(msg.contains("port is taken"), "{msg}");

    let all = bind_one("mqtt://0.0.0.0:0", None).await;
    for url in all.lan_urls() {
        assert!(url.starts_with("mqtt://"), "{url}");
        assert!(
            url.ends_with(&format!(":{}", all.local_addr().port())),
            "{url}"
        );
        assert!(!url.contains("127.0.0.1"), "{url}");
    }
}

#[test]
fn tls_file_errors_name_the_file() {
    let certs = Certs::new();
    let mut files = certs.files(false, false);
    files.cert = certs.path("missing.pem");
    let err = format!("{:#}", server_tls(&files).expect_err("missing cert"));
    assert!(
        err.contains("reading certificate") && err.contains("missing.pem"),
        "{err}"
    );

    let mut files = certs.files(false, false);
    files.key = certs.path("server.pem");
    let err = format!("{:#}", server_tls(&files).expect_err("no key"));
    assert!(
        err.contains("reading key") && err.contains("no PEM private key"),
        "{err}"
    );

    let mut files = certs.files(false, false);
    files.key = certs.path("client.key");
    let err = format!("{:#}", server_tls(&files).expect_err("wrong key"));
    assert!(err.contains("do not belong together"), "{err}");

    let mut files = certs.files(true, false);
    files.cafile = Some(certs.path("server.key"));
    let err = format!("{:#}", server_tls(&files).expect_err("no CA"));
    assert!(
        err.contains("CA file") && err.contains("server.key"),
        "{err}"
    );

    let err = server_tls(&certs.files(false, true)).expect_err("require without CA");
    assert!(is_usage(&err));
    assert!(err.to_string().contains("needs --cafile"), "{err}");
}
