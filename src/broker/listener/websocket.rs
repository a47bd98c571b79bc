//! MQTT over WebSocket on the server side: the upgrade handshake (RFC 6455 §4.2) on any path,
//! the subprotocol answer, tungstenite's limits, and the cap on what a client may send before
//! its CONNECT is in (`Capped`, lifted by `Gate::open`).
//!
//! The handshake is done here rather than by tungstenite's `accept_hdr_async`: tungstenite
//! closes a non-upgrade request without any HTTP answer, and the WebSocket port must answer
//! plain HTTP: a clean 4xx, or with `--http` Sensor Logger's HTTP Push (`Handshake::Http`,
//! served by `broker::http`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::HttpStart;
use crate::broker::http_head::{HeadError, HttpHead, Refusal, read_head, refuse};
use crate::transport::{Io, Ws};

/// The largest MQTT packet: 1 type byte, 4 length bytes, 268,435,455 bytes of body.
const MAX_MQTT_PACKET: usize = crate::mqtt::MAX_PACKET;

/// A WebSocket message may carry a maximum-size packet plus small packets a client coalesced
/// into the same message; the broker's own packet-size limit applies after this.
const MAX_WS_MESSAGE: usize = MAX_MQTT_PACKET + 64 * 1024;

/// The WebSocket subprotocols MQTT clients offer: `mqtt` (MQTT 3.1.1 and 5) and `mqttv3.1`
/// (MQTT 3.1, still sent by older Paho clients).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// What the first request on a WebSocket port turned out to be.
pub(super) enum Handshake {
    Ws(Ws, Gate),
    Http(HttpStart),
}

/// What a WebSocket client may send before its CONNECT is in: the largest CONNECT taken, with
/// room for its framing and for packets sent right behind it. tungstenite holds a whole
/// message before handing it over, up to the largest MQTT packet: without this cap an
/// unauthenticated client could make it hold 256 MB.
const WS_BEFORE_CONNECT: u64 = 256 * 1024;

