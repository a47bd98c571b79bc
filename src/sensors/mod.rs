//! Sensor payload decoders (SENSORS.md §1–§4, §6): one MQTT message in, `readings` rows out.
//!
//! Decoding never fails: a payload no decoder recognises becomes one Raw row, so a
//! recording never drops a message silently.

mod generic;
mod istsos;
mod sensorlogger;
mod thingflow;
pub mod thingspeak;

use std::rc::Rc;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Which decoder `--decode` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Auto,
    SensorLogger,
    ThingFlow,
    ThingSpeak,
    IstSos,
    Number,
    Json,
    Raw,
}

impl FromStr for Decoder {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Decoder::Auto,
            "sensorlogger" => Decoder::SensorLogger,
            "thingflow" => Decoder::ThingFlow,
            "thingspeak" => Decoder::ThingSpeak,
            "istsos" => Decoder::IstSos,
            "number" => Decoder::Number,
            "json" => Decoder::Json,
            "raw" => Decoder::Raw,
            _ => {
                return Err(format!(
                    "unknown decoder '{s}' (expected auto, sensorlogger, thingflow, thingspeak, istsos, number, json or raw)"
                ));
            }
        })
    }
}

/// An accepted device timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTime {
    /// Unix nanoseconds.
    pub ns: i128,
    /// The integer digits exactly as the device sent them, when they are already Unix ns
    /// (Sensor Logger). Written to `time_ns` instead of `ns` so nothing is reformatted.
    pub text: Option<Rc<str>>,
}

impl EventTime {
    pub fn from_ns(ns: i128) -> Self {
        EventTime { ns, text: None }
    }
}

/// One output row of the `readings` layout (§5.1), minus `recv_time` and `topic`,
/// which the writer adds. `time: None` means `time_src=recv`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    // Shared by every row of a message or reading: a batch is hundreds of rows.
    pub device_id: Rc<str>,
    pub session_id: Rc<str>,
    pub message_id: Rc<str>,
    pub sensor: Rc<str>,
    pub time: Option<EventTime>,
    pub field: String,
    /// Number text exactly as received; empty for non-numbers.
    pub value: String,
    /// Strings verbatim, `true`/`false`, JSON-encoded arrays/objects.
    pub value_text: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub keep_test: bool,
    pub keep_blobs: bool,
    pub no_accuracy: bool,
}

/// Decodes one MQTT message into reading rows. Never fails: anything undecodable
/// becomes the Raw row. `now` is the receive time, used for plausibility checks.
pub fn decode(
    decoder: Decoder,
    topic: &str,
    payload: &[u8],
    now: DateTime<Utc>,
    opts: &Options,
) -> Vec<Reading> {
    let now_ns = datetime_ns(now);
    // Parse JSON once; several detectors look at it.
    let json: Option<Value> = serde_json::from_slice(payload).ok();
    let text = std::str::from_utf8(payload).ok();
    let decoded = match decoder {
        Decoder::Auto => json
            .as_ref()
            .and_then(|v| sensorlogger::detect(v, opts))
            .or_else(|| json.as_ref().and_then(|v| thingflow::decode(v, now_ns)))
            .or_else(|| thingspeak::decode(topic, text, json.as_ref(), false))
            .or_else(|| text.and_then(|t| istsos::decode(topic, t)))
            .or_else(|| text.and_then(|t| generic::number(topic, t)))
            .or_else(|| json.as_ref().map(|v| generic::json(topic, v, now_ns))),
        Decoder::SensorLogger => json.as_ref().and_then(|v| sensorlogger::decode(v, opts)),
        Decoder::ThingFlow => json.as_ref().and_then(|v| thingflow::decode(v, now_ns)),
        Decoder::ThingSpeak => thingspeak::decode(topic, text, json.as_ref(), true),
        Decoder::IstSos => text.and_then(|t| istsos::decode(topic, t)),
        Decoder::Number => text.and_then(|t| generic::number(topic, t)),
        Decoder::Json => json.as_ref().map(|v| generic::json(topic, v, now_ns)),
        Decoder::Raw => None,
    };
    decoded.unwrap_or_else(|| vec![generic::raw(topic, payload)])
}

