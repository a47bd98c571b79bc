//! HTTP/1.1 request heads on the WebSocket port, shared by the WebSocket upgrade
//! (`listener`) and HTTP Push (`http`): reading a head up to its blank line with a size cap,
//! parsing it, and the HTTP answer that refuses a request and closes the connection.

use std::io;
use std::time::Duration;

use anyhow::anyhow;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::transport::Io;

/// An HTTP request head larger than this is refused (431): real clients send well under 2 KiB.
pub(super) const MAX_HTTP_HEAD: usize = 16 * 1024;

/// An HTTP answer that ends the connection.
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: u16,
    /// Extra header lines, each ending in CRLF.
    pub headers: &'static str,
    /// Shown to the client as the body and in the broker's error.
    pub why: String,
}

impl Refusal {
    pub fn new(status: u16, why: impl Into<String>) -> Refusal {
        Refusal {
            status,
            headers: "",
            why: why.into(),
        }
    }
}

pub(super) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        // Not in the HTTP registry: Sensor Logger shows the body of a 499 to the phone's user.
        499 => "Rejected",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Sends the refusal, closes, and returns the error for the broker's log.
pub(super) async fn refuse(io: &mut Box<dyn Io>, refusal: Refusal) -> anyhow::Error {
    let body = format!("{}\n", refusal.why);
    let response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{body}",
        refusal.status,
        reason_phrase(refusal.status),
        body.len(),
        refusal.headers,
    );
    // Write errors are ignored: the client may be gone, and the connection ends either way.
    if io.write_all(response.as_bytes()).await.is_ok() && io.shutdown().await.is_ok() {
        // Read what the client still sends (a request body, say): closing a socket with unread
        // data sends a TCP reset, which can destroy the response before the client reads it.
        let mut scratch = [0u8; 4096];
        let mut budget: usize = 64 * 1024;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while budget > 0 {
                match io.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => budget = budget.saturating_sub(n),
                }
            }
        })
        .await;
    }
    anyhow!(
        "refused the HTTP request with {} {}: {}",
        refusal.status,
        reason_phrase(refusal.status),
        refusal.why
    )
}

pub(super) enum HeadError {
    /// Closed before sending anything: port scanners and health checks do this.
    Closed,
    Io(io::Error),
    Refuse(Refusal),
}

/// Reads up to and including the blank line that ends an HTTP request head, starting with
/// `pending` (bytes of it already read); returns the head and whatever was read after it.
pub(super) async fn read_head(
    io: &mut Box<dyn Io>,
    pending: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut buf = pending;
    buf.reserve(1024);
    let mut chunk = [0u8; 2048];
    let mut searched = 0;
    loop {
        if buf.is_empty() || buf.len() == searched {
            let n = io.read(&mut chunk).await.map_err(HeadError::Io)?;
            if n == 0 {
                return Err(if buf.is_empty() {
                    HeadError::Closed
                } else {
                    HeadError::Refuse(Refusal::new(400, "the HTTP request ended early"))
                });
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        // Empty lines before a request line are skipped (RFC 9112 §2.2): some clients send
        // a CRLF after a body.
        let blank = buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 {
            buf.drain(..blank);
            searched = 0;
            continue;
        }
        // Fail fast on a client of another protocol instead of waiting for the timeout:
        // every HTTP request starts with an upper-case method name.
        if !buf[0].is_ascii_uppercase() {
            let why = if buf[0] == 0x16 {
                "this is a TLS handshake, but this port speaks plain WebSocket (ws://, not wss://)"
            } else {
                "this port speaks MQTT over WebSocket, not MQTT over TCP: connect with ws://"
            };
            return Err(HeadError::Refuse(Refusal::new(400, why)));
        }
        let from = searched.saturating_sub(3);
        let end = find(&buf[from..], b"\r\n\r\n").map(|i| from + i + 4);
        searched = buf.len();
        if let Some(end) = end.filter(|&end| end <= MAX_HTTP_HEAD) {
            let tail = buf.split_off(end);
            return Ok((buf, tail));
        }
        if buf.len() > MAX_HTTP_HEAD {
            return Err(HeadError::Refuse(Refusal::new(
                431,
                format!("the HTTP request head is larger than {MAX_HTTP_HEAD} bytes"),
            )));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The parts of an HTTP/1.1 request head the WebSocket handshake (and later the HTTP push)
/// looks at.
#[derive(Debug)]
pub struct HttpHead {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) version: String,
    headers: Vec<(String, String)>,
}

impl HttpHead {
    pub(super) fn parse(head: &[u8]) -> Result<HttpHead, Refusal> {
        let bad = |why: &str| Refusal::new(400, why);
        let text = std::str::from_utf8(head)
            .map_err(|_| bad("the HTTP request head is not valid UTF-8"))?;
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("the HTTP request line is not 'METHOD TARGET HTTP/1.1'"));
        };
        if !version.starts_with("HTTP/") || method.is_empty() || target.is_empty() {
            return Err(bad("the HTTP request line is not 'METHOD TARGET HTTP/1.1'"));
        }
        let mut headers = Vec::new();
        for line in lines.take_while(|l| !l.is_empty()) {
            // Folded continuation lines are obsolete, and RFC 9112 lets servers refuse them.
            let (name, value) = line
                .split_once(':')
                .filter(|(name, _)| !name.is_empty() && !name.contains([' ', '\t']))
                .ok_or_else(|| bad("an HTTP header line is malformed"))?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(HttpHead {
            method: method.to_owned(),
            target: target.to_owned(),
            version: version.to_owned(),
            headers,
        })
    }

    /// Every value of a header, split at commas, for list-valued headers that may also be
    /// repeated (Connection, Sec-WebSocket-Protocol, ...).
    pub(super) fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
