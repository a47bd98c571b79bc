//! The `wide` layout (SENSORS.md §5.2): one CSV per (device, session, sensor), one row per
//! reading, in the shape of Sensor Logger's own export (§1.5).
//!
//! - **Paths:** `DIR/<device_id>/<session_id>/<File>.csv`; with `--flat`,
//!   `DIR/<device_id>_<session_id>_<File>.csv`. The flat form keeps the ids in the name
//!   (rather than plain `DIR/<File>.csv`) so two phones or two recordings never mix rows in
//!   one file that has no column to tell them apart. An empty id is `unknown`; every
//!   component is sanitised (no separators, control characters, leading `.`, or Windows
//!   specials) so nothing a device sends can leave `DIR`.
//! - **Columns:** `time` (integer Unix ns: Sensor Logger's digits exactly as sent, otherwise
//!   the event time, or the receive time for rows with no device time), `seconds_elapsed`,
//!   the fields in first-seen order (this reproduces the app's `z,y,x`), `accuracy` if the
//!   first reading had it, then `recv_time` with `--with-recv-time`.
//! - **`seconds_elapsed`** is relative to the first reading smq saw in that (device,
//!   session) during this run, not to the app's Start tap, which the stream does not carry.
//!   It may be negative (readings in a batch are not time-aligned). After a restart that
//!   appends to existing files it starts again from the new first reading.
//! - **Header freeze:** a file's header is fixed by its first reading, as in the app. A field
//!   that appears later is not written; it is counted once per file in `late_fields`.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// (device_id, session_id, sensor) as received.
type FileKey = (Rc<str>, Rc<str>, Rc<str>);

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::sensors::{Reading, datetime_ns, format_ns};

/// Longest path component taken from an id or sensor name, in bytes. Three of them plus
/// `__` and `.csv` stay under the usual 255-byte file-name limit in `--flat` mode.
const MAX_COMPONENT: usize = 80;

/// Files kept open at once; beyond this the least recently used one is closed (and
/// reopened for append when it is needed again), so long multi-session runs stay far from
/// the descriptor limit.
const MAX_OPEN: usize = 64;

/// Sensor Logger's export file names, keyed by the streamed name lowercased with
/// everything but letters and digits removed (`wrist motion` → `wristmotion`).
const EXPORT_NAMES: &[(&str, &str)] = &[
    ("accelerometer", "Accelerometer"),
    ("accelerometeruncalibrated", "AccelerometerUncalibrated"),
    ("totalacceleration", "TotalAcceleration"),
    ("gravity", "Gravity"),
    ("gyroscope", "Gyroscope"),
    ("gyroscopeuncalibrated", "GyroscopeUncalibrated"),
    ("magnetometer", "Magnetometer"),
    ("magnetometeruncalibrated", "MagnetometerUncalibrated"),
    ("orientation", "Orientation"),
    ("compass", "Compass"),
    ("barometer", "Barometer"),
    ("location", "Location"),
    ("microphone", "Microphone"),
    ("light", "Light"),
    ("brightness", "Brightness"),
    ("battery", "Battery"),
    ("pedometer", "Pedometer"),
    ("network", "Network"),
    ("bluetooth", "Bluetooth"),
    ("bluetoothmetadata", "BluetoothMetadata"),
    ("wristmotion", "WristMotion"),
    ("headphone", "Headphone"),
    ("annotation", "Annotation"),
    ("camera", "Camera"),
    ("heartrate", "HeartRate"),
];

/// Columns smq writes itself; a field with one of these names gets a `_value` suffix.
const RESERVED: &[&str] = &["time", "seconds_elapsed", "recv_time"];

struct WideFile {
    path: PathBuf,
    header: Vec<String>,
    /// Field name → column index in `header`.
    columns: HashMap<String, usize>,
    /// `None` while closed to stay under `MAX_OPEN`.
    out: Option<csv::Writer<File>>,
    last_used: u64,
}

