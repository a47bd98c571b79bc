//! `smq record`: `smq sub`'s engine writing CSV or JSONL files instead of printing.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};

use super::subscribe::{self, Sink, SubscribeOptions, Subscribed};
use crate::capture;
use crate::cli::{CaptureFormat, Layout, RecordArgs};
use crate::conn::{Message, Protocol, subscribe_reason};
use crate::exit::usage;
use crate::layout::readings::{self, ReadingsWriter};
use crate::layout::rotate::Files;
use crate::layout::wide::WideWriter;
use crate::progress;
use crate::sensors::{self, Decoder};
use crate::topic;

pub async fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let decoders = Decoders::parse(&args.decode)?;
    let format = match args.format {
        CaptureFormat::Csv => capture::Format::Csv,
        CaptureFormat::Jsonl => capture::Format::Jsonl,
    };
    if args.layout != Layout::Messages && args.format == CaptureFormat::Jsonl {
        return Err(usage(
            "--format jsonl is for --layout messages; the readings and wide layouts are CSV",
        ));
    }
    if (args.layout == Layout::Wide) != args.out_dir.is_some() {
        return Err(usage(
            "--layout wide writes many files: give it --out-dir DIR (and only it)",
        ));
    }
    let mut conn = args.conn;
    subscribe::share_client_id(&mut conn, args.share.as_deref());
    let rotatable = |path: &str| path != "-";
    let any_rotatable = (args.layout != Layout::Wide && rotatable(&args.output))
        || args.raw.as_deref().is_some_and(rotatable);
    if args.rotate.is_some() && !any_rotatable {
        return Err(usage(
            "--rotate rotates -o FILE (readings or messages layout) and --raw FILE: give it one",
        ));
    }
    let files = |path: &str| Files::new(path, args.rotate.filter(|_| rotatable(path)));
    // Files are opened before connecting, so a bad path or header fails fast.
    let main = match args.layout {
        Layout::Readings => Main::Readings(Rotating::open(
            files(&args.output),
            Box::new(|line| line == readings::HEADER),
            Box::new(ReadingsWriter::new),
        )?),
        Layout::Wide => {
            let dir = args.out_dir.clone().unwrap_or_default();
            Main::Wide(WideWriter::new(dir, args.flat, args.with_recv_time)?)
        }
        Layout::Messages => Main::Messages(Box::new(Rotating::open(
            files(&args.output),
            Box::new(move |line| capture::header_matches(line, format)),
            Box::new(move |out, fresh| capture::Writer::new(out, format, fresh, false)),
        )?)),
    };
    let raw = match &args.raw {
        Some(path) => Some(Rotating::open(
            files(path),
            Box::new(|line| capture::header_matches(line, capture::Format::Csv)),
            Box::new(|out, fresh| capture::Writer::new(out, capture::Format::Csv, fresh, false)),
        )?),
        None => None,
    };
    // The messages files get a sidecar saying how they were made (SENSORS.md §5.3), once the
    // broker has said which version it speaks and what it granted.
    let url_topic = conn
        .url
        .iter()
        .find_map(|u| crate::transport::url::parse(u).ok().and_then(|u| u.topic));
    let meta = Meta {
        client_id: conn.id.clone().unwrap_or_default(),
        share: args.share.clone(),
        url_topic,
        written: false,
    };
    let recorder = Recorder {
        main,
        raw,
        meta,
        decoders,
        opts: sensors::Options {
            keep_test: args.keep_test,
            keep_blobs: args.keep_blobs,
            no_accuracy: args.no_accuracy,
        },
        out_dir: args.out_dir.as_ref().map(|dir| dir.display().to_string()),
        first: None,
        started: Instant::now(),
        messages: 0,
        rows: 0,
        bytes: 0,
        quiet: conn.quiet,
        progress: progress::spinner(),
    };
    let sub = SubscribeOptions {
        topics: args.topics,
        share: args.share,
        qos: args.qos,
        count: args.count,
        timeout: args.timeout,
        retain_as_published_if_v5: true,
        no_reconnect: args.no_reconnect,
        duration: args.duration.map(std::time::Duration::from_secs_f64),
        embedded: args.embedded,
        ..SubscribeOptions::new(conn)
    };
    subscribe::run_sink(sub, Box::new(recorder)).await
}

