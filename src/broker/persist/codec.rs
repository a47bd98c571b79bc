//! The bytes of each `Record` in the log: `encode` and `decode` (a tag byte, then the fields,
//! integers little-endian, strings and binaries with a u32 length), and groups of records that
//! went to disk in one frame. The framing and checksums around a record body are `log.rs`'s;
//! what a record means is `model.rs`'s.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::record::{Record, unix_now};
use crate::broker::state::{Published, SubOptions};
use crate::mqtt::PublishProperties;

// --- encoding ---------------------------------------------------------------------------------

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, u32::try_from(b.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(b);
}
fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            put_bytes(out, b);
        }
    }
}

/// A message with its expiry as seconds left now; `written` (Unix seconds) lets the reader
/// take off the time that passes until it reads it back.
fn put_msg(out: &mut Vec<u8>, m: &Published) {
    put_bytes(out, &m.topic);
    put_bytes(out, &m.payload);
    out.push(m.qos | if m.retain { 0x80 } else { 0 });
    match &m.props {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            put_u64(out, unix_now());
            out.push(p.payload_format_indicator.map_or(0xFF, |v| v));
            match m.remaining_expiry() {
                None => out.push(0),
                Some(left) => {
                    out.push(1);
                    put_u32(out, left);
                }
            }
            put_opt_bytes(out, p.response_topic.as_deref().map(str::as_bytes));
            put_opt_bytes(out, p.correlation_data.as_deref());
            put_opt_bytes(out, p.content_type.as_deref().map(str::as_bytes));
            put_u32(out, p.user_properties.len() as u32);
            for (k, v) in &p.user_properties {
                put_bytes(out, k.as_bytes());
                put_bytes(out, v.as_bytes());
            }
        }
    }
}

pub fn encode(r: &Record, out: &mut Vec<u8>) {
    let client = |out: &mut Vec<u8>, tag: u8, c: &str| {
        out.push(tag);
        put_bytes(out, c.as_bytes());
    };
    match r {
        Record::Msg { id, msg } => {
            out.push(1);
            put_u64(out, *id);
            put_msg(out, msg);
        }
        Record::Retain { msg } => {
            out.push(2);
            put_msg(out, msg);
        }
        Record::Unretain { topic } => {
            out.push(3);
            put_bytes(out, topic);
        }
        Record::Session {
            client: c,
            expiry,
            clean,
            owner,
        } => {
            client(out, 4, c);
            put_u32(out, *expiry);
            out.push(u8::from(*clean));
            // Last, and left out when there is none: records written before owners were
            // kept read the same, as sessions of no user.
            if let Some(o) = owner {
                put_bytes(out, o.as_bytes());
            }
        }
        Record::Offline {
            client: c,
            at,
            expiry,
        } => {
            client(out, 5, c);
            put_u64(out, *at);
            put_u32(out, *expiry);
        }
        Record::Gone { client: c } => client(out, 6, c),
        Record::Sub {
            client: c,
            filter,
            opts,
        } => {
            client(out, 7, c);
            put_bytes(out, filter.as_bytes());
            out.push(
                opts.qos
                    | if opts.no_local { 0x10 } else { 0 }
                    | if opts.retain_as_published { 0x20 } else { 0 },
            );
            put_u32(out, opts.sub_id.unwrap_or(0));
        }
        Record::Unsub { client: c, filter } => {
            client(out, 8, c);
            put_bytes(out, filter.as_bytes());
        }
        Record::Enqueue {
            client: c,
            id,
            entry,
            qos,
            retain,
            sub_ids,
        } => {
            client(out, 9, c);
            put_u64(out, *id);
            out.push(qos | if *retain { 0x80 } else { 0 });
            put_u32(out, sub_ids.len() as u32);
            for &s in sub_ids {
                put_u32(out, s);
            }
            // Last: a record from before entries had ids reads as entry = message id,
            // which is what its Assign and Done records name.
            put_u64(out, *entry);
        }
        Record::Assign {
            client: c,
            entry,
            pkid,
        } => {
            client(out, 10, c);
            put_u64(out, *entry);
            put_u16(out, *pkid);
        }
        Record::Released { client: c, pkid } => {
            client(out, 11, c);
            put_u16(out, *pkid);
        }
        Record::Done { client: c, entry } => {
            client(out, 12, c);
            put_u64(out, *entry);
        }
        Record::InQos2 { client: c, pkid } => {
            client(out, 13, c);
            put_u16(out, *pkid);
        }
        Record::InRel { client: c, pkid } => {
            client(out, 14, c);
            put_u16(out, *pkid);
        }
        Record::Will { client: c, at, msg } => {
            client(out, 15, c);
            put_u64(out, *at);
            put_msg(out, msg);
        }
        Record::WillDone { client: c } => client(out, 16, c),
    }
}

