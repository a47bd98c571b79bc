//! The byte pipe under MQTT, for the client and the broker alike: TCP or a Unix socket,
//! optionally TLS, optionally WebSocket, each split into a reader and a writer so that one
//! side can read acknowledgements while a large write is still going out. Who owns what:
//!
//! - `mod.rs`: the stream types ([`Io`], [`Ws`], [`Reader`], [`Writer`]) both sides use.
//! - `setup.rs`: where and how the client connects (plain data, validated before).
//! - `dial.rs`: the client's connect: TCP or Unix, then TLS, then the WebSocket upgrade.
//! - `tls.rs`: the client's rustls configuration; `pem.rs`: certificate and key files (both
//!   sides); `own_cert.rs`: the warning for one of our own certificates in X.509 version 1.
//! - `url.rs`: `mqtt://`, `mqtts://`, `ws://`, `wss://` URLs (-L, and the broker's listeners).
//! - `explain.rs`: connection failures in plain words, with the fix.

pub mod dial;
pub mod explain;
pub mod own_cert;
pub mod pem;
pub mod setup;
pub mod tls;
pub mod url;

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The most of a shared payload one WebSocket frame carries.
const WS_FRAME: usize = 1024 * 1024;

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub type Ws = WebSocketStream<Box<dyn Io>>;

pub enum Reader {
    Stream(Box<dyn AsyncRead + Send + Unpin>),
    Ws(SplitStream<Ws>),
}

pub enum Writer {
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    Ws(SplitSink<Ws, WsMessage>),
}

/// Reader and writer halves of a byte stream (TCP, TLS, Unix).
pub fn split_stream(stream: Box<dyn Io>) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(stream);
    (Reader::Stream(Box::new(r)), Writer::Stream(Box::new(w)))
}

/// Reader and writer halves of a WebSocket carrying MQTT in binary frames.
pub fn split_ws(ws: Ws) -> (Reader, Writer) {
    let (sink, source) = ws.split();
    (Reader::Ws(source), Writer::Ws(sink))
}

impl Reader {
    /// Appends what arrives to `buf`; 0 means the broker closed the connection.
    /// Cancel-safe: a cancelled call has read nothing.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Reader::Stream(r) => {
                // Grow with the traffic: a busy stream reads in 64 KiB chunks, an idle broker
                // connection keeps a small buffer.
                if buf.capacity() - buf.len() < 512 {
                    buf.reserve(buf.capacity().clamp(1024, 64 * 1024));
                }
                r.read_buf(buf).await
            }
            Reader::Ws(source) => loop {
                match source.next().await {
                    Some(Ok(WsMessage::Binary(data))) => {
                        buf.extend_from_slice(&data);
                        return Ok(data.len());
                    }
                    Some(Ok(WsMessage::Close(_))) | None => return Ok(0),
                    Some(Ok(WsMessage::Text(_))) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a WebSocket text frame arrived; MQTT uses binary frames",
                        ));
                    }
                    // Pings are answered by tungstenite itself.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(io::Error::other(e)),
                }
            },
        }
    }
}

impl Writer {
    /// Writes some of `buf` and removes what was written; cancel-safe in the same way.
    pub async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        match self {
            Writer::Stream(w) => {
                w.write_buf(buf).await?;
                if buf.is_empty() {
                    w.flush().await?;
                }
                Ok(())
            }
            Writer::Ws(sink) => {
                let frame = buf.split().freeze();
                sink.send(WsMessage::Binary(frame))
                    .await
                    .map_err(io::Error::other)
            }
        }
    }

    /// Writes some of `chunk`, a payload shared with the caller, and advances it past what was
    /// written; cancel-safe in the same way. Over WebSocket a frame carries at most
    /// `WS_FRAME` bytes of it, so the frame buffer never holds a second copy of a large
    /// payload; MQTT packets may span frames (MQTT 5 §6.0).
    pub async fn write_shared(&mut self, chunk: &mut Bytes) -> io::Result<()> {
        match self {
            Writer::Stream(w) => {
                w.write_buf(chunk).await?;
                if chunk.is_empty() {
                    w.flush().await?;
                }
                Ok(())
            }
            Writer::Ws(sink) => {
                let frame = chunk.split_to(chunk.len().min(WS_FRAME));
                sink.send(WsMessage::Binary(frame))
                    .await
                    .map_err(io::Error::other)
            }
        }
    }

    /// Ends the stream: TLS close_notify, WebSocket close frame, TCP FIN.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Writer::Stream(w) => w.shutdown().await,
            Writer::Ws(sink) => sink.close().await.map_err(io::Error::other),
        }
    }
}