/// What the sidecar says that is known before connecting.
struct Meta {
    client_id: String,
    /// `--share GROUP`: this file holds this recorder's part of the group's messages.
    share: Option<String>,
    /// The topic of the -L URLs, part of the broker's name in the sidecar.
    url_topic: Option<String>,
    written: bool,
}

impl Meta {
    /// `<file>.meta.json`: smq and MQTT versions, the broker (never credentials), client id,
    /// subscriptions with the QoS asked for and granted, Retain-As-Published, start time and
    /// host name.
    fn render(&self, sub: &Subscribed<'_>) -> String {
        let v5 = sub.protocol == Protocol::V5;
        let broker = match &self.url_topic {
            Some(t) => format!("{}/{t}", sub.broker),
            None => sub.broker.clone(),
        };
        let subscriptions: Vec<serde_json::Value> = sub
            .granted
            .iter()
            .map(|&(filter, qos, code)| {
                if code >= 0x80 {
                    serde_json::json!({"filter": filter, "qos": qos, "granted_qos": null, "refused": subscribe_reason(code)})
                } else {
                    serde_json::json!({"filter": filter, "qos": qos, "granted_qos": code})
                }
            })
            .collect();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let mut meta = serde_json::json!({
            "smq_version": env!("CARGO_PKG_VERSION"),
            "mqtt_version": if v5 { "5" } else { "3.1.1" },
            "broker": broker,
            "client_id": self.client_id,
            "subscriptions": subscriptions,
            "retain_as_published": v5,
            "started": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "host": host,
        });
        if let Some(group) = &self.share {
            meta["share_group"] = serde_json::json!(group);
        }
        if sub.brokers.len() > 1 {
            meta["brokers"] = serde_json::json!(sub.brokers);
        }
        format!("{meta:#}\n")
    }
}

