//! The `messages` layout (SENSORS.md §5.3): smq's lossless capture file, written by
//! `smq record --layout messages` and `--raw`, and read by `smq replay`.
//!
//! # Writing
//!
//! CSV (RFC 4180, UTF-8, `\n`) with the header [`CSV_HEADER`], or JSONL with one object per line
//! (`t_rel_ns`, `recv_time`, `topic`, `qos`, `retain`, `payload` or `payload_b64`, `props`).
//! Each row is formatted into a buffer and handed to the output in one `write_all`, then flushed,
//! so a crash leaves either whole rows or a truncated last line, which the reader reports.
//!
//! `props` is a JSON object with `content_type`, `payload_format_indicator`,
//! `message_expiry_interval`, `response_topic`, `correlation_data` (base64) and `user_properties`
//! as `[[k,v],…]`, each present only when set; an empty CSV field (no JSONL key) when the message
//! has none of them. `topic_alias` and `subscription_identifiers` are not recorded: they belong
//! to one connection, not to the message.
//!
//! # Reading
//!
//! [`read_all`] takes a whole file and detects its kind from the first non-empty line:
//! - the CSV header → smq `messages` CSV;
//! - a JSON object with `t_rel_ns` → smq `messages` JSONL;
//! - a JSON object with `tst` → `mosquitto_sub -F %j`/`%J` or `smq sub -F %j`/`%J`;
//! - a JSON object with `time` → `smq sub --json`.
//!
//! For the last two, `t_rel_ns` is the time since the first line's timestamp (clamped at 0) and
//! `recv_time` is the timestamp itself. mosquitto 2.0's duplicate user-property keys
//! (`{"k":"v1","k":"v2"}`) are kept in order.

use std::io::{self, Write};
use std::path::Path;

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::mqtt::{Message, PublishProperties};

/// One recorded message.
#[derive(Debug, Clone)]
pub struct Record {
    /// Nanoseconds since the first message, from a monotonic clock: the replay schedule.
    pub t_rel_ns: u64,
    /// Wall-clock arrival time.
    pub recv_time: DateTime<Utc>,
    pub msg: Message,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

/// The header line of a `messages` CSV file (without its `\n`).
pub const CSV_HEADER: &str = "t_rel_ns,recv_time,topic,qos,retain,payload_enc,payload,props";

const CSV_FIELDS: usize = 8;

/// Whether an existing file's first line is the header `format` writes, so that appending to it
/// needs no second header. A trailing `\r`/`\n` and a UTF-8 BOM are ignored. JSONL has no
/// header: always true.
pub fn header_matches(existing_first_line: &str, format: Format) -> bool {
    match format {
        Format::Jsonl => true,
        Format::Csv => {
            let line = existing_first_line.trim_start_matches('\u{feff}');
            line.trim_end_matches(['\r', '\n']) == CSV_HEADER
        }
    }
}

/// Writes `messages` rows, one flushed write per row.
pub struct Writer<W: Write> {
    out: W,
    format: Format,
    force_base64: bool,
    csv: csv::WriterBuilder,
    /// One row.
    line: Vec<u8>,
    b64: String,
}

impl<W: Write> Writer<W> {
    /// `write_header`: false when appending to a file that already starts with the same header
    /// (see [`header_matches`]). `force_base64`: write every payload as base64.
    pub fn new(out: W, format: Format, write_header: bool, force_base64: bool) -> io::Result<Self> {
        let mut csv = csv::WriterBuilder::new();
        csv.terminator(csv::Terminator::Any(b'\n'))
            .quote_style(csv::QuoteStyle::Necessary)
            .has_headers(false)
            .buffer_capacity(256);
        let mut w = Writer {
            out,
            format,
            force_base64,
            csv,
            line: Vec::with_capacity(1024),
            b64: String::new(),
        };
        if write_header && format == Format::Csv {
            w.out.write_all(CSV_HEADER.as_bytes())?;
            w.out.write_all(b"\n")?;
            w.out.flush()?;
        }
        Ok(w)
    }

    /// Writes one row and flushes it. A topic that is not UTF-8 is an `InvalidData` error in CSV
    /// (JSONL writes it as `topic_b64`).
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        match self.format {
            Format::Csv => self.write_csv(r)?,
            Format::Jsonl => self.write_jsonl(r)?,
        }
        self.out.flush()
    }

    fn write_csv(&mut self, r: &Record) -> io::Result<()> {
        let m = &r.msg;
        if std::str::from_utf8(&m.topic).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "topic is not valid UTF-8, which the CSV messages layout can't hold (use JSONL)",
            ));
        }
        let text = self.payload_text(&m.payload);
        let (enc, payload): (&str, &[u8]) = match text {
            Some(t) => ("utf8", t.as_bytes()),
            None => {
                self.b64.clear();
                B64.encode_string(&m.payload, &mut self.b64);
                ("base64", self.b64.as_bytes())
            }
        };
        let props = m
            .props
            .as_ref()
            .and_then(props_to_json)
            .map(|o| Value::Object(o).to_string())
            .unwrap_or_default();
        let t = r.t_rel_ns.to_string();
        let time = fmt_time(&r.recv_time);
        let qos = [b'0' + m.qos.min(9)];
        let retain: &[u8] = if m.retain { b"1" } else { b"0" };
        let fields: [&[u8]; CSV_FIELDS] = [
            t.as_bytes(),
            time.as_bytes(),
            &m.topic,
            &qos,
            retain,
            enc.as_bytes(),
            payload,
            props.as_bytes(),
        ];
        self.line.clear();
        let mut row = self.csv.from_writer(&mut self.line);
        row.write_record(fields).map_err(csv_io)?;
        row.flush()?;
        drop(row);
        self.out.write_all(&self.line)
    }

    fn write_jsonl(&mut self, r: &Record) -> io::Result<()> {
        let m = &r.msg;
        let mut o = Map::new();
        o.insert("t_rel_ns".into(), Value::from(r.t_rel_ns));
        o.insert("recv_time".into(), Value::String(fmt_time(&r.recv_time)));
        match std::str::from_utf8(&m.topic) {
            Ok(t) => o.insert("topic".into(), Value::String(t.to_owned())),
            Err(_) => o.insert("topic_b64".into(), Value::String(B64.encode(&m.topic))),
        };
        o.insert("qos".into(), Value::from(m.qos));
        o.insert("retain".into(), Value::Bool(m.retain));
        match self.payload_text(&m.payload) {
            Some(t) => o.insert("payload".into(), Value::String(t.to_owned())),
            None => o.insert("payload_b64".into(), Value::String(B64.encode(&m.payload))),
        };
        if let Some(p) = m.props.as_ref().and_then(props_to_json) {
            o.insert("props".into(), Value::Object(p));
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, &o).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    /// The payload as text when it may be written as `utf8`.
    fn payload_text<'a>(&self, payload: &'a [u8]) -> Option<&'a str> {
        if self.force_base64 || payload.contains(&0) {
            return None;
        }
        std::str::from_utf8(payload).ok()
    }

    /// Flushes and returns the output.
    #[cfg(test)]
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// RFC 3339 UTC with 9 fraction digits and `Z`.
fn fmt_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// smq's `props` object, or None when there is nothing to record.
fn props_to_json(p: &PublishProperties) -> Option<Map<String, Value>> {
    let mut o = Map::new();
    if let Some(v) = &p.content_type {
        o.insert("content_type".into(), Value::String(v.clone()));
    }
    if let Some(v) = p.payload_format_indicator {
        o.insert("payload_format_indicator".into(), Value::from(v));
    }
    if let Some(v) = p.message_expiry_interval {
        o.insert("message_expiry_interval".into(), Value::from(v));
    }
    if let Some(v) = &p.response_topic {
        o.insert("response_topic".into(), Value::String(v.clone()));
    }
    if let Some(v) = &p.correlation_data {
        o.insert("correlation_data".into(), Value::String(B64.encode(v)));
    }
    if !p.user_properties.is_empty() {
        let list = p
            .user_properties
            .iter()
            .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), Value::String(v.clone())]))
            .collect();
        o.insert("user_properties".into(), Value::Array(list));
    }
    (!o.is_empty()).then_some(o)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Reads a whole replay file (any of the kinds in the module doc). A malformed line is an error
