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
mod halves;
pub mod own_cert;
pub mod pem;
pub mod setup;
pub mod tls;
pub mod url;

use std::future::{Future, poll_fn};
use std::io;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use halves::{ReadHalf, WriteHalf};

/// The most of a shared payload one WebSocket frame carries.
const WS_FRAME: usize = 1024 * 1024;

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub type Ws = WebSocketStream<Box<dyn Io>>;

pub enum Reader {
    Stream(ReadHalf),
    Ws(SplitStream<Ws>),
}

/// The sending half. Its writes are cancel-safe: a write cancelled while it waits (for the
/// socket, or for room in the WebSocket sink) has taken nothing, or what it took is buffered
/// below and `unflushed` says so, for the next write to push out.
pub struct Writer {
    sink: Sink,
    /// Bytes were accepted into the TLS session or the WebSocket sink and not yet flushed to
    /// the socket: the caller has output pending even when its own buffer is empty.
    unflushed: bool,
}

enum Sink {
    Stream(WriteHalf),
    /// Boxed: it is 64 bytes, and the broker keeps a writer in every connection's task for
    /// the connection's life, most of them plain streams.
    Ws(Box<SplitSink<Ws, WsMessage>>),
}

/// Reader and writer halves of a byte stream (TCP, TLS, Unix).
pub fn split_stream(stream: Box<dyn Io>) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(stream);
    halves(ReadHalf::Locked(r), WriteHalf::Locked(w))
}

/// Reader and writer halves of a plain TCP connection, which need no lock between them.
pub fn split_tcp(stream: TcpStream) -> (Reader, Writer) {
    let (r, w) = stream.into_split();
    halves(ReadHalf::Tcp(r), WriteHalf::Tcp(w))
}

fn halves(r: ReadHalf, w: WriteHalf) -> (Reader, Writer) {
    let writer = Writer {
        sink: Sink::Stream(w),
        unflushed: false,
    };
    (Reader::Stream(r), writer)
}

/// Reader and writer halves of a WebSocket carrying MQTT in binary frames.
pub fn split_ws(ws: Ws) -> (Reader, Writer) {
    let (sink, source) = ws.split();
    let writer = Writer {
        sink: Sink::Ws(Box::new(sink)),
        unflushed: false,
    };
    (Reader::Ws(source), writer)
}

impl Reader {
    /// Appends what arrives to `buf`; 0 means the broker closed the connection.
    /// Cancel-safe: a cancelled call has read nothing.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// `read` as a poll: it keeps nothing between polls, so a caller waiting on it holds no
    /// future for it (the broker waits on every idle connection). Each poll makes the read
    /// future afresh: `read_buf` and `next` keep no state of their own between polls either.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match self {
            Reader::Stream(r) => {
                // Grow with the traffic: a busy stream reads in 64 KiB chunks, an idle broker
                // connection keeps a small buffer.
                if buf.capacity() - buf.len() < 512 {
                    buf.reserve(buf.capacity().clamp(1024, 64 * 1024));
                }
                std::pin::pin!(r.read_buf(buf)).poll(cx)
            }
            Reader::Ws(source) => loop {
                match ready!(source.poll_next_unpin(cx)) {
                    // An empty frame carries no bytes, and a read of 0 would mean the end.
                    Some(Ok(WsMessage::Binary(data))) if data.is_empty() => {}
                    Some(Ok(WsMessage::Binary(data))) => {
                        buf.extend_from_slice(&data);
                        return Poll::Ready(Ok(data.len()));
                    }
                    Some(Ok(WsMessage::Close(_))) | None => return Poll::Ready(Ok(0)),
                    Some(Ok(WsMessage::Text(_))) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a WebSocket text frame arrived; MQTT uses binary frames",
                        )));
                    }
                    // Pings are answered by tungstenite itself.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                }
            },
        }
    }
}

impl Writer {
    /// Whether something written is still to be flushed: call `write` (with an empty buffer
    /// if need be) until it is not.
    pub fn unflushed(&self) -> bool {
        self.unflushed
    }

