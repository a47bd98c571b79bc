//! Where `smq pub` messages come from: -m, -f, -s and -n (one message, maybe repeated) and -l
//! (one per line).
//!
//! Files are opened before connecting, so a bad path fails before the broker sees us; input
//! is read after CONNACK, in chunks, and never past the largest message the broker takes.
//! That limit is only known from CONNACK, and it is what keeps memory bounded: `-f /dev/zero`
//! or `yes | smq pub -s` stop one byte past it.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::cli::PubArgs;
use crate::conn::{Client, Message};
use crate::exit::usage;
use crate::mqtt::{MAX_PACKET, MAX_REMAINING_LENGTH};
use crate::topic;

/// How much `-l` asks of stdin at a time.
const LINE_CHUNK: usize = 256 * 1024;
/// How much more room `-f` and `-s` make when the first allocation was refused, or a file
/// grew while it was read.
const WHOLE_CHUNK: usize = 2 * 1024 * 1024;

pub enum Next {
    Message(Bytes, Bytes),
    NeedInput,
    End,
    Bad(anyhow::Error),
}

/// The input, opened before connecting.
pub enum Input {
    /// -m or -n.
    Given { payload: Bytes, what: &'static str },
    /// -f: its length, when it is a regular file.
    File {
        file: tokio::fs::File,
        path: PathBuf,
        len: Option<u64>,
    },
    /// -s.
    Stdin,
    /// -l.
    Lines,
}

impl Input {
    pub async fn open(args: &PubArgs) -> anyhow::Result<Input> {
        Ok(if let Some(m) = &args.message {
            Input::Given {
                payload: Bytes::from(m.clone().into_encoded_bytes()),
                what: "the message (-m)",
            }
        } else if let Some(path) = &args.file {
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("reading message file {}", path.display()))?;
            let meta = file
                .metadata()
                .await
                .with_context(|| format!("reading message file {}", path.display()))?;
            Input::File {
                file,
                path: path.clone(),
                len: meta.is_file().then_some(meta.len()),
            }
        } else if args.stdin_file {
            Input::Stdin
        } else if args.null_message {
            Input::Given {
                payload: Bytes::new(),
                what: "the empty message (-n)",
            }
        } else {
            Input::Lines
        })
    }
}

/// What the publisher needs to know to read its input: the messages' shape (topic, QoS,
/// properties; no payload yet), with the topic absent when each line names its own.
pub struct Shape<'a> {
    pub message: &'a Message,
    pub has_topic: bool,
    pub repeat: u64,
    pub send_empty: bool,
    pub separator: Option<Vec<u8>>,
}

pub enum Source {
    /// -f or -s, until the input ends.
    Reading(Whole),
    Single {
        what: String,
        topic: Bytes,
        payload: Bytes,
        left: u64,
    },
    Lines(Lines),
}

impl Source {
    /// The source for `input`, bounded by what `client`'s broker accepts.
    pub fn new(input: Input, client: &Client, shape: Shape<'_>) -> Source {
        let topic = shape.message.topic.clone();
        let (reader, what, len): (Box<dyn AsyncRead + Unpin + Send>, String, _) = match input {
            Input::Given { payload, what } => {
                return Source::Single {
                    what: what.to_owned(),
                    topic,
                    payload,
                    left: shape.repeat,
                };
            }
            Input::Lines => {
                let limit = Limit::new(client, shape.message, shape.has_topic);
                let separator = shape.separator.as_deref().map_or(0, <[u8]>::len);
                return Source::Lines(Lines {
                    input: Box::new(tokio::io::stdin()),
                    buf: BytesMut::with_capacity(LINE_CHUNK),
                    scanned: 0,
                    eof: false,
                    line: 0,
                    // A line may also hold its topic and separator, and end in "\r".
                    max_line: limit.bytes + separator + 1,
                    limit,
                    send_empty: shape.send_empty,
                    topic: shape.has_topic.then_some(topic),
                    separator: shape.separator,
                });
            }
            Input::File { file, path, len } => (
                Box::new(file),
                format!("message file {} (-f)", path.display()),
                len,
            ),
            Input::Stdin => (Box::new(tokio::io::stdin()), "stdin (-s)".to_owned(), None),
        };
        Source::Reading(Whole {
            input: reader,
            what,
            len,
            buf: Vec::new(),
            limit: Limit::new(client, shape.message, true),
            topic,
            left: shape.repeat,
        })
    }

