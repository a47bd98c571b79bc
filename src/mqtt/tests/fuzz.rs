//! Random and damaged input, in both directions: no decoder may panic, loop or take a
//! packet without consuming it.

use super::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Decodes everything in `raw` the way the broker does, until it waits or fails, and returns
/// how many packets came out.
fn drain_client(raw: &[u8], max: usize) -> usize {
    let mut buf = BytesMut::from(raw);
    let mut n = 0;
    let Ok(Some(c)) = decode_connect(&mut buf, max) else {
        // Not a connection opening: try the rest of the decoder on it anyway.
        for proto in [Protocol::V311, Protocol::V5] {
            let mut buf = BytesMut::from(raw);
            let mut before = buf.len();
            while let Ok(Some(_)) = decode_client(proto, &mut buf, max) {
                assert!(buf.len() < before, "no progress");
                before = buf.len();
                n += 1;
            }
        }
        return n;
    };
    while let Ok(Some(_)) = decode_client(c.proto, &mut buf, max) {
        n += 1;
    }
    n + 1
}

/// The same for what a client reads from a server.
fn drain_server(raw: &[u8], max: usize) -> usize {
    let mut n = 0;
    for proto in [Protocol::V311, Protocol::V5] {
        let mut buf = BytesMut::from(raw);
        let mut before = buf.len();
        while let Ok(Some(_)) = decode_server(proto, &mut buf, max) {
            assert!(buf.len() < before, "no progress");
            before = buf.len();
            n += 1;
        }
    }
    n
}

/// What a client sends: two CONNECTs (3.1.1, 5), then the rest.
fn client_samples() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    for proto in [Protocol::V311, Protocol::V5] {
        let mut c = Connect::new(proto, "id");
        c.keepalive = 5;
        c.username = Some("u".into());
        c.password = Some(Bytes::from_static(b"p"));
        c.will = Some(Will {
            topic: "w".into(),
            payload: Bytes::from_static(b"x"),
            qos: 1,
            retain: false,
            delay: 0,
            props: None,
        });
        encode_connect(&c, &mut buf).unwrap();
        out.push(buf.split().to_vec());
    }
    let props = cat(&[
        &[0x01, 1, 0x23, 0, 1, 0x26],
        &s(b"k"),
        &s(b"v"),
        &[0x08],
        &s(b"r"),
    ]);
    out.push(publish(
        0x32,
        b"a/b",
        &cat(&[&[0, 1, props.len() as u8], &props, b"payload"]),
    ));
    out.push(publish(0x30, "ü/\u{feff}".as_bytes(), b"x"));
    out.push(sub5(&[0x0B, 5], &[(b"a/#", 0x1A), (b"$share/g/+", 2)]));
    out.push(sub311(&[(b"a/+", 1)]));
    out.push(pkt(0xA2, &cat(&[&[0, 5, 0], &s(b"a")])));
    out.push(pkt(0x40, &cat(&[&[0, 1, 0x87, 7, 0x1F], &s(b"nope")])));
    out.push(pkt(0xE0, &[0x04, 5, 0x11, 0, 0, 0, 9]));
    out.push(vec![0xC0, 0]);
    out
}

/// What a server sends: a CONNACK (3.1.1 style, then 5), then the rest.
fn server_samples() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    let ack = ConnAck {
        assigned_client_id: Some("a".into()),
        receive_max: Some(10),
        topic_alias_max: Some(3),
        reason_string: Some("r".into()),
        ..ConnAck::default()
    };
    for proto in [Protocol::V311, Protocol::V5] {
        encode_connack(proto, &ack, &mut buf);
        out.push(buf.split().to_vec());
    }
    let props = cat(&[&[0x01, 1, 0x0B, 3, 0x0B, 0x80, 1, 0x26], &s(b"k"), &s(b"v")]);
    out.push(publish(
        0x34,
        b"a/b",
        &cat(&[&[0, 9, props.len() as u8], &props, b"payload"]),
    ));
    encode_suback(
        Protocol::V5,
        3,
        &[SubAckCode::GrantedQos1, SubAckCode::NotAuthorized],
        &mut buf,
    );
    out.push(buf.split().to_vec());
    encode_unsuback(
        Protocol::V5,
        4,
        &[UnsubAckCode::NoSubscriptionExisted],
        &mut buf,
    );
    out.push(buf.split().to_vec());
    encode_pubrec(7, PubAckCode::QuotaExceeded, &mut buf);
    out.push(buf.split().to_vec());
    encode_disconnect(ServerDisconnectCode::SessionTakenOver, Some("x"), &mut buf);
    out.push(buf.split().to_vec());
    out.push(vec![0xD0, 0]);
    out
}

fn damage(rng: &mut XorShift, samples: &[Vec<u8>]) -> Vec<u8> {
    let mut raw = samples[rng.below(2)].clone();
    for _ in 0..1 + rng.below(3) {
        raw.extend_from_slice(&samples[2 + rng.below(samples.len() - 2)]);
    }
    for _ in 0..rng.below(4) {
        let i = rng.below(raw.len());
        raw[i] = match rng.below(3) {
            0 => rng.next() as u8,
            1 => raw[i] ^ (1 << rng.below(8)),
            _ => [0, 0xff, 0x80, 0x7f][rng.below(4)],
        };
    }
    raw.truncate(rng.below(raw.len() + 1));
    raw
}

#[test]
fn never_panics_on_random_or_damaged_input() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let clients = client_samples();
    let servers = server_samples();
    let (mut from_clients, mut from_servers) = (0, 0);
    for round in 0..60_000 {
        let max = [MAX_PACKET, 64, 8][round % 3];
        // Random bytes, often starting with a plausible first byte.
        let n = rng.below(40);
        let mut raw: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if let Some(b) = raw.first_mut() {
            if round % 2 == 0 {
                *b = [
                    0x10, 0x20, 0x30, 0x32, 0x62, 0x82, 0x90, 0xA2, 0xB0, 0xE0, 0xF0,
                ][rng.below(11)];
            }
        }
        from_clients += drain_client(&raw, max);
        from_servers += drain_server(&raw, max);
        // A valid stream, truncated and with bytes changed.
        from_clients += drain_client(&damage(&mut rng, &clients), max);
        from_servers += drain_server(&damage(&mut rng, &servers), max);
    }
    // The damage must leave enough intact for the deeper decoding paths to be reached.
    assert!(from_clients > 30_000, "only {from_clients} packets decoded");
    assert!(from_servers > 30_000, "only {from_servers} packets decoded");
    // Every prefix of every sample.
    for sample in &clients {
        for cut in 0..=sample.len() {
            drain_client(&sample[..cut], MAX_PACKET);
        }
    }
    for sample in &servers {
        for cut in 0..=sample.len() {
            drain_server(&sample[..cut], MAX_PACKET);
        }
    }
}
