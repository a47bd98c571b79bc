//! Sensor Logger batches (SENSORS.md §1): `{"messageId","sessionId","deviceId","payload":[…]}`.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{EventTime, Options, Reading, scaled_int, value_columns};

/// Auto-detect (§6 #1): an object with a `payload` array and at least one envelope id.
pub(super) fn detect(v: &Value, opts: &Options) -> Option<Vec<Reading>> {
    let obj = v.as_object()?;
    if !["messageId", "sessionId", "deviceId"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return None;
    }
    decode(v, opts)
}

/// Forced `--decode sensorlogger`: any object with a `payload` array.
pub(super) fn decode(v: &Value, opts: &Options) -> Option<Vec<Reading>> {
    let obj = v.as_object()?;
    let readings = obj.get("payload")?.as_array()?;
    let id = |k: &str| obj.get(k).map(id_text).unwrap_or_default();
    let base = Reading {
        device_id: id("deviceId").into(),
        session_id: id("sessionId").into(),
        message_id: id("messageId").into(),
        ..Reading::default()
    };
    let mut rows = Vec::with_capacity(readings.len() * 4);
    for r in readings {
        reading_rows(&base, r, opts, &mut rows);
    }
    Some(rows)
}

/// Ids are strings (or the `messageId` integer); other shapes are kept as JSON text.
fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => {
            let (value, value_text) = value_columns(other);
            value + &value_text
        }
    }
}

fn reading_rows(base: &Reading, r: &Value, opts: &Options, rows: &mut Vec<Reading>) {
    let Some(obj) = r.as_object() else {
        // Not a reading object: keep it rather than drop it.
        let (value, value_text) = value_columns(r);
        rows.push(Reading {
            field: "reading".into(),
            value,
            value_text,
            ..base.clone()
        });
        return;
    };
    let sensor = obj.get("name").map(id_text).unwrap_or_default();
    if sensor == "test" && !opts.keep_test {
        return;
    }
    let (time, bad_time) = match obj.get("time") {
        None | Some(Value::Null) => (None, None),
        Some(t) => match event_time(t) {
            Some(et) => (Some(et), None),
            None => (None, Some(t)),
        },
    };
    let base = Reading {
        sensor: sensor.into(),
        time,
        ..base.clone()
    };
    let mut push = |field: &str, v: &Value| {
        let (value, value_text) = value_columns(v);
        rows.push(Reading {
            field: field.to_string(),
            value,
            value_text,
            ..base.clone()
        });
    };
    // Older docs show the fields inline; then every other key is a field (§1.1).
    let inline;
    let fields: &Map<String, Value> = match obj.get("values") {
        Some(Value::Object(m)) => m,
        Some(other) => {
            push("values", other);
            inline = Map::new();
            &inline
        }
        None => {
            inline = obj
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "name" | "time" | "accuracy"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            &inline
        }
    };
    for (k, v) in fields {
        if &*base.sensor == "camera" && k == "image" && !opts.keep_blobs {
            // Frames are hundreds of KB of base64; record only their size.
            push("image_bytes", &image_len(v));
        } else {
            push(k, v);
        }
    }
    if let Some(a) = obj.get("accuracy")
        && !opts.no_accuracy
    {
        push("accuracy", a);
    }
    if let Some(t) = bad_time {
        // An unusable `time` fell back to recv; keep what was sent.
        push("device_ts", t);
    }
}

/// `time` is integer Unix ns (§1.3). The digits are kept exactly as sent: values above
/// 2^53 would change through f64. A float literal is accepted and rounded.
fn event_time(t: &Value) -> Option<EventTime> {
    let text = match t {
        Value::Number(n) => n.to_string(),
        // Exports write numbers as strings; accept that shape too.
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let ns = scaled_int(&text, 0)?;
    super::format_ns(ns)?;
    let exact = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    Some(EventTime {
        ns,
        text: exact.then(|| text.into()),
    })
}

/// The decoded byte length of a base64 image, as a JSON number.
fn image_len(v: &Value) -> Value {
    let Some(s) = v.as_str() else {
        return Value::Null;
    };
    // Tolerate a data-URL prefix and missing padding.
    let b64 = s.rsplit_once("base64,").map_or(s, |(_, b)| b).trim();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    match engine.decode(b64) {
        Ok(bytes) => Value::from(bytes.len()),
        Err(_) => Value::Null,
    }
}
