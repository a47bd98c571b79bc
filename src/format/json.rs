//! The JSON writer in mosquitto's (cJSON's) layout, compact or `--pretty`, for the `%j`/`%J`
//! object, and the `--json` line (shapes in the module doc of `format`).

use chrono::{DateTime, Utc};

use base64::Engine as _;

use super::Received;
use super::fields::{push_date_time, push_u64, push_zero_padded};
use crate::mqtt::PublishProperties;

/// `--json`: smq's own NDJSON line (shape in the module doc), without the newline.
pub fn render_json_line(msg: &Received, out: &mut Vec<u8>) {
    let mut j = Json::new(out, false);
    j.open_object();
    j.key(true, "");
    j.text_or_b64("topic", msg.topic);
    j.key(false, "");
    j.text_or_b64("payload", msg.payload);
    j.key(false, "qos");
    push_u64(j.out, u64::from(msg.qos));
    j.key(false, "retain");
    j.out
        .extend_from_slice(if msg.retain { b"true" } else { b"false" });
    j.key(false, "time");
    let utc = DateTime::<Utc>::from(msg.time);
    j.out.push(b'"');
    push_date_time(j.out, &utc);
    j.out.push(b'.');
    push_zero_padded(j.out, u64::from(utc.timestamp_subsec_micros()), 6);
    j.out.extend_from_slice(b"Z\"");
    if let Some(props) = msg.props.filter(|p| has_any(p)) {
        j.key(false, "properties");
        j.properties(props);
    }
    j.close_object(true);
}

/// Whether a message has any property `%j` and `--json` write.
pub(super) fn has_any(p: &PublishProperties) -> bool {
    p.payload_format_indicator.is_some()
        || p.message_expiry_interval.is_some()
        || p.topic_alias.is_some()
        || p.response_topic.is_some()
        || p.correlation_data.is_some()
        || !p.user_properties.is_empty()
        || !p.subscription_identifiers.is_empty()
        || p.content_type.is_some()
}

/// A JSON writer in mosquitto's (cJSON's) layout. Compact: no whitespace at all. Pretty: an
/// object's members on their own lines, indented by depth in tabs, `"key":<TAB>value`; array
/// elements on the same line separated by `, `. Arrays count as a level of depth too.
pub(super) struct Json<'o> {
    pub(super) out: &'o mut Vec<u8>,
    pretty: bool,
    depth: usize,
}

impl<'o> Json<'o> {
    pub(super) fn new(out: &'o mut Vec<u8>, pretty: bool) -> Self {
        Json {
            out,
            pretty,
            depth: 0,
        }
    }

    pub(super) fn open_object(&mut self) {
        self.out.push(b'{');
        self.depth += 1;
        if self.pretty {
            self.out.push(b'\n');
        }
    }

    /// Starts a member. An empty `name` writes only the separator and the indent, for
    /// [`Json::text_or_b64`], which picks the key itself.
    pub(super) fn key(&mut self, first: bool, name: &str) {
        if !first {
            self.out.push(b',');
            if self.pretty {
                self.out.push(b'\n');
            }
        }
        if self.pretty {
            self.tabs(self.depth);
        }
        if !name.is_empty() {
            self.out.push(b'"');
            self.out.extend_from_slice(name.as_bytes());
            self.colon();
        }
    }

    pub(super) fn raw_key(&mut self, first: bool, quoted: &[u8]) {
        self.key(first, "");
        self.out.extend_from_slice(quoted);
        self.colon_after_quote();
    }

    pub(super) fn colon(&mut self) {
        self.out.push(b'"');
        self.colon_after_quote();
    }

    pub(super) fn colon_after_quote(&mut self) {
        self.out.push(b':');
        if self.pretty {
            self.out.push(b'\t');
        }
    }

    pub(super) fn close_object(&mut self, nonempty: bool) {
        self.depth -= 1;
        if self.pretty {
            if nonempty {
                self.out.push(b'\n');
            }
            self.tabs(self.depth);
        }
        self.out.push(b'}');
    }

    pub(super) fn open_array(&mut self) {
        self.out.push(b'[');
        self.depth += 1;
    }

    pub(super) fn element(&mut self, first: bool) {
        if !first {
            self.out.push(b',');
            if self.pretty {
                self.out.push(b' ');
            }
        }
    }

    pub(super) fn close_array(&mut self) {
        self.depth -= 1;
        self.out.push(b']');
    }

    pub(super) fn tabs(&mut self, n: usize) {
        self.out.resize(self.out.len() + n, b'\t');
    }

    /// `"name":"text"`, or `"name_b64":"…"` when `bytes` is not UTF-8 (after a `key(_, "")`).
    pub(super) fn text_or_b64(&mut self, name: &str, bytes: &[u8]) {
        self.text_or(name, "_b64", bytes);
    }

    pub(super) fn text_or(&mut self, name: &str, b64_suffix: &str, bytes: &[u8]) {
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                self.colon();
                push_json_string(self.out, text);
            }
            Err(_) => {
                self.out.extend_from_slice(b64_suffix.as_bytes());
                self.colon();
                push_b64_string(self.out, bytes);
            }
        }
    }

    pub(super) fn properties(&mut self, p: &PublishProperties) {
        self.open_object();
        let mut first = true;
        let mut next = |j: &mut Self, name: &str| {
            j.key(first, name);
            first = false;
        };
        if let Some(v) = p.payload_format_indicator {
            next(self, "payload-format-indicator");
            push_u64(self.out, u64::from(v));
        }
        if let Some(v) = p.message_expiry_interval {
            next(self, "message-expiry-interval");
            push_u64(self.out, u64::from(v));
        }
        if let Some(v) = &p.content_type {
            next(self, "content-type");
            push_json_string(self.out, v);
        }
        if let Some(v) = &p.response_topic {
            next(self, "response-topic");
            push_json_string(self.out, v);
        }
        if let Some(v) = &p.correlation_data {
            next(self, "");
            // Spec property names use dashes, hence not `_b64`.
            self.text_or("correlation-data", "-b64", v);
        }
        match p.subscription_identifiers.as_slice() {
            [] => {}
            [one] => {
                next(self, "subscription-identifier");
                push_u64(self.out, *one as u64);
            }
            several => {
                next(self, "subscription-identifier");
                self.open_array();
                for (n, id) in several.iter().enumerate() {
                    self.element(n == 0);
                    push_u64(self.out, *id as u64);
                }
                self.close_array();
            }
        }
        if let Some(v) = p.topic_alias {
            next(self, "topic-alias");
            push_u64(self.out, u64::from(v));
        }
        if !p.user_properties.is_empty() {
            next(self, "user-properties");
            self.open_array();
            for (n, (key, value)) in p.user_properties.iter().enumerate() {
                self.element(n == 0);
                self.open_object();
                self.key(true, "");
                push_json_string(self.out, key);
                self.colon_after_quote();
                push_json_string(self.out, value);
                self.close_object(true);
            }
            self.close_array();
        }
        self.close_object(!first);
    }
}

/// A JSON string literal with cJSON's escapes: `"` `\` and the C0 controls (`\b \f \n \r \t`,
/// others as `\u00XX`); everything else, including non-ASCII, goes through as UTF-8.
pub(super) fn push_json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

pub(super) fn push_b64_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    let len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}