    /// Writes some of `buf` and removes what was written, then flushes once `buf` is empty;
    /// cancel-safe (see [`Writer`]).
    pub async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        self.put(buf, |b| b.split().freeze()).await
    }

    /// Writes all of `buf` and flushes it: for whoever has nothing else to wait for meanwhile.
    pub async fn write_all(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        while !buf.is_empty() || self.unflushed {
            self.write(buf).await?;
        }
        Ok(())
    }

    /// Writes some of `chunk`, a payload shared with the caller, and advances it past what was
    /// written; cancel-safe in the same way. Over WebSocket a frame carries at most
    /// `WS_FRAME` bytes of it, so the frame buffer never holds a second copy of a large
    /// payload; MQTT packets may span frames (MQTT 5 §6.0).
    pub async fn write_shared(&mut self, chunk: &mut Bytes) -> io::Result<()> {
        self.put(chunk, |c| c.split_to(c.len().min(WS_FRAME))).await
    }

    /// `write` and `write_shared`: `frame` takes what one WebSocket frame carries.
    async fn put<B: Buf>(
        &mut self,
        buf: &mut B,
        frame: impl FnOnce(&mut B) -> Bytes,
    ) -> io::Result<()> {
        if buf.has_remaining() {
            match &mut self.sink {
                Sink::Stream(w) => {
                    w.write_buf(buf).await?;
                }
                Sink::Ws(sink) => {
                    // Room first, then the frame: a cancelled wait for room has taken nothing.
                    poll_fn(|cx| sink.poll_ready_unpin(cx))
                        .await
                        .map_err(io::Error::other)?;
                    sink.start_send_unpin(WsMessage::Binary(frame(buf)))
                        .map_err(io::Error::other)?;
                }
            }
            self.unflushed = true;
        }
        if !buf.has_remaining() {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.unflushed {
            return Ok(());
        }
        match &mut self.sink {
            Sink::Stream(w) => w.flush().await?,
            Sink::Ws(sink) => poll_fn(|cx| sink.poll_flush_unpin(cx))
                .await
                .map_err(io::Error::other)?,
        }
        self.unflushed = false;
        Ok(())
    }

    /// Ends the stream: TLS close_notify, WebSocket close frame, TCP FIN.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stream(w) => w.shutdown().await,
            Sink::Ws(sink) => sink.close().await.map_err(io::Error::other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::*;

    /// A write whose flush is cancelled (another select! branch won while the socket was
    /// full) leaves its bytes in the layer below, as TLS does; the writer remembers, and the
    /// next write, even of nothing, sends them.
    #[tokio::test]
    async fn a_cancelled_flush_is_remembered_and_finished_by_the_next_write() {
        let (mut peer, ours) = tokio::io::duplex(16);
        let (_reader, mut writer) = split_stream(Box::new(tokio::io::BufWriter::new(ours)));
        let mut buf = BytesMut::from(&[7u8; 100][..]);
        // The peer reads nothing yet: the flush cannot finish.
        let cut = tokio::time::timeout(Duration::from_millis(50), writer.write(&mut buf)).await;
        assert!(cut.is_err(), "the flush should still be waiting");
        assert!(buf.is_empty(), "taken by the layer below");
        assert!(writer.unflushed());
        let reading = tokio::spawn(async move {
            let mut got = vec![0u8; 100];
            peer.read_exact(&mut got).await.map(|_| got)
        });
        writer.write(&mut BytesMut::new()).await.unwrap();
        assert!(!writer.unflushed());
        assert_eq!(reading.await.unwrap().unwrap(), vec![7u8; 100]);
    }

    /// An empty binary frame is allowed (MQTT's bytes may be framed any way) and is not the
    /// end of the stream.
    #[tokio::test]
    async fn an_empty_websocket_frame_is_skipped_not_taken_for_the_end() {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let (peer, ours) = tokio::io::duplex(1024);
        let ours: Box<dyn Io> = Box::new(ours);
        let ws = WebSocketStream::from_raw_socket(ours, Role::Server, None).await;
        let (mut reader, _writer) = split_ws(ws);
        let mut peer = WebSocketStream::from_raw_socket(peer, Role::Client, None).await;
        peer.send(WsMessage::Binary(Bytes::new())).await.unwrap();
        peer.send(WsMessage::Binary(Bytes::from_static(b"\xc0\x00")))
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(reader.read(&mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..], b"\xc0\x00");
    }

    /// Over WebSocket the same: a frame whose flush was cancelled stays in the sink, the
    /// writer says so, and later writes send it and the next one whole and in order.
    #[tokio::test]
    async fn a_websocket_write_cancelled_while_flushing_loses_nothing() {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let (peer, ours) = tokio::io::duplex(1024);
        let ours: Box<dyn Io> = Box::new(ours);
        let ws = WebSocketStream::from_raw_socket(ours, Role::Server, None).await;
        let (_reader, mut writer) = split_ws(ws);
        let wait = Duration::from_millis(50);
        let mut first = BytesMut::from(&[1u8; 64 * 1024][..]);
        assert!(
            tokio::time::timeout(wait, writer.write(&mut first))
                .await
                .is_err()
        );
        assert!(
            first.is_empty() && writer.unflushed(),
            "the first frame is the sink's"
        );
        // The socket is still full: this one is cancelled too (room is checked before the
        // frame is taken, so a cancelled wait for room would leave it here).
        let mut second = BytesMut::from(&b"second"[..]);
        assert!(
            tokio::time::timeout(wait, writer.write(&mut second))
                .await
                .is_err()
        );
        assert!(writer.unflushed());
        let reading = tokio::spawn(async move {
            let mut peer = WebSocketStream::from_raw_socket(peer, Role::Client, None).await;
            let mut got = Vec::new();
            while got.len() < 2 {
                match peer.next().await {
                    Some(Ok(WsMessage::Binary(b))) => got.push(b.to_vec()),
                    other => panic!("{other:?}"),
                }
            }
            got
        });
        writer.write_all(&mut second).await.unwrap();
        let got = reading.await.unwrap();
        assert_eq!(got[0], vec![1u8; 64 * 1024]);
        assert_eq!(got[1], b"second");
    }
}
