//! Hand-built MQTT packets on a plain `TcpStream`, for the behaviour a client library hides,
//! and the two ways a broker refuses a bad packet (`v4_closes`, `v5_disconnects`). Every read
//! has a deadline (a read timeout), never a sleep.

// A small protocol library: not every test uses every field and helper.
#![allow(dead_code)]

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// How long a reply may take before the test fails: generous, because the suite runs many
/// brokers at once on two cores and a persistent broker's replies wait for an fsync.
pub const REPLY: Duration = Duration::from_secs(15);

pub const V4: u8 = 4;
pub const V5: u8 = 5;

// Fixed-header first bytes.
pub const CONNACK: u8 = 0x20;
pub const PUBACK: u8 = 0x40;
pub const PUBREC: u8 = 0x50;
pub const PUBCOMP: u8 = 0x70;
pub const SUBACK: u8 = 0x90;
pub const PINGRESP: u8 = 0xD0;
pub const DISCONNECT: u8 = 0xE0;

/// Variable Byte Integer.
pub fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

/// A whole packet: first byte, remaining length, body.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend(varint(body.len()));
    out.extend_from_slice(body);
    out
}

/// A two-byte-length-prefixed string or binary field.
pub fn string(bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).expect("field under 64 KiB");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A v5 property block: length, then the properties as given.
pub fn props(p: &[u8]) -> Vec<u8> {
    let mut out = varint(p.len());
    out.extend_from_slice(p);
    out
}

pub fn prop_u16(id: u8, v: u16) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(v.to_be_bytes());
    out
}

pub fn prop_u32(id: u8, v: u32) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(v.to_be_bytes());
    out
}

pub fn prop_str(id: u8, s: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(string(s));
    out
}

pub struct Will<'a> {
    pub topic: &'a [u8],
    pub payload: &'a [u8],
    pub qos: u8,
    /// v5 will properties (without the length).
    pub props: Vec<u8>,
}

/// A CONNECT packet. `props` (v5 only) is without the length.
pub struct Connect<'a> {
    pub version: u8,
    pub id: &'a [u8],
    pub clean: bool,
    pub keepalive: u16,
    pub props: Vec<u8>,
    pub will: Option<Will<'a>>,
    /// Extra bits OR-ed into the connect flags (e.g. the reserved bit 0).
    pub extra_flags: u8,
    /// User name and password.
    pub login: Option<(&'a str, &'a str)>,
}

impl<'a> Connect<'a> {
    pub fn new(version: u8, id: &'a str) -> Self {
        Connect {
            version,
            id: id.as_bytes(),
            clean: true,
            keepalive: 60,
            props: Vec::new(),
            will: None,
            extra_flags: 0,
            login: None,
        }
    }

    pub fn login(mut self, user: &'a str, password: &'a str) -> Self {
        self.login = Some((user, password));
        self
    }

    pub fn clean(mut self, clean: bool) -> Self {
        self.clean = clean;
        self
    }

    pub fn keepalive(mut self, secs: u16) -> Self {
        self.keepalive = secs;
        self
    }

    pub fn props(mut self, p: Vec<u8>) -> Self {
        self.props = p;
        self
    }

    pub fn will(mut self, will: Will<'a>) -> Self {
        self.will = Some(will);
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut body = string(b"MQTT");
        body.push(self.version);
        let mut flags = self.extra_flags;
        if self.clean {
            flags |= 0x02;
        }
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos << 3);
        }
        if self.login.is_some() {
            flags |= 0xC0;
        }
        body.push(flags);
        body.extend(self.keepalive.to_be_bytes());
        if self.version == V5 {
            body.extend(props(&self.props));
        }
        body.extend(string(self.id));
        if let Some(w) = &self.will {
            if self.version == V5 {
                body.extend(props(&w.props));
            }
            body.extend(string(w.topic));
            body.extend(string(w.payload));
        }
        if let Some((user, password)) = self.login {
            body.extend(string(user.as_bytes()));
            body.extend(string(password.as_bytes()));
        }
        packet(0x10, &body)
    }
}