pub struct WideWriter {
    out_dir: PathBuf,
    flat: bool,
    with_recv_time: bool,
    files: Vec<WideFile>,
    /// (device_id, session_id, sensor) as received → index in `files`.
    by_key: HashMap<FileKey, usize>,
    /// Different ids can sanitise to the same path; they then share the file.
    by_path: HashMap<PathBuf, usize>,
    /// (device_id, session_id) → Unix ns of the first reading seen.
    session_start: HashMap<(Rc<str>, Rc<str>), i128>,
    /// (file index, field) pairs dropped by a frozen header.
    late: HashSet<(usize, String)>,
    open: usize,
    max_open: usize,
    tick: u64,
}

impl WideWriter {
    /// Creates `out_dir` (and its parents) if needed.
    pub fn new(out_dir: PathBuf, flat: bool, with_recv_time: bool) -> anyhow::Result<Self> {
        fs::create_dir_all(&out_dir)
            .with_context(|| format!("creating output directory {}", out_dir.display()))?;
        Ok(WideWriter {
            out_dir,
            flat,
            with_recv_time,
            files: Vec::new(),
            by_key: HashMap::new(),
            by_path: HashMap::new(),
            session_start: HashMap::new(),
            late: HashSet::new(),
            open: 0,
            max_open: MAX_OPEN,
            tick: 0,
        })
    }

    /// Writes the rows of one message (as decoded by `sensors::decode`) into the
    /// per-sensor files: one CSV row per reading, i.e. per run of consecutive rows with the
    /// same device, session, sensor and time (a repeated field starts a new reading).
    /// Every file touched is flushed before returning. Returns the number of CSV rows.
    /// Errors name the file.
    pub fn write_message(
        &mut self,
        recv_time: DateTime<Utc>,
        rows: &[Reading],
    ) -> io::Result<usize> {
        let recv_ns = datetime_ns(recv_time);
        let recv_ns_text = recv_ns.to_string();
        let recv_text = if self.with_recv_time {
            format_ns(recv_ns).unwrap_or_default()
        } else {
            String::new()
        };
        let mut touched: Vec<usize> = Vec::new();
        let mut written = 0;
        let mut start = 0;
        while start < rows.len() {
            let end = reading_end(rows, start);
            let reading = &rows[start..end];
            start = end;
            let idx = self.file_for(reading)?;
            self.ensure_open(idx)?;

            let first = &reading[0];
            let ns = first.time.as_ref().map_or(recv_ns, |t| t.ns);
            let session_start = match self
                .session_start
                .get(&(first.device_id.clone(), first.session_id.clone()))
            {
                Some(&s) => s,
                None => {
                    self.session_start
                        .insert((first.device_id.clone(), first.session_id.clone()), ns);
                    ns
                }
            };
            let ns_text;
            let time: &str = match &first.time {
                Some(t) => match &t.text {
                    Some(digits) => digits,
                    None => {
                        ns_text = t.ns.to_string();
                        &ns_text
                    }
                },
                None => &recv_ns_text,
            };
            let elapsed = seconds(ns.saturating_sub(session_start));

            let file = &mut self.files[idx];
            let mut cells: Vec<&str> = vec![""; file.header.len()];
            cells[0] = time;
            cells[1] = &elapsed;
            for r in reading {
                match file.columns.get(&r.field) {
                    Some(&c) => {
                        cells[c] = if r.value.is_empty() {
                            &r.value_text
                        } else {
                            &r.value
                        };
                    }
                    None => {
                        self.late.insert((idx, r.field.clone()));
                    }
                }
            }
            if self.with_recv_time {
                let last = cells.len() - 1;
                cells[last] = &recv_text;
            }
            let path = &file.path;
            if let Some(out) = &mut file.out {
                out.write_record(&cells)
                    .map_err(|e| named(path, e.into()))?;
            }
            if !touched.contains(&idx) {
                touched.push(idx);
            }
            written += 1;
        }
        for idx in touched {
            let file = &mut self.files[idx];
            // A file closed to make room was flushed when it was closed.
            if let Some(out) = &mut file.out {
                out.flush().map_err(|e| named(&file.path, e))?;
            }
        }
        Ok(written)
    }

    /// Fields that appeared after their file's header was frozen (and so were not written),
    /// counted once per (file, field), for the closing summary.
    pub fn late_fields(&self) -> u64 {
        self.late.len() as u64
    }