// --- decoding ---------------------------------------------------------------------------------

/// A record body that passed its checksum but does not decode: written by another version.
#[derive(Debug)]
pub struct Undecodable;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Undecodable> {
        if self.0.len() < n {
            return Err(Undecodable);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Undecodable> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Undecodable> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Undecodable> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Undecodable> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], Undecodable> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, Undecodable> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| Undecodable)
    }
    fn client(&mut self) -> Result<Arc<str>, Undecodable> {
        Ok(Arc::from(self.string()?))
    }
    fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, Undecodable> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.bytes()?)),
        }
    }
    fn opt_string(&mut self) -> Result<Option<String>, Undecodable> {
        self.opt_bytes()?
            .map(|b| String::from_utf8(b.to_vec()).map_err(|_| Undecodable))
            .transpose()
    }
    fn msg(&mut self) -> Result<Arc<Published>, Undecodable> {
        let topic = Bytes::copy_from_slice(self.bytes()?);
        let payload = Bytes::copy_from_slice(self.bytes()?);
        let flags = self.u8()?;
        let props = match self.u8()? {
            0 => None,
            _ => {
                let written = self.u64()?;
                let pfi = self.u8()?;
                let expiry = match self.u8()? {
                    0 => None,
                    _ => {
                        let left = self.u32()?;
                        let spent = unix_now().saturating_sub(written);
                        Some(left.saturating_sub(u32::try_from(spent).unwrap_or(u32::MAX)))
                    }
                };
                let response_topic = self.opt_string()?;
                let correlation_data = self.opt_bytes()?.map(Bytes::copy_from_slice);
                let content_type = self.opt_string()?;
                let n = self.u32()?;
                let mut user_properties = Vec::new();
                for _ in 0..n {
                    user_properties.push((self.string()?, self.string()?));
                }
                Some(PublishProperties {
                    payload_format_indicator: (pfi != 0xFF).then_some(pfi),
                    message_expiry_interval: expiry,
                    topic_alias: None,
                    response_topic,
                    correlation_data,
                    user_properties,
                    subscription_identifiers: Vec::new(),
                    content_type,
                })
            }
        };
        Ok(Arc::new(Published {
            topic,
            payload,
            qos: flags & 0x03,
            retain: flags & 0x80 != 0,
            props,
            received: Instant::now(),
            from: None,
        }))
    }
}

/// The tag of a group: records that went to disk in one frame (`Store::group`), each as
/// `len u32 LE | body`.
pub const GROUP: u8 = 17;

/// Appends one record body to an open group.
pub fn put_member(body: &[u8], out: &mut Vec<u8>) {
    put_bytes(out, body);
}

/// Hands `f` the record a frame holds, or each record of a group.
pub fn decode_each(body: &[u8], mut f: impl FnMut(Record)) -> Result<(), Undecodable> {
    if body.first() != Some(&GROUP) {
        f(decode(body)?);
        return Ok(());
    }
    // Decoded whole before any is applied: a group counts all or nothing.
    let mut r = Reader(&body[1..]);
    let mut records = Vec::new();
    while !r.0.is_empty() {
        records.push(decode(r.bytes()?)?);
    }
    records.into_iter().for_each(f);
    Ok(())
}

