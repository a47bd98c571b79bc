//! istSOS 2 MQTT broadcast (SENSORS.md §3): `ISO8601-time,v1,v2,…` on `<base>/<procedure>`.

use super::{EventTime, Reading, is_number_text, last_level, parse_iso};

pub(super) fn decode(topic: &str, text: &str) -> Option<Vec<Reading>> {
    let mut tokens = text.trim().split(',');
    let ns = parse_iso(tokens.next()?)?;
    let values: Vec<&str> = tokens.map(str::trim).collect();
    // A time alone is not an observation; every other token must be a number.
    if values.is_empty() || !values.iter().all(|v| is_number_text(v)) {
        return None;
    }
    let procedure = last_level(topic);
    Some(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Reading {
                device_id: procedure.into(),
                // The procedure is also the last topic level, the generic `sensor` rule.
                sensor: procedure.into(),
                time: Some(EventTime::from_ns(ns)),
                field: format!("v{}", i + 1),
                value: (*v).to_string(),
                ..Reading::default()
            })
            .collect(),
    )
}