    /// The file for a reading, created (with its header frozen from this reading) if new.
    fn file_for(&mut self, reading: &[Reading]) -> io::Result<usize> {
        let first = &reading[0];
        let key = (
            first.device_id.clone(),
            first.session_id.clone(),
            first.sensor.clone(),
        );
        if let Some(&idx) = self.by_key.get(&key) {
            return Ok(idx);
        }
        let path = self.path_for(first);
        if let Some(&idx) = self.by_path.get(&path) {
            self.by_key.insert(key, idx);
            return Ok(idx);
        }
        let (header, columns) = header_for(reading, self.with_recv_time);
        let idx = self.files.len();
        self.files.push(WideFile {
            path: path.clone(),
            header,
            columns,
            out: None,
            last_used: 0,
        });
        // Opened (and the header checked) right away, so a conflict is reported on the
        // reading that caused it.
        if let Err(e) = self.ensure_open(idx) {
            self.files.pop();
            return Err(e);
        }
        self.by_path.insert(path, idx);
        self.by_key.insert(key, idx);
        Ok(idx)
    }

    fn path_for(&self, r: &Reading) -> PathBuf {
        let device = component(&r.device_id);
        let session = component(&r.session_id);
        let file = file_name(&r.sensor);
        if self.flat {
            self.out_dir.join(format!("{device}_{session}_{file}.csv"))
        } else {
            self.out_dir
                .join(device)
                .join(session)
                .join(format!("{file}.csv"))
        }
    }

    /// Opens file `idx` for append if it is closed, closing the least recently used file
    /// first when `max_open` are open.
    fn ensure_open(&mut self, idx: usize) -> io::Result<()> {
        self.tick += 1;
        self.files[idx].last_used = self.tick;
        if self.files[idx].out.is_some() {
            return Ok(());
        }
        if self.open >= self.max_open {
            let lru = self
                .files
                .iter()
                .enumerate()
                .filter(|(i, f)| *i != idx && f.out.is_some())
                .min_by_key(|(_, f)| f.last_used)
                .map(|(i, _)| i);
            if let Some(i) = lru {
                let f = &mut self.files[i];
                if let Some(mut out) = f.out.take() {
                    self.open -= 1;
                    out.flush().map_err(|e| named(&f.path, e))?;
                }
            }
        }
        let f = &mut self.files[idx];
        f.out = Some(open_checked(&f.path, &f.header)?);
        self.open += 1;
        Ok(())
    }
}

/// End (exclusive) of the reading that starts at `rows[start]`.
fn reading_end(rows: &[Reading], start: usize) -> usize {
    let first = &rows[start];
    let mut seen: Vec<&str> = vec![first.field.as_str()];
    let mut end = start + 1;
    while let Some(r) = rows.get(end) {
        if r.sensor != first.sensor
            || r.time != first.time
            || r.device_id != first.device_id
            || r.session_id != first.session_id
            || seen.contains(&r.field.as_str())
        {
            break;
        }
        seen.push(&r.field);
        end += 1;
    }
    end
}

/// The frozen header of a new file: `time,seconds_elapsed`, the fields in order, then
/// `accuracy` if present, then `recv_time` if asked for.
fn header_for(reading: &[Reading], with_recv_time: bool) -> (Vec<String>, HashMap<String, usize>) {
    let mut header: Vec<String> = vec!["time".into(), "seconds_elapsed".into()];
    let mut columns = HashMap::new();
    let fields = reading
        .iter()
        .filter(|r| r.field != "accuracy")
        .chain(reading.iter().filter(|r| r.field == "accuracy"));
    for r in fields {
        if columns.contains_key(&r.field) {
            continue;
        }
        let mut name = r.field.clone();
        while RESERVED.contains(&name.as_str()) || header.contains(&name) {
            name.push_str("_value");
        }
        columns.insert(r.field.clone(), header.len());
        header.push(name);
    }
    if with_recv_time {
        header.push("recv_time".into());
    }
    (header, columns)
}

