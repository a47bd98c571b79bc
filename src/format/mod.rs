//! The output formats of `smq sub`: the `-F` language, the default/`-v` output and `--json`.
//!
//! A `-F` string is parsed once, before connecting, into a list of tokens. Rendering a message
//! walks that list and appends bytes to a caller-owned buffer, so the hot path allocates nothing
//! beyond the buffer's own growth.
//!
//! Here: the `-F` parser and renderer, the default/`-v` output. `json.rs`: the JSON writer
//! (`%j`, `--pretty`, `--json`); `relayout.rs`: the `%J` payload parser; `fields.rs`: the
//! printf-style field writers and the numbers and times written without `fmt`.
//!
//! # The `-F` language (MOSQUITTO.md §b)
//!
//! `%[-][0][width][.precision][sep]letter` fields, `@` time fields and `\` escapes, as in
//! mosquitto_sub 2.1, with these smq decisions:
//! - A width on `%p`/`%x`/`%X` only pads; `.N` cuts `%p` (mosquitto cuts `%p` at the width, d#9).
//! - `.N` on `%x`/`%X` groups hex digits by N, separated by a space or by `sep`, one of
//!   [`HEX_SEPARATORS`] (`%.2:x`). `sep` is only recognised right before `x`/`X`.
//! - An absent v5 property prints `width` spaces (mosquitto pads with `0` under `%0…` and prints
//!   nothing at all for an absent `%R`).
//! - `@X` accepts the strftime letters that glibc and chrono agree on (see [`time_spec`]);
//!   anything else is rejected at parse time instead of being passed through. `@Z` prints the
//!   numeric offset, because chrono does not know the zone's abbreviation.
//! - `%t`, `%C`, `%R`, `%I` and `%p` count widths and cuts in bytes, as printf does.
//! - Every time field of one message uses the same clock reading, [`Received::time`].
//!
//! # `%j` / `%J`
//!
//! `{"tst":…,"topic":…,"qos":1,"retain":0,"payloadlen":7,"mid":3,"properties":{…},"payload":…}`
//! in that order; `mid` only at QoS > 0, `properties` only when the message has any. `tst` is
//! local time with microseconds and a `+hhmm` offset. The output is always valid JSON:
//! - a payload (or topic) that is not UTF-8 is written as `"payload_b64"` (`"topic_b64"`),
//!   standard padded base64, in place of the plain key; an empty payload is `null`;
//! - `%J` inserts a JSON payload with its own number and string spellings kept, but its
//!   whitespace re-laid like the rest, so the object stays on one line. A payload that is not
//!   JSON is written as `%j` would write it, and [`Format::render`] returns a [`Warning`].
//!
//! `--pretty` lays the object out as mosquitto's cJSON does: members on their own lines indented
//! with tabs, `"key":<TAB>value`, array elements on one line separated by `, `.
//!
//! Properties, keyed by their spec names: `payload-format-indicator`, `message-expiry-interval`,
//! `content-type`, `response-topic`, `correlation-data` (`correlation-data-b64` when not UTF-8),
//! `subscription-identifier` (a number; an array of numbers when the message matched several
//! subscriptions), `topic-alias`, and `user-properties` as an array of one-key objects
//! `[{"k":"v"},…]` keeping order and duplicates (mosquitto 2.1's form).
//!
//! # `--json`
//!
//! One line per message, smq's own shape, shared by record and replay:
//! `{"topic":"a/b","payload":"text","qos":1,"retain":false,"time":"2026-11-22T01:02:03.123456Z",
//! "properties":{…}}` — `payload_b64`/`topic_b64` when not UTF-8 (an empty payload is `""`),
//! `retain` a boolean, `time` the arrival time in UTC with microseconds, and `properties` as in
//! `%j`, present only when the message has any.

use std::fmt;
use std::time::SystemTime;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local, Offset, Utc};

use crate::mqtt::PublishProperties;

mod fields;
mod json;
mod relayout;

use fields::*;
pub use json::render_json_line;
use json::{Json, has_any};
use relayout::relayout_json;

/// One received message as the formats see it.
pub struct Received<'a> {
    pub topic: &'a [u8],
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
    /// 0 at QoS 0.
    pub mid: u16,
    pub props: Option<&'a PublishProperties>,
    /// One clock reading per message, taken on arrival.
    pub time: SystemTime,
}

/// Characters that may separate hex groups, as in `%.2:x`.
pub const HEX_SEPARATORS: &[char] = &[':', '-', '.', ',', ';', '_', '/', '|', ' '];

/// Widths and precisions above this are refused: they can only be typos, and honouring them
/// would allocate that much per message.
const MAX_WIDTH: usize = 65_535;

/// Nesting deeper than this makes a `%J` payload count as "not JSON" (it is then printed as
/// `%j` would), so that a hostile payload can't overflow the stack.
const MAX_JSON_DEPTH: usize = 512;