/// `<path> line <n>: <what>`; with `skip_bad` such lines are skipped and counted instead.
pub fn read_all(path: &Path, skip_bad: bool) -> anyhow::Result<(Vec<Record>, usize)> {
    read_all_with(path, skip_bad, |_| {})
}

/// [`read_all`], calling `on_skip` with the message of each skipped line (for warnings).
pub fn read_all_with(
    path: &Path,
    skip_bad: bool,
    on_skip: impl FnMut(&str),
) -> anyhow::Result<(Vec<Record>, usize)> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => bail!("{}: {e}", path.display()),
    };
    read_bytes(&path.display().to_string(), &data, skip_bad, on_skip)
}

/// [`read_all_with`] on data already in memory; `name` is used in messages (e.g. `-`).
pub fn read_bytes(
    name: &str,
    data: &[u8],
    skip_bad: bool,
    mut on_skip: impl FnMut(&str),
) -> anyhow::Result<(Vec<Record>, usize)> {
    let data = data.strip_prefix("\u{feff}".as_bytes()).unwrap_or(data);
    let mut records = Vec::new();
    let mut skipped = 0;
    let mut bad = |line: usize, msg: String| -> anyhow::Result<()> {
        let full = format!("{name} line {line}: {msg}");
        if skip_bad {
            skipped += 1;
            on_skip(&full);
            Ok(())
        } else {
            Err(anyhow::Error::msg(full))
        }
    };
    // The first non-empty line decides the kind.
    let first = data
        .split(|&b| b == b'\n')
        .enumerate()
        .find(|(_, l)| !l.trim_ascii().is_empty());
    let Some((first_idx, first)) = first else {
        return Ok((records, 0));
    };
    let first = first.trim_ascii();
    if first.starts_with(b"t_rel_ns,") || first == b"t_rel_ns" {
        if first != CSV_HEADER.as_bytes() {
            bail!(
                "{name} line {}: the CSV header is not smq's messages header '{CSV_HEADER}'",
                first_idx + 1
            );
        }
        read_csv(data, &mut records, &mut bad)?;
    } else if first.starts_with(b"{") || skip_bad {
        read_json_lines(data, &mut records, &mut bad)?;
    } else {
        bail!(
            "{name} line {}: not a messages file: expected the CSV header '{CSV_HEADER}' or a JSON object",
            first_idx + 1
        );
    }
    Ok((records, skipped))
}

const TRUNCATED: &str = "truncated last line (no newline at end of file)";

fn read_csv(
    data: &[u8],
    records: &mut Vec<Record>,
    bad: &mut impl FnMut(usize, String) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut rec = csv::ByteRecord::new();
    let mut header_seen = false;
    let unterminated = !data.ends_with(b"\n");
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                bad(line, format!("unreadable CSV: {e}"))?;
                continue;
            }
        }
        let line = rec.position().map_or(0, |p| p.line() as usize);
        if !header_seen {
            // Checked by the caller on the text of the line.
            header_seen = true;
            continue;
        }
        match csv_record(&rec) {
            Ok(r) => records.push(r),
            Err(msg) => {
                let at_end = rdr.position().byte() as usize >= data.len();
                if at_end && unterminated {
                    bad(line, format!("{TRUNCATED}: {msg}"))?;
                } else {
                    bad(line, msg)?;
                }
            }
        }
    }
    Ok(())
}

fn csv_record(rec: &csv::ByteRecord) -> Result<Record, String> {
    if rec.len() != CSV_FIELDS {
        return Err(format!("expected {CSV_FIELDS} fields, found {}", rec.len()));
    }
    let field = |i: usize| -> Result<&str, String> {
        std::str::from_utf8(&rec[i]).map_err(|_| {
            let col = CSV_HEADER.split(',').nth(i).unwrap_or("?");
            format!("{col} is not valid UTF-8")
        })
    };
    let t_rel_ns = parse_t_rel(field(0)?)?;
    let recv_time = parse_rfc3339(field(1)?, "recv_time")?;
    let topic = Bytes::copy_from_slice(&rec[2]);
    check_topic(&topic)?;
    let qos = match field(3)? {
        "0" => 0,
        "1" => 1,
        "2" => 2,
        other => return Err(format!("qos '{other}' is not 0, 1 or 2")),
    };
    let retain = match field(4)? {
        "0" | "false" => false,
        "1" | "true" => true,
        other => return Err(format!("retain '{other}' is not 0 or 1")),
    };
    let payload = match field(5)? {
        "utf8" => Bytes::from(field(6)?.to_owned()),
        "base64" => Bytes::from(decode_b64(field(6)?, "payload")?),
        other => return Err(format!("payload_enc '{other}' is not utf8 or base64")),
    };
    let props = match field(7)? {
        "" => None,
        text => {
            let v: Value =
                serde_json::from_str(text).map_err(|e| format!("props is not valid JSON: {e}"))?;
            smq_props(&v)?
        }
    };
    Ok(Record {
        t_rel_ns,
        recv_time,
        msg: Message {
            topic,
            payload,
            qos,
            retain,
            props,
        },
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    /// smq `messages` JSONL.
    Messages,
    /// `-F %j` / `%J` (`tst`).
    Tst,
    /// `smq sub --json` (`time`).
    Time,
}

impl JsonKind {
    fn key(self) -> &'static str {
        match self {
            JsonKind::Messages => "t_rel_ns",
            JsonKind::Tst => "tst",
            JsonKind::Time => "time",
        }
    }
}

fn read_json_lines(
    data: &[u8],
    records: &mut Vec<Record>,
    bad: &mut impl FnMut(usize, String) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut kind: Option<JsonKind> = None;
    // The first timestamp, for %j and --json.
    let mut origin: Option<DateTime<Utc>> = None;
    let unterminated = !data.ends_with(b"\n");
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, raw) in lines.iter().enumerate() {
        let text = raw.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let truncated = i == last && unterminated;
        let result = json_line(text, &mut kind, &mut origin);
        match result {
            Ok(r) => records.push(r),
            Err(msg) if truncated => bad(i + 1, format!("{TRUNCATED}: {msg}"))?,
            Err(msg) => bad(i + 1, msg)?,
        }
    }
    Ok(())
}

