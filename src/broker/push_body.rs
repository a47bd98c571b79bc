//! What HTTP Push needs from a JSON body, read without building a tree: a `serde_json::Value`
//! costs about 50 times the body's size, so the body is only checked to be JSON and the few
//! top-level fields the topic, `--split` and the status line use are picked out as raw text.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::topic;

/// Per split message, on top of its topic and payload: the router's `Published` and queue
/// entries, counted so a body of a million empty readings hits the output cap too.
const MESSAGE_OVERHEAD: usize = 128;

/// The top-level fields of a Sensor Logger batch, when the body is an object that has them.
#[derive(Default)]
pub struct Envelope<'a> {
    pub device_id: Option<String>,
    pub session_id: Option<String>,
    pub message_id: Option<i64>,
    payload: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// Checks that `body` is one JSON value and picks out the envelope's fields.
    pub fn read(body: &'a str) -> Result<Envelope<'a>, serde_json::Error> {
        let [device, session, message, payload] =
            fields(body, ["deviceId", "sessionId", "messageId", "payload"])?;
        Ok(Envelope {
            device_id: device.and_then(string),
            session_id: session.and_then(string),
            message_id: message.and_then(|m| m.get().parse().ok()),
            payload: payload.filter(|p| p.get().starts_with('[')),
        })
    }

    /// How many readings the batch holds; None when the body is not a batch.
    pub fn readings(&self) -> Option<u64> {
        let mut n = 0u64;
        each_element(self.payload?, |_| {
            n += 1;
            true
        })
        .ok()?;
        Some(n)
    }
}

/// A JSON string's text; None for any other value.
fn string(raw: &RawValue) -> Option<String> {
    serde_json::from_str(raw.get()).ok()
}

/// Why a body cannot be split; the text is the short answer to the client.
#[derive(Debug, PartialEq)]
pub enum SplitError {
    /// 400
    Bad(String),
    /// 413: the messages would be larger than the cap.
    TooLarge,
    /// 503: `take` refused a message's bytes.
    Busy,
}

/// `--split`: one message per reading, on `TOPIC/DEVICE/SENSOR`, each the batch with its
/// `payload` array holding only that reading, so consumers and `smq record` read it as they
/// read the batch. Each message is the body's bytes before the array, the reading, and the
/// bytes after it: linear in the output, which is capped at `cap` bytes; `take` is asked for
/// each message's bytes before it is built. None when the body is not a Sensor Logger batch:
/// it is then published whole.
pub fn split(
    body: &str,
    envelope: &Envelope<'_>,
    topic: &str,
    cap: usize,
    mut take: impl FnMut(usize) -> bool,
) -> Result<Option<Vec<(String, Bytes)>>, SplitError> {
    let Some(payload) = envelope.payload else {
        return Ok(None);
    };
    let device = envelope
        .device_id
        .as_deref()
        .ok_or_else(|| SplitError::Bad("smq: --split needs a deviceId in the body".into()))?;
    let device = level(device);
    // The array is a slice of `body` (serde_json borrows raw values from the input).
    let start = payload.get().as_ptr() as usize - body.as_ptr() as usize;
    // Whitespace around the body (a file's last newline) is not part of the message.
    let (before, after) = (
        body[..start].trim_start(),
        body[start + payload.get().len()..].trim_end(),
    );
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut failed = None;
    let walked = each_element(payload, |reading| {
        let [name] = fields(reading.get(), ["name"]).unwrap_or_default();
        let sensor = level(&name.and_then(string).unwrap_or_default());
        let topic = format!("{topic}/{device}/{sensor}");
        if let Some(why) = topic::name_error(&topic) {
            failed = Some(SplitError::Bad(format!(
                "smq: the topic '{}…' is not valid: {why}",
                topic.chars().take(64).collect::<String>()
            )));
            return false;
        }
        let len = before.len() + reading.get().len() + after.len() + 2;
        let size = len + topic.len() + MESSAGE_OVERHEAD;
        total = total.saturating_add(size);
        if total > cap {
            failed = Some(SplitError::TooLarge);
            return false;
        }
        if !take(size) {
            failed = Some(SplitError::Busy);
            return false;
        }
        let mut message = Vec::with_capacity(len);
        message.extend_from_slice(before.as_bytes());
        message.push(b'[');
        message.extend_from_slice(reading.get().as_bytes());
        message.push(b']');
        message.extend_from_slice(after.as_bytes());
        out.push((topic, Bytes::from(message)));
        true
    });
    match (failed, walked) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(SplitError::Bad(format!("smq: {e}"))),
        (None, Ok(())) => Ok(Some(out)),
    }
}

/// A name as one topic level: `wrist motion` → `wrist_motion`; wildcards, `/` and NUL become
/// `_` too, as does a leading `$` (no push reaches `$SYS`), and an empty name is `_`.
pub fn level(name: &str) -> String {
    let level: String = name
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            ' ' | '/' | '+' | '#' | '\0' => '_',
            '$' if i == 0 => '_',
            c => c,
        })
        .collect();
    if level.is_empty() { "_".into() } else { level }
}