/// Opens `path` for append, creating its directory. An empty or new file gets `header`;
/// an existing one must already start with exactly `header`.
fn open_checked(path: &Path, header: &[String]) -> io::Result<csv::Writer<File>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| named(dir, e))?;
    }
    let fresh = match existing_header(path)? {
        None => true,
        Some(h) if h == header => false,
        Some(h) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} already holds rows with a different header ({}; this recording's is {}): record to another --out-dir",
                    path.display(),
                    h.join(","),
                    header.join(",")
                ),
            ));
        }
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| named(path, e))?;
    // RFC 4180 quoting with `\n` line ends (§5).
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(file);
    if fresh {
        out.write_record(header)
            .map_err(|e| named(path, e.into()))?;
    }
    Ok(out)
}

/// The first record of an existing, non-empty file.
fn existing_header(path: &Path) -> io::Result<Option<Vec<String>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(named(path, e)),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file);
    match reader.records().next() {
        None => Ok(None),
        Some(Ok(rec)) => Ok(Some(rec.iter().map(String::from).collect())),
        Some(Err(e)) => Err(named(path, e.into())),
    }
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Signed ns as seconds with up to 9 fraction digits (at least one): `-0.2574822`, `0.0`.
fn seconds(ns: i128) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    let frac = format!("{:09}", abs % 1_000_000_000);
    let frac = frac.trim_end_matches('0');
    let frac = if frac.is_empty() { "0" } else { frac };
    format!("{sign}{}.{frac}", abs / 1_000_000_000)
}

/// A device or session id as one safe path component; empty → `unknown`.
fn component(id: &str) -> String {
    if id.is_empty() {
        return "unknown".into();
    }
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    truncate(&mut s);
    // No `.`/`..`, no hidden files; Windows drops a trailing dot or space.
    if s.starts_with('.') {
        s.replace_range(..1, "_");
    }
    if s.ends_with(['.', ' ']) {
        s.pop();
        s.push('_');
    }
    s
}

/// The export file name (without `.csv`) of a sensor: Sensor Logger's name when known,
/// otherwise CamelCase of its words, keeping letters, digits, `_`, `-` and `.`.
fn file_name(sensor: &str) -> String {
    let key: String = sensor
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    if let Some((_, name)) = EXPORT_NAMES.iter().find(|(k, _)| *k == key) {
        return (*name).to_string();
    }
    let mut s = String::new();
    for word in sensor.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        let mut chars = word.chars();
        if let Some(c) = chars.next() {
            s.extend(c.to_uppercase());
            s.push_str(chars.as_str());
        }
    }
    if s.is_empty() {
        s.push_str("Unknown");
    }
    truncate(&mut s);
    if s.starts_with('.') {
        s.replace_range(..1, "_");
    }
    s
}