/// A problem with one message that does not stop it being printed. The caller reports it on
/// stderr; the output in the buffer is complete and should be printed as usual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// `%J` on a payload that is not JSON: it was printed as `%j` would.
    JsonPayload { topic: String },
    /// `%f` on a payload that is not 4 bytes: the field was left empty.
    FloatSize { len: usize },
    /// `%d` on a payload that is not 8 bytes: the field was left empty.
    DoubleSize { len: usize },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::JsonPayload { topic } => write!(
                f,
                "message payload is not valid JSON on topic {topic}, printed it as %j would"
            ),
            Warning::FloatSize { len } => {
                write!(f, "%f needs a 4-byte payload (a float), got {len} bytes")
            }
            Warning::DoubleSize { len } => {
                write!(f, "%d needs an 8-byte payload (a double), got {len} bytes")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Topic,
    Payload,
    HexLower,
    HexUpper,
    Len,
    Qos,
    Retain,
    Mid,
    Alias,
    ContentType,
    Correlation,
    Expiry,
    FormatIndicator,
    UserProps,
    ResponseTopic,
    SubId,
    Float,
    Double,
    Iso,
    Unix,
    Json,
    JsonPayload,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Opts {
    left: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    sep: u8,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(Vec<u8>),
    Field(Spec, Opts),
    /// One strftime conversion (`@Y` is `"%Y"`), checked at parse time.
    Time(&'static str),
    /// `@N`: nanoseconds of the second, 9 digits.
    Nanos,
}

/// A parsed -F string. Parsing happens before connecting.
#[derive(Debug, Clone)]
pub struct Format {
    tokens: Vec<Token>,
    /// Whether any token needs the local time, so that rendering can skip the conversion.
    needs_local: bool,
}

impl Format {
    /// Parses a `-F` string. Errors use mosquitto's wording plus the 1-based character
    /// position of the offending character, e.g.
    /// `invalid format specifier 'Z' at position 3 in -F`.
    pub fn parse(spec: &str) -> Result<Format, String> {
        let chars: Vec<char> = spec.chars().collect();
        let mut tokens = Vec::new();
        let mut lit = Vec::new();
        let at = |i: usize| chars.get(i).copied();
        let mut i = 0;
        while let Some(c) = at(i) {
            let start = i + 1;
            i += 1;
            match c {
                '%' => {
                    let incomplete =
                        || format!("incomplete format specifier at position {start} in -F");
                    let mut opts = Opts {
                        sep: b' ',
                        ..Opts::default()
                    };
                    if at(i) == Some('-') {
                        opts.left = true;
                        i += 1;
                    }
                    if at(i) == Some('0') {
                        opts.zero = true;
                        i += 1;
                    }
                    opts.width = digits(&chars, &mut i, start)?;
                    if at(i) == Some('.') {
                        i += 1;
                        opts.precision = Some(digits(&chars, &mut i, start)?);
                    }
                    if let (Some(sep), Some('x' | 'X')) = (at(i), at(i + 1)) {
                        if HEX_SEPARATORS.contains(&sep) {
                            // HEX_SEPARATORS is ASCII, so the cast is lossless.
                            opts.sep = sep as u8;
                            i += 1;
                        }
                    }
                    let letter = at(i).ok_or_else(incomplete)?;
                    i += 1;
                    let spec = match letter {
                        '%' => {
                            lit.push(b'%');
                            continue;
                        }
                        't' => Spec::Topic,
                        'p' => Spec::Payload,
                        'x' => Spec::HexLower,
                        'X' => Spec::HexUpper,
                        'l' => Spec::Len,
                        'q' => Spec::Qos,
                        'r' => Spec::Retain,
                        'm' => Spec::Mid,
                        'A' => Spec::Alias,
                        'C' => Spec::ContentType,
                        'D' => Spec::Correlation,
                        'E' => Spec::Expiry,
                        'F' => Spec::FormatIndicator,
                        'P' => Spec::UserProps,
                        'R' => Spec::ResponseTopic,
                        'S' => Spec::SubId,
                        'f' => Spec::Float,
                        'd' => Spec::Double,
                        'I' => Spec::Iso,
                        'U' => Spec::Unix,
                        'j' => Spec::Json,
                        'J' => Spec::JsonPayload,
                        other => {
                            return Err(format!(
                                "invalid format specifier '{other}' at position {} in -F",
                                i
                            ));
                        }
                    };
                    flush(&mut tokens, &mut lit);
                    tokens.push(Token::Field(spec, opts));
                }
                '@' => {
                    let Some(letter) = at(i) else {
                        return Err(format!(
                            "incomplete format specifier at position {start} in -F"
                        ));
                    };
                    i += 1;
                    match letter {
                        '@' => lit.push(b'@'),
                        'N' => {
                            flush(&mut tokens, &mut lit);
                            tokens.push(Token::Nanos);
                        }
                        other => {
                            let conv = time_spec(other).ok_or_else(|| {
                                format!("invalid time specifier '{other}' at position {i} in -F")
                            })?;
                            flush(&mut tokens, &mut lit);
                            tokens.push(Token::Time(conv));
                        }
                    }
                }
                '\\' => {
                    let Some(letter) = at(i) else {
                        return Err(format!(
                            "incomplete escape specifier at position {start} in -F"
                        ));
                    };
                    i += 1;
                    lit.push(match letter {
                        '\\' => b'\\',
                        '0' => 0,
                        'a' => 0x07,
                        'e' => 0x1b,
                        'n' => b'\n',
                        'r' => b'\r',
                        't' => b'\t',
                        'v' => 0x0b,
                        other => {
                            return Err(format!(
                                "invalid escape specifier '{other}' at position {i} in -F"
                            ));
                        }
                    });
                }
                other => {
                    let mut buf = [0; 4];
                    lit.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        flush(&mut tokens, &mut lit);
        let needs_local = tokens.iter().any(|t| {
            matches!(
                t,
                Token::Time(_) | Token::Field(Spec::Iso | Spec::Json | Spec::JsonPayload, _)
            )
        });
        Ok(Format {
            tokens,
            needs_local,
        })
    }

    /// Appends the rendering of `msg` to `out`, without the trailing newline (the caller adds
    /// it unless `-N`). `pretty` (`--pretty`) makes `%j`/`%J` multi-line.
    ///
    /// The output is always complete. `Some(warning)` means a field could not be rendered as
    /// asked (`%J` on a payload that is not JSON, `%f`/`%d` on a payload of the wrong size): the
    /// caller prints the output as usual and reports the warning on stderr. With several
    /// problems in one message, the first is returned.
    pub fn render(&self, msg: &Received, pretty: bool, out: &mut Vec<u8>) -> Option<Warning> {
        let local = self.needs_local.then(|| DateTime::<Local>::from(msg.time));
        let mut warning = None;
        for token in &self.tokens {
            match token {
                Token::Literal(bytes) => out.extend_from_slice(bytes),
                Token::Field(spec, opts) => {
                    if let Some(w) = render_field(*spec, opts, msg, local.as_ref(), pretty, out) {
                        warning.get_or_insert(w);
                    }
                }
                Token::Time(conv) => {
                    if let Some(local) = &local {
                        // Checked at parse time: the conversion can't fail, and if it did,
                        // writing into a Vec reports it as an io::Error rather than panicking.
                        let _ = std::io::Write::write_fmt(
                            out,
                            format_args!("{}", local.format_with_items(time_items(conv))),
                        );
                    }
                }
                Token::Nanos => push_zero_padded(out, u64::from(subsec_nanos(msg.time)), 9),
            }
        }
        warning
    }
}

fn flush(tokens: &mut Vec<Token>, lit: &mut Vec<u8>) {
    if !lit.is_empty() {
        tokens.push(Token::Literal(std::mem::take(lit)));
    }
}

/// Reads a run of decimal digits (possibly empty, which is 0), as mosquitto does.
fn digits(chars: &[char], i: &mut usize, start: usize) -> Result<usize, String> {
    let mut value: usize = 0;
    while let Some(d) = chars.get(*i).and_then(|c| c.to_digit(10)) {
        value = value * 10 + d as usize;
        if value > MAX_WIDTH {
            return Err(format!(
                "field width or precision above {MAX_WIDTH} at position {start} in -F"
            ));
        }
        *i += 1;
    }
    Ok(value)
}

/// The strftime conversion for `@letter`, for the letters whose output glibc's C locale and
/// chrono agree on (`Z` aside, see the module doc).
fn time_spec(letter: char) -> Option<&'static str> {
    let conv = match letter {
        'a' => "%a",
        'A' => "%A",
        'b' => "%b",
        'B' => "%B",
        'c' => "%c",
        'C' => "%C",
        'd' => "%d",
        'D' => "%D",
        'e' => "%e",
        'F' => "%F",
        'g' => "%g",
        'G' => "%G",
        'h' => "%h",
        'H' => "%H",
        'I' => "%I",
        'j' => "%j",
        'k' => "%k",
        'l' => "%l",
        'm' => "%m",
        'M' => "%M",
        'n' => "%n",
        'p' => "%p",
        'P' => "%P",
        'r' => "%r",
        'R' => "%R",
        's' => "%s",
        'S' => "%S",
        't' => "%t",
        'T' => "%T",
        'u' => "%u",
        'U' => "%U",
        'V' => "%V",
        'w' => "%w",
        'W' => "%W",
        'x' => "%x",
        'X' => "%X",
        'y' => "%y",
        'Y' => "%Y",
        'z' => "%z",
        'Z' => "%Z",
        _ => return None,
    };
    // Defence in depth: a conversion chrono can't format must never reach render().
    let valid = !time_items(conv).any(|item| matches!(item, Item::Error));
    valid.then_some(conv)
}

fn time_items(conv: &'static str) -> StrftimeItems<'static> {
    StrftimeItems::new(conv)
}

fn subsec_nanos(time: SystemTime) -> u32 {
    DateTime::<Utc>::from(time).timestamp_subsec_nanos()
}

fn render_field(
    spec: Spec,
    opts: &Opts,
    msg: &Received,
    local: Option<&DateTime<Local>>,
    pretty: bool,
    out: &mut Vec<u8>,
) -> Option<Warning> {
    let props = msg.props;
    match spec {
        Spec::Topic => push_str_field(out, msg.topic, opts),
        Spec::Payload => push_payload(out, msg.payload, opts),
        Spec::HexLower => push_hex(out, msg.payload, opts, b"0123456789abcdef"),
        Spec::HexUpper => push_hex(out, msg.payload, opts, b"0123456789ABCDEF"),
        Spec::Len => push_int_field(out, msg.payload.len() as u64, opts),
        Spec::Qos => push_u64(out, u64::from(msg.qos)),
        Spec::Retain => out.push(if msg.retain { b'1' } else { b'0' }),
        Spec::Mid => push_int_field(out, u64::from(msg.mid), opts),
        Spec::Alias => push_opt_int(out, props.and_then(|p| p.topic_alias).map(u64::from), opts),
        Spec::Expiry => push_opt_int(
            out,
            props.and_then(|p| p.message_expiry_interval).map(u64::from),
            opts,
        ),
        Spec::FormatIndicator => push_opt_int(
            out,
            props
                .and_then(|p| p.payload_format_indicator)
                .map(u64::from),
            opts,
        ),
        Spec::SubId => push_opt_int(
            out,
            props
                .and_then(|p| p.subscription_identifiers.first())
                .map(|&id| id as u64),
            opts,
        ),
        Spec::ContentType => push_opt_str(out, props.and_then(|p| p.content_type.as_deref()), opts),
        Spec::ResponseTopic => {
            push_opt_str(out, props.and_then(|p| p.response_topic.as_deref()), opts)
        }
        Spec::Correlation => {
            if let Some(data) = props.and_then(|p| p.correlation_data.as_ref()) {
                out.extend_from_slice(data);
            }
        }
        Spec::UserProps => {
            if let Some(p) = props {
                for (n, (key, value)) in p.user_properties.iter().enumerate() {
                    if n > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(key.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(value.as_bytes());
                }
            }
        }
        Spec::Float => match <[u8; 4]>::try_from(msg.payload) {
            Ok(bytes) => push_float(out, f64::from(f32::from_ne_bytes(bytes)), opts),
            Err(_) => {
                return Some(Warning::FloatSize {
                    len: msg.payload.len(),
                });
            }
        },
        Spec::Double => match <[u8; 8]>::try_from(msg.payload) {
            Ok(bytes) => push_float(out, f64::from_ne_bytes(bytes), opts),
            Err(_) => {
                return Some(Warning::DoubleSize {
                    len: msg.payload.len(),
                });
            }
        },
        Spec::Iso => {
            if let Some(local) = local {
                let start = out.len();
                push_date_time(out, local);
                push_offset(out, local.offset().fix().local_minus_utc());
                fit_str_field(out, start, opts);
            }
        }
        Spec::Unix => {
            let utc = DateTime::<Utc>::from(msg.time);
            push_i64(out, utc.timestamp());
            out.push(b'.');
            push_zero_padded(out, u64::from(utc.timestamp_subsec_nanos()), 9);
        }
        Spec::Json | Spec::JsonPayload => {
            let local = local?;
            let mark = out.len();
            if spec == Spec::JsonPayload && push_json_object(out, msg, local, true, pretty) {
                return None;
            }
            out.truncate(mark);
            push_json_object(out, msg, local, false, pretty);
            if spec == Spec::JsonPayload {
                return Some(Warning::JsonPayload {
                    topic: String::from_utf8_lossy(msg.topic).into_owned(),
                });
            }
        }
    }
    None
}

/// Default output (no -F): the payload bytes; with `verbose` (-v): `topic payload`, and
/// `topic (null)` for an empty payload. Returns false when nothing is to be printed at all
/// (default mode, empty payload: mosquitto prints nothing, not even the newline), so the
/// caller skips the newline.
///
/// mosquitto prints `topic (null)` only as a whole line: under `-v -N` an empty payload prints
/// nothing at all. This function can't see `-N`, so the caller skips that case itself.
pub fn render_plain(msg: &Received, verbose: bool, out: &mut Vec<u8>) -> bool {
    if verbose {
        out.extend_from_slice(msg.topic);
        if msg.payload.is_empty() {
            out.extend_from_slice(b" (null)");
        } else {
            out.push(b' ');
            out.extend_from_slice(msg.payload);
        }
        true
    } else {
        out.extend_from_slice(msg.payload);
        !msg.payload.is_empty()
    }
}

/// Writes the `%j` object (`%J` when `json_payload`). Returns false, with `out` holding a partial
/// object to be discarded, when `json_payload` is set and the payload is not JSON.
fn push_json_object(
    out: &mut Vec<u8>,
    msg: &Received,
    local: &DateTime<Local>,
    json_payload: bool,
    pretty: bool,
) -> bool {
    let mut j = Json::new(out, pretty);
    j.open_object();
    j.key(true, "tst");
    j.out.push(b'"');
    push_date_time(j.out, local);
    j.out.push(b'.');
    push_zero_padded(j.out, u64::from(subsec_nanos(msg.time) / 1000), 6);
    push_offset(j.out, local.offset().fix().local_minus_utc());
    j.out.push(b'"');
    j.key(false, "");
    j.text_or_b64("topic", msg.topic);
    j.key(false, "qos");
    push_u64(j.out, u64::from(msg.qos));
    j.key(false, "retain");
    j.out.push(if msg.retain { b'1' } else { b'0' });
    j.key(false, "payloadlen");
    push_u64(j.out, msg.payload.len() as u64);
    if msg.qos > 0 {
        j.key(false, "mid");
        push_u64(j.out, u64::from(msg.mid));
    }
    if let Some(props) = msg.props.filter(|p| has_any(p)) {
        j.key(false, "properties");
        j.properties(props);
    }
    if msg.payload.is_empty() {
        j.key(false, "payload");
        j.out.extend_from_slice(b"null");
    } else if json_payload {
        j.key(false, "payload");
        if std::str::from_utf8(msg.payload).is_err() || !relayout_json(msg.payload, &mut j) {
            return false;
        }
    } else {
        j.key(false, "");
        j.text_or_b64("payload", msg.payload);
    }
    j.close_object(true);
    true
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use bytes::Bytes;
    use serde_json::Value;

    use super::*;

    /// 2025-03-14T09:30:00.130482917Z
    fn when() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_741_944_600, 130_482_917)
    }

    fn msg<'a>(topic: &'a str, payload: &'a [u8]) -> Received<'a> {
        Received {
            topic: topic.as_bytes(),
            payload,
            qos: 0,
            retain: false,
            mid: 0,
            props: None,
            time: when(),
        }
    }

    fn props() -> PublishProperties {
        PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(100),
            topic_alias: Some(7),
            response_topic: Some("resp/t".into()),
            correlation_data: Some(Bytes::from_static(b"corr")),
            user_properties: vec![
                ("k1".into(), "v1".into()),
                ("k1".into(), "v2".into()),
                ("a".into(), "b".into()),
            ],
            subscription_identifiers: vec![42],
            content_type: Some("ct/json".into()),
        }
    }

    fn render(spec: &str, m: &Received) -> (String, Option<Warning>) {
        let (bytes, warning) = render_bytes(spec, m, false);
        (String::from_utf8(bytes).expect("utf-8 output"), warning)
    }

    fn render_bytes(spec: &str, m: &Received, pretty: bool) -> (Vec<u8>, Option<Warning>) {
        let format = Format::parse(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        let mut out = Vec::new();
        let warning = format.render(m, pretty, &mut out);
        (out, warning)
    }

    fn out(spec: &str, m: &Received) -> String {
        let (text, warning) = render(spec, m);
        assert_eq!(warning, None, "{spec:?}");
        text
    }

    fn local_fmt(fmt: &str) -> String {
        DateTime::<Local>::from(when()).format(fmt).to_string()
    }

    #[test]
    fn parse_errors_name_the_problem_and_position() {
        for (spec, want) in [
            ("%Z", "invalid format specifier 'Z' at position 2 in -F"),
            (
                "ab%-05.3Z",
                "invalid format specifier 'Z' at position 9 in -F",
            ),
            ("%é", "invalid format specifier 'é' at position 2 in -F"),
            ("%:p", "invalid format specifier ':' at position 2 in -F"),
            ("%", "incomplete format specifier at position 1 in -F"),
            ("x%-", "incomplete format specifier at position 2 in -F"),
            ("%0", "incomplete format specifier at position 1 in -F"),
            ("%12", "incomplete format specifier at position 1 in -F"),
            ("%.", "incomplete format specifier at position 1 in -F"),
            ("%.1", "incomplete format specifier at position 1 in -F"),
            ("@", "incomplete format specifier at position 1 in -F"),
            ("@Q", "invalid time specifier 'Q' at position 2 in -F"),
            ("@%", "invalid time specifier '%' at position 2 in -F"),
            ("\\", "incomplete escape specifier at position 1 in -F"),
            ("\\Z", "invalid escape specifier 'Z' at position 2 in -F"),
            (
                "%99999p",
                "field width or precision above 65535 at position 1 in -F",
            ),
            (
                "%.99999x",
                "field width or precision above 65535 at position 1 in -F",
            ),
        ] {
            assert_eq!(Format::parse(spec).err().as_deref(), Some(want), "{spec:?}");
        }
    }

    #[test]
    fn plain_fields() {
        let mut m = msg("a/b", b"hello");
        m.qos = 2;
        m.retain = true;
        m.mid = 17;
        assert_eq!(
            out("%t|%p|%l|%q|%r|%m|%%|%5%", &m),
            "a/b|hello|5|2|1|17|%|%"
        );
        assert_eq!(out("%x %X", &msg("t", b"\x00\xab\xff")), "00abff 00ABFF");
        assert_eq!(out("literal é ✓", &m), "literal é ✓");
        assert_eq!(out("", &m), "");
    }

    #[test]
    fn int_modifiers_follow_printf() {
        let mut m = msg("t", b"hello");
        m.mid = 1;
        assert_eq!(
            out("[%5l][%05l][%-5l][%-05l][%5m][%05m][%1l]", &m),
            "[    5][00005][5    ][5    ][    1][00001][5]"
        );
        // %q and %r take no width in mosquitto.
        assert_eq!(out("[%5q][%-5r][%05q]", &m), "[0][0][0]");
    }

    #[test]
    fn string_modifiers_cut_and_pad() {
        let m = msg("t/28770", b"x");
        assert_eq!(
            out(
                "[%.3t][%10.3t][%-10.3t][%010t][%.0t][%.t][%3.10t][%10t]",
                &m
            ),
            "[t/2][       t/2][t/2       ][   t/28770][][][t/28770][   t/28770]"
        );
    }

    #[test]
    fn payload_width_pads_without_cutting() {
        let m = msg("t", b"abcdefgh");
        assert_eq!(
            out("[%5p][%-5p][%10p][%-10p][%010p][%-010p]", &m),
            "[abcdefgh][abcdefgh][  abcdefgh][abcdefgh  ][00abcdefgh][abcdefgh  ]"
        );
        assert_eq!(
            out("[%.3p][%5.3p][%-5.3p][%.0p]", &m),
            "[abc][  abc][abc  ][]"
        );
    }

    #[test]
    fn hex_width_grouping_and_separators() {
        let m = msg("t", b"abcd");
        assert_eq!(
            out("[%5x][%10x][%-10X][%010x]", &m),
            "[61626364][  61626364][61626364  ][0061626364]"
        );
        assert_eq!(
            out("[%.2x][%.2:X][%.4-x][%.3x][%.1x]", &msg("t", b"abc")),
            "[61 62 63][61:62:63][6162-63][616 263][6 1 6 2 6 3]"
        );
        assert_eq!(
            out("[%08.2x][%-8.2x][%8.2x][%8.2:x][%08.2:x]", &msg("t", b"ab")),
            "[00 00 61 62][61 62    ][      61 62][      61:62][00:00:61:62]"
        );
        assert_eq!(out("[%.0x][%.2x]", &msg("t", b"")), "[][]");
        assert_eq!(out("%.2|x", &msg("t", b"\x01\x02")), "01|02");
    }

    #[test]
    fn v5_properties() {
        let p = props();
        let mut m = msg("t", b"x");
        m.props = Some(&p);
        assert_eq!(
            out("[%A][%C][%D][%E][%F][%P][%R][%S]", &m),
            "[7][ct/json][corr][100][1][k1:v1 k1:v2 a:b][resp/t][42]"
        );
        assert_eq!(
            out("[%5A][%-5E][%05F][%.3C][%8.3C][%.4R][%-8R][%05S]", &m),
            "[    7][100  ][00001][ct/][     ct/][resp][resp/t  ][00042]"
        );
    }

    #[test]
    fn absent_v5_properties_are_blank() {
        let none = PublishProperties::default();
        for m in [msg("t", b"x"), {
            let mut m = msg("t", b"x");
            m.props = Some(&none);
            m
        }] {
            assert_eq!(
                out(
                    "[%5A][%05A][%-5A][%5C][%5E][%05E][%5F][%5S][%3R][%5D][%5P][%A%C%D%E%F%P%R%S]",
                    &m
                ),
                "[     ][     ][     ][     ][     ][     ][     ][     ][   ][][][]"
            );
        }
    }

    #[test]
    fn floats_and_doubles() {
        let f = |v: f32| v.to_ne_bytes();
        let d = |v: f64| v.to_ne_bytes();
        assert_eq!(out("%f", &msg("t", &f(1.5))), "1.500000");
        assert_eq!(
            out("[%.2f][%8.1f][%-8.1f][%08.3f]", &msg("t", &f(-1.25))),
            "[-1.25][    -1.2][-1.2    ][-001.250]"
        );
        assert_eq!(out("%.3d", &msg("t", &d(std::f64::consts::PI))), "3.142");
        assert_eq!(out("%.0d", &msg("t", &d(-0.0))), "-0");
        assert_eq!(out("%d", &msg("t", &d(1e300))).len(), 301 + 7);
        assert_eq!(
            out("[%f][%6f][%-6f][%06f]", &msg("t", &f(f32::INFINITY))),
            "[inf][   inf][inf   ][   inf]"
        );
        assert_eq!(out("[%d]", &msg("t", &d(-f64::INFINITY))), "[-inf]");
        assert_eq!(out("[%d]", &msg("t", &d(f64::NAN))), "[nan]");
        assert_eq!(out("[%d]", &msg("t", &d(-f64::NAN))), "[-nan]");
    }

    #[test]
    fn float_of_the_wrong_size_leaves_the_field_empty_and_warns() {
        let (text, warning) = render("[%f][%d]%t", &msg("t", b"abc"));
        assert_eq!(text, "[][]t");
        assert_eq!(warning, Some(Warning::FloatSize { len: 3 }));
        assert_eq!(
            render("%d", &msg("t", b""))
                .1
                .map(|w| w.to_string())
                .as_deref(),
            Some("%d needs an 8-byte payload (a double), got 0 bytes")
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            render_bytes(r"\\|\0|\a|\e|\n|\r|\t|\v|", &msg("t", b""), false).0,
            b"\\|\0|\x07|\x1b|\n|\r|\t|\x0b|"
        );
    }

    #[test]
    fn time_fields_share_one_reading() {
        let m = msg("t", b"x");
        assert_eq!(out("%U", &m), "1741944600.130482917");
        assert_eq!(out("@s.@N|@@|@@N", &m), "1741944600.130482917|@|@N");
        assert_eq!(out("%I", &m), local_fmt("%Y-%m-%dT%H:%M:%S%z"));
        assert_eq!(
            out("%.10I|%30I", &m),
            format!(
                "{}|{:>30}",
                local_fmt("%Y-%m-%d"),
                local_fmt("%Y-%m-%dT%H:%M:%S%z")
            )
        );
        assert_eq!(
            out(
                "@Y-@m-@dT@H:@M:@S@z @a @b @e @j @k @p @T @D @F @y @C @u @w @G @V",
                &m
            ),
            local_fmt("%Y-%m-%dT%H:%M:%S%z %a %b %e %j %k %p %T %D %F %y %C %u %w %G %V")
        );
        let before_epoch = Received {
            time: UNIX_EPOCH - Duration::new(1, 500_000_000),
            ..msg("t", b"x")
        };
        // chrono floors, like clock_gettime: -1.5 s is -2 s plus 0.5 s.
        assert_eq!(out("%U @N", &before_epoch), "-2.500000000 500000000");
    }

    #[test]
    fn every_time_letter_formats_without_error() {
        let letters = "aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ";
        for c in letters.chars() {
            let spec = format!("@{c}");
            let text = out(&spec, &msg("t", b"x"));
            assert!(!text.contains('%'), "{spec}: {text}");
        }
    }

    fn json(spec: &str, m: &Received) -> (Value, String, Option<Warning>) {
        let (bytes, warning) = render_bytes(spec, m, false);
        let text = String::from_utf8(bytes).expect("utf-8");
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (value, text, warning)
    }

    #[test]
    fn j_shape_and_key_order() {
        let mut m = msg("a/b", b"he\"l\\lo/\xc3\xa4\tx\x01");
        m.qos = 1;
        m.mid = 3;
        let (value, text, warning) = json("%j", &m);
        assert_eq!(warning, None);
        let tst = local_fmt("%Y-%m-%dT%H:%M:%S%.6f%z");
        assert_eq!(
            text,
            format!(
                r#"{{"tst":"{tst}","topic":"a/b","qos":1,"retain":0,"payloadlen":13,"mid":3,"payload":"he\"l\\lo/ä\tx\u0001"}}"#
            )
        );
        assert_eq!(value["payload"], "he\"l\\lo/ä\tx\u{1}");
        // No mid at QoS 0, retain as 0/1, empty payload as null.
        let mut m = msg("t", b"");
        m.retain = true;
        let (value, _, _) = json("%j", &m);
        assert_eq!(value.get("mid"), None);
        assert_eq!(value["retain"], 1);
        assert_eq!(value["payload"], Value::Null);
        let (value, _, warning) = json("%J", &m);
        assert_eq!((value["payload"].clone(), warning), (Value::Null, None));
    }

    #[test]
    fn j_binary_payload_goes_out_as_base64() {
        let (value, text, _) = json("%j", &msg("t", b"a\0b\xffc"));
        assert_eq!(value["payload_b64"], "YQBi/2M=");
        assert_eq!(value.get("payload"), None);
        assert!(
            text.ends_with(r#""payloadlen":5,"payload_b64":"YQBi/2M="}"#),
            "{text}"
        );
        // NUL alone is valid UTF-8: kept whole, escaped.
        let (value, _, _) = json("%j", &msg("t", b"a\0b"));
        assert_eq!(value["payload"], "a\u{0}b");
        let bad_topic = Received {
            topic: b"t/\xff",
            ..msg("t", b"x")
        };
        let (value, _, _) = json("%j", &bad_topic);
        assert_eq!(value["topic_b64"], "dC//");
    }

    #[test]
    fn j_properties_in_2_1_form() {
        let mut p = props();
        p.correlation_data = Some(Bytes::from_static(b"\xff\x00"));
        p.subscription_identifiers = vec![1, 2];
        let mut m = msg("t", b"x");
        m.props = Some(&p);
        let (value, text, _) = json("%j", &m);
        assert_eq!(
            value["properties"],
            serde_json::json!({
                "payload-format-indicator": 1,
                "message-expiry-interval": 100,
                "content-type": "ct/json",
                "response-topic": "resp/t",
                "correlation-data-b64": "/wA=",
                "subscription-identifier": [1, 2],
                "topic-alias": 7,
                "user-properties": [{"k1": "v1"}, {"k1": "v2"}, {"a": "b"}],
            })
        );
        assert!(
            text.contains(r#""properties":{"payload-format-indicator":1,"#),
            "{text}"
        );
        let p = props();
        m.props = Some(&p);
        let (value, _, _) = json("%j", &m);
        assert_eq!(value["properties"]["correlation-data"], "corr");
        assert_eq!(value["properties"]["subscription-identifier"], 42);
        // Present but empty: no "properties" key, as in mosquitto.
        let none = PublishProperties::default();
        m.props = Some(&none);
        assert_eq!(json("%j", &m).0.get("properties"), None);
    }

    #[test]
    fn big_j_inserts_the_payload_verbatim_but_compact() {
        let payload = b" {\"a\": 1.0, \"b\":[1, 2 ],\n \"big\": 123456789012345678901234567890, \"s\":\"\\u00e4\\/ x\"} ";
        let (value, text, warning) = json("%J", &msg("t", payload));
        assert_eq!(warning, None);
        assert!(
            text.ends_with(r#""payload":{"a":1.0,"b":[1,2],"big":123456789012345678901234567890,"s":"\u00e4\/ x"}}"#),
            "{text}"
        );
        assert_eq!(value["payload"]["s"], "ä/ x");
        for scalar in [
            "1", "-0.5e+3", "\"s\"", "true", "false", "null", "[]", "{}", " [ ] ",
        ] {
            let (value, _, warning) = json("%J", &msg("t", scalar.as_bytes()));
            assert_eq!(warning, None, "{scalar}");
            assert_eq!(
                value["payload"],
                serde_json::from_str::<Value>(scalar).unwrap()
            );
        }
    }

    #[test]
    fn big_j_on_a_non_json_payload_prints_j_and_warns() {
        let deep = "[".repeat(100_000);
        for bad in [
            "notjson",
            "01",
            "1.",
            "-",
            "1e",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "{1:2}",
            "\"\\u12\"",
            "\"\\x\"",
            "\"a\tb\"",
            "[1] x",
            "tru",
            "nul",
            "\"open",
            &deep,
            "\u{feff}1",
        ] {
            let m = msg("a/b", bad.as_bytes());
            let (value, text, warning) = json("%J", &m);
            assert_eq!(
                warning,
                Some(Warning::JsonPayload {
                    topic: "a/b".into()
                }),
                "{bad:?}"
            );
            assert_eq!(text, json("%j", &m).1, "{bad:?}");
            assert_eq!(value["payload"], bad);
        }
        let (value, _, warning) = json("%J", &msg("t", b"[\xff]"));
        assert_eq!(value["payload_b64"], "W/9d");
        assert_eq!(
            warning.map(|w| w.to_string()).as_deref(),
            Some("message payload is not valid JSON on topic t, printed it as %j would")
        );
    }

    #[test]
    fn pretty_follows_cjson_layout() {
        let payload = br#"{"a":{},"b":[],"c":[{"x":1},{}],"d":{"e":[1,{"f":null}]}}"#;
        let (bytes, _) = render_bytes("%J", &msg("t/7516", payload), true);
        let text = String::from_utf8(bytes).unwrap();
        let tst = local_fmt("%Y-%m-%dT%H:%M:%S%.6f%z");
        let want = format!(
            "{{\n\t\"tst\":\t\"{tst}\",\n\t\"topic\":\t\"t/7516\",\n\t\"qos\":\t0,\n\t\"retain\":\t0,\n\
             \t\"payloadlen\":\t57,\n\t\"payload\":\t{{\n\t\t\"a\":\t{{\n\t\t}},\n\t\t\"b\":\t[],\n\
             \t\t\"c\":\t[{{\n\t\t\t\t\"x\":\t1\n\t\t\t}}, {{\n\t\t\t}}],\n\t\t\"d\":\t{{\n\
             \t\t\t\"e\":\t[1, {{\n\t\t\t\t\t\"f\":\tnull\n\t\t\t\t}}]\n\t\t}}\n\t}}\n}}"
        );
        assert_eq!(text, want);
        let p = props();
        let mut m = msg("t", b"x");
        m.props = Some(&p);
        m.qos = 2;
        m.mid = 9;
        for spec in ["%j", "%J"] {
            let (bytes, _) = render_bytes(spec, &m, true);
            let value: Value = serde_json::from_slice(&bytes).expect("pretty output is JSON");
            assert_eq!(value["properties"]["user-properties"][1]["k1"], "v2");
            assert!(bytes.contains(&b'\n'));
        }
    }

    #[test]
    fn plain_and_verbose() {
        let mut buf = Vec::new();
        assert!(render_plain(&msg("a/b", b"x y"), false, &mut buf));
        assert_eq!(buf, b"x y");
        buf.clear();
        assert!(!render_plain(&msg("a/b", b""), false, &mut buf));
        assert_eq!(buf, b"");
        assert!(render_plain(&msg("a/b", b"\0\xff"), true, &mut buf));
        assert_eq!(buf, b"a/b \0\xff");
        buf.clear();
        assert!(render_plain(&msg("a/b", b""), true, &mut buf));
        assert_eq!(buf, b"a/b (null)");
    }

    #[test]
    fn json_line_shape() {
        let p = props();
        let mut m = msg("a/b", b"hi");
        m.qos = 1;
        m.retain = true;
        m.props = Some(&p);
        let mut buf = Vec::new();
        render_json_line(&m, &mut buf);
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with(
                r#"{"topic":"a/b","payload":"hi","qos":1,"retain":true,"time":"2025-03-14T09:30:00.130482Z","properties":{"#
            ),
            "{text}"
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["properties"]["user-properties"][2]["a"], "b");
        let mut buf = Vec::new();
        render_json_line(
            &Received {
                topic: b"\xff",
                ..msg("t", b"\x00\xff")
            },
            &mut buf,
        );
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#"{"topic_b64":"/w==","payload_b64":"AP8=","qos":0,"retain":false,"time":"2025-03-14T09:30:00.130482Z"}"#
        );
        let mut buf = Vec::new();
        render_json_line(&msg("t", b""), &mut buf);
        assert!(buf.starts_with(br#"{"topic":"t","payload":"","qos":0"#));
    }

    /// Any -F string either parses or is refused, and any parsed one renders any message.
    #[test]
    fn no_panics_on_arbitrary_formats_and_payloads() {
        let alphabet: Vec<char> = "%@\\-0123456789.:|xXtpPlqrmACDEFRSfdIUjJN@ae\0é"
            .chars()
            .collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let p = props();
        let payloads: [&[u8]; 6] = [
            b"",
            b"\0",
            b"\xff\xfe",
            b"abcd",
            b"12345678",
            b"{\"a\":[1]}",
        ];
        for _ in 0..5_000 {
            let len = next(12);
            let spec: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let Ok(format) = Format::parse(&spec) else {
                continue;
            };
            for payload in payloads {
                let mut m = msg("t/ü", payload);
                m.props = (next(2) == 0).then_some(&p);
                let mut out = Vec::new();
                let _ = format.render(&m, next(2) == 0, &mut out);
            }
        }
    }
}