/// A PUBLISH with the given first byte (so tests can set any flags), topic, packet id (only
/// written when `Some`), v5 properties (`None` for 3.1.1) and payload.
pub fn publish_raw(
    first: u8,
    topic: &[u8],
    pid: Option<u16>,
    v5_props: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = string(topic);
    if let Some(pid) = pid {
        body.extend(pid.to_be_bytes());
    }
    if let Some(p) = v5_props {
        body.extend(props(p));
    }
    body.extend_from_slice(payload);
    packet(first, &body)
}

/// A well-formed PUBLISH at `qos` (packet id `pid` when qos > 0).
pub fn publish(version: u8, qos: u8, topic: &str, pid: u16, payload: &[u8]) -> Vec<u8> {
    publish_raw(
        0x30 | (qos << 1),
        topic.as_bytes(),
        (qos > 0).then_some(pid),
        (version == V5).then_some(&[][..]),
        payload,
    )
}

/// SUBSCRIBE body (packet id, v5 properties, filters with their option bytes).
pub fn subscribe_body(version: u8, pid: u16, filters: &[(&[u8], u8)], v5_props: &[u8]) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    if version == V5 {
        body.extend(props(v5_props));
    }
    for (filter, options) in filters {
        body.extend(string(filter));
        body.push(*options);
    }
    body
}

pub fn subscribe(version: u8, pid: u16, filters: &[(&str, u8)]) -> Vec<u8> {
    let filters: Vec<(&[u8], u8)> = filters.iter().map(|(f, o)| (f.as_bytes(), *o)).collect();
    packet(0x82, &subscribe_body(version, pid, &filters, &[]))
}

pub fn puback(pid: u16) -> Vec<u8> {
    packet(PUBACK, &pid.to_be_bytes())
}

pub fn pubrel(pid: u16) -> Vec<u8> {
    packet(0x62, &pid.to_be_bytes())
}

pub fn pingreq() -> Vec<u8> {
    vec![0xC0, 0x00]
}

/// A normal DISCONNECT; in v5 with the given reason code.
pub fn disconnect(version: u8, reason: u8) -> Vec<u8> {
    if version == V5 {
        packet(DISCONNECT, &[reason, 0])
    } else {
        vec![DISCONNECT, 0x00]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub first: u8,
    pub body: Vec<u8>,
}

impl Packet {
    pub fn kind(&self) -> u8 {
        self.first & 0xF0
    }

    /// The reason code of a v5 DISCONNECT (0x00 when the body is empty).
    pub fn reason(&self) -> u8 {
        self.body.first().copied().unwrap_or(0)
    }

    pub fn bytes(&self) -> Vec<u8> {
        packet(self.first, &self.body)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop {
    Byte(u8),
    U16(u16),
    U32(u32),
    Var(u32),
    Bin(Vec<u8>),
    Pair(Vec<u8>, Vec<u8>),
}

/// Parses a v5 property block (after its length) into (id, value) in order.
pub fn parse_props(mut p: &[u8]) -> Vec<(u8, Prop)> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> &'a [u8] {
        assert!(p.len() >= n, "truncated property block");
        let (head, rest) = p.split_at(n);
        *p = rest;
        head
    }
    fn bin(p: &mut &[u8]) -> Vec<u8> {
        let len = u16::from_be_bytes(take(p, 2).try_into().unwrap()) as usize;
        take(p, len).to_vec()
    }
    let mut out = Vec::new();
    while !p.is_empty() {
        let id = take(&mut p, 1)[0];
        let value = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => Prop::Byte(take(&mut p, 1)[0]),
            0x13 | 0x21 | 0x22 | 0x23 => {
                Prop::U16(u16::from_be_bytes(take(&mut p, 2).try_into().unwrap()))
            }
            0x02 | 0x11 | 0x18 | 0x27 => {
                Prop::U32(u32::from_be_bytes(take(&mut p, 4).try_into().unwrap()))
            }
            0x0B => {
                let (v, n) = read_varint(p).expect("complete varint property");
                take(&mut p, n);
                Prop::Var(v as u32)
            }
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => Prop::Bin(bin(&mut p)),
            0x26 => {
                let k = bin(&mut p);
                Prop::Pair(k, bin(&mut p))
            }
            other => panic!("unknown property id {other:#04x}"),
        };
        out.push((id, value));
    }
    out
}