pub fn decode(body: &[u8]) -> Result<Record, Undecodable> {
    let mut r = Reader(body);
    let rec = match r.u8()? {
        1 => Record::Msg {
            id: r.u64()?,
            msg: r.msg()?,
        },
        2 => Record::Retain { msg: r.msg()? },
        3 => Record::Unretain {
            topic: Bytes::copy_from_slice(r.bytes()?),
        },
        4 => Record::Session {
            client: r.client()?,
            expiry: r.u32()?,
            clean: r.u8()? != 0,
            owner: if r.0.is_empty() {
                None
            } else {
                Some(r.client()?)
            },
        },
        5 => Record::Offline {
            client: r.client()?,
            at: r.u64()?,
            expiry: r.u32()?,
        },
        6 => Record::Gone {
            client: r.client()?,
        },
        7 => {
            let client = r.client()?;
            let filter = r.string()?;
            let flags = r.u8()?;
            let sub_id = r.u32()?;
            Record::Sub {
                client,
                filter,
                opts: SubOptions {
                    qos: flags & 0x03,
                    no_local: flags & 0x10 != 0,
                    retain_as_published: flags & 0x20 != 0,
                    sub_id: (sub_id != 0).then_some(sub_id),
                },
            }
        }
        8 => Record::Unsub {
            client: r.client()?,
            filter: r.string()?,
        },
        9 => {
            let client = r.client()?;
            let id = r.u64()?;
            let flags = r.u8()?;
            let n = r.u32()?;
            let mut sub_ids = Vec::new();
            for _ in 0..n {
                sub_ids.push(r.u32()?);
            }
            let entry = if r.0.is_empty() { id } else { r.u64()? };
            Record::Enqueue {
                client,
                id,
                entry,
                qos: flags & 0x03,
                retain: flags & 0x80 != 0,
                sub_ids,
            }
        }
        10 => Record::Assign {
            client: r.client()?,
            entry: r.u64()?,
            pkid: r.u16()?,
        },
        11 => Record::Released {
            client: r.client()?,
            pkid: r.u16()?,
        },
        12 => Record::Done {
            client: r.client()?,
            entry: r.u64()?,
        },
        13 => Record::InQos2 {
            client: r.client()?,
            pkid: r.u16()?,
        },
        14 => Record::InRel {
            client: r.client()?,
            pkid: r.u16()?,
        },
        15 => Record::Will {
            client: r.client()?,
            at: r.u64()?,
            msg: r.msg()?,
        },
        16 => Record::WillDone {
            client: r.client()?,
        },
        _ => return Err(Undecodable),
    };
    if !r.0.is_empty() {
        return Err(Undecodable);
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::persist::model::tests::msg;

    #[test]
    fn a_session_record_from_before_owners_reads_as_no_owner() {
        // Tag 4, client "c", expiry 7, clean: as written before the owner was recorded.
        let old = [4, 1, 0, 0, 0, b'c', 7, 0, 0, 0, 1];
        match decode(&old).unwrap() {
            Record::Session {
                client,
                expiry: 7,
                clean: true,
                owner: None,
            } => assert_eq!(&*client, "c"),
            other => panic!("{other:?}"),
        }
        let mut new = Vec::new();
        encode(
            &Record::Session {
                client: Arc::from("c"),
                expiry: 7,
                clean: true,
                owner: None,
            },
            &mut new,
        );
        assert_eq!(new, old, "no owner: written as before");
    }

    #[test]
    fn an_enqueue_from_before_entry_ids_is_its_message_id() {
        let mut body = Vec::new();
        encode(
            &Record::Enqueue {
                client: Arc::from("c"),
                id: 5,
                entry: 5,
                qos: 1,
                retain: false,
                sub_ids: vec![],
            },
            &mut body,
        );
        body.truncate(body.len() - 8);
        let Ok(Record::Enqueue {
            id: 5, entry: 5, ..
        }) = decode(&body)
        else {
            panic!("an old enqueue record");
        };
    }

    #[test]
    fn message_expiry_counts_the_time_spent_on_disk() {
        let props = PublishProperties {
            message_expiry_interval: Some(100),
            ..PublishProperties::default()
        };
        let mut body = Vec::new();
        encode(
            &Record::Retain {
                msg: msg("t", "x", Some(props)),
            },
            &mut body,
        );
        // The write time sits right after the props marker; pretend it was 40 s ago.
        let at = 1 + 4 + 1 + 4 + 1 + 1 + 1;
        let written = u64::from_le_bytes(body[at..at + 8].try_into().unwrap());
        body[at..at + 8].copy_from_slice(&(written - 40).to_le_bytes());
        let Ok(Record::Retain { msg }) = decode(&body) else {
            panic!("not a retain record");
        };
        let left = msg.props.as_ref().unwrap().message_expiry_interval.unwrap();
        assert!((59..=60).contains(&left), "{left}");
    }

    #[test]
    fn a_truncated_or_unknown_record_is_refused() {
        let mut body = Vec::new();
        encode(
            &Record::Gone {
                client: Arc::from("c"),
            },
            &mut body,
        );
        assert!(decode(&body[..body.len() - 1]).is_err());
        assert!(decode(&[99]).is_err());
        body.push(0);
        assert!(decode(&body).is_err(), "trailing bytes");
    }
}