    pub fn next(&mut self) -> Next {
        match self {
            Source::Reading(_) => Next::NeedInput,
            Source::Single {
                topic,
                payload,
                left,
                ..
            } => {
                if *left == 0 {
                    return Next::End;
                }
                *left -= 1;
                Next::Message(topic.clone(), payload.clone())
            }
            Source::Lines(lines) => lines.next(),
        }
    }

    /// Whether every message has been taken: the next `next` would be `End`.
    pub fn exhausted(&self) -> bool {
        matches!(self, Source::Single { left: 0, .. })
    }

    /// Reads more input; errors name the input and, for one that is too large, the limit.
    pub async fn fill(&mut self) -> anyhow::Result<()> {
        match self {
            Source::Single { .. } => Ok(()),
            Source::Lines(lines) => lines.fill().await.context("reading stdin"),
            Source::Reading(whole) => {
                if whole.fill().await? {
                    let single = Source::Single {
                        what: std::mem::take(&mut whole.what),
                        topic: std::mem::take(&mut whole.topic),
                        payload: Bytes::from(std::mem::take(&mut whole.buf)),
                        left: whole.left,
                    };
                    *self = single;
                }
                Ok(())
            }
        }
    }

    /// The message just taken, as an error message names it: `stdin line 3 (-l)`.
    pub fn what(&self) -> String {
        match self {
            Source::Reading(w) => w.what.clone(),
            Source::Single { what, .. } => what.clone(),
            Source::Lines(lines) => format!("stdin line {} (-l)", lines.line),
        }
    }
}

/// -f or -s: read into one buffer, never more than the limit plus the one byte that shows
/// the input is too large.
pub struct Whole {
    input: Box<dyn AsyncRead + Unpin + Send>,
    what: String,
    /// A regular file's length, checked before its first byte is read.
    len: Option<u64>,
    /// A Vec, not a BytesMut: its allocation can fail without aborting.
    buf: Vec<u8>,
    limit: Limit,
    topic: Bytes,
    left: u64,
}

impl Whole {
    /// Reads one chunk; true at the end of the input.
    async fn fill(&mut self) -> anyhow::Result<bool> {
        let most = self.limit.bytes + 1;
        if self.buf.capacity() == 0 {
            // One allocation for all of it: growing a buffer copies it, and for a moment holds
            // it twice. Capacity costs address space only; memory is used as bytes arrive. A
            // system that does not overcommit may refuse that much: then it grows as needed.
            let expected = match self.len {
                Some(len) if len >= most as u64 => return Err(self.limit.exceeded(&self.what)),
                Some(len) => len as usize + 1,
                None => most,
            };
            if self.buf.try_reserve_exact(expected).is_err() {
                self.grow(expected.min(WHOLE_CHUNK))?;
            }
        }
        let room = most - self.buf.len();
        if self.buf.len() == self.buf.capacity() {
            self.grow(room.min(WHOLE_CHUNK))?;
        }
        let n = (&mut self.input)
            .take(room as u64)
            .read_buf(&mut self.buf)
            .await
            .with_context(|| format!("reading {}", self.what))?;
        if self.buf.len() > self.limit.bytes {
            return Err(self.limit.exceeded(&self.what));
        }
        Ok(n == 0)
    }

    fn grow(&mut self, more: usize) -> anyhow::Result<()> {
        self.buf.try_reserve(more).map_err(|_| {
            anyhow!(
                "reading {}: out of memory after {} bytes",
                self.what,
                self.buf.len()
            )
        })
    }
}