/// (value, bytes used), or None if incomplete or longer than 4 bytes.
pub fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().enumerate().take(4) {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A v5 CONNACK: (session present, reason code, properties).
pub fn parse_connack_v5(p: &Packet) -> (bool, u8, Vec<(u8, Prop)>) {
    assert_eq!(p.first, CONNACK, "not a CONNACK: {:02x?}", p.bytes());
    let (len, n) = read_varint(&p.body[2..]).expect("CONNACK property length");
    let props = parse_props(&p.body[2 + n..2 + n + len]);
    (p.body[0] & 1 == 1, p.body[1], props)
}

#[derive(Debug)]
pub struct Publish {
    pub dup: bool,
    pub qos: u8,
    pub retain: bool,
    pub topic: Vec<u8>,
    pub pid: Option<u16>,
    pub props: Vec<(u8, Prop)>,
    pub payload: Vec<u8>,
}

pub fn parse_publish(version: u8, p: &Packet) -> Publish {
    assert_eq!(p.kind(), 0x30, "not a PUBLISH: {:02x?}", p.bytes());
    let qos = (p.first >> 1) & 3;
    let b = &p.body;
    let tlen = u16::from_be_bytes([b[0], b[1]]) as usize;
    let topic = b[2..2 + tlen].to_vec();
    let mut at = 2 + tlen;
    let pid = (qos > 0).then(|| {
        at += 2;
        u16::from_be_bytes([b[at - 2], b[at - 1]])
    });
    let mut props = Vec::new();
    if version == V5 {
        let (len, n) = read_varint(&b[at..]).expect("PUBLISH property length");
        props = parse_props(&b[at + n..at + n + len]);
        at += n + len;
    }
    Publish {
        dup: p.first & 0x08 != 0,
        qos,
        retain: p.first & 1 == 1,
        topic,
        pid,
        props,
        payload: b[at..].to_vec(),
    }
}

#[derive(Debug)]
pub enum Read {
    Packet(Packet),
    /// EOF or reset: the server closed the connection.
    Closed,
    TimedOut,
}

pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    pub version: u8,
}