/// Cuts to `MAX_COMPONENT` bytes at a character boundary.
fn truncate(s: &mut String) {
    if s.len() > MAX_COMPONENT {
        let mut at = MAX_COMPONENT;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures through `decode(Auto)` and the writer; the expected files are written by
    //! hand from SENSORS.md §1.5/§5.2, not produced by the code under test.

    use super::*;
    use crate::sensors::{Decoder, Options, decode};

    fn recv() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-14T09:30:05.5Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rows(topic: &str, payload: &str) -> Vec<Reading> {
        decode(
            Decoder::Auto,
            topic,
            payload.as_bytes(),
            recv(),
            &Options::default(),
        )
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every file under `dir`, relative, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(
                        p.strip_prefix(base)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    fn check(dir: &Path, expected: &[(&str, &str)]) {
        let mut names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        assert_eq!(listing(dir), names);
        for (name, text) in expected {
            let got = read(&dir.join(name));
            for (i, (g, e)) in got.lines().zip(text.lines()).enumerate() {
                assert_eq!(g, e, "{name} line {}", i + 1);
            }
            assert_eq!(&got, text, "{name}");
        }
    }

    #[test]
    fn sensorlogger_ios_motion() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = WideWriter::new(tmp.path().to_path_buf(), false, false).unwrap();
        let r = rows(
            "sensor-logger",
            include_str!("../../tests/fixtures/sensorlogger-ios-motion.json"),
        );
        assert_eq!(w.write_message(recv(), &r).unwrap(), 4);
        assert_eq!(w.late_fields(), 0);
        let d = "9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d/3f1c9a7e-5b2d-4e8a-9c61-0d2f7b8e4a10";
        check(
            tmp.path(),
            &[
                (
                    &format!("{d}/Accelerometer.csv"),
                    "time,seconds_elapsed,z,y,x\n1741944600130482200,0.0,-0.0123,0.0457,0.0031\n",
                ),
                (
                    &format!("{d}/Gyroscope.csv"),
                    "time,seconds_elapsed,z,y,x\n1741944600130482200,0.0,0.0012,-0.0087,0.0154\n",
                ),
                (
                    &format!("{d}/Gravity.csv"),
                    "time,seconds_elapsed,z,y,x\n1741944600130482200,0.0,-9.7912,-0.5321,0.0712\n",
                ),
                (
                    &format!("{d}/Orientation.csv"),
                    "time,seconds_elapsed,yaw,qx,qz,roll,qw,qy,pitch\n\
                     1741944600140482300,0.0100001,-1.5708,0.0,-0.7071067811865476,0.0,0.7071067811865476,0.0,0.0\n",
                ),
            ],
        );
    }

    #[test]
    fn sensorlogger_android_mixed_two_messages_with_recv_time() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = WideWriter::new(tmp.path().to_path_buf(), false, true).unwrap();
        let text = include_str!("../../tests/fixtures/sensorlogger-android-mixed.json");
        let r = rows("sensor-logger", text);
        assert_eq!(w.write_message(recv(), &r).unwrap(), 7);
        // The same message again, 1 s later on smq's clock: rows append, times unchanged.
        let later = recv() + chrono::Duration::seconds(1);
        assert_eq!(w.write_message(later, &r).unwrap(), 7);
        assert_eq!(w.late_fields(), 0);
        let d = "4e7b1d2a-8c3f-4a6e-b5d9-7f0e1c2a3b4d/c0a80164-0000-4000-8000-00000000beef";
        let r1 = "2025-03-14T09:30:05.500000000Z";
        let r2 = "2025-03-14T09:30:06.500000000Z";
        let twice = |header: &str, row: &str| format!("{header}\n{row},{r1}\n{row},{r2}\n");
        check(
            tmp.path(),
            &[
                (
                    &format!("{d}/TotalAcceleration.csv"),
                    &twice(
                        "time,seconds_elapsed,z,y,x,accuracy,recv_time",
                        "1741944600130482200,0.0,9.7543,0.2011,-0.1532,3",
                    ),
                ),
                (
                    &format!("{d}/Magnetometer.csv"),
                    &twice(
                        "time,seconds_elapsed,z,y,x,accuracy,recv_time",
                        "1741944600130482200,0.0,-41.23,12.5,-3.1875,2",
                    ),
                ),
                (
                    &format!("{d}/Barometer.csv"),
                    &twice(
                        "time,seconds_elapsed,relativeAltitude,pressure,accuracy,recv_time",
                        "1741944600140482300,0.0100001,-0.1312,1012.381,3",
                    ),
                ),
                (
                    &format!("{d}/Light.csv"),
                    &twice(
                        "time,seconds_elapsed,lux,accuracy,recv_time",
                        "1741944600140482300,0.0100001,342,3",
                    ),
                ),
                (
                    &format!("{d}/Microphone.csv"),
                    &twice(
                        "time,seconds_elapsed,dBFS,recv_time",
                        "1741944599873000000,-0.2574822,-63",
                    ),
                ),
                (
                    &format!("{d}/Location.csv"),
                    &twice(
                        "time,seconds_elapsed,altitude,speedAccuracy,bearingAccuracy,latitude,bearing,horizontalAccuracy,verticalAccuracy,longitude,speed,recv_time",
                        "1741944600125000000,-0.0054822,214.2,0.5,-1,51.50722,-1,4.7,1.77,-0.1275,0.0",
                    ),
                ),
                (
                    &format!("{d}/Battery.csv"),
                    &twice(
                        "time,seconds_elapsed,batteryLevel,batteryState,lowPowerMode,recv_time",
                        "1741944600200000000,0.0695178,0.55,unplugged,false",
                    ),
                ),
            ],
        );
    }

    #[test]
    fn sensorlogger_study_flat() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = WideWriter::new(tmp.path().to_path_buf(), true, false).unwrap();
        let r = rows(
            "sensor-logger",
            include_str!("../../tests/fixtures/sensorlogger-study.json"),
        );
        assert_eq!(w.write_message(recv(), &r).unwrap(), 4);
        let p = "9b2e4c6d-1a3f-4b5c-8d7e-2f1a0c9b8e7d_a7d2f0e4-6c1b-4f3a-9e85-1b2c3d4e5f60_";
        check(
            tmp.path(),
            &[
                (
                    &format!("{p}Annotation.csv"),
                    "time,seconds_elapsed,text,millisecond_press_duration\n\
                     1741944600412000000,0.0,start walking,350\n",
                ),
                (
                    &format!("{p}Pedometer.csv"),
                    "time,seconds_elapsed,steps\n1741944600401337600,-0.0106624,1203\n",
                ),
                (
                    &format!("{p}Network.csv"),
                    "time,seconds_elapsed,type,isConnected,isInternetReachable,isConnectionExpensive,ssid,strength,frequency,cellularGeneration\n\
                     1741944600401337600,-0.0106624,wifi,true,true,false,lab-wifi,78,5180,\n",
                ),
                (
                    &format!("{p}Bluetooth.csv"),
                    "time,seconds_elapsed,id,rssi,manufacturerData\n\
                     1741944600401337600,-0.0106624,C4:7F:51:0A:2B:9E,-71,4c000215a1b2c3d4e5f60718293a4b5c6d7e8f900001000bc5\n",
                ),
            ],
        );
    }

    #[test]
    fn other_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = WideWriter::new(tmp.path().to_path_buf(), false, false).unwrap();
        // Plain numbers: sensor = last topic level, time = receipt.
        w.write_message(recv(), &rows("home/temp", "21.5")).unwrap();
        let later = recv() + chrono::Duration::milliseconds(1250);
        w.write_message(later, &rows("home/temp", "-3e2")).unwrap();
        // istSOS: device = procedure.
        for line in include_str!("../../tests/fixtures/istsos-lines.txt").lines() {
            let (topic, payload) = line.split_once('\t').unwrap();
            w.write_message(recv(), &rows(topic, payload)).unwrap();
        }
        // ThingFlow: two readings of one sensor with one time are two rows; an
        // implausible device time falls back to receipt and keeps `device_ts`.
        let n = w
            .write_message(
                recv(),
                &rows(
                    "sensor-data",
                    r#"[["lux 1", 1741944600, 1.5], ["lux 1", 1741944600, 2], ["lux 1", 624, 3]]"#,
                ),
            )
            .unwrap();
        assert_eq!(n, 3);
        check(
            tmp.path(),
            &[
                (
                    "unknown/unknown/Temp.csv",
                    "time,seconds_elapsed,value\n1741944605500000000,0.0,21.5\n1741944606750000000,1.25,-3e2\n",
                ),
                (
                    "T_LUGANO/unknown/T_LUGANO.csv",
                    "time,seconds_elapsed,v1\n1741941000000000000,0.0,12.4\n1741941600000000000,600.0,12.6\n1741942800250000000,1800.25,12.75\n",
                ),
                (
                    "METEO_LOCARNO/unknown/METEO_LOCARNO.csv",
                    "time,seconds_elapsed,v1,v2,v3\n1741941000000000000,0.0,8.1,74.2,1013.4\n",
                ),
                // Same (unknown, unknown) session as Temp: elapsed from its first reading.
                // The third row's `device_ts` came after the header froze: a late field.
                (
                    "unknown/unknown/Lux1.csv",
                    "time,seconds_elapsed,value\n1741944600000000000,-5.5,1.5\n1741944600000000000,-5.5,2\n1741944605500000000,0.0,3\n",
                ),
            ],
        );
        assert_eq!(w.late_fields(), 1);
    }

    fn reading(sensor: &str, ns: i128, fields: &[(&str, &str)]) -> Vec<Reading> {
        fields
            .iter()
            .map(|(f, v)| Reading {
                device_id: "d".into(),
                session_id: "s".into(),
                sensor: sensor.into(),
                time: Some(crate::sensors::EventTime::from_ns(ns)),
                field: (*f).into(),
                value: (*v).into(),
                ..Reading::default()
            })
            .collect()
    }

    #[test]
    fn header_freeze_counts_late_fields_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = WideWriter::new(tmp.path().to_path_buf(), false, false).unwrap();
        let t = 1_741_944_600_000_000_000;
        w.write_message(recv(), &reading("accelerometer", t, &[("x", "1")]))
            .unwrap();
        let more = reading(
            "accelerometer",
            t + 5,
            &[("y", "2"), ("x", "3"), ("accuracy", "3")],
        );
        w.write_message(recv(), &more).unwrap();
        assert_eq!(w.late_fields(), 2);
        w.write_message(recv(), &more).unwrap();
        assert_eq!(w.late_fields(), 2);
        // The same field name late in another file counts again.
        w.write_message(recv(), &reading("gyroscope", t, &[("x", "1")]))
            .unwrap();
        w.write_message(recv(), &reading("gyroscope", t, &[("y", "1")]))
            .unwrap();
        assert_eq!(w.late_fields(), 3);
        assert_eq!(
            read(&tmp.path().join("d/s/Accelerometer.csv")),
            "time,seconds_elapsed,x\n1741944600000000000,0.0,1\n1741944600000000005,0.000000005,3\n1741944600000000005,0.000000005,3\n"
        );
        assert_eq!(
            read(&tmp.path().join("d/s/Gyroscope.csv")),
            "time,seconds_elapsed,x\n1741944600000000000,0.0,1\n1741944600000000000,0.0,\n"
        );
    }

    #[test]
    fn append_and_header_conflict() {
        let tmp = tempfile::tempdir().unwrap();
        let t = 1_741_944_600_000_000_000;
        for _ in 0..2 {
            let mut w = WideWriter::new(tmp.path().to_path_buf(), false, false).unwrap();
            w.write_message(recv(), &reading("light", t, &[("lux", "5")]))
                .unwrap();
        }
        let path = tmp.path().join("d/s/Light.csv");
        assert_eq!(
            read(&path),
            "time,seconds_elapsed,lux\n1741944600000000000,0.0,5\n1741944600000000000,0.0,5\n"
        );
        // A different header is an error naming the file; nothing is written to it.
        let mut w = WideWriter::new(tmp.path().to_path_buf(), false, true).unwrap();
        let e = w
            .write_message(recv(), &reading("light", t, &[("lux", "5")]))
            .unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(e.to_string().contains("different header"), "{e}");
        assert_eq!(read(&path).lines().count(), 3);
        // The failed file is not remembered as open: the next try fails the same way.
        assert!(
            w.write_message(recv(), &reading("light", t, &[("lux", "5")]))
                .is_err()
        );
        // An empty existing file gets the header.
        fs::write(tmp.path().join("d/s/Pedometer.csv"), "").unwrap();
        w.write_message(recv(), &reading("pedometer", t, &[("steps", "1")]))
            .unwrap();
        assert!(
            read(&tmp.path().join("d/s/Pedometer.csv"))
                .starts_with("time,seconds_elapsed,steps,recv_time\n")
        );
        // A directory that cannot be created is an error naming it.
        let file = tmp.path().join("plainfile");
        fs::write(&file, "x").unwrap();
        let e = WideWriter::new(file.join("sub"), false, false)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("plainfile"), "{e:#}");
    }

    #[test]
    fn paths_stay_inside_dir() {
        assert_eq!(component(""), "unknown");
        assert_eq!(component(".."), "__");
        assert_eq!(component("."), "_");
        assert_eq!(component("../../etc"), "_._.._etc");
        assert_eq!(component("a\0b\nc\\d:e"), "a_b_c_d_e");
        assert_eq!(component(&"é".repeat(100)).len(), 80);
        assert_eq!(file_name("wrist motion"), "WristMotion");
        assert_eq!(file_name("gyroscopeuncalibrated"), "GyroscopeUncalibrated");
        assert_eq!(file_name("heart rate"), "HeartRate");
        assert_eq!(file_name("my sensor/x"), "MySensorX");
        assert_eq!(file_name("../x"), "_.X");
        assert_eq!(file_name("\0/"), "Unknown");
        assert_eq!(file_name(""), "Unknown");

        for flat in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("out");
            let mut w = WideWriter::new(out.clone(), flat, false).unwrap();
            let payload = r#"{"deviceId":"../../etc","sessionId":"a/b\u0000c\nd","payload":[
                {"name":"x/../y","time":1741944600000000000,"values":{"v":1}},
                {"name":"..","time":1741944600000000000,"values":{"v":1}}]}"#;
            assert_eq!(w.write_message(recv(), &rows("sl", payload)).unwrap(), 2);
            assert_eq!(listing(tmp.path()).len(), 2);
            let expected = if flat {
                vec![
                    "out/_._.._etc_a_b_c_d_X..Y.csv",
                    "out/_._.._etc_a_b_c_d__..csv",
                ]
            } else {
                vec![
                    "out/_._.._etc/a_b_c_d/X..Y.csv",
                    "out/_._.._etc/a_b_c_d/_..csv",
                ]
            };
            assert_eq!(listing(tmp.path()), expected);
        }
    }

    #[test]
    fn closes_and_reopens_beyond_max_open() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = WideWriter::new(tmp.path().to_path_buf(), false, false).unwrap();
        w.max_open = 2;
        let t = 1_741_944_600_000_000_000;
        let mut msg = Vec::new();
        for s in ["a", "b", "c", "a", "b", "c"] {
            msg.extend(reading(s, t, &[("v", s)]));
        }
        assert_eq!(w.write_message(recv(), &msg).unwrap(), 6);
        assert_eq!(w.write_message(recv(), &msg).unwrap(), 6);
        assert!(w.open <= 2);
        for s in ["A", "B", "C"] {
            let v = s.to_lowercase();
            let row = format!("1741944600000000000,0.0,{v}\n");
            assert_eq!(
                read(&tmp.path().join(format!("d/s/{s}.csv"))),
                format!("time,seconds_elapsed,v\n{}", row.repeat(4))
            );
        }
    }

    #[test]
    fn quoting_reserved_names_and_empty_messages() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = WideWriter::new(tmp.path().to_path_buf(), false, false).unwrap();
        assert_eq!(w.write_message(recv(), &[]).unwrap(), 0);
        let r = rows("dev/env", r#"{"time":"later","note":"a,\"b\"\nc"}"#);
        assert_eq!(w.write_message(recv(), &r).unwrap(), 1);
        assert_eq!(
            read(&tmp.path().join("unknown/unknown/Env.csv")),
            "time,seconds_elapsed,time_value,note\n1741944605500000000,0.0,later,\"a,\"\"b\"\"\nc\"\n"
        );
    }

    #[test]
    fn seconds_format() {
        assert_eq!(seconds(0), "0.0");
        assert_eq!(seconds(1), "0.000000001");
        assert_eq!(seconds(-257_482_200), "-0.2574822");
        assert_eq!(seconds(3_000_000_000), "3.0");
        assert_eq!(
            seconds(i128::MIN),
            format!(
                "-{}.{}",
                i128::MIN.unsigned_abs() / 1_000_000_000,
                "884105728"
            )
        );
    }

    #[test]
    fn never_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = WideWriter::new(tmp.path().to_path_buf(), false, true).unwrap();
        w.max_open = 3;
        let seeds: [&str; 5] = [
            include_str!("../../tests/fixtures/sensorlogger-android-mixed.json"),
            include_str!("../../tests/fixtures/sensorlogger-study.json"),
            include_str!("../../tests/fixtures/thingflow-lines.txt"),
            r#"{"time":1741944600123,"a":{"b":[1,{"c":null}]}}"#,
            "",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..500 {
            let mut p = seeds[(next() % seeds.len() as u64) as usize]
                .as_bytes()
                .to_vec();
            for _ in 0..(next() % 4) {
                if !p.is_empty() {
                    let at = (next() % p.len() as u64) as usize;
                    p[at] = (next() >> 24) as u8;
                }
            }
            let rows = decode(Decoder::Auto, "a/b", &p, recv(), &Options::default());
            // A mutated byte can make two files' headers clash; that is an error, not a panic.
            let _ = w.write_message(recv(), &rows);
        }
        assert!(listing(tmp.path()).iter().all(|p| p.ends_with(".csv")));
    }
}