fn json_line(
    text: &[u8],
    kind: &mut Option<JsonKind>,
    origin: &mut Option<DateTime<Utc>>,
) -> Result<Record, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not valid UTF-8".to_owned())?;
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(o) = &v else {
        return Err("not a JSON object".into());
    };
    let this = if o.contains_key("t_rel_ns") {
        JsonKind::Messages
    } else if o.contains_key("tst") {
        JsonKind::Tst
    } else if o.contains_key("time") {
        JsonKind::Time
    } else {
        return Err("no t_rel_ns, tst or time key".into());
    };
    match kind {
        None => *kind = Some(this),
        Some(k) if *k != this => {
            return Err(format!(
                "has no '{}' key like the first line of the file",
                k.key()
            ));
        }
        Some(_) => {}
    }
    let topic = match (o.get("topic"), o.get("topic_b64")) {
        (Some(Value::String(t)), None) => Bytes::from(t.clone()),
        (None, Some(Value::String(t))) => Bytes::from(decode_b64(t, "topic_b64")?),
        (None, None) => return Err("no topic".into()),
        (Some(_), Some(_)) => return Err("both topic and topic_b64".into()),
        _ => return Err("topic is not a string".into()),
    };
    check_topic(&topic)?;
    let qos = match o.get("qos") {
        Some(Value::Number(n)) if matches!(n.as_u64(), Some(0..=2)) => {
            n.as_u64().unwrap_or(0) as u8
        }
        Some(other) => return Err(format!("qos '{}' is not 0, 1 or 2", show(other))),
        None => return Err("no qos".into()),
    };
    let retain = match o.get("retain") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) if n.as_u64() == Some(0) => false,
        Some(Value::Number(n)) if n.as_u64() == Some(1) => true,
        Some(other) => return Err(format!("retain '{}' is not 0 or 1", show(other))),
        None => return Err("no retain".into()),
    };
    let payload = match (o.get("payload"), o.get("payload_b64")) {
        (Some(_), Some(_)) => return Err("both payload and payload_b64".into()),
        (None, Some(Value::String(s))) => Bytes::from(decode_b64(s, "payload_b64")?),
        (None, Some(_)) => return Err("payload_b64 is not a string".into()),
        (None, None) => return Err("no payload".into()),
        (Some(Value::String(s)), None) => Bytes::from(s.clone()),
        (Some(Value::Null), None) => Bytes::new(),
        // %J: the payload's own JSON text, as printed (one line already).
        (Some(other), None) if this == JsonKind::Tst => {
            Bytes::from(raw_member(text, "payload").unwrap_or_else(|| other.to_string()))
        }
        (Some(_), None) => return Err("payload is not a string".into()),
    };
    let (t_rel_ns, recv_time, props) = match this {
        JsonKind::Messages => {
            let t = match o.get("t_rel_ns") {
                Some(Value::Number(n)) => n.as_u64(),
                _ => None,
            };
            let Some(t) = t else {
                let shown = o.get("t_rel_ns").map(show).unwrap_or_default();
                return Err(format!("t_rel_ns '{shown}' is not a non-negative integer"));
            };
            let recv = match o.get("recv_time") {
                Some(Value::String(s)) => parse_rfc3339(s, "recv_time")?,
                Some(_) => return Err("recv_time is not a string".into()),
                None => return Err("no recv_time".into()),
            };
            let props = match o.get("props") {
                None | Some(Value::Null) => None,
                Some(p) => smq_props(p)?,
            };
            (t, recv, props)
        }
        JsonKind::Tst | JsonKind::Time => {
            let key = this.key();
            let stamp = match o.get(key) {
                Some(Value::String(s)) => s,
                _ => return Err(format!("{key} is not a string")),
            };
            let time = if this == JsonKind::Tst {
                parse_tst(stamp)?
            } else {
                parse_rfc3339(stamp, "time")?
            };
            let first = *origin.get_or_insert(time);
            let t = time
                .signed_duration_since(first)
                .num_nanoseconds()
                .ok_or_else(|| format!("{key} '{stamp}' is too far from the first line's"))?;
            let props = match o.get("properties") {
                None | Some(Value::Null) => None,
                Some(p) => mqtt_props(p, text)?,
            };
            (t.max(0) as u64, time, props)
        }
    };
    Ok(Record {
        t_rel_ns,
        recv_time,
        msg: Message {
            topic,
            payload,
            qos,
            retain,
            props,
        },
    })
}

/// A JSON value for an error message, cut short.
fn show(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 40 {
        let mut end = 40;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn parse_t_rel(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("t_rel_ns '{s}' is not a non-negative integer"));
    }
    s.parse()
        .map_err(|_| format!("t_rel_ns '{s}' is too large"))
}

fn parse_rfc3339(s: &str, what: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{what} '{s}' is not an RFC 3339 time"))
}

/// `-F %j`'s `tst`: `2026-11-22T02:54:52.305451+0100`; mosquitto 2.0 printed a stray `Z` before
/// the offset (`…305451Z+0100`). RFC 3339 is accepted too.
fn parse_tst(s: &str) -> Result<DateTime<Utc>, String> {
    let err = || format!("tst '{s}' is not a time like 2026-11-22T01:02:03.123456+0000");
    let fixed;
    let mut t = s;
    if let Some(pos) = s.rfind(['+', '-']) {
        if pos > 0 && s.as_bytes()[pos - 1] == b'Z' && s.contains('T') {
            fixed = format!("{}{}", &s[..pos - 1], &s[pos..]);
            t = &fixed;
        }
    }
    if let Ok(d) = DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(d.with_timezone(&Utc));
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| err())
}

