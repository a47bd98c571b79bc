//! ThingSpeak MQTT (SENSORS.md §4): form-encoded `channels/<id>/publish`, bare values on
//! `…/fields/fieldN`, and the JSON feed subscribers get on `channels/<id>/subscribe`.
//!
//! The legacy broker put the write (or read) API key in the topic as the last level. That
//! level is never copied into `device_id` or `sensor`, and [`redact_topic`] removes it from
//! the topic column, so a recording shared with others does not leak the key.

use std::borrow::Cow;

use serde_json::Value;

use super::{EventTime, Reading, parse_iso, text_columns, value_columns};

/// Form keys of a channel update. Anything else means the payload is not ThingSpeak.
const FORM_KEYS: [&str; 13] = [
    "field1",
    "field2",
    "field3",
    "field4",
    "field5",
    "field6",
    "field7",
    "field8",
    "lat",
    "long",
    "elevation",
    "status",
    "created_at",
];

/// The parts of a `channels/<id>/(publish|subscribe)…` topic.
struct Topic<'a> {
    channel: &'a str,
    /// `Some("fieldN")` for `…/fields/fieldN`.
    field: Option<&'a str>,
    /// Levels to keep when writing the topic (the API key level excluded).
    keep: usize,
    levels: usize,
}

fn parse_topic(topic: &str) -> Option<Topic<'_>> {
    let l: Vec<&str> = topic.split('/').collect();
    if l.len() < 3
        || l[0] != "channels"
        || l[1].is_empty()
        || !l[1].bytes().all(|b| b.is_ascii_digit())
        || !matches!(l[2], "publish" | "subscribe")
    {
        return None;
    }
    let is_field = |s: &str| {
        s.strip_prefix("field")
            .is_some_and(|n| n.len() == 1 && (b'1'..=b'8').contains(&n.as_bytes()[0]))
    };
    let (field, keep) = match &l[3..] {
        [] => (None, 3),
        ["fields", f, ..] if is_field(f) => (Some(l[4]), 5),
        // Subscribe formats: `…/subscribe/json|xml|csv[/READ_KEY]`.
        [fmt, ..] if l[2] == "subscribe" && matches!(*fmt, "json" | "xml" | "csv") => (None, 4),
        // `…/publish/WRITE_KEY` (legacy): the key level is dropped.
        _ => (None, 3),
    };
    Some(Topic {
        channel: l[1],
        field,
        keep: keep.min(l.len()),
        levels: l.len(),
    })
}

/// The topic without a trailing API-key level, for the `topic` column. Other topics are
/// returned unchanged.
pub fn redact_topic(topic: &str) -> Cow<'_, str> {
    match parse_topic(topic) {
        Some(t) if t.keep < t.levels => {
            let end = topic
                .match_indices('/')
                .nth(t.keep - 1)
                .map_or(topic.len(), |(i, _)| i);
            Cow::Borrowed(&topic[..end])
        }
        _ => Cow::Borrowed(topic),
    }
}

/// `forced` (`--decode thingspeak`) also accepts a form payload on another topic; auto
/// detection needs the `channels/<id>/…` topic so that a stray `field1=…` is not claimed.
pub(super) fn decode(
    topic: &str,
    text: Option<&str>,
    json: Option<&Value>,
    forced: bool,
) -> Option<Vec<Reading>> {
    let t = parse_topic(topic);
    if t.is_none() && !forced {
        return None;
    }
    let channel = t.as_ref().map_or("", |t| t.channel).to_string();
    let base = Reading {
        device_id: channel.into(),
        ..Reading::default()
    };
    if let Some(field) = t.as_ref().and_then(|t| t.field) {
        // A bare value: `45`.
        let (value, value_text) = text_columns(text?.trim());
        return Some(vec![Reading {
            field: field.to_string(),
            value,
            value_text,
            ..base
        }]);
    }
    if let Some(Value::Object(feed)) = json {
        // Only a subscribe topic makes a JSON object ThingSpeak; otherwise it is generic JSON.
        if t.is_some() {
            return Some(feed_rows(base, feed));
        }
        return None;
    }
    form_rows(base, text?.trim())
}

fn form_rows(mut base: Reading, text: &str) -> Option<Vec<Reading>> {
    let mut pairs = Vec::new();
    for part in text.split('&') {
        let (k, v) = part.split_once('=')?;
        let k = form_decode(k);
        if !FORM_KEYS.contains(&k.as_str()) {
            return None;
        }
        pairs.push((k, form_decode(v)));
    }
    // `created_at` is the event time when it parses; otherwise it stays a row.
    if let Some((_, v)) = pairs.iter().find(|(k, _)| k == "created_at")
        && let Some(ns) = parse_iso(v)
    {
        base.time = Some(EventTime::from_ns(ns));
        pairs.retain(|(k, _)| k != "created_at");
    }
    Some(
        pairs
            .into_iter()
            .map(|(k, v)| {
                let (value, value_text) = if k == "status" || k == "created_at" {
                    (String::new(), v)
                } else {
                    text_columns(&v)
                };
                Reading {
                    field: k,
                    value,
                    value_text,
                    ..base.clone()
                }
            })
            .collect(),
    )
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then `%XX`.
fn form_decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// A channel feed entry: `{"channel_id", "created_at", "entry_id", "field1": "45", …}`.
/// ThingSpeak sends field values as strings; numeric ones go to `value`.
fn feed_rows(mut base: Reading, feed: &serde_json::Map<String, Value>) -> Vec<Reading> {
    if let Some(ns) = feed
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(parse_iso)
    {
        base.time = Some(EventTime::from_ns(ns));
    }
    feed.iter()
        .filter(|(k, _)| {
            // The channel is `device_id`; an accepted `created_at` is `time`.
            !(k.as_str() == "channel_id" || (k.as_str() == "created_at" && base.time.is_some()))
        })
        .map(|(k, v)| {
            let (value, value_text) = match v {
                Value::String(s) if k != "status" => text_columns(s),
                other => value_columns(other),
            };
            Reading {
                field: k.clone(),
                value,
                value_text,
                ..base.clone()
            }
        })
        .collect()
}