/// Opens `-` (stdout) or a file for appending. A file that already has rows must start with
/// the header this layout writes; returns whether a header is still to be written.
fn open(path: &str, same_header: impl Fn(&str) -> bool) -> anyhow::Result<(Box<dyn Write>, bool)> {
    if path == "-" {
        return Ok((Box::new(io::stdout()), true));
    }
    // Only a regular file can hold earlier rows: reading /dev/full or a FIFO would never end.
    // A header is one short line; the cap keeps a binary file from being read whole.
    let existing = File::open(path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
        .and_then(|f| BufReader::new(f.take(64 * 1024)).lines().next())
        .transpose()
        .with_context(|| format!("reading {path}"))?;
    let fresh = match existing.as_deref() {
        None | Some("") => true,
        Some(line) if same_header(line) => false,
        Some(_) => {
            return Err(anyhow!(
                "{path} already holds rows with a different header: record to a new file, or use the layout it was written with"
            ));
        }
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {path} for writing"))?;
    Ok((Box::new(file), fresh))
}

fn write_error(path: &str, e: io::Error) -> anyhow::Error {
    if crate::exit::pipe_closed(&e) {
        return e.into();
    }
    anyhow!("writing {path}: {e}")
}

/// `--decode`: a default decoder, and decoders for the topics some filters match.
struct Decoders {
    default: Decoder,
    by_filter: Vec<(String, Decoder)>,
}

impl Decoders {
    fn parse(specs: &[String]) -> anyhow::Result<Decoders> {
        let mut d = Decoders {
            default: Decoder::Auto,
            by_filter: Vec::new(),
        };
        for spec in specs {
            let (filter, name) = match spec.split_once('=') {
                Some((f, n)) => (Some(f), n),
                None => (None, spec.as_str()),
            };
            let decoder: Decoder = name.parse().map_err(|_| {
                usage(format!(
                    "--decode '{spec}': use auto, sensorlogger, thingflow, thingspeak, istsos, number, json or raw, optionally after FILTER="
                ))
            })?;
            match filter {
                None => d.default = decoder,
                Some(f) => {
                    if let Some(why) = topic::filter_error(f) {
                        return Err(usage(format!("--decode '{spec}': bad topic filter: {why}")));
                    }
                    d.by_filter.push((f.to_owned(), decoder));
                }
            }
        }
        Ok(d)
    }

    fn pick(&self, topic: &str) -> Decoder {
        self.by_filter
            .iter()
            .find(|(f, _)| topic::matches(f, topic.as_bytes()))
            .map_or(self.default, |(_, d)| *d)
    }
}

enum Main {
    Readings(Rotating<ReadingsWriter<Box<dyn Write>>>),
    // Boxed: the csv crate's writer builder makes it several times the others' size.
    Messages(Box<Rotating<capture::Writer<Box<dyn Write>>>>),
    Wide(WideWriter),
}

type Make<W> = Box<dyn Fn(Box<dyn Write>, bool) -> io::Result<W>>;
type SameHeader = Box<dyn Fn(&str) -> bool>;

/// A layout's writer on [`Files`]: a new file, with its header (and sidecar), when they rotate.
struct Rotating<W> {
    files: Files,
    writer: W,
    same_header: SameHeader,
    make: Make<W>,
    sidecar: Option<String>,
    /// The file being written.
    path: String,
}

impl<W> Rotating<W> {
    fn open(
        mut files: Files,
        same_header: SameHeader,
        make: Make<W>,
    ) -> anyhow::Result<Rotating<W>> {
        let path = files.next(chrono::Utc::now(), 0).unwrap_or_default();
        let writer = open_with(&path, &files, &same_header, &make, None)?;
        Ok(Rotating {
            files,
            writer,
            same_header,
            make,
            sidecar: None,
            path,
        })
    }

    /// The sidecar of the file being written, and of every file rotated to after it.
    fn set_sidecar(&mut self, meta: String) -> anyhow::Result<()> {
        write_sidecar(&self.path, &meta)?;
        self.sidecar = Some(meta);
        Ok(())
    }

    /// The writer for a message of `rows` rows received at `recv_time`.
    fn writer(&mut self, recv_time: DateTime<Utc>, rows: u64) -> anyhow::Result<&mut W> {
        if let Some(path) = self.files.next(recv_time, rows) {
            self.writer = open_with(
                &path,
                &self.files,
                &self.same_header,
                &self.make,
                self.sidecar.as_deref(),
            )?;
            self.path = path;
        }
        Ok(&mut self.writer)
    }
}

fn open_with<W>(
    path: &str,
    files: &Files,
    same_header: &SameHeader,
    make: &Make<W>,
    sidecar: Option<&str>,
) -> anyhow::Result<W> {
    let (out, fresh) = open(path, same_header)?;
    if let Some(meta) = sidecar {
        write_sidecar(path, meta)?;
    }
    make(Box::new(files.counted(out)), fresh).map_err(|e| write_error(path, e))
}

fn write_sidecar(path: &str, meta: &str) -> anyhow::Result<()> {
    if path == "-" {
        return Ok(());
    }
    // Appending keeps the sidecar of the recording that started the file.
    let meta_path = format!("{path}.meta.json");
    if !std::path::Path::new(&meta_path).exists() {
        std::fs::write(&meta_path, meta).with_context(|| format!("writing {meta_path}"))?;
    }
    Ok(())
}

struct Recorder {
    main: Main,
    raw: Option<Rotating<capture::Writer<Box<dyn Write>>>>,
    meta: Meta,
    decoders: Decoders,
    opts: sensors::Options,
    out_dir: Option<String>,
    first: Option<Instant>,
    started: Instant,
    messages: u64,
    rows: u64,
    bytes: u64,
    quiet: bool,
    progress: indicatif::ProgressBar,
}

impl Sink for Recorder {
    fn subscribed(&mut self, sub: &Subscribed<'_>) -> anyhow::Result<()> {
        // The first SUBACK describes the recording; a reconnect does not rewrite it.
        if std::mem::replace(&mut self.meta.written, true) {
            return Ok(());
        }
        let meta = self.meta.render(sub);
        if let Main::Messages(w) = &mut self.main {
            w.set_sidecar(meta.clone())?;
        }
        if let Some(raw) = &mut self.raw {
            raw.set_sidecar(meta)?;
        }
        Ok(())
    }

    fn message(&mut self, msg: &Message, time: SystemTime) -> anyhow::Result<()> {
        let now = Instant::now();
        let first = *self.first.get_or_insert(now);
        let recv_time = chrono::DateTime::<chrono::Utc>::from(time);
        let record = capture::Record {
            t_rel_ns: u64::try_from(now.duration_since(first).as_nanos()).unwrap_or(u64::MAX),
            recv_time,
            msg: msg.clone(),
        };
        if let Some(raw) = &mut self.raw {
            raw.writer(recv_time, 1)?.write(&record)?;
        }
        let rows = match &mut self.main {
            Main::Messages(w) => {
                w.writer(recv_time, 1)?.write(&record)?;
                1
            }
            Main::Readings(w) => {
                let topic = String::from_utf8_lossy(&msg.topic);
                let rows = sensors::decode(
                    self.decoders.pick(&topic),
                    &topic,
                    &msg.payload,
                    recv_time,
                    &self.opts,
                );
                // A ThingSpeak API key in the topic never reaches the file.
                let shown = sensors::thingspeak::redact_topic(&topic);
                w.writer(recv_time, rows.len() as u64)?
                    .write_message(recv_time, &shown, &rows)?
            }
            Main::Wide(w) => {
                let topic = String::from_utf8_lossy(&msg.topic);
                let rows = sensors::decode(
                    self.decoders.pick(&topic),
                    &topic,
                    &msg.payload,
                    recv_time,
                    &self.opts,
                );
                let before = w.late_fields();
                let n = w.write_message(recv_time, &rows)?;
                if w.late_fields() > before && !self.quiet {
                    let _ = writeln!(
                        io::stderr().lock(),
                        "smq: warning: a field appeared after its file's header was fixed; it is not written to the wide files"
                    );
                }
                n
            }
        };
        self.messages += 1;
        self.rows += rows as u64;
        self.bytes += msg.payload.len() as u64;
        if self.messages == 1 {
            progress::show(&self.progress);
        }
        self.progress.inc(1);
        self.progress
            .set_message(format!("{} rows, {} payload bytes", self.rows, self.bytes));
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.progress.finish_and_clear();
        if let (Main::Wide(w), false) = (&self.main, self.quiet) {
            if w.late_fields() > 0 {
                let _ = writeln!(
                    io::stderr().lock(),
                    "smq: {} field(s) appeared after their file's header was fixed and were not written",
                    w.late_fields()
                );
            }
        }
        if !self.quiet {
            let target = match (&self.out_dir, &self.main) {
                (Some(dir), _) => dir.clone(),
                (None, Main::Readings(w)) => w.files.describe(),
                (None, Main::Messages(w)) => w.files.describe(),
                (None, Main::Wide(_)) => String::new(),
            };
            let target = if target == "-" { "stdout" } else { &target };
            let _ = writeln!(
                io::stderr().lock(),
                "smq: recorded {} messages ({} rows, {} payload bytes) to {target} in {:.1} s",
                self.messages,
                self.rows,
                self.bytes,
                self.started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }
}
