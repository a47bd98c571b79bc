//! Reading a connection without holding a buffer while it is idle: an idle connection's read
//! buffer is given back (`rbuf` has no capacity), and the next read waits for the socket to
//! be readable with nothing allocated, takes what arrived into the stack and copies it into a
//! buffer of its size. A connection with a partial packet pending, or a busy one, reads
//! straight into its buffer as before (growing to 64 KiB chunks).

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

use crate::transport::Reader;

/// The most one read from an idle connection takes, on the stack of the poll (never in the
/// connection's task, which would hold it for the connection's life).
const STACK_READ: usize = 16 * 1024;

/// Appends what arrives to `buf`; 0 means the client closed the connection. Cancel-safe: a
/// cancelled call has read nothing. A poll function, not an async fn: the working loop's
/// future, which holds it, keeps only its two references.
pub(super) fn read<'a>(
    reader: &'a mut Reader,
    buf: &'a mut BytesMut,
) -> impl Future<Output = io::Result<usize>> + 'a {
    poll_fn(move |cx| poll_read(reader, buf, cx))
}

/// `read` into a buffer of its own, sized to what arrived (empty when the client closed), as
/// a poll: for an idle connection, which waits on more than the socket in one poll function
/// and keeps no buffer meanwhile.
pub(super) fn poll_fresh(reader: &mut Reader, cx: &mut Context<'_>) -> Poll<io::Result<BytesMut>> {
    let mut buf = BytesMut::new();
    poll_read(reader, &mut buf, cx).map_ok(|_| buf)
}

fn poll_read(
    reader: &mut Reader,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    match reader {
        Reader::Stream(r) if buf.capacity() == 0 => {
            let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
            let mut rb = ReadBuf::uninit(&mut stack);
            match Pin::new(r).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    buf.extend_from_slice(rb.filled());
                    Poll::Ready(Ok(rb.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
        _ => reader.poll_read(cx, buf),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn an_idle_read_allocates_only_what_arrived() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut reader, _writer) = crate::transport::split_stream(Box::new(server));
        let mut buf = BytesMut::new();
        client.write_all(b"\xc0\x00").await.unwrap();
        assert_eq!(read(&mut reader, &mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..], b"\xc0\x00");
        assert!(
            buf.capacity() < 64,
            "sized to what arrived: {}",
            buf.capacity()
        );
        // A buffer with room is read into directly.
        client.write_all(b"ab").await.unwrap();
        assert_eq!(read(&mut reader, &mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..], b"\xc0\x00ab");
        drop(client);
        let mut empty = BytesMut::new();
        assert_eq!(read(&mut reader, &mut empty).await.unwrap(), 0, "closed");
        assert_eq!(empty.capacity(), 0);
    }
}