/// Calls `each` with every element of a JSON array until it returns false.
fn each_element<'a>(
    array: &'a RawValue,
    each: impl FnMut(&'a RawValue) -> bool,
) -> Result<(), serde_json::Error> {
    struct Walk<F>(F);
    impl<'de, F: FnMut(&'de RawValue) -> bool> Visitor<'de> for Walk<F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(element) = seq.next_element::<&'de RawValue>()? {
                if !(self.0)(element) {
                    return Err(de::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(array.get());
    de.deserialize_seq(Walk(each))
}

/// The raw values of the top-level keys `names` when `json` is an object (later keys win, as
/// in any JSON object read into a map); every other value is only checked to be JSON.
fn fields<'a, const N: usize>(
    json: &'a str,
    names: [&str; N],
) -> Result<[Option<&'a RawValue>; N], serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let found = de.deserialize_any(FieldsVisitor(&names))?;
    de.end()?;
    Ok(found)
}

struct FieldsVisitor<'n, const N: usize>(&'n [&'n str; N]);

impl<'de, const N: usize> Visitor<'de> for FieldsVisitor<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = [None; N];
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            match key {
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok([None; N])
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok([None; N])
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok([None; N])
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok([None; N])
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok([None; N])
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok([None; N])
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok([None; N])
    }
}

/// Which of the wanted names a key is, without allocating for the others.
struct KeySeed<'n, const N: usize>(&'n [&'n str; N]);

impl<'de, const N: usize> de::DeserializeSeed<'de> for KeySeed<'_, N> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<const N: usize> Visitor<'_> for KeySeed<'_, N> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| *n == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_envelope_and_checks_the_rest() {
        let body = r#"{"messageId":7,"sessionId":"s\u0031","deviceId":"d","x":{"deviceId":"no"},"payload":[{"name":"a"},2]}"#;
        let e = Envelope::read(body).expect("JSON");
        assert_eq!(e.device_id.as_deref(), Some("d"));
        assert_eq!(e.session_id.as_deref(), Some("s1"));
        assert_eq!(e.message_id, Some(7));
        assert_eq!(e.readings(), Some(2));
        for not_json in ["{", "[0,]", "{} x", r#"{"a":tru}"#, ""] {
            assert!(Envelope::read(not_json).is_err(), "{not_json}");
        }
        for other in ["[0,0]", "42", "\"s\"", "null", r#"{"payload":{}}"#] {
            let e = Envelope::read(other).expect(other);
            assert!(e.device_id.is_none() && e.readings().is_none(), "{other}");
        }
        // Ids far apart and not integers are read or left out, never wrapped.
        let e = Envelope::read(r#"{"messageId":1e3,"deviceId":5}"#).expect("JSON");
        assert_eq!((e.message_id, e.device_id), (None, None));
    }

    #[test]
    fn split_makes_one_sensor_logger_message_per_reading() {
        let body = r#"{"messageId":7,"sessionId":"s","deviceId":"d/1","payload":[
                {"name":"wrist motion","values":{"z":1,"x":2},"time":1741944600130482200},
                {"name":"light","values":{"lux":342}}],"tail":true}
"#;
        let e = Envelope::read(body).expect("JSON");
        let out = split(body, &e, "sensor-logger", 1 << 20, |_| true)
            .expect("splits")
            .expect("a batch");
        let topics: Vec<&str> = out.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            ["sensor-logger/d_1/wrist_motion", "sensor-logger/d_1/light"]
        );
        // Key order, the other keys and the time's digits survive.
        assert_eq!(
            std::str::from_utf8(&out[0].1).expect("utf-8"),
            r#"{"messageId":7,"sessionId":"s","deviceId":"d/1","payload":[{"name":"wrist motion","values":{"z":1,"x":2},"time":1741944600130482200}],"tail":true}"#
        );
        let not_batch = r#"{"a":1}"#;
        let e = Envelope::read(not_batch).expect("JSON");
        assert_eq!(split(not_batch, &e, "t", 1 << 20, |_| true), Ok(None));
        let anonymous = r#"{"payload":[]}"#;
        let e = Envelope::read(anonymous).expect("JSON");
        assert!(matches!(
            split(anonymous, &e, "t", 1 << 20, |_| true),
            Err(SplitError::Bad(_))
        ));
    }

    #[test]
    fn split_output_is_capped() {
        // Each message repeats the envelope: a large pad key times many readings is refused
        // before it is built.
        let pad = "p".repeat(10_000);
        let readings = vec![r#"{"name":"a"}"#; 100].join(",");
        let body = format!(r#"{{"deviceId":"d","pad":"{pad}","payload":[{readings}]}}"#);
        let e = Envelope::read(&body).expect("JSON");
        assert_eq!(
            split(&body, &e, "t", 4 * body.len(), |_| true),
            Err(SplitError::TooLarge)
        );
        assert_eq!(
            split(&body, &e, "t", 200 * body.len(), |_| true)
                .expect("fits")
                .expect("a batch")
                .len(),
            100
        );
        // Each message's bytes are asked for before it is built: a refusal stops the split.
        let mut asked = Vec::new();
        let busy = split(&body, &e, "t", 200 * body.len(), |n| {
            asked.push(n);
            asked.len() <= 4
        });
        assert_eq!(busy, Err(SplitError::Busy));
        assert_eq!(asked.len(), 5, "stopped at the first refusal");
        // A message's bytes and its share of the bookkeeping, the pad included.
        assert!(asked.iter().all(|&n| n > 10_000 + 128), "{asked:?}");
    }

    #[test]
    fn split_topics_longer_than_mqtt_allows_are_refused() {
        let name = "n".repeat(70_000);
        let body = format!(r#"{{"deviceId":"d","payload":[{{"name":"{name}"}}]}}"#);
        let e = Envelope::read(&body).expect("JSON");
        match split(&body, &e, "t", usize::MAX, |_| true) {
            Err(SplitError::Bad(why)) => assert!(why.contains("65535"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn levels_cannot_escape_their_level() {
        assert_eq!(level("a/b+c#d\0 e"), "a_b_c_d__e");
        assert_eq!(level("$SYS"), "_SYS");
        assert_eq!(level("a$"), "a$");
        assert_eq!(level(""), "_");
    }
}