/// The last topic level: the `sensor` of payloads that carry no name of their own.
fn last_level(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

/// Splits a JSON value into the `value` / `value_text` columns (§5.1).
fn value_columns(v: &Value) -> (String, String) {
    match v {
        // With `arbitrary_precision` this is the number text as received.
        Value::Number(n) => (n.to_string(), String::new()),
        Value::String(s) => (String::new(), s.clone()),
        Value::Bool(b) => (String::new(), b.to_string()),
        Value::Null => (String::new(), String::new()),
        Value::Array(_) | Value::Object(_) => (String::new(), v.to_string()),
    }
}

/// Text-typed protocols (ThingSpeak forms, istSOS): numbers go to `value`, the rest to
/// `value_text`, both verbatim.
fn text_columns(s: &str) -> (String, String) {
    if is_number_text(s) {
        (s.to_string(), String::new())
    } else {
        (String::new(), s.to_string())
    }
}

/// A decimal number as text: `[+-]digits[.digits][(e|E)[+-]digits]`, or `.5`-style.
/// Stricter than `f64::from_str`, which also takes `inf` and `NaN`; those are not readings.
fn is_number_text(s: &str) -> bool {
    split_number(s).is_some()
}

/// Splits number text into (negative, integer digits, fraction digits, exponent).
fn split_number(s: &str) -> Option<(bool, &str, &str, i64)> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => {
            let e = &rest[i + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Saturate: an absurd exponent is still a number, just not a usable time.
            let exp = e.parse::<i64>().unwrap_or(if e.starts_with('-') {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            });
            (&rest[..i], exp)
        }
        None => (rest, 0),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits_ok(int) || !digits_ok(frac) {
        return None;
    }
    Some((neg, int, frac, exp))
}

/// Number text × 10^pow10 as an integer, rounded half away from zero, computed exactly in
/// decimal (never through f64, which loses digits above 2^53). None on overflow.
fn scaled_int(s: &str, pow10: i64) -> Option<i128> {
    let (neg, int, frac, exp) = split_number(s)?;
    let mut mantissa: i128 = 0;
    let mut shift = exp.checked_add(pow10)?.checked_sub(frac.len() as i64)?;
    for b in int.bytes().chain(frac.bytes()) {
        let d = i128::from(b - b'0');
        match mantissa.checked_mul(10).and_then(|m| m.checked_add(d)) {
            Some(m) => mantissa = m,
            // More digits than i128 holds: drop the rest (they are far below 1 ns).
            None => shift = shift.checked_add(1)?,
        }
    }
    let value = if shift >= 0 {
        let p = 10i128.checked_pow(u32::try_from(shift).ok()?)?;
        if mantissa == 0 {
            0
        } else {
            mantissa.checked_mul(p)?
        }
    } else if shift < -38 {
        0
    } else {
        let p = 10i128.pow(u32::try_from(-shift).ok()?);
        let (q, r) = (mantissa / p, mantissa % p);
        // `r >= p - r`, not `2r >= p`: 2r can overflow when p is 10^38.
        if r >= p - r { q + 1 } else { q }
    };
    Some(if neg { -value } else { value })
}

const NS_PER_SEC: i128 = 1_000_000_000;
/// 2001-09-09T01:46:40Z (Unix 1e9 s): the lower bound for a plausible device clock.
const MIN_PLAUSIBLE_NS: i128 = 1_000_000_000 * NS_PER_SEC;
const DAY_NS: i128 = 86_400 * NS_PER_SEC;

/// Plausible device time: between 2001-09-09 and one day after receipt (§6).
fn plausible(ns: i128, now_ns: i128) -> bool {
    (MIN_PLAUSIBLE_NS..=now_ns.saturating_add(DAY_NS)).contains(&ns)
}

pub fn datetime_ns(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * NS_PER_SEC + i128::from(t.timestamp_subsec_nanos())
}

/// Unix ns → UTC, only for years 0000–9999 (what RFC 3339 can write).
fn ns_datetime(ns: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(ns.div_euclid(NS_PER_SEC)).ok()?;
    let nanos = u32::try_from(ns.rem_euclid(NS_PER_SEC)).ok()?;
    let t = DateTime::from_timestamp(secs, nanos)?;
    let year = chrono::Datelike::year(&t);
    (0..=9999).contains(&year).then_some(t)
}

/// RFC 3339 UTC with 9 fraction digits and `Z` (§5.1), or None outside years 0–9999.
pub fn format_ns(ns: i128) -> Option<String> {
    ns_datetime(ns).map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

/// ISO 8601 / RFC 3339 date-time to Unix ns. A time without an offset is taken as UTC
/// (istSOS "as UTC"; ThingSpeak `created_at` is often written `YYYY-MM-DD hh:mm:ss`).
fn parse_iso(s: &str) -> Option<i128> {
    let s = s.trim();
    // A date alone or a bare number is not a timestamp here.
    if s.len() < 16 || !s.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let t = DateTime::parse_from_rfc3339(s)
        .ok()
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z").ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(|n| n.and_utc())
        })?;
    let ns = datetime_ns(t);
    ns_datetime(ns).map(|_| ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-14T09:30:05.5Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn auto(topic: &str, payload: &str) -> Vec<Reading> {
        decode(
            Decoder::Auto,
            topic,
            payload.as_bytes(),
            now(),
            &Options::default(),
        )
    }

    /// (sensor, field, value, value_text, time_ns or "recv") per row.
    fn cols(rows: &[Reading]) -> Vec<(String, String, String, String, String)> {
        rows.iter()
            .map(|r| {
                let t = r.time.as_ref().map_or("recv".to_string(), |t| {
                    t.text
                        .as_deref()
                        .map(str::to_owned)
                        .unwrap_or_else(|| t.ns.to_string())
                });
                (
                    r.sensor.to_string(),
                    r.field.clone(),
                    r.value.clone(),
                    r.value_text.clone(),
                    t,
                )
            })
            .collect()
    }

    fn row(
        s: &str,
        f: &str,
        v: &str,
        vt: &str,
        t: &str,
    ) -> (String, String, String, String, String) {
        (s.into(), f.into(), v.into(), vt.into(), t.into())
    }

    #[test]
    fn decoder_names() {
        for (name, d) in [
            ("auto", Decoder::Auto),
            ("sensorlogger", Decoder::SensorLogger),
            ("thingflow", Decoder::ThingFlow),
            ("thingspeak", Decoder::ThingSpeak),
            ("istsos", Decoder::IstSos),
            ("number", Decoder::Number),
            ("json", Decoder::Json),
            ("raw", Decoder::Raw),
        ] {
            assert_eq!(name.parse::<Decoder>(), Ok(d));
        }
        assert!("Auto".parse::<Decoder>().is_err());
        assert!("".parse::<Decoder>().is_err());
    }

    #[test]
    fn scaled_int_is_exact() {
        // The f64 round trip would give …176.
        assert_eq!(
            scaled_int("1741944600130482200", 0),
            Some(1_741_944_600_130_482_200)
        );
        assert_eq!(
            scaled_int("1.7419446001304822e18", 0),
            Some(1_741_944_600_130_482_200)
        );
        assert_eq!(
            scaled_int("1741944605.25", 9),
            Some(1_741_944_605_250_000_000)
        );
        assert_eq!(scaled_int("-1.5", 0), Some(-2));
        assert_eq!(scaled_int("0.4999", 0), Some(0));
        assert_eq!(scaled_int("1e-400", 9), Some(0));
        assert_eq!(scaled_int("1e400", 0), None);
        assert_eq!(scaled_int("1e99999999999999999999999", 0), None);
        assert_eq!(scaled_int(&"9".repeat(60), 0), None);
        assert_eq!(scaled_int(&format!("0.{}", "9".repeat(60)), 0), Some(1));
        for bad in [
            "", "-", "+", ".", "e5", "1e", "1e+", "inf", "NaN", "0x10", "1.2.3", " 1",
        ] {
            assert_eq!(scaled_int(bad, 0), None, "{bad:?}");
            assert!(!is_number_text(bad), "{bad:?}");
        }
    }

    #[test]
    fn sensorlogger_time_digits_and_float_fallback() {
        let rows = auto(
            "sl",
            r#"{"messageId":1,"payload":[{"name":"a","time":1741944600130482200,"values":{"x":1}},
                {"name":"b","time":1.7419446001304822e18,"values":{"x":2}},
                {"name":"c","time":"1741944600130482300","values":{"x":3}}]}"#,
        );
        assert_eq!(
            rows[0].time,
            Some(EventTime {
                ns: 1_741_944_600_130_482_200,
                text: Some("1741944600130482200".into())
            })
        );
        // A float literal is rounded; time_ns then holds the integer, not the float text.
        assert_eq!(
            rows[1].time,
            Some(EventTime::from_ns(1_741_944_600_130_482_200))
        );
        assert_eq!(
            rows[2].time.as_ref().unwrap().text.as_deref(),
            Some("1741944600130482300")
        );
        assert_eq!(&*rows[0].message_id, "1");
    }

    #[test]
    fn sensorlogger_options_and_shapes() {
        let msg = r#"{"deviceId":"d","payload":[
            {"name":"test","time":1741944600000000000,"values":{"x":1}},
            {"name":"camera","time":1741944600000000000,"values":{"image":"aGVsbG8=","imageFormat":"jpg"},"accuracy":3},
            {"name":"old","time":1741944600000000000,"x":5,"accuracy":1},
            {"name":"bad","time":"yesterday","values":{"x":1}},
            {"name":"far","time":1e30,"values":{"x":1}},
            7]}"#;
        let rows = auto("sl", msg);
        let t = "1741944600000000000";
        assert_eq!(
            cols(&rows),
            vec![
                row("camera", "image_bytes", "5", "", t),
                row("camera", "imageFormat", "", "jpg", t),
                row("camera", "accuracy", "3", "", t),
                // `values` missing: the other keys are the fields.
                row("old", "x", "5", "", t),
                row("old", "accuracy", "1", "", t),
                // An unusable time falls back to recv and is kept as `device_ts`.
                row("bad", "x", "1", "", "recv"),
                row("bad", "device_ts", "", "yesterday", "recv"),
                row("far", "x", "1", "", "recv"),
                // serde_json (arbitrary_precision) normalises a positive exponent to `e+`.
                row("far", "device_ts", "1e+30", "", "recv"),
                row("", "reading", "7", "", "recv"),
            ]
        );
        assert!(rows.iter().all(|r| &*r.device_id == "d"));

        let opts = Options {
            keep_test: true,
            keep_blobs: true,
            no_accuracy: true,
        };
        let rows = decode(Decoder::SensorLogger, "sl", msg.as_bytes(), now(), &opts);
        let fields: Vec<_> = rows
            .iter()
            .map(|r| (&*r.sensor, r.field.as_str()))
            .collect();
        assert_eq!(
            &fields[..4],
            &[
                ("test", "x"),
                ("camera", "image"),
                ("camera", "imageFormat"),
                ("old", "x")
            ]
        );
        assert_eq!(rows[1].value_text, "aGVsbG8=");
        assert!(rows.iter().all(|r| r.field != "accuracy"));
    }

    #[test]
    fn sensorlogger_needs_an_envelope_id_in_auto() {
        let msg = r#"{"payload":[{"name":"a","time":1741944600000000000,"values":{"x":1}}]}"#;
        // Auto: generic JSON (the array is one value_text row).
        let rows = auto("t/p", msg);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].field, "payload");
        assert!(rows[0].value_text.starts_with('['));
        // Forced: decoded as Sensor Logger.
        let rows = decode(
            Decoder::SensorLogger,
            "t/p",
            msg.as_bytes(),
            now(),
            &Options::default(),
        );
        assert_eq!(
            cols(&rows),
            vec![row("a", "x", "1", "", "1741944600000000000")]
        );
    }

    #[test]
    fn thingflow_shapes_and_times() {
        // A batch of triples; the second uses a future time (> now + 1 day) → recv.
        let rows = auto(
            "sensor-data",
            r#"[["a", 1741944600, 1.5], ["b", 1742944600, 2]]"#,
        );
        assert_eq!(
            cols(&rows),
            vec![
                row("a", "value", "1.5", "", "1741944600000000000"),
                row("b", "value", "2", "", "recv"),
                row("b", "device_ts", "1742944600", "", "recv"),
            ]
        );
        // Fractional seconds stay exact.
        let rows = auto("s", r#"["a", 1741944600.25, 1]"#);
        assert_eq!(
            rows[0].time,
            Some(EventTime::from_ns(1_741_944_600_250_000_000))
        );
        // Not ThingFlow: wrong arity, float id, string value, mixed batch.
        for p in [
            r#"["a", 1]"#,
            r#"[1.5, 1, 2]"#,
            r#"["a", 1, "x"]"#,
            r#"[["a",1,2], 3]"#,
            "[]",
        ] {
            let rows = auto("s", p);
            assert_eq!(rows.len(), 1, "{p}");
            assert_eq!(
                (rows[0].field.as_str(), rows[0].value_text.as_str()),
                (
                    "value",
                    serde_json::from_str::<Value>(p)
                        .unwrap()
                        .to_string()
                        .as_str()
                ),
                "{p}"
            );
        }
    }

    #[test]
    fn istsos_edges() {
        // No offset: taken as UTC. Spaces around values are tolerated.
        let rows = auto("a/b/PROC", "2025-03-14T08:30:00, 1 ,2e3\n");
        assert_eq!(
            cols(&rows),
            vec![
                row("PROC", "v1", "1", "", "1741941000000000000"),
                row("PROC", "v2", "2e3", "", "1741941000000000000"),
            ]
        );
        assert_eq!(&*rows[0].device_id, "PROC");
        // A non-number token or no values at all: not istSOS (→ raw).
        for p in [
            "2025-03-14T08:30:00Z,1,x",
            "2025-03-14T08:30:00Z",
            "2025-03-14T08:30:00Z,",
        ] {
            assert_eq!(auto("p", p)[0].field, "payload", "{p}");
        }
    }

    #[test]
    fn thingspeak_edges() {
        use thingspeak::redact_topic;
        assert_eq!(redact_topic("channels/1/publish/KEY"), "channels/1/publish");
        assert_eq!(
            redact_topic("channels/1/publish/fields/field3/KEY"),
            "channels/1/publish/fields/field3"
        );
        assert_eq!(
            redact_topic("channels/1/subscribe/json/RKEY"),
            "channels/1/subscribe/json"
        );
        assert_eq!(
            redact_topic("channels/1/subscribe/fields/field1/RKEY"),
            "channels/1/subscribe/fields/field1"
        );
        for keep in [
            "channels/1/publish",
            "channels/1/publish/fields/field1",
            "channels/x/publish/KEY",
            "sensor-logger",
            "",
            "/",
        ] {
            assert_eq!(redact_topic(keep), keep);
        }
        // `+` is a space; an unknown key means it is not a ThingSpeak form.
        let rows = auto(
            "channels/9/publish",
            "field1=a+b&status=x%2By&created_at=2025-03-14T09:30:05%2B01:00",
        );
        assert_eq!(
            cols(&rows),
            vec![
                row("", "field1", "", "a b", "1741941005000000000"),
                row("", "status", "", "x+y", "1741941005000000000"),
            ]
        );
        assert_eq!(auto("channels/9/publish", "field9=1")[0].field, "payload");
        // Unparseable created_at stays a row; the key level never reaches device_id/sensor.
        let rows = auto("channels/9/publish/SECRET", "field1=&created_at=soon");
        assert_eq!(
            cols(&rows),
            vec![
                row("", "field1", "", "", "recv"),
                row("", "created_at", "", "soon", "recv")
            ]
        );
        assert!(
            rows.iter()
                .all(|r| &*r.device_id == "9" && !r.sensor.contains("SECRET"))
        );
        // Auto needs the topic; forced accepts any.
        assert_eq!(auto("other", "field1=5")[0].field, "payload");
        let rows = decode(
            Decoder::ThingSpeak,
            "other",
            b"field1=5",
            now(),
            &Options::default(),
        );
        assert_eq!(cols(&rows), vec![row("", "field1", "5", "", "recv")]);
    }

    #[test]
    fn number_json_raw() {
        assert_eq!(
            cols(&auto("home/temp", " -3e2\n")),
            vec![row("temp", "value", "-3e2", "", "recv")]
        );
        assert_eq!(
            cols(&auto("t", "inf")),
            vec![row("t", "payload", "", "inf", "recv")]
        );
        assert_eq!(
            cols(&auto("t", "\"hi\"")),
            vec![row("t", "value", "", "hi", "recv")]
        );
        assert_eq!(
            cols(&auto("t", "true")),
            vec![row("t", "value", "", "true", "recv")]
        );
        assert_eq!(
            cols(&auto("t", "null")),
            vec![row("t", "value", "", "", "recv")]
        );
        assert_eq!(
            cols(&auto("t", "")),
            vec![row("t", "payload", "", "", "recv")]
        );
        assert_eq!(
            cols(&auto("t", "{}")),
            vec![row("t", "value", "", "{}", "recv")]
        );
        assert_eq!(
            cols(&decode(
                Decoder::Raw,
                "a/b",
                b"\xff\x00ok",
                now(),
                &Options::default()
            )),
            vec![row("b", "payload", "", "base64:/wBvaw==", "recv")]
        );
        // Forced decoders fall back to raw rather than fail.
        for d in [
            Decoder::SensorLogger,
            Decoder::ThingFlow,
            Decoder::IstSos,
            Decoder::Number,
            Decoder::Json,
            Decoder::ThingSpeak,
        ] {
            assert_eq!(
                cols(&decode(d, "t", b"{oops", now(), &Options::default())),
                vec![row("t", "payload", "", "{oops", "recv")]
            );
        }
    }

    #[test]
    fn flat_json_times_and_nesting() {
        let rows = auto(
            "dev/env",
            r#"{"temp":21.5,"ts":1741944600123,"pos":{"lat":1,"lon":{"deg":2}},"tags":["a",1],"ok":false,"e":{}}"#,
        );
        let t = "1741944600123000000";
        assert_eq!(
            cols(&rows),
            vec![
                row("env", "temp", "21.5", "", t),
                row("env", "pos.lat", "1", "", t),
                row("env", "pos.lon.deg", "2", "", t),
                row("env", "tags", "", r#"["a",1]"#, t),
                row("env", "ok", "", "false", t),
                row("env", "e", "", "{}", t),
            ]
        );
        for (p, ns) in [
            (r#"{"time":1741944600}"#, Some(1_741_944_600_000_000_000)),
            (r#"{"time":1741944600.5}"#, Some(1_741_944_600_500_000_000)),
            (
                r#"{"timestamp":1741944600123456}"#,
                Some(1_741_944_600_123_456_000),
            ),
            (
                r#"{"time":1741944600123456789}"#,
                Some(1_741_944_600_123_456_789),
            ),
            (
                r#"{"time":"2025-03-14T09:30:00.5Z"}"#,
                Some(1_741_944_600_500_000_000),
            ),
            (r#"{"time":"1741944600"}"#, Some(1_741_944_600_000_000_000)),
            // Implausible: before 2001, more than a day ahead, not a time.
            (r#"{"time":624}"#, None),
            (r#"{"time":1842944600}"#, None),
            (r#"{"time":"later"}"#, None),
            (r#"{"time":true}"#, None),
        ] {
            let rows = auto("t", p);
            // A time key that is the only key stays a row, so the message is not lost.
            assert_eq!(rows.len(), 1, "{p}");
            assert_eq!(rows[0].time.as_ref().map(|t| t.ns), ns, "{p}");
        }
    }

    #[test]
    fn formats_times() {
        assert_eq!(
            format_ns(1_741_944_600_130_482_200).as_deref(),
            Some("2025-03-14T09:30:00.130482200Z")
        );
        assert_eq!(
            format_ns(-1).as_deref(),
            Some("1969-12-31T23:59:59.999999999Z")
        );
        assert_eq!(format_ns(i128::MAX), None);
        assert_eq!(format_ns(300_000_000_000 * NS_PER_SEC), None);
    }

    /// xorshift64*: deterministic pseudo-random bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn never_panics() {
        let seeds: [&[u8]; 9] = [
            include_bytes!("../../tests/fixtures/sensorlogger-android-mixed.json"),
            include_bytes!("../../tests/fixtures/sensorlogger-study.json"),
            include_bytes!("../../tests/fixtures/thingflow-lines.txt"),
            include_bytes!("../../tests/fixtures/istsos-lines.txt"),
            b"field1=45&created_at=2025-03-14%2009%3A30%3A05&status=a%ZZ%ff",
            br#"{"time":1741944600123,"a":{"b":[1,{"c":null}]}}"#,
            b"2025-03-14T09:30:00+01:00,1e999999,-0",
            br#"[["a",1e308,1],[7,-1e-308,2]]"#,
            b"",
        ];
        let decoders = [
            Decoder::Auto,
            Decoder::SensorLogger,
            Decoder::ThingFlow,
            Decoder::ThingSpeak,
            Decoder::IstSos,
            Decoder::Number,
            Decoder::Json,
            Decoder::Raw,
        ];
        let topics = [
            "channels/1/publish/fields/field1",
            "channels/1/subscribe",
            "channels/1/publish/K",
            "a/b",
            "",
        ];
        let opts = Options {
            keep_test: true,
            keep_blobs: false,
            no_accuracy: false,
        };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut out = crate::layout::readings::ReadingsWriter::new(std::io::sink(), true).unwrap();
        for i in 0..20_000 {
            let mut p: Vec<u8> = if i % 2 == 0 {
                // Pure noise, biased towards JSON-ish bytes.
                let n = (rng.next() % 64) as usize;
                (0..n)
                    .map(|_| {
                        let r = rng.next();
                        let json_ish = b"[]{}\",:0123456789.eE+-TZ &=%";
                        if r % 3 == 0 {
                            json_ish[(r >> 8) as usize % json_ish.len()]
                        } else {
                            (r >> 16) as u8
                        }
                    })
                    .collect()
            } else {
                seeds[(rng.next() % seeds.len() as u64) as usize].to_vec()
            };
            // Mutate a few bytes of the seed so decoders see almost-valid input.
            for _ in 0..(rng.next() % 4) {
                if !p.is_empty() {
                    let at = (rng.next() % p.len() as u64) as usize;
                    p[at] = (rng.next() >> 24) as u8;
                }
            }
            let d = decoders[(rng.next() % decoders.len() as u64) as usize];
            let topic = topics[(rng.next() % topics.len() as u64) as usize];
            let rows = decode(d, topic, &p, now(), &opts);
            assert!(!rows.is_empty() || d != Decoder::Raw);
            out.write_message(now(), topic, &rows).unwrap();
        }
    }
}