fn decode_b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    B64.decode(s.as_bytes())
        .map_err(|e| format!("{what} is not valid base64: {e}"))
}

fn check_topic(topic: &[u8]) -> Result<(), String> {
    if topic.is_empty() {
        return Err("empty topic".into());
    }
    if topic.len() > 65_535 {
        return Err("topic longer than 65535 bytes".into());
    }
    if topic.iter().any(|&b| b == b'+' || b == b'#') {
        return Err(format!(
            "topic '{}' contains a wildcard (+ or #)",
            String::from_utf8_lossy(topic)
        ));
    }
    if topic.contains(&0) {
        return Err("topic contains a NUL character".into());
    }
    Ok(())
}

fn get_u32(o: &Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v <= max) => Ok(n.as_u64()),
        Some(other) => Err(format!(
            "property {key} '{}' is not an integer from 0 to {max}",
            show(other)
        )),
    }
}

fn get_str(o: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("property {key} is not a string")),
    }
}

/// smq's `props` object (underscore keys, `user_properties` as `[[k,v],…]`).
fn smq_props(v: &Value) -> Result<Option<PublishProperties>, String> {
    let Value::Object(o) = v else {
        return Err("props is not a JSON object".into());
    };
    let mut p = PublishProperties {
        content_type: get_str(o, "content_type")?,
        payload_format_indicator: get_u32(o, "payload_format_indicator", 255)?.map(|v| v as u8),
        message_expiry_interval: get_u32(o, "message_expiry_interval", u32::MAX as u64)?
            .map(|v| v as u32),
        response_topic: get_str(o, "response_topic")?,
        ..Default::default()
    };
    if let Some(c) = get_str(o, "correlation_data")? {
        p.correlation_data = Some(Bytes::from(decode_b64(&c, "correlation_data")?));
    }
    match o.get("user_properties") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for item in list {
                match item.as_array().map(Vec::as_slice) {
                    Some([Value::String(k), Value::String(v)]) => {
                        p.user_properties.push((k.clone(), v.clone()));
                    }
                    _ => {
                        return Err(format!(
                            "user_properties item {} is not a [key, value] pair of strings",
                            show(item)
                        ));
                    }
                }
            }
        }
        Some(_) => return Err("user_properties is not an array".into()),
    }
    Ok(none_if_empty(p))
}

/// `%j`/`--json` `properties` (spec names). `line` is the whole JSON line, re-scanned for
/// mosquitto 2.0's user-properties object, whose duplicate keys a parsed map would merge.
fn mqtt_props(v: &Value, line: &str) -> Result<Option<PublishProperties>, String> {
    let Value::Object(o) = v else {
        return Err("properties is not a JSON object".into());
    };
    let mut p = PublishProperties {
        content_type: get_str(o, "content-type")?,
        payload_format_indicator: get_u32(o, "payload-format-indicator", 255)?.map(|v| v as u8),
        message_expiry_interval: get_u32(o, "message-expiry-interval", u32::MAX as u64)?
            .map(|v| v as u32),
        response_topic: get_str(o, "response-topic")?,
        ..Default::default()
    };
    match (
        get_str(o, "correlation-data")?,
        get_str(o, "correlation-data-b64")?,
    ) {
        (Some(_), Some(_)) => return Err("both correlation-data and correlation-data-b64".into()),
        (Some(c), None) => p.correlation_data = Some(Bytes::from(c)),
        (None, Some(c)) => {
            p.correlation_data = Some(Bytes::from(decode_b64(&c, "correlation-data-b64")?));
        }
        (None, None) => {}
    }
    match o.get("user-properties") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for item in list {
                let pair = match item {
                    Value::Object(m) if m.len() == 1 => m.iter().next(),
                    _ => None,
                };
                match pair {
                    Some((k, Value::String(v))) => p.user_properties.push((k.clone(), v.clone())),
                    _ => {
                        return Err(format!(
                            "user-properties item {} is not a one-key object with a string value",
                            show(item)
                        ));
                    }
                }
            }
        }
        Some(Value::Object(_)) => {
            let pairs = raw_user_properties(line)
                .ok_or_else(|| "user-properties is not an object of strings".to_owned())?;
            p.user_properties = pairs;
        }
        Some(_) => return Err("user-properties is not an array or object".into()),
    }
    // subscription-identifier and topic-alias belong to the subscriber's connection: dropped.
    Ok(none_if_empty(p))
}

fn none_if_empty(p: PublishProperties) -> Option<PublishProperties> {
    let empty = p.content_type.is_none()
        && p.payload_format_indicator.is_none()
        && p.message_expiry_interval.is_none()
        && p.response_topic.is_none()
        && p.correlation_data.is_none()
        && p.user_properties.is_empty()
        && p.topic_alias.is_none()
        && p.subscription_identifiers.is_empty();
    (!empty).then_some(p)
}