/// `-l`: lines as byte strings, read in large chunks as they arrive.
pub struct Lines {
    input: Box<dyn AsyncRead + Unpin + Send>,
    buf: BytesMut,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    eof: bool,
    line: u64,
    /// A line longer than this cannot be sent: reading it stops here.
    max_line: usize,
    limit: Limit,
    send_empty: bool,
    topic: Option<Bytes>,
    separator: Option<Vec<u8>>,
}

impl Lines {
    fn next(&mut self) -> Next {
        loop {
            let mut line = match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line = self.buf.split_to(self.scanned + i + 1);
                    line.truncate(line.len() - 1);
                    line
                }
                None if self.eof && !self.buf.is_empty() => self.buf.split(),
                None if self.eof => return Next::End,
                None if self.buf.len() > self.max_line => {
                    let what = format!("stdin line {} (-l)", self.line + 1);
                    return Next::Bad(self.limit.exceeded(&what));
                }
                None => {
                    self.scanned = self.buf.len();
                    return Next::NeedInput;
                }
            };
            self.scanned = 0;
            self.line += 1;
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            if line.is_empty() && !self.send_empty {
                continue;
            }
            return self.split_topic(line.freeze());
        }
    }

    fn split_topic(&self, line: Bytes) -> Next {
        let Some(sep) = &self.separator else {
            return Next::Message(self.topic.clone().unwrap_or_default(), line);
        };
        let at = line.windows(sep.len()).position(|w| w == sep.as_slice());
        let (topic, payload) = match (at, &self.topic) {
            (Some(i), _) => (line.slice(..i), line.slice(i + sep.len()..)),
            (None, Some(t)) => (t.clone(), line),
            (None, None) => {
                return Next::Bad(anyhow!(
                    "stdin line {} has no topic separator (and there is no -t to fall back on)",
                    self.line
                ));
            }
        };
        match std::str::from_utf8(&topic) {
            Ok(t) => match topic::name_error(t) {
                None => Next::Message(topic, payload),
                Some(why) => Next::Bad(anyhow!("stdin line {}: bad topic '{t}': {why}", self.line)),
            },
            Err(_) => Next::Bad(anyhow!("stdin line {}: the topic is not UTF-8", self.line)),
        }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        self.buf.reserve(LINE_CHUNK);
        if self.input.read_buf(&mut self.buf).await? == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

/// The largest payload the broker takes on one topic, and where that number comes from.
pub struct Limit {
    pub bytes: usize,
    /// The largest packet: the broker's Maximum Packet Size, or MQTT's own limit.
    max_packet: usize,
    from_broker: bool,
    topic: Option<String>,
}

impl Limit {
    /// For messages shaped like `msg` (its payload aside); `has_topic` is false when each
    /// line names its own topic, which then counts as payload.
    pub fn new(client: &Client, msg: &Message, has_topic: bool) -> Limit {
        Limit {
            bytes: client.payload_room(msg).1,
            max_packet: client.limits.max_packet,
            from_broker: client.limits.max_packet_from_broker,
            topic: has_topic.then(|| String::from_utf8_lossy(&msg.topic).into_owned()),
        }
    }

    /// The one-line error for `what` (`stdin (-s)`) being larger than the limit.
    pub fn exceeded(&self, what: &str) -> anyhow::Error {
        let on_topic = self
            .topic
            .as_ref()
            .map_or_else(String::new, |t| format!(" on topic '{t}'"));
        // A broker that allows more than MQTT can express is held to MQTT's limit.
        let (largest, packet, headers, fix) = if self.from_broker && self.max_packet < MAX_PACKET {
            (
                "the largest message the broker accepts",
                format!(
                    "its MQTT 5 CONNACK sets a Maximum Packet Size of {} bytes",
                    self.max_packet
                ),
                self.max_packet - self.bytes,
                "send less, or raise the broker's maximum packet size",
            )
        } else {
            (
                "the largest message MQTT can carry",
                format!(
                    "an MQTT packet holds at most {MAX_REMAINING_LENGTH} bytes after its fixed header"
                ),
                MAX_REMAINING_LENGTH - self.bytes,
                "send less",
            )
        };
        if self.bytes == 0 {
            return anyhow!(
                "{what} does not fit in a PUBLISH{on_topic}: {packet}, and the topic and headers alone take {headers} or more; use a shorter topic or fewer properties"
            );
        }
        anyhow!(
            "{what} is larger than {} bytes{}, {largest}{on_topic}: {packet}, less {headers} for the topic and headers; {fix}",
            self.bytes,
            human(self.bytes)
        )
    }
}

/// ` (1.5 MiB)`, for sizes where the byte count alone is hard to read.
fn human(n: usize) -> String {
    const KIB: f64 = 1024.0;
    match n as f64 {
        x if x >= KIB * KIB => format!(" ({:.1} MiB)", x / (KIB * KIB)),
        x if x >= KIB => format!(" ({:.1} KiB)", x / KIB),
        _ => String::new(),
    }
}

/// `--line-topic-sep '\t'`: backslash escapes, so a tab can be typed in any shell.
pub fn unescape(s: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        out.push(match chars.next() {
            Some('t') => b'\t',
            Some('0') => 0,
            Some('\\') => b'\\',
            Some(other) => {
                return Err(usage(format!(
                    "--line-topic-sep: unknown escape '\\{other}': use \\t, \\0 or \\\\"
                )));
            }
            None => return Err(usage("--line-topic-sep ends with a lone '\\'")),
        });
    }
    if out.is_empty() {
        return Err(usage("--line-topic-sep must not be empty"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(
        input: &[u8],
        send_empty: bool,
        sep: Option<&str>,
        topic: Option<&str>,
    ) -> Vec<String> {
        let mut l = Lines {
            input: Box::new(tokio::io::empty()),
            buf: BytesMut::from(input),
            scanned: 0,
            eof: true,
            line: 0,
            max_line: usize::MAX,
            limit: limit(100),
            send_empty,
            topic: topic.map(|t| Bytes::copy_from_slice(t.as_bytes())),
            separator: sep.map(|s| unescape(s).unwrap()),
        };
        let mut out = Vec::new();
        loop {
            match l.next() {
                Next::Message(t, p) => out.push(format!(
                    "{}|{}",
                    String::from_utf8_lossy(&t),
                    String::from_utf8_lossy(&p)
                )),
                Next::End => return out,
                Next::Bad(e) => {
                    out.push(format!("ERR {e}"));
                    return out;
                }
                Next::NeedInput => panic!("input is at EOF"),
            }
        }
    }

    fn limit(bytes: usize) -> Limit {
        Limit {
            bytes,
            max_packet: bytes + 10,
            from_broker: true,
            topic: Some("t".into()),
        }
    }

    fn whole(
        input: impl AsyncRead + Unpin + Send + 'static,
        len: Option<u64>,
        max: usize,
    ) -> Whole {
        Whole {
            input: Box::new(input),
            what: "stdin (-s)".into(),
            len,
            buf: Vec::new(),
            limit: limit(max),
            topic: Bytes::from_static(b"t"),
            left: 1,
        }
    }

    async fn read_all(w: &mut Whole) -> anyhow::Result<usize> {
        while !w.fill().await? {}
        Ok(w.buf.len())
    }

    #[tokio::test]
    async fn endless_input_stops_one_byte_past_the_limit() {
        let mut w = whole(tokio::io::repeat(b'y'), None, 5_000_000);
        let err = read_all(&mut w).await.unwrap_err().to_string();
        assert!(
            err.starts_with("stdin (-s) is larger than 5000000 bytes (4.8 MiB), the largest message the broker accepts on topic 't': its MQTT 5 CONNACK sets a Maximum Packet Size of 5000010 bytes, less 10"),
            "{err}"
        );
        assert_eq!(w.buf.len(), 5_000_001);
        assert_eq!(w.buf.capacity(), 5_000_001, "one allocation, never grown");
    }

    #[tokio::test]
    async fn input_of_exactly_the_limit_is_read_whole() {
        let data = vec![1u8; 300_000];
        let mut w = whole(std::io::Cursor::new(data.clone()), None, 300_000);
        assert_eq!(read_all(&mut w).await.unwrap(), 300_000);
        assert_eq!(&w.buf[..], &data[..]);
    }

    #[tokio::test]
    async fn a_file_longer_than_the_limit_fails_before_it_is_read() {
        let mut w = whole(tokio::io::repeat(b'y'), Some(101), 100);
        let err = read_all(&mut w).await.unwrap_err().to_string();
        assert!(err.contains("is larger than 100 bytes"), "{err}");
        assert!(w.buf.is_empty());
        let mut w = whole(std::io::Cursor::new(vec![0u8; 100]), Some(100), 100);
        assert_eq!(read_all(&mut w).await.unwrap(), 100);
    }

    #[test]
    fn a_line_longer_than_the_limit_fails_naming_it() {
        let mut l = Lines {
            input: Box::new(tokio::io::empty()),
            buf: BytesMut::from(&b"ok\n"[..]),
            scanned: 0,
            eof: false,
            line: 0,
            max_line: 10,
            limit: limit(9),
            send_empty: false,
            topic: Some(Bytes::from_static(b"t")),
            separator: None,
        };
        assert!(matches!(l.next(), Next::Message(_, p) if p == "ok"));
        assert!(matches!(l.next(), Next::NeedInput));
        l.buf.extend_from_slice(&[b'y'; 11]);
        match l.next() {
            Next::Bad(e) => {
                let e = e.to_string();
                assert!(
                    e.starts_with("stdin line 2 (-l) is larger than 9 bytes"),
                    "{e}"
                );
            }
            _ => panic!("an 11-byte line with no end was not refused"),
        }
    }

    #[test]
    fn limit_words_name_where_it_comes_from() {
        let mqtt = Limit {
            bytes: MAX_REMAINING_LENGTH - 8,
            max_packet: MAX_PACKET,
            from_broker: false,
            topic: None,
        };
        let e = mqtt.exceeded("message file f (-f)").to_string();
        assert_eq!(
            e,
            "message file f (-f) is larger than 268435447 bytes (256.0 MiB), the largest message MQTT can carry: an MQTT packet holds at most 268435455 bytes after its fixed header, less 8 for the topic and headers; send less"
        );
        let none = Limit {
            bytes: 0,
            ..limit(0)
        };
        let e = none.exceeded("the empty message (-n)").to_string();
        assert!(e.contains("does not fit in a PUBLISH on topic 't'"), "{e}");
    }

    #[test]
    fn line_mode_strips_cr_skips_blank_and_sends_last_line() {
        assert_eq!(
            lines(b"a\r\n\nb\r\n\r\nc", false, None, Some("t")),
            ["t|a", "t|b", "t|c"]
        );
        assert_eq!(lines(b"a\n\n", true, None, Some("t")), ["t|a", "t|"]);
    }

    #[test]
    fn line_mode_keeps_nul_bytes() {
        assert_eq!(lines(b"a\0b\n", false, None, Some("t")), ["t|a\0b"]);
    }

    #[test]
    fn per_line_topics() {
        assert_eq!(
            lines(b"x/y\t1\tz\nplain\n", false, Some("\\t"), Some("dflt")),
            ["x/y|1\tz", "dflt|plain"]
        );
        let out = lines(b"a/+\tv\n", false, Some("\\t"), None);
        assert!(out[0].contains("line 1: bad topic 'a/+'"), "{out:?}");
        let out = lines(b"novalue\n", false, Some("\\t"), None);
        assert!(out[0].contains("no topic separator"), "{out:?}");
    }

    #[test]
    fn separator_escapes() {
        assert_eq!(unescape("\\t").unwrap(), b"\t");
        assert_eq!(unescape("::").unwrap(), b"::");
        assert!(unescape("\\q").is_err());
        assert!(unescape("").is_err());
    }
}
