//! Source-independent decoders (SENSORS.md §6 #5–#8): plain number, JSON, raw.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{
    EventTime, Reading, is_number_text, last_level, parse_iso, plausible, scaled_int, value_columns,
};

/// #5: the trimmed payload is a number (`45`, `21.5`, `-3e2`).
pub(super) fn number(topic: &str, text: &str) -> Option<Vec<Reading>> {
    let t = text.trim();
    is_number_text(t).then(|| {
        vec![Reading {
            sensor: last_level(topic).into(),
            field: "value".into(),
            value: t.to_string(),
            ..Reading::default()
        }]
    })
}

/// #6 (object: one row per key, nested keys as `a.b`) and #7 (any other JSON: one row).
pub(super) fn json(topic: &str, v: &Value, now_ns: i128) -> Vec<Reading> {
    let mut base = Reading {
        sensor: last_level(topic).into(),
        ..Reading::default()
    };
    let obj = match v {
        // `{}` has no keys; one row keeps the message visible.
        Value::Object(obj) if !obj.is_empty() => obj,
        _ => {
            let (value, value_text) = value_columns(v);
            return vec![Reading {
                field: "value".into(),
                value,
                value_text,
                ..base
            }];
        }
    };
    // The first `time`/`ts`/`timestamp` key is the event time if plausible; it then
    // needs no row of its own. An implausible one stays a row and time falls back to recv.
    let mut time_key = None;
    if let Some((k, t)) = obj
        .iter()
        .find(|(k, _)| matches!(k.as_str(), "time" | "ts" | "timestamp"))
        && let Some(ns) = json_time(t, now_ns)
    {
        base.time = Some(EventTime::from_ns(ns));
        time_key = Some(k.as_str());
    }
    let mut rows = Vec::with_capacity(obj.len());
    flatten(&base, "", obj, time_key, &mut rows);
    if rows.is_empty() && time_key.is_some() {
        // `{"ts": …}` alone: keep the key as a row so the message still shows up.
        flatten(&base, "", obj, None, &mut rows);
    }
    rows
}

fn flatten(
    base: &Reading,
    prefix: &str,
    obj: &Map<String, Value>,
    skip: Option<&str>,
    rows: &mut Vec<Reading>,
) {
    for (k, v) in obj {
        if prefix.is_empty() && Some(k.as_str()) == skip {
            continue;
        }
        let field = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            // An empty object has no leaves; keep it as `{}` so the key is not lost.
            Value::Object(inner) if !inner.is_empty() => flatten(base, &field, inner, None, rows),
            _ => {
                let (value, value_text) = value_columns(v);
                rows.push(Reading {
                    field,
                    value,
                    value_text,
                    ..base.clone()
                });
            }
        }
    }
}

/// A numeric time's magnitude picks its unit (~1e9 s, ~1e12 ms, ~1e15 µs, ~1e18 ns);
/// a string is RFC 3339. Accepted only within [2001-09-09, now + 1 day].
fn json_time(t: &Value, now_ns: i128) -> Option<i128> {
    let ns = match t {
        Value::Number(n) => numeric_time(&n.to_string()),
        Value::String(s) if is_number_text(s.trim()) => numeric_time(s.trim()),
        Value::String(s) => parse_iso(s),
        _ => None,
    }?;
    plausible(ns, now_ns).then_some(ns)
}

fn numeric_time(text: &str) -> Option<i128> {
    // Magnitude only; the value itself is scaled exactly in decimal.
    let magnitude = text.parse::<f64>().ok()?.abs();
    let pow10 = if magnitude < 1e11 {
        9
    } else if magnitude < 1e14 {
        6
    } else if magnitude < 1e17 {
        3
    } else {
        0
    };
    scaled_int(text, pow10)
}

/// #8: one row with the payload text, or `base64:<…>` when it is not UTF-8.
pub(super) fn raw(topic: &str, payload: &[u8]) -> Reading {
    let value_text = match std::str::from_utf8(payload) {
        Ok(s) => s.to_string(),
        Err(_) => format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(payload)
        ),
    };
    Reading {
        sensor: last_level(topic).into(),
        field: "payload".into(),
        value_text,
        ..Reading::default()
    }
}