impl Client {
    pub fn open(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connecting to 127.0.0.1:{port}: {e}"));
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
            version: V4,
        }
    }

    /// Opens a connection, sends `connect` and expects CONNACK with reason 0.
    pub fn connect(port: u16, connect: &Connect) -> (Client, Packet) {
        let mut c = Client::open(port);
        c.version = connect.version;
        c.send(&connect.bytes());
        let ack = c.expect("CONNACK");
        assert_eq!(
            ack.first,
            CONNACK,
            "expected CONNACK, got {:02x?}",
            ack.bytes()
        );
        assert_eq!(
            ack.body.get(1),
            Some(&0),
            "CONNACK refused: {:02x?}",
            ack.bytes()
        );
        (c, ack)
    }

    /// `connect`, or None when the server is gone or does not accept the connection.
    pub fn try_connect(port: u16, connect: &Connect) -> Option<(Client, Packet)> {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        let _ = stream.set_nodelay(true);
        let mut c = Client {
            stream,
            buf: Vec::new(),
            version: connect.version,
        };
        c.try_send(&connect.bytes()).ok()?;
        match c.read(REPLY) {
            Read::Packet(ack) if ack.first == CONNACK && ack.body.get(1) == Some(&0) => {
                Some((c, ack))
            }
            _ => None,
        }
    }

    /// `Connect::new(version, id)` with defaults.
    pub fn connected(port: u16, version: u8, id: &str) -> Client {
        Self::connect(port, &Connect::new(version, id)).0
    }

    /// Writes all of `bytes`. The server may already have closed the connection, which is for
    /// the test's next read to notice, so write errors are ignored.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    /// Like `send`, but reports a write error.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn shutdown(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn parse(&mut self) -> Option<Packet> {
        if self.buf.len() < 2 {
            return None;
        }
        let (len, n) = read_varint(&self.buf[1..])?;
        let total = 1 + n + len;
        if self.buf.len() < total {
            return None;
        }
        let bytes: Vec<u8> = self.buf.drain(..total).collect();
        Some(Packet {
            first: bytes[0],
            body: bytes[1 + n..].to_vec(),
        })
    }

    /// The next packet, or Closed, or TimedOut after `limit`.
    pub fn read(&mut self, limit: Duration) -> Read {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(p) = self.parse() {
                return Read::Packet(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read::TimedOut;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("setting a read timeout");
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Read::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Read::TimedOut;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Read::Closed,
            }
        }
    }

    /// The next packet within `REPLY`; fails the test otherwise.
    pub fn expect(&mut self, what: &str) -> Packet {
        match self.read(REPLY) {
            Read::Packet(p) => p,
            other => panic!("waiting for {what}: {other:?}"),
        }
    }

    /// Reads until the server closes the connection (within `limit`) and returns the packets
    /// that came before the close. Fails the test if the connection is still open at `limit`.
    pub fn expect_close(&mut self, limit: Duration, what: &str) -> Vec<Packet> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        loop {
            match self.read(deadline.saturating_duration_since(Instant::now())) {
                Read::Packet(p) => got.push(p),
                Read::Closed => return got,
                Read::TimedOut => panic!(
                    "{what}: the connection is still open after {limit:?}; received {:02x?}",
                    got.iter().map(Packet::bytes).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// `expect_close`, and what came first was one DISCONNECT with reason `code` (v5).
    pub fn expect_disconnect(&mut self, code: u8, limit: Duration, what: &str) {
        let got = self.expect_close(limit, what);
        assert!(
            matches!(&got[..], [p] if p.kind() == DISCONNECT && p.reason() == code),
            "{what}: expected DISCONNECT {code:#04x} then close, got [{}]",
            hex_all(&got)
        );
    }

    /// `expect_close`, with nothing sent first (3.1.1 has no DISCONNECT from the server).
    pub fn expect_silent_close(&mut self, limit: Duration, what: &str) {
        let got = self.expect_close(limit, what);
        assert!(got.is_empty(), "{what}: got {}", hex_all(&got));
    }

    /// Reads packets until one of `kind` arrives, returning it and the others before it.
    pub fn expect_kind(&mut self, kind: u8, what: &str) -> (Packet, Vec<Packet>) {
        let mut others = Vec::new();
        loop {
            let p = self.expect(what);
            if p.kind() == kind {
                return (p, others);
            }
            others.push(p);
        }
    }

    /// SUBSCRIBE and the SUBACK's return codes.
    pub fn subscribe(&mut self, pid: u16, filters: &[(&str, u8)]) -> Vec<u8> {
        self.send(&subscribe(self.version, pid, filters));
        let (ack, before) = self.expect_kind(SUBACK, "SUBACK");
        assert!(before.is_empty(), "packets before SUBACK: {before:02x?}");
        assert_eq!(ack.body[..2], pid.to_be_bytes(), "SUBACK packet id");
        let codes_at = if self.version == V5 {
            let (len, n) = read_varint(&ack.body[2..]).expect("SUBACK property length");
            2 + n + len
        } else {
            2
        };
        ack.body[codes_at..].to_vec()
    }

    /// PINGREQ → PINGRESP: the connection is open and served.
    pub fn ping(&mut self) {
        self.send(&pingreq());
        let p = self.expect("PINGRESP");
        assert_eq!(p.bytes(), [PINGRESP, 0], "expected PINGRESP");
    }
}

/// The bytes as hex, for failure messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn hex_all(packets: &[Packet]) -> String {
    packets
        .iter()
        .map(|p| hex(&p.bytes()))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// 3.1.1: after `bad`, the server closes the connection without sending anything.
pub fn v4_closes(port: u16, bad: &[u8], statement: &str) {
    let mut c = Client::connected(port, V4, "");
    c.send(bad);
    let got = c.expect_close(REPLY, statement);
    assert!(
        got.is_empty(),
        "{statement}: sent {}, expected the connection closed with nothing sent, got {}",
        hex(bad),
        hex_all(&got)
    );
}

/// v5: after `bad`, the server sends DISCONNECT with one of `codes`, then closes.
pub fn v5_disconnects(port: u16, bad: &[u8], codes: &[u8], statement: &str) {
    let mut c = Client::connected(port, V5, "");
    c.send(bad);
    let got = c.expect_close(REPLY, statement);
    let ok = matches!(&got[..], [p] if p.kind() == DISCONNECT && codes.contains(&p.reason()));
    assert!(
        ok,
        "{statement}: sent {}, expected DISCONNECT with reason {} then close, got [{}]",
        hex(bad),
        hex(codes),
        hex_all(&got)
    );
}
