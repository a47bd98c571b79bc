//! ThingFlow / AntEvents (SENSORS.md §2): `[sensor_id, ts, value]`, or an array of those.

use serde_json::Value;

use super::{EventTime, Reading, plausible, scaled_int, value_columns};

/// MicroPython's embedded epoch is 2000-01-01: Unix − 946684800 s.
const MICROPYTHON_EPOCH_S: i128 = 946_684_800;
const NS: i128 = 1_000_000_000;
const DAY_NS: i128 = 86_400 * NS;

pub(super) fn decode(v: &Value, now_ns: i128) -> Option<Vec<Reading>> {
    let items = v.as_array()?;
    if items.first()?.is_array() {
        // A batch: every item must match, or this is some other JSON.
        let mut rows = Vec::new();
        for item in items {
            rows.extend(triple(item, now_ns)?);
        }
        Some(rows)
    } else {
        triple(v, now_ns)
    }
}

fn triple(v: &Value, now_ns: i128) -> Option<Vec<Reading>> {
    let [id, ts, value] = v.as_array()?.as_slice() else {
        return None;
    };
    let sensor = match id {
        Value::String(s) => s.clone(),
        Value::Number(n)
            if n.to_string()
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'-') =>
        {
            n.to_string()
        }
        _ => return None,
    };
    let (Value::Number(ts), Value::Number(_)) = (ts, value) else {
        return None;
    };
    let ts_text = ts.to_string();
    let time = device_time(&ts_text, now_ns);
    let (value, value_text) = value_columns(value);
    let mut rows = vec![Reading {
        sensor: sensor.as_str().into(),
        time: time.clone(),
        field: "value".into(),
        value,
        value_text,
        ..Reading::default()
    }];
    if time.is_none() {
        // Seconds since boot (or a clock we can't place): keep the raw value.
        rows.push(Reading {
            sensor: sensor.into(),
            field: "device_ts".into(),
            value: ts_text,
            ..Reading::default()
        });
    }
    Some(rows)
}

/// `--device-time auto` (§6): Unix seconds if plausible, else the MicroPython epoch
/// within a day of receipt, else None (recv time).
fn device_time(ts: &str, now_ns: i128) -> Option<EventTime> {
    let ns = scaled_int(ts, 9)?;
    if plausible(ns, now_ns) {
        return Some(EventTime::from_ns(ns));
    }
    let shifted = ns.checked_add(MICROPYTHON_EPOCH_S * NS)?;
    (shifted.abs_diff(now_ns) <= DAY_NS.unsigned_abs()).then(|| EventTime::from_ns(shifted))
}