/// Lifts a connection's `WS_BEFORE_CONNECT` cap once its CONNECT is in.
#[derive(Debug, Clone)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    pub fn open(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The stream under tungstenite, counting what it reads while the gate is shut.
struct Capped {
    io: Box<dyn Io>,
    read: u64,
    open: Arc<AtomicBool>,
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let open = self.open.load(Ordering::Relaxed);
        if !open && self.read >= WS_BEFORE_CONNECT {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {WS_BEFORE_CONNECT} bytes before CONNECT"),
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if !open {
            self.read += (buf.filled().len() - before) as u64;
        }
        polled
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Reads the HTTP request and answers it: 101 for a WebSocket upgrade on any path; with `http`,
/// any other request goes to the HTTP Push receiver; a 4xx with a one-line reason otherwise.
pub(super) async fn accept_websocket(mut io: Box<dyn Io>, http: bool) -> anyhow::Result<Handshake> {
    let (head, tail) = match read_head(&mut io, Vec::new()).await {
        Ok(read) => read,
        Err(HeadError::Closed) => {
            bail!("the client closed the connection before a WebSocket request")
        }
        Err(HeadError::Io(e)) => return Err(anyhow!("reading the WebSocket request: {e}")),
        Err(HeadError::Refuse(refusal)) => return Err(refuse(&mut io, refusal).await),
    };
    let request = match HttpHead::parse(&head) {
        Ok(request) => request,
        Err(refusal) => return Err(refuse(&mut io, refusal).await),
    };
    if http && !request.has_token("Upgrade", "websocket") {
        return Ok(Handshake::Http(HttpStart {
            io,
            head: request,
            tail,
        }));
    }
    let response = match websocket_response(&request) {
        Ok(response) => response,
        Err(refusal) => return Err(refuse(&mut io, refusal).await),
    };
    io.write_all(response.as_bytes())
        .await
        .context("answering the WebSocket upgrade")?;
    io.flush()
        .await
        .context("answering the WebSocket upgrade")?;
    // Bytes already read past the head are the client's first frames; tungstenite starts with
    // them.
    let open = Arc::new(AtomicBool::new(false));
    let capped: Box<dyn Io> = Box::new(Capped {
        io,
        read: tail.len() as u64,
        open: open.clone(),
    });
    let ws = WebSocketStream::from_partially_read(capped, tail, Role::Server, Some(ws_config()));
    Ok(Handshake::Ws(ws.await, Gate(open)))
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
        // tungstenite allocates the read buffer up front for every connection, fills it with
        // zeros and keeps it while the connection is idle; its 128 KiB default would make
        // thousands of idle WebSocket clients cost hundreds of MiB. A frame larger than this
        // grows the buffer to the frame's size for its read, so large messages still arrive in
        // few reads; small ones come a few frames per read. 256 rather than 1 KiB: 820 bytes
        // less per idle WebSocket connection, for about 5% more broker CPU on a flood of
        // 100-byte QoS 0 messages over WebSocket (none measurable at QoS 1).
        .read_buffer_size(256)
}

/// The 101 answer to a valid WebSocket upgrade (RFC 6455 §4.2), on any path.
fn websocket_response(request: &HttpHead) -> Result<String, Refusal> {
    if !request.has_token("Upgrade", "websocket") {
        return Err(Refusal {
            status: 426,
            headers: "Upgrade: websocket\r\n",
            why: format!(
                "{} {}: this port speaks MQTT over WebSocket; connect with a WebSocket client",
                request.method, request.target
            ),
        });
    }
    if request.method != "GET" {
        return Err(Refusal {
            status: 405,
            headers: "Allow: GET\r\n",
            why: format!("a WebSocket upgrade must be a GET, not {}", request.method),
        });
    }
    if request.version != "HTTP/1.1" {
        return Err(Refusal::new(
            400,
            format!(
                "a WebSocket upgrade needs HTTP/1.1, not {}",
                request.version
            ),
        ));
    }
    if !request.has_token("Connection", "upgrade") {
        return Err(Refusal::new(
            400,
            "a WebSocket upgrade needs 'Connection: Upgrade'",
        ));
    }
    if !request.has_token("Sec-WebSocket-Version", "13") {
        return Err(Refusal {
            status: 426,
            headers: "Sec-WebSocket-Version: 13\r\n",
            why: "only WebSocket version 13 is supported".into(),
        });
    }
    let key = request
        .header("Sec-WebSocket-Key")
        .ok_or_else(|| Refusal::new(400, "the WebSocket upgrade has no Sec-WebSocket-Key"))?;
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(protocol) = subprotocol(request) {
        response.push_str("Sec-WebSocket-Protocol: ");
        response.push_str(protocol);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    Ok(response)
}

/// The first MQTT subprotocol the client offers, spelled as offered. Without one the upgrade
/// still succeeds with no subprotocol: some clients offer none, and those that insist on one
/// will refuse the answer themselves.
fn subprotocol(request: &HttpHead) -> Option<&str> {
    request
        .tokens("Sec-WebSocket-Protocol")
        .find(|offered| SUBPROTOCOLS.iter().any(|p| p.eq_ignore_ascii_case(offered)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::listener::tests::UPGRADE;

    fn head(text: &str) -> HttpHead {
        HttpHead::parse(text.as_bytes()).expect("a valid request head")
    }

    #[test]
    fn answers_an_upgrade_on_any_path_with_the_offered_subprotocol() {
        let response = websocket_response(&head(&format!("{UPGRADE}\r\n"))).expect("101");
        assert!(response.starts_with("HTTP/1.1 101 "), "{response}");
        // The example of RFC 6455 §1.3.
        assert!(
            response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{response}"
        );
        assert!(!response.contains("Sec-WebSocket-Protocol"), "{response}");
        assert!(response.ends_with("\r\n\r\n"));

        let offers = [
            ("Sec-WebSocket-Protocol: mqtt\r\n", Some("mqtt")),
            ("Sec-WebSocket-Protocol: mqttv3.1\r\n", Some("mqttv3.1")),
            ("Sec-WebSocket-Protocol: chat, MQTT\r\n", Some("MQTT")),
            (
                "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: mqttv3.1, mqtt\r\n",
                Some("mqttv3.1"),
            ),
            ("Sec-WebSocket-Protocol: chat\r\n", None),
        ];
        for (header, chosen) in offers {
            let request = head(&format!("{UPGRADE}{header}\r\n"));
            assert_eq!(subprotocol(&request), chosen, "{header}");
        }
    }

    #[test]
    fn refuses_requests_that_are_not_upgrades() {
        let cases = [
            ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 426),
            ("POST /data HTTP/1.1\r\nContent-Length: 2\r\n\r\n", 426),
            (
                "POST / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                405,
            ),
            (
                "GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                400,
            ),
            ("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n\r\n",
                426,
            ),
            (
                "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
                400,
            ),
        ];
        for (request, status) in cases {
            let refusal = websocket_response(&head(request)).expect_err(request);
            assert_eq!(refusal.status, status, "{request}");
        }
        for bad in [
            "GET /\r\n\r\n",
            "GET / HTTP/1.1 extra\r\n\r\n",
            "GET / FTP\r\n\r\n",
            "GET / HTTP/1.1\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nno colon\r\n\r\n",
        ] {
            let refusal = HttpHead::parse(bad.as_bytes()).expect_err(bad);
            assert_eq!(refusal.status, 400, "{bad}");
        }
    }
}