// A small scanner over JSON text already known to be valid, to read an object's members in
// order with duplicates (serde_json's map keeps one value per key).

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// `s[i]` is `"`: the index just past the closing quote.
fn skip_string(s: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index just past the value starting at `i`.
fn skip_value(s: &[u8], i: usize) -> Option<usize> {
    match *s.get(i)? {
        b'"' => skip_string(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    b'"' => {
                        j = skip_string(s, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']') && !s[j].is_ascii_whitespace()
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The members of the object starting at `i`: (decoded key, value span).
fn members(text: &str, i: usize) -> Option<Vec<(String, usize, usize)>> {
    let s = text.as_bytes();
    let mut out = Vec::new();
    let mut i = skip_ws(s, i);
    if s.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(s, i + 1);
    if s.get(i) == Some(&b'}') {
        return Some(out);
    }
    loop {
        if s.get(i) != Some(&b'"') {
            return None;
        }
        let kend = skip_string(s, i)?;
        let key: String = serde_json::from_str(text.get(i..kend)?).ok()?;
        i = skip_ws(s, kend);
        if s.get(i) != Some(&b':') {
            return None;
        }
        let vstart = skip_ws(s, i + 1);
        let vend = skip_value(s, vstart)?;
        out.push((key, vstart, vend));
        i = skip_ws(s, vend);
        match s.get(i) {
            Some(b',') => i = skip_ws(s, i + 1),
            Some(b'}') => return Some(out),
            _ => return None,
        }
    }
}

/// The text of a top-level member's value (the last one, as serde_json keeps).
fn raw_member(line: &str, key: &str) -> Option<String> {
    let top = members(line, 0)?;
    let (_, a, b) = top.iter().rev().find(|(k, _, _)| k == key)?;
    line.get(*a..*b).map(str::to_owned)
}

/// `properties` → `user-properties` of a `%j` line, as an object read in order.
fn raw_user_properties(line: &str) -> Option<Vec<(String, String)>> {
    let top = members(line, 0)?;
    let (_, ps, _) = top.iter().rev().find(|(k, _, _)| k == "properties")?;
    let props = members(line, *ps)?;
    let (_, us, _) = props
        .iter()
        .rev()
        .find(|(k, _, _)| k == "user-properties")?;
    members(line, *us)?
        .into_iter()
        .map(|(k, a, b)| {
            let v: String = serde_json::from_str(line.get(a..b)?).ok()?;
            Some((k, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mosquitto_sub -V 5 -F %j` (mosquitto 2.0.11), the payloads published by mosquitto_pub:
    /// `hello, "world"`; JSON with 6 v5 properties (two user properties with the same key);
    /// `a\0b\xff` (2.0.11 cuts it at the NUL); an empty payload; a retained message at QoS 1.
    const MOSQ_J: &str = r#"{"tst":"2026-11-22T01:54:52.305451Z+0000","topic":"cap/a","qos":0,"retain":0,"payloadlen":14,"payload":"hello, \"world\""}
{"tst":"2026-11-22T01:54:52.308371Z+0000","topic":"cap/b","qos":0,"retain":0,"payloadlen":22,"properties":{"content-type":"application/json","user-properties":{"k1":"v1","k1":"v2"},"response-topic":"resp/t","correlation-data":"abc","payload-format-indicator":1,"message-expiry-interval":60},"payload":"{\"x\": 1.50, \"y\":[1,2]}"}
{"tst":"2026-11-22T01:54:52.312280Z+0000","topic":"cap/bin","qos":0,"retain":0,"payloadlen":4,"payload":"a"}
{"tst":"2026-11-22T01:54:52.315890Z+0000","topic":"cap/empty","qos":0,"retain":0,"payloadlen":0,"payload":null}
{"tst":"2026-11-22T01:55:49.165401Z+0000","topic":"cap/ret","qos":1,"retain":1,"payloadlen":4,"mid":1,"payload":"kept"}
"#;

    /// `mosquitto_sub -F %J` (2.0.11): the JSON payload inserted, numbers re-spelled by cJSON.
    const MOSQ_BIG_J: &str = r#"{"tst":"2026-11-22T01:54:52.308387Z+0000","topic":"cap/b","qos":0,"retain":0,"payloadlen":22,"properties":{"content-type":"application/json","user-properties":{"k1":"v1","k1":"v2"},"response-topic":"resp/t","correlation-data":"abc","payload-format-indicator":1,"message-expiry-interval":60},"payload":{"x":1.5,"y":[1,2]}}
"#;

    /// `smq sub -V 5 -F %j` on the same messages, then `-F %J` on a JSON one.
    const SMQ_J: &str = r#"{"tst":"2026-11-22T01:54:52.305722+0000","topic":"cap/a","qos":0,"retain":0,"payloadlen":14,"payload":"hello, \"world\""}
{"tst":"2026-11-22T01:54:52.308686+0000","topic":"cap/b","qos":0,"retain":0,"payloadlen":22,"properties":{"payload-format-indicator":1,"message-expiry-interval":60,"content-type":"application/json","response-topic":"resp/t","correlation-data":"abc","user-properties":[{"k1":"v1"},{"k1":"v2"}]},"payload":"{\"x\": 1.50, \"y\":[1,2]}"}
{"tst":"2026-11-22T01:54:52.312553+0000","topic":"cap/bin","qos":0,"retain":0,"payloadlen":4,"payload_b64":"YQBi/w=="}
{"tst":"2026-11-22T01:54:52.316129+0000","topic":"cap/empty","qos":0,"retain":0,"payloadlen":0,"payload":null}
{"tst":"2026-11-22T01:55:49.177906+0000","topic":"cap/ret","qos":1,"retain":1,"payloadlen":4,"mid":1,"payload":"kept"}
{"tst":"2026-11-22T01:55:49.832444+0000","topic":"cap/j","qos":2,"retain":0,"payloadlen":22,"mid":2,"properties":{"user-properties":[{"a":"b"}]},"payload":{"n":1.50e3,"s":"x"}}
"#;

    /// `smq sub -V 5 --json` on the same messages.
    const SMQ_JSON: &str = r#"{"topic":"cap/a","payload":"hello, \"world\"","qos":0,"retain":false,"time":"2026-11-22T01:54:52.305711Z"}
{"topic":"cap/b","payload":"{\"x\": 1.50, \"y\":[1,2]}","qos":0,"retain":false,"time":"2026-11-22T01:54:52.308641Z","properties":{"payload-format-indicator":1,"message-expiry-interval":60,"content-type":"application/json","response-topic":"resp/t","correlation-data":"abc","user-properties":[{"k1":"v1"},{"k1":"v2"}]}}
{"topic":"cap/bin","payload_b64":"YQBi/w==","qos":0,"retain":false,"time":"2026-11-22T01:54:52.312451Z"}
{"topic":"cap/empty","payload":"","qos":0,"retain":false,"time":"2026-11-22T01:54:52.317267Z"}
{"topic":"cap/ret","payload":"kept","qos":1,"retain":true,"time":"2026-11-22T01:55:49.177554Z"}
"#;

    fn read(data: &str) -> anyhow::Result<(Vec<Record>, usize)> {
        read_bytes("capture.csv", data.as_bytes(), false, |_| {})
    }

    fn err(data: &str) -> String {
        read(data).unwrap_err().to_string()
    }

    fn v5_props() -> PublishProperties {
        PublishProperties {
            content_type: Some("application/json".into()),
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            response_topic: Some("resp/t".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\xffid")),
            user_properties: vec![
                ("k1".into(), "v1".into()),
                ("k1".into(), "v,\"2\"\n".into()),
                ("é".into(), "".into()),
            ],
            ..Default::default()
        }
    }

    fn rec(t: u64, topic: &'static [u8], payload: &'static [u8], qos: u8, retain: bool) -> Record {
        Record {
            t_rel_ns: t,
            recv_time: DateTime::from_timestamp(1_795_312_487, 123_456_789 + t as u32 % 7).unwrap(),
            msg: Message {
                topic: Bytes::from_static(topic),
                payload: Bytes::from_static(payload),
                qos,
                retain,
                props: None,
            },
        }
    }

    fn samples() -> Vec<Record> {
        let mut v = vec![
            rec(0, b"sensor-logger", b"{\"x\": 1.50}", 0, false),
            rec(1, b"a/empty", b"", 1, true),
            rec(1, b"a/bin", b"a\x00b\xff", 2, false),
            rec(
                5,
                b"a/\xc3\xa9,\"q\"\nline",
                b"text, \"quoted\"\r\nnext line",
                1,
                false,
            ),
            rec(3, b"a/nul", b"\x00", 0, true),
            rec(u64::MAX, b"a/ff", b"\xff", 0, false),
            rec(9, b" ", b" leading and trailing ", 0, false),
        ];
        v[0].msg.props = Some(v5_props());
        v[2].msg.props = Some(PublishProperties {
            user_properties: vec![("only".into(), "one".into())],
            ..Default::default()
        });
        v
    }

    fn write_all(records: &[Record], format: Format, force: bool) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), format, true, force).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.into_inner().unwrap()
    }

    fn props_eq(a: &Option<PublishProperties>, b: &Option<PublishProperties>) -> bool {
        a.clone().and_then(none_if_empty) == b.clone().and_then(none_if_empty)
    }

    fn assert_same(a: &[Record], b: &[Record]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.t_rel_ns, y.t_rel_ns);
            assert_eq!(x.recv_time, y.recv_time);
            assert_eq!(x.msg.topic, y.msg.topic);
            assert_eq!(x.msg.payload, y.msg.payload);
            assert_eq!(x.msg.qos, y.msg.qos);
            assert_eq!(x.msg.retain, y.msg.retain);
            assert!(
                props_eq(&x.msg.props, &y.msg.props),
                "{:?} vs {:?}",
                x.msg.props,
                y.msg.props
            );
        }
    }

    #[test]
    fn round_trips() {
        for format in [Format::Csv, Format::Jsonl] {
            for force in [false, true] {
                let data = write_all(&samples(), format, force);
                let (back, skipped) = read_bytes("f", &data, false, |_| {}).unwrap();
                assert_eq!(skipped, 0);
                assert_same(&samples(), &back);
            }
        }
    }

    #[test]
    fn csv_layout() {
        let data = String::from_utf8(write_all(&samples()[..4], Format::Csv, false)).unwrap();
        let lines: Vec<&str> = data.split('\n').collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines[1],
            "0,2026-11-22T01:54:47.123456789Z,sensor-logger,0,0,utf8,\"{\"\"x\"\": 1.50}\",\"{\"\"content_type\"\":\"\"application/json\"\",\"\"payload_format_indicator\"\":1,\"\"message_expiry_interval\"\":60,\"\"response_topic\"\":\"\"resp/t\"\",\"\"correlation_data\"\":\"\"AP9pZA==\"\",\"\"user_properties\"\":[[\"\"k1\"\",\"\"v1\"\"],[\"\"k1\"\",\"\"v,\\\"\"2\\\"\"\\n\"\"],[\"\"é\"\",\"\"\"\"]]}\""
        );
        assert_eq!(
            lines[2],
            "1,2026-11-22T01:54:47.123456790Z,a/empty,1,1,utf8,,"
        );
        assert_eq!(
            lines[3],
            "1,2026-11-22T01:54:47.123456790Z,a/bin,2,0,base64,YQBi/w==,\"{\"\"user_properties\"\":[[\"\"only\"\",\"\"one\"\"]]}\""
        );
        assert!(data.ends_with(",\n"));
        assert!(!data.contains("\r\n,"));
    }

    #[test]
    fn jsonl_layout() {
        let recs = samples();
        let data = String::from_utf8(write_all(&recs[1..3], Format::Jsonl, false)).unwrap();
        assert_eq!(
            data,
            "{\"t_rel_ns\":1,\"recv_time\":\"2026-11-22T01:54:47.123456790Z\",\"topic\":\"a/empty\",\"qos\":1,\"retain\":true,\"payload\":\"\"}\n\
             {\"t_rel_ns\":1,\"recv_time\":\"2026-11-22T01:54:47.123456790Z\",\"topic\":\"a/bin\",\"qos\":2,\"retain\":false,\"payload_b64\":\"YQBi/w==\",\"props\":{\"user_properties\":[[\"only\",\"one\"]]}}\n"
        );
    }

    #[test]
    fn non_utf8_topic() {
        let r = rec(0, b"a/\xff", b"x", 0, false);
        let mut w = Writer::new(Vec::new(), Format::Csv, true, false).unwrap();
        assert_eq!(w.write(&r).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let data = write_all(std::slice::from_ref(&r), Format::Jsonl, false);
        assert!(String::from_utf8_lossy(&data).contains("\"topic_b64\":\"YS//\""));
        let (back, _) = read_bytes("f", &data, false, |_| {}).unwrap();
        assert_same(&[r], &back);
    }

    #[test]
    fn appending_writes_no_header() {
        let mut data = write_all(&samples()[..1], Format::Csv, false);
        let first = String::from_utf8_lossy(&data)
            .lines()
            .next()
            .unwrap()
            .to_owned();
        assert!(header_matches(&first, Format::Csv));
        let mut w = Writer::new(&mut data, Format::Csv, false, false).unwrap();
        w.write(&samples()[1]).unwrap();
        drop(w);
        let (back, _) = read_bytes("f", &data, false, |_| {}).unwrap();
        assert_same(&samples()[..2], &back);
    }

    #[test]
    fn header_matching() {
        assert!(header_matches(CSV_HEADER, Format::Csv));
        assert!(header_matches(&format!("{CSV_HEADER}\r\n"), Format::Csv));
        assert!(header_matches(
            &format!("\u{feff}{CSV_HEADER}\n"),
            Format::Csv
        ));
        assert!(!header_matches("recv_time,topic,device_id", Format::Csv));
        assert!(!header_matches(&format!("{CSV_HEADER},extra"), Format::Csv));
        assert!(!header_matches("", Format::Csv));
        assert!(header_matches("anything", Format::Jsonl));
    }

    #[test]
    fn empty_and_header_only() {
        assert_eq!(read("").unwrap().0.len(), 0);
        assert_eq!(read("\n\n").unwrap().0.len(), 0);
        assert_eq!(read(CSV_HEADER).unwrap().0.len(), 0);
        assert_eq!(read(&format!("{CSV_HEADER}\n")).unwrap().0.len(), 0);
        assert_eq!(
            read(&format!("\u{feff}{CSV_HEADER}\n\n")).unwrap().0.len(),
            0
        );
    }

    #[test]
    fn mosquitto_2_0_11_j() {
        let (r, skipped) = read(MOSQ_J).unwrap();
        assert_eq!(skipped, 0);
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].t_rel_ns, 0);
        assert_eq!(r[1].t_rel_ns, 2_920_000);
        assert_eq!(r[4].t_rel_ns, 56_859_950_000);
        assert_eq!(fmt_time(&r[0].recv_time), "2026-11-22T01:54:52.305451000Z");
        assert_eq!(&r[0].msg.payload[..], b"hello, \"world\"");
        assert_eq!(r[0].msg.topic, "cap/a");
        assert!(r[0].msg.props.is_none());
        assert_eq!(&r[1].msg.payload[..], br#"{"x": 1.50, "y":[1,2]}"#);
        let p = r[1].msg.props.as_ref().unwrap();
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
        assert_eq!(p.response_topic.as_deref(), Some("resp/t"));
        assert_eq!(p.correlation_data.as_deref(), Some(&b"abc"[..]));
        assert_eq!(p.payload_format_indicator, Some(1));
        assert_eq!(p.message_expiry_interval, Some(60));
        assert_eq!(
            p.user_properties,
            vec![("k1".into(), "v1".into()), ("k1".into(), "v2".into())]
        );
        // 2.0.11 cut the binary payload at its NUL: what it printed is what we have.
        assert_eq!(&r[2].msg.payload[..], b"a");
        assert!(r[3].msg.payload.is_empty());
        assert_eq!((r[4].msg.qos, r[4].msg.retain), (1, true));

        let (r, _) = read(MOSQ_BIG_J).unwrap();
        assert_eq!(&r[0].msg.payload[..], br#"{"x":1.5,"y":[1,2]}"#);
        assert_eq!(r[0].msg.props.as_ref().unwrap().user_properties.len(), 2);
    }

    #[test]
    fn smq_j_and_json() {
        let (j, _) = read(SMQ_J).unwrap();
        let (json, _) = read(SMQ_JSON).unwrap();
        assert_eq!(j.len(), 6);
        assert_eq!(json.len(), 5);
        for r in [&j, &json] {
            assert_eq!(r[0].t_rel_ns, 0);
            assert_eq!(&r[2].msg.payload[..], b"a\x00b\xff");
            assert!(r[3].msg.payload.is_empty());
            assert_eq!(
                r[1].msg.props.as_ref().unwrap().user_properties,
                vec![("k1".into(), "v1".into()), ("k1".into(), "v2".into())]
            );
            assert_eq!(
                r[1].msg.props.as_ref().unwrap().correlation_data.as_deref(),
                Some(&b"abc"[..])
            );
            assert_eq!((r[4].msg.qos, r[4].msg.retain), (1, true));
        }
        assert_eq!(json[1].t_rel_ns, 2_930_000);
        assert_eq!(
            fmt_time(&json[4].recv_time),
            "2026-11-22T01:55:49.177554000Z"
        );
        assert_eq!(&j[5].msg.payload[..], br#"{"n":1.50e3,"s":"x"}"#);
        assert_eq!(j[5].msg.qos, 2);
    }

    #[test]
    fn tst_offsets() {
        let t = parse_tst("2026-11-22T02:54:52.305451+0100").unwrap();
        assert_eq!(t, parse_tst("2026-11-22T01:54:52.305451Z+0000").unwrap());
        assert_eq!(t, parse_tst("2026-11-21T21:24:52.305451-0430").unwrap());
        assert_eq!(t, parse_tst("2026-11-22T01:54:52.305451Z").unwrap());
        assert!(parse_tst("yesterday").is_err());
        assert!(parse_tst("2026-11-22T01:54:52Z-").is_err());
    }

    #[test]
    fn earlier_line_clamps_to_zero() {
        let data = "{\"topic\":\"a\",\"payload\":\"x\",\"qos\":0,\"retain\":false,\"time\":\"2026-11-22T01:00:01Z\"}\n\
                    {\"topic\":\"a\",\"payload\":\"x\",\"qos\":0,\"retain\":0,\"time\":\"2026-11-22T01:00:00Z\"}\n";
        let (r, _) = read(data).unwrap();
        assert_eq!(r[1].t_rel_ns, 0);
    }

    fn csv_with(row: &str) -> String {
        format!("{CSV_HEADER}\n0,2026-11-22T01:54:52.305451000Z,a/b,0,0,utf8,ok,\n{row}\n")
    }

    #[test]
    fn csv_errors() {
        let cases = [
            (
                "1,2026-11-22T01:54:52Z,a/b,3,0,utf8,x,",
                "capture.csv line 3: qos '3' is not 0, 1 or 2",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/b,0,2,utf8,x,",
                "capture.csv line 3: retain '2' is not 0 or 1",
            ),
            (
                "-1,2026-11-22T01:54:52Z,a/b,0,0,utf8,x,",
                "capture.csv line 3: t_rel_ns '-1' is not a non-negative integer",
            ),
            (
                "+1,2026-11-22T01:54:52Z,a/b,0,0,utf8,x,",
                "capture.csv line 3: t_rel_ns '+1' is not a non-negative integer",
            ),
            (
                "1.5,2026-11-22T01:54:52Z,a/b,0,0,utf8,x,",
                "capture.csv line 3: t_rel_ns '1.5' is not a non-negative integer",
            ),
            (
                "1,yesterday,a/b,0,0,utf8,x,",
                "capture.csv line 3: recv_time 'yesterday' is not an RFC 3339 time",
            ),
            (
                "1,2026-11-22T01:54:52Z,,0,0,utf8,x,",
                "capture.csv line 3: empty topic",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/#,0,0,utf8,x,",
                "capture.csv line 3: topic 'a/#' contains a wildcard (+ or #)",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/b,0,0,hex,x,",
                "capture.csv line 3: payload_enc 'hex' is not utf8 or base64",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/b,0,0,base64,!!,",
                "capture.csv line 3: payload is not valid base64: Invalid symbol 33, offset 0.",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/b,0,0,utf8,x,{",
                "capture.csv line 3: props is not valid JSON: EOF while parsing an object at line 1 column 1",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/b,0,0,utf8,x,[]",
                "capture.csv line 3: props is not a JSON object",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/b,0,0,utf8,x",
                "capture.csv line 3: expected 8 fields, found 7",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/b,0,0,utf8,x,,",
                "capture.csv line 3: expected 8 fields, found 9",
            ),
            (
                "1,2026-11-22T01:54:52Z,a/b,0,0,utf8,x,\"{\"\"message_expiry_interval\"\":-1}\"",
                "capture.csv line 3: property message_expiry_interval '-1' is not an integer from 0 to 4294967295",
            ),
        ];
        for (row, want) in cases {
            assert_eq!(err(&csv_with(row)), want, "{row}");
        }
        // A multi-line quoted field: the next row's number is its first line.
        let data = format!(
            "{CSV_HEADER}\n0,2026-11-22T01:54:52Z,a,0,0,utf8,\"x\ny\nz\",\n1,2026-11-22T01:54:52Z,a,9,0,utf8,x,\n"
        );
        assert_eq!(err(&data), "capture.csv line 5: qos '9' is not 0, 1 or 2");
        assert!(
            err("t_rel_ns,recv_time\n").starts_with("capture.csv line 1: the CSV header is not")
        );
        assert!(err("hello\n").starts_with("capture.csv line 1: not a messages file"));
    }

    #[test]
    fn json_errors() {
        let ok = "{\"t_rel_ns\":0,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":false,\"payload\":\"\"}";
        let cases = [
            (
                "{\"t_rel_ns\":1,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":3,\"retain\":false,\"payload\":\"\"}",
                "qos '3' is not 0, 1 or 2",
            ),
            (
                "{\"t_rel_ns\":-1,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":false,\"payload\":\"\"}",
                "t_rel_ns '-1' is not a non-negative integer",
            ),
            (
                "{\"t_rel_ns\":1.0,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":false,\"payload\":\"\"}",
                "t_rel_ns '1.0' is not a non-negative integer",
            ),
            (
                "{\"t_rel_ns\":1,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":\"yes\",\"payload\":\"\"}",
                "retain '\"yes\"' is not 0 or 1",
            ),
            (
                "{\"t_rel_ns\":1,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":false}",
                "no payload",
            ),
            (
                "{\"t_rel_ns\":1,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":false,\"payload_b64\":\"@\"}",
                "payload_b64 is not valid base64: Invalid symbol 64, offset 0.",
            ),
            (
                "{\"t_rel_ns\":1,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":false,\"payload\":{}}",
                "payload is not a string",
            ),
            (
                "{\"t_rel_ns\":1,\"recv_time\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":false,\"payload\":\"\",\"props\":{\"user_properties\":[[\"k\"]]}}",
                "user_properties item [\"k\"] is not a [key, value] pair of strings",
            ),
            (
                "{\"tst\":\"2026-11-22T01:54:52Z\",\"topic\":\"a\",\"qos\":0,\"retain\":0,\"payload\":\"\"}",
                "has no 't_rel_ns' key like the first line of the file",
            ),
            ("[1]", "not a JSON object"),
            ("{\"topic\":\"a\"}", "no t_rel_ns, tst or time key"),
            (
                "{\"t_rel_ns\":1,",
                "not valid JSON: EOF while parsing a value at line 1 column 14",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                err(&format!("{ok}\n\n{line}\n{ok}\n")),
                format!("capture.csv line 3: {want}"),
                "{line}"
            );
        }
    }

    #[test]
    fn truncated_last_line() {
        let full = write_all(&samples(), Format::Csv, false);
        // Cut inside the last row: every cut of the last row that loses data is reported.
        let last_start = full[..full.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        for cut in last_start + 1..full.len() - 1 {
            let e = read_bytes("c.csv", &full[..cut], false, |_| {});
            let (recs, skipped) = read_bytes("c.csv", &full[..cut], true, |_| {}).unwrap();
            match e {
                Err(e) => {
                    assert!(
                        e.to_string()
                            .starts_with("c.csv line 10: truncated last line"),
                        "{e}"
                    );
                    assert_eq!((recs.len(), skipped), (6, 1));
                }
                // Only the props column's empty value (the whole row but its `\n`) may be cut.
                Ok((r, _)) => {
                    assert_eq!(cut, full.len() - 1);
                    assert_eq!(r.len(), 7);
                }
            }
        }
        let full = write_all(&samples(), Format::Jsonl, false);
        for cut in full.len() - 30..full.len() - 1 {
            let e = read_bytes("c.jsonl", &full[..cut], false, |_| {}).unwrap_err();
            assert!(e.to_string().starts_with("c.jsonl line 7: truncated last line (no newline at end of file): not valid JSON"), "{e}");
        }
    }

    #[test]
    fn skip_bad_counts() {
        let data = format!(
            "{CSV_HEADER}\n0,2026-11-22T01:54:52Z,a,0,0,utf8,x,\n1,2026-11-22T01:54:52Z,a,7,0,utf8,x,\nbroken\n2,2026-11-22T01:54:52Z,b,1,1,utf8,y,\n3,2026"
        );
        let mut seen = Vec::new();
        let (r, skipped) =
            read_bytes("c.csv", data.as_bytes(), true, |m| seen.push(m.to_owned())).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(skipped, 3);
        assert_eq!(seen[0], "c.csv line 3: qos '7' is not 0, 1 or 2");
        assert_eq!(seen[1], "c.csv line 4: expected 8 fields, found 1");
        assert!(seen[2].starts_with("c.csv line 6: truncated last line"));
        let (r, skipped) = read_bytes(
            "j",
            format!("not json\n{SMQ_JSON}{{\"topic\"").as_bytes(),
            true,
            |_| {},
        )
        .unwrap();
        assert_eq!((r.len(), skipped), (5, 2));
        let _ = r;
    }

    #[test]
    fn no_panics_on_garbage() {
        let base = write_all(&samples(), Format::Jsonl, false);
        let csv = write_all(&samples(), Format::Csv, false);
        let mut inputs: Vec<Vec<u8>> =
            vec![b"{".to_vec(), b"\xff\xfe".to_vec(), b"{\"tst\":1}".to_vec()];
        for src in [
            &base,
            &csv,
            &MOSQ_J.as_bytes().to_vec(),
            &SMQ_J.as_bytes().to_vec(),
        ] {
            for i in (0..src.len()).step_by(7) {
                let mut v = src.clone();
                v[i] = [b'"', b'\\', b'{', b'}', b',', b'\n', 0xff, b'0'][i % 8];
                inputs.push(v);
                inputs.push(src[..i].to_vec());
            }
        }
        for input in inputs {
            let _ = read_bytes("x", &input, false, |_| {});
            let _ = read_bytes("x", &input, true, |_| {});
            if let Ok(s) = std::str::from_utf8(&input) {
                let _ = raw_user_properties(s);
            }
        }
    }

    #[test]
    fn read_all_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capture.csv");
        std::fs::write(&path, csv_with("1,2026-11-22T01:54:52Z,a,3,0,utf8,x,")).unwrap();
        let e = read_all(&path, false).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("{} line 3: qos '3' is not 0, 1 or 2", path.display())
        );
        let (r, n) = read_all(&path, true).unwrap();
        assert_eq!((r.len(), n), (1, 1));
        assert!(read_all(&dir.path().join("missing"), false).is_err());
    }
}
