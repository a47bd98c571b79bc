//! Every clap type, and nothing else: mosquitto parity is reviewed here in one place.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES_HELP;

mod bench;
mod certs;
mod rr;

pub use bench::{BenchArgs, BenchLoad, BenchMode};
pub use certs::CertsArgs;
pub use rr::RrArgs;

#[derive(Debug, Parser)]
#[command(
    name = "smq",
    version,
    about = "MQTT publish and subscribe with mosquitto's flags",
    long_about = "MQTT publish and subscribe with mosquitto's flags.\n\n\
        Every flag that mosquitto_pub and mosquitto_sub have means the same here.",
    disable_help_flag = true,
    disable_version_flag = true,
    after_long_help = EXIT_CODES_HELP,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print help
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,

    /// Print the version
    #[arg(long, action = ArgAction::Version)]
    version: Option<bool>,
}

impl Cli {
    /// Parses like `Cli::try_parse_from`, and keeps each `-D` occurrence's values together,
    /// which clap's derive cannot express.
    pub fn parse_from_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command()
            .try_get_matches_from(args)
            .map_err(mosquitto_only)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let mut sub = matches.subcommand().map(|(_, m)| m);
        let conn = match &mut cli.command {
            Command::Pub(a) => Some(&mut a.conn),
            Command::Sub(a) => Some(&mut a.conn),
            Command::Record(a) => Some(&mut a.conn),
            Command::Replay(a) => Some(&mut a.conn),
            Command::Rr(a) => Some(&mut a.conn),
            Command::Bench(a) => {
                // `smq bench MODE ...`: the flags belong to the mode's matches.
                sub = sub.and_then(|m| m.subcommand()).map(|(_, m)| m);
                Some(a.mode.conn_mut())
            }
            Command::ServeBroker(_)
            | Command::Passwd(_)
            | Command::Certs(_)
            | Command::Generate(_) => None,
        };
        if let (Some(conn), Some(sub)) = (conn, sub) {
            conn.property = sub
                .get_occurrences::<String>("property")
                .map(|all| all.map(|one| one.cloned().collect()).collect())
                .unwrap_or_default();
            conn.brokers = brokers_in_order(sub);
        }
        Ok(cli)
    }

    /// Whether this run hosts the broker, which wants worker threads.
    pub fn serves(&self) -> bool {
        match &self.command {
            Command::ServeBroker(_) => true,
            Command::Sub(a) => a.embedded.serve,
            Command::Record(a) => a.embedded.serve,
            _ => false,
        }
    }

    /// `--quiet`: no error messages at all.
    pub fn quiet(&self) -> bool {
        match &self.command {
            Command::Pub(a) => a.conn.quiet,
            Command::Sub(a) => a.conn.quiet,
            Command::Record(a) => a.conn.quiet,
            Command::Replay(a) => a.conn.quiet,
            Command::Rr(a) => a.conn.quiet,
            Command::Bench(a) => a.mode.conn().quiet,
            Command::ServeBroker(_)
            | Command::Passwd(_)
            | Command::Certs(_)
            | Command::Generate(_) => false,
        }
    }
}

/// mosquitto flags smq does not have: say so, and what to do instead, rather than clap's
/// "unexpected argument".
fn mosquitto_only(err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return err;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let flag = arg.split('=').next().unwrap_or_default();
    let advice = match flag {
        "--proxy" => {
            "smq has no SOCKS5 proxy (mosquitto's --proxy): tunnel the broker's port instead, e.g. `ssh -N -L 1883:BROKER:1883 HOST` and then -h localhost, or run smq under proxychains"
        }
        "-S" => {
            "smq does not look brokers up in DNS SRV records (mosquitto's -S): find one with `dig +short SRV _mqtt._tcp.DOMAIN` and pass -h HOST -p PORT"
        }
        "-w" | "--watch" => {
            "smq sub has no --watch (mosquitto 2.1): --stats draws a live per-topic table on a terminal"
        }
        "--message-rate" => {
            "smq sub has no --message-rate (mosquitto 2.1): --stats shows each topic's rate"
        }
        "--tls-keylog" => "smq has no --tls-keylog (mosquitto 2.1)",
        _ => return err,
    };
    Cli::command().error(ErrorKind::UnknownArgument, advice)
}

/// How the clients pick a broker and a version, for `--help` and the man pages.
const BROKERS_HELP: &str = "\
Brokers and versions:
  -V auto (the default) sends an MQTT 5 CONNECT; if the broker closes the connection before
  CONNACK, or answers CONNACK 1 or 0x84, smq connects once more with MQTT 3.1.1 and says so.
  -D, -x and sub's MQTT 5 options make that an error that names them.
  -h and -L may be repeated. The brokers are tried in the order given, at start and after
  every lost connection, each round from the first, with back-off (0.1 s doubling to 5 s,
  with jitter); --connect-retry SECS keeps trying the first connection. sub and record
  subscribe again; pub -l, pub --repeat and replay send what was not acknowledged again (on
  a resumed -c session with DUP and the same packet ids, else as new messages) and exit 0
  once everything is acknowledged. --no-reconnect exits 1 at the first lost connection.";

fn client_help() -> String {
    format!("{BROKERS_HELP}\n\n{EXIT_CODES_HELP}")
}

/// -h and -L values by their position on the command line.
fn brokers_in_order(sub: &clap::ArgMatches) -> Vec<BrokerArg> {
    let named = |id: &str, make: fn(String) -> BrokerArg| {
        sub.indices_of(id)
            .into_iter()
            .flatten()
            .zip(sub.get_many::<String>(id).into_iter().flatten())
            .map(move |(at, v)| (at, make(v.clone())))
            .collect::<Vec<_>>()
    };
    let mut all = named("host", BrokerArg::Host);
    all.extend(named("url", BrokerArg::Url));
    all.sort_by_key(|(at, _)| *at);
    all.into_iter().map(|(_, b)| b).collect()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish messages, as mosquitto_pub
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        after_long_help = client_help()
    )]
    Pub(Box<PubArgs>),
    /// Subscribe and print messages, as mosquitto_sub
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        after_long_help = client_help()
    )]
    Sub(Box<SubArgs>),
    /// Publish a request and print the response, as mosquitto_rr
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        after_long_help = EXIT_CODES_HELP
    )]
    Rr(Box<RrArgs>),
    /// Record messages to a CSV or JSONL file
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        after_long_help = client_help()
    )]
    Record(Box<RecordArgs>),
    /// Publish a recorded file again, with its original timing
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        after_long_help = client_help()
    )]
    Replay(Box<ReplayArgs>),
    /// Load-test a broker: connections, publishers, subscribers, end-to-end latency
    #[command(disable_help_flag = true, after_long_help = EXIT_CODES_HELP)]
    Bench(Box<BenchArgs>),
    /// Run an MQTT 3.1.1 and 5 broker (TCP, TLS, WebSocket)
    #[command(disable_help_flag = true, after_long_help = EXIT_CODES_HELP)]
    ServeBroker(Box<ServeBrokerArgs>),
    /// Add, change or delete a user in a mosquitto_passwd password file
    #[command(disable_help_flag = true)]
    Passwd(PasswdArgs),
    /// Make a lab CA and v3 server and client certificates, and print the flags that use them
    #[command(disable_help_flag = true)]
    Certs(CertsArgs),
    /// Write shell completions and man pages
    #[command(disable_help_flag = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).multiple(false))]
pub struct PubArgs {
    /// Topic to publish to (no wildcards); may come from -L instead
    #[arg(short = 't', long)]
    pub topic: Option<String>,

    /// Send this argument as the payload
    #[arg(
        short = 'm',
        long = "message",
        group = "source",
        value_name = "MESSAGE"
    )]
    pub message: Option<OsString>,

    /// Send the whole file as one payload (binary-safe)
    #[arg(short = 'f', long = "file", group = "source", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Send all of stdin as one payload
    #[arg(short = 's', long = "stdin-file", group = "source")]
    pub stdin_file: bool,

    /// Send each line of stdin as its own message, as lines arrive
    #[arg(short = 'l', long = "stdin-line", group = "source")]
    pub stdin_line: bool,

    /// Send a zero-length payload (with -r: clear the retained message)
    #[arg(short = 'n', long = "null-message", group = "source")]
    pub null_message: bool,

    /// Quality of service for every message
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,

    /// Set the retain flag
    #[arg(short = 'r', long)]
    pub retain: bool,

    /// Publish the -m/-f/-s payload N times
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: Option<u64>,

    /// Seconds (fractions allowed) to wait after each message is delivered before the next
    #[arg(long, value_name = "SECS", requires = "repeat", value_parser = non_negative_secs)]
    pub repeat_delay: Option<f64>,

    /// With -l: send empty lines as zero-length messages instead of skipping them
    #[arg(long, requires = "stdin_line")]
    pub send_empty: bool,

    /// With -l: each line is TOPIC<SEP>PAYLOAD (SEP may be an escape such as '\t')
    #[arg(long, value_name = "SEP", requires = "stdin_line")]
    pub line_topic_sep: Option<String>,

    /// Publish at most N messages per second
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    pub rate: Option<f64>,

    /// Exit when the connection drops instead of reconnecting and resending
    #[arg(long)]
    pub no_reconnect: bool,

    /// With -l: how much input to hold while reconnecting before reading stops (k, M suffixes)
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = byte_size)]
    pub max_buffer: u64,

    #[command(flatten)]
    pub options_file: OptionsFileArgs,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// mosquitto's options files, read by `options_file` before clap sees the command line.
#[derive(Debug, Args)]
#[command(next_help_heading = "Options file")]
pub struct OptionsFileArgs {
    /// Read default options from FILE instead of $XDG_CONFIG_HOME/mosquitto_pub (_sub, _rr;
    /// else ~/.config/...): one option per line, the command line wins
    #[arg(short = 'o', value_name = "FILE")]
    pub options_file: Option<PathBuf>,

    /// Read no options file
    #[arg(long, conflicts_with = "options_file")]
    pub no_options_file: bool,
}

#[derive(Debug, Args)]
pub struct SubArgs {
    /// Topic filter to subscribe to (repeatable; + and # wildcards); may come from -L
    #[arg(short = 't', long = "topic", value_name = "FILTER", action = ArgAction::Append)]
    pub topics: Vec<String>,

    /// Don't print messages whose topic matches FILTER (repeatable)
    #[arg(short = 'T', long = "filter-out", value_name = "FILTER", action = ArgAction::Append)]
    pub filter_out: Vec<String>,

    /// Join the shared subscription GROUP: each filter becomes $share/GROUP/FILTER, so the
    /// processes on one GROUP split the messages between them (a unique -i unless given)
    ///
    /// An MQTT 5 broker whose CONNACK says it has no shared subscriptions is an error (exit 1).
    /// Over MQTT 3.1.1 smq warns: a broker without $share (RabbitMQ 3.10, NATS 2.9) takes it as
    /// a literal topic and delivers nothing, so -W SECS is worth adding (exit 27).
    #[arg(long, value_name = "GROUP")]
    pub share: Option<String>,

    /// Unsubscribe from FILTER, e.g. to clean up a persistent session (repeatable)
    #[arg(short = 'U', long = "unsubscribe", value_name = "FILTER", action = ArgAction::Append)]
    pub unsubscribe: Vec<String>,

    /// Requested QoS for every filter
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,

    /// Exit after N messages
    #[arg(short = 'C', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Give up after SECS seconds: prints "Timed out" and exits 27
    #[arg(short = 'W', value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,

    /// Exit once every subscription is acknowledged
    #[arg(short = 'E')]
    pub exit_after_subscribe: bool,

    /// Don't print retained (stale) messages; in MQTT 5 the broker is asked not to send them
    #[arg(short = 'R')]
    pub no_retained: bool,

    /// Print only retained messages; exit at the first message that is not retained
    #[arg(long)]
    pub retained_only: bool,

    /// Clear every retained message received (respects -T)
    #[arg(long)]
    pub remove_retained: bool,

    /// Print the topic before each payload
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Output format, mosquitto_sub's language; overrides -v
    #[arg(short = 'F', value_name = "FORMAT", long_help = FORMAT_HELP)]
    pub format: Option<String>,

    /// No newline after each message
    #[arg(short = 'N')]
    pub no_newline: bool,

    /// Multi-line JSON for %j and %J
    #[arg(long)]
    pub pretty: bool,

    /// Print about PCT percent of messages (0.1-100)
    #[arg(long, value_name = "PCT", value_parser = percentage)]
    pub random_filter: Option<f64>,

    /// MQTT 5: keep the retain flag as published
    #[arg(long)]
    pub retain_as_published: bool,

    /// MQTT 5: when the broker sends retained messages
    #[arg(long, value_name = "WHEN")]
    pub retain_handling: Option<RetainHandling>,

    /// MQTT 5: don't receive our own publishes
    #[arg(long)]
    pub no_local: bool,

    /// One JSON object per line: topic, payload (or payload_b64), qos, retain, time, properties
    #[arg(long, conflicts_with_all = ["format", "verbose"])]
    pub json: bool,

    /// Exit when nothing has arrived for SECS seconds
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub idle_timeout: Option<f64>,

    /// Print only messages whose payload matches REGEX
    #[arg(long, value_name = "REGEX")]
    pub grep: Option<String>,

    /// Print a message only when its payload differs from the last one on its topic
    #[arg(long)]
    pub changed_only: bool,

    /// Instead of payloads: a live per-topic table on stderr, and a summary on exit
    #[arg(long, conflicts_with_all = ["format", "verbose", "json"])]
    pub stats: bool,

    /// Exit when the connection drops instead of reconnecting
    #[arg(long)]
    pub no_reconnect: bool,

    #[command(flatten)]
    pub embedded: ServeArgs,

    #[command(flatten)]
    pub options_file: OptionsFileArgs,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Topic filter to record (repeatable); may come from -L
    #[arg(short = 't', long = "topic", value_name = "FILTER", action = ArgAction::Append)]
    pub topics: Vec<String>,

    /// Join the shared subscription GROUP: each filter becomes $share/GROUP/FILTER, so the
    /// recorders on one GROUP split the messages between them (a unique -i unless given)
    ///
    /// An MQTT 5 broker whose CONNACK says it has no shared subscriptions is an error (exit 1).
    /// Over MQTT 3.1.1 smq warns: a broker without $share (RabbitMQ 3.10, NATS 2.9) takes it as
    /// a literal topic and delivers nothing, so -W SECS is worth adding (exit 27).
    #[arg(long, value_name = "GROUP")]
    pub share: Option<String>,

    /// Output file; - is stdout
    #[arg(short = 'o', long, value_name = "FILE", default_value = "-")]
    pub output: String,

    /// What a row is: readings (one per reading field), messages (lossless, what replay reads)
    /// or wide (one CSV per sensor, with --out-dir)
    #[arg(long, value_name = "LAYOUT", default_value = "readings")]
    pub layout: Layout,

    /// File format of the messages layout
    #[arg(long, value_name = "FORMAT", default_value = "csv")]
    pub format: CaptureFormat,

    /// Also write a lossless messages log (CSV) to FILE
    #[arg(long, value_name = "FILE")]
    pub raw: Option<String>,

    /// Start a new -o/--raw file each UTC hour or day, or after N rows or N bytes
    /// (size:10M): FILE-2026-11-22T03.csv, FILE-0001.csv, ...
    #[arg(long, value_name = "WHEN", value_parser = clap::value_parser!(crate::layout::rotate::Rotate))]
    pub rotate: Option<crate::layout::rotate::Rotate>,

    /// With --layout wide: the directory for DEVICE/SESSION/Sensor.csv files
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// With --layout wide: DIR/DEVICE_SESSION_Sensor.csv instead of subdirectories
    #[arg(long, requires = "out_dir")]
    pub flat: bool,

    /// With --layout wide: append smq's receive time as a last column
    #[arg(long, requires = "out_dir")]
    pub with_recv_time: bool,

    /// Payload decoder: auto, sensorlogger, thingflow, thingspeak, istsos, number, json, raw;
    /// FILTER=DECODER sets it for the topics FILTER matches (repeatable) [default: auto]
    #[arg(long, value_name = "DECODER", action = ArgAction::Append)]
    pub decode: Vec<String>,

    /// Keep readings named `test` (Sensor Logger's "Tap to Test")
    #[arg(long)]
    pub keep_test: bool,

    /// Keep camera images instead of their byte count
    #[arg(long)]
    pub keep_blobs: bool,

    /// Drop the accuracy rows
    #[arg(long)]
    pub no_accuracy: bool,

    /// Requested QoS (2 records what was published, as published)
    #[arg(short = 'q', long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,

    /// Stop after N messages
    #[arg(short = 'C', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Give up after SECS seconds: exits 27
    #[arg(short = 'W', value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,

    /// Stop (exit 0) after SECS seconds
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub duration: Option<f64>,

    /// Exit when the connection drops instead of reconnecting
    #[arg(long)]
    pub no_reconnect: bool,

    #[command(flatten)]
    pub embedded: ServeArgs,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// One row per reading field (long, tidy)
    Readings,
    /// One row per MQTT message, lossless: what replay reads
    Messages,
    /// One CSV per device, session and sensor, in Sensor Logger's export columns (--out-dir)
    Wide,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptureFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetainMode {
    Keep,
    Strip,
    Force,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A messages file from record (CSV or JSONL), or smq/mosquitto_sub -F %j or --json lines;
    /// several files (the shards of `record --share`) merge into one schedule by receive time
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,

    /// Play F times as fast (2 = twice as fast)
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = positive_rate)]
    pub speed: f64,

    /// Publish as fast as the broker takes them, ignoring the recorded timing
    #[arg(long)]
    pub no_wait: bool,

    /// Play the file N times (no N: forever)
    #[arg(long = "loop", value_name = "N", num_args = 0..=1, default_missing_value = "0")]
    pub repeat: Option<u64>,

    /// Start at an offset from the first message (90, 90s, 1.5) or at a recorded time (RFC 3339)
    #[arg(long, value_name = "WHEN")]
    pub from: Option<String>,

    /// Stop at an offset from the first message, or at a recorded time (RFC 3339)
    #[arg(long, value_name = "WHEN")]
    pub to: Option<String>,

    /// Put PREFIX before every topic
    #[arg(long, value_name = "PREFIX")]
    pub topic_prefix: Option<String>,

    /// Publish messages recorded on topic FROM to topic TO instead (repeatable)
    #[arg(long, value_name = "FROM=TO", action = ArgAction::Append)]
    pub topic_map: Vec<String>,

    /// Replay only messages whose topic matches FILTER (repeatable)
    #[arg(long, value_name = "FILTER", action = ArgAction::Append)]
    pub filter: Vec<String>,

    /// Publish every message at this QoS instead of the recorded one
    #[arg(short = 'q', long, value_name = "QOS", value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: Option<u8>,

    /// The retain flag: keep the recorded one, strip it, or force it on
    #[arg(long, value_name = "HOW", default_value = "keep")]
    pub retain: RetainMode,

    /// Replay at most N messages (per pass)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Print the messages (as sub -v) instead of publishing them
    #[arg(long)]
    pub dry_run: bool,

    /// Skip malformed lines (with a count) instead of stopping before anything is published
    #[arg(long)]
    pub skip_bad: bool,

    /// Exit when the connection drops instead of reconnecting and resending
    #[arg(long)]
    pub no_reconnect: bool,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// Every value is optional here: a flag overrides the `-c` config file, and the defaults
/// (shown in the help) apply after both, in `cmd::serve_broker`.
#[derive(Debug, Args)]
pub struct ServeBrokerArgs {
    /// Read settings from a mosquitto.conf file (the flags below override it)
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Listener URL: mqtt://ADDR:PORT, mqtts://, ws://, wss:// (repeatable; port 0 picks one)
    /// [default: mqtt://127.0.0.1:1883 and ws://127.0.0.1:8000]
    #[arg(long, value_name = "URL", action = ArgAction::Append)]
    pub listen: Vec<String>,

    /// Plain MQTT on PORT, as mosquitto -p: on 127.0.0.1 only, or on every interface with -c
    /// (repeatable; adds to --listen and the config file's listeners)
    #[arg(short = 'p', long, value_name = "PORT", action = ArgAction::Append)]
    pub port: Vec<u16>,

    /// Log connections to stderr (log_type all), as mosquitto -v; without it the broker logs
    /// only what the config file's log_type/log_dest lines ask for
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Server certificate chain (PEM), for mqtts:// and wss://
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// Server private key (PEM)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// Refuse TLS clients without a certificate signed by --cafile
    #[arg(long)]
    pub require_certificate: bool,

    /// On TLS listeners, the client certificate's subject CN is the user name (no password)
    #[arg(long)]
    pub use_identity_as_username: bool,

    /// Users and password hashes, in mosquitto_passwd's format (see `smq passwd`)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Topic access per user, in mosquitto's ACL file format
    #[arg(long, value_name = "FILE")]
    pub acl_file: Option<PathBuf>,

    /// Let clients in without a user name [default: only while every listener is on
    /// loopback and there is no --password-file]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_anonymous: Option<bool>,

    /// Most clients connected at once [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Largest packet accepted, in bytes [default: 268435455]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(64..=crate::mqtt::MAX_REMAINING_LENGTH as i64))]
    pub max_packet_size: Option<u32>,

    /// QoS 1/2 messages in flight to each client (and the receive maximum offered) [default:
    /// 100]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_inflight: Option<u16>,

    /// Messages queued per session before new ones are dropped; 0: no limit (then
    /// --max-queued-bytes still applies) [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_queued: Option<u32>,

    /// Bytes of messages (topic and payload) queued per session before new ones are dropped;
    /// 0: no limit; suffixes k, M, G [default: 64MiB]
    #[arg(long, value_name = "BYTES", value_parser = byte_size_or_zero)]
    pub max_queued_bytes: Option<u64>,

    /// Largest keep-alive granted to MQTT 5 clients, in seconds [default: 65535]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_keepalive: Option<u16>,

    /// Seconds between $SYS/broker/... updates (0: none) [default: 10]
    #[arg(long, value_name = "SECS")]
    pub sys_interval: Option<u64>,

    /// Answer GET /metrics on the ws:// listeners in Prometheus' text format (the $SYS
    /// counters, queues, subscriptions, --persist log size and fsync latency)
    #[arg(long)]
    pub metrics: bool,

    /// Keep retained messages and persistent sessions in DIR, across restarts and crashes
    #[arg(long, value_name = "DIR")]
    pub persist: Option<PathBuf>,

    /// Bridge to another broker: mqtt://[USER[:PASS]@]HOST[:PORT][,HOST[:PORT]...], or
    /// mqtts:// for TLS (the mosquitto.conf `connection` section, with try_private false and
    /// round_robin)
    #[arg(long, value_name = "URL", requires = "bridge_topic")]
    pub bridge: Option<String>,

    /// With an mqtts:// --bridge: the CA that signed the remote's certificate (else the OS
    /// certificate store is trusted); a client certificate needs a `connection` section
    #[arg(long, value_name = "FILE", requires = "bridge")]
    pub bridge_cafile: Option<PathBuf>,

    /// With --bridge: 'PATTERN [in|out|both [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]]', as
    /// mosquitto.conf's `topic` line (repeatable)
    #[arg(long, value_name = "SPEC", action = ArgAction::Append, requires = "bridge")]
    pub bridge_topic: Vec<String>,

    #[command(flatten)]
    pub http: HttpArgs,
}

/// mosquitto_passwd's usage: `FILE USER` prompts; `-b FILE USER PASSWORD`; `-D FILE USER`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Create the file, replacing one that exists
    #[arg(short = 'c', conflicts_with = "delete")]
    pub create: bool,

    /// Delete the user
    #[arg(short = 'D', conflicts_with = "batch")]
    pub delete: bool,

    /// Batch mode: the password is the third argument instead of a prompt (it is then
    /// visible to other users of this machine in the process list)
    #[arg(short = 'b', requires = "password")]
    pub batch: bool,

    /// The password file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The user name (no ':')
    #[arg(value_name = "USER")]
    pub user: String,

    /// The password, with -b
    #[arg(value_name = "PASSWORD", requires = "batch")]
    pub password: Option<String>,
}

/// `sub --serve` and `record --serve`: the embedded broker, run in the same process.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Also run the embedded broker in this process, and connect to it
    #[arg(long)]
    pub serve: bool,

    /// With --serve: the broker's listener URL (repeatable)
    /// [default: mqtt://127.0.0.1:1883 and ws://127.0.0.1:8000]
    #[arg(long, value_name = "URL", action = ArgAction::Append, requires = "serve")]
    pub listen: Vec<String>,

    /// With --serve: let anyone who reaches a non-loopback --listen in, with no password
    #[arg(long, requires = "serve")]
    pub allow_anonymous: bool,

    // HTTP Push needs the embedded broker: checked when the broker starts.
    #[command(flatten)]
    pub http: HttpArgs,
}

/// HTTP Push ingest (Sensor Logger and other apps POSTing JSON) on the WebSocket port.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "HTTP Push")]
pub struct HttpArgs {
    /// Also accept HTTP on the ws:// port: a POSTed JSON body is published into the broker
    #[arg(long)]
    pub http: bool,

    /// Only this request path takes pushes, e.g. /data [default: any path]
    #[arg(long, value_name = "PATH", requires = "http")]
    pub http_path: Option<String>,

    /// Topic for pushed messages; {deviceId}, {sessionId} and {path} are filled in per request
    #[arg(
        long,
        value_name = "TOPIC",
        default_value = "sensor-logger",
        requires = "http"
    )]
    pub http_topic: String,

    /// QoS of the published messages
    #[arg(long, value_name = "QOS", default_value_t = 0, requires = "http",
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub http_qos: u8,

    /// Require `Authorization: TOKEN` or `Authorization: Bearer TOKEN` on every push
    #[arg(long, value_name = "TOKEN", requires = "http")]
    pub http_token: Option<String>,

    /// Largest request body, also after gzip decoding (suffixes k, M, KiB, MiB)
    #[arg(long, value_name = "BYTES", default_value = "16MiB", requires = "http",
          value_parser = byte_size)]
    pub http_max_body: u64,

    /// Publish each Sensor Logger reading on TOPIC/{deviceId}/{sensor} instead of the whole batch
    #[arg(long, requires = "http")]
    pub split: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetainHandling {
    /// Send retained messages on every subscribe (0)
    Always,
    /// Only on a new subscription (1)
    New,
    /// Never (2)
    Never,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write completions/ and man/ into
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// One broker named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerArg {
    /// -h HOST or HOST:PORT
    Host(String),
    /// -L URL
    Url(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolVersion {
    /// MQTT 5, then 3.1.1 if the broker does not speak 5
    Auto,
    #[value(name = "mqttv311", alias = "311")]
    V311,
    #[value(name = "mqttv5", alias = "5")]
    V5,
    #[value(name = "mqttv31", alias = "31")]
    V31,
}

/// Connection flags shared by every client subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Connection settings from [profile.NAME] in $XDG_CONFIG_HOME/smq/config.toml (else
    /// ~/.config/smq/config.toml): host, port, TLS, username, pw-file; flags given here win
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Broker host, or HOST:PORT ([::1]:1883 for IPv6) [default: localhost]; repeat -h or -L to
    /// name brokers to fail over to, tried in the order given (-h is --host, as in mosquitto:
    /// help is --help)
    #[arg(short = 'h', long, value_name = "HOST", action = ArgAction::Append)]
    pub host: Vec<String>,

    /// Broker port, for brokers named without one [default: 1883; 8883 with TLS; 80 for ws,
    /// 443 for wss]
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,

    /// mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic (repeatable, as -h)
    #[arg(short = 'L', long, value_name = "URL", action = ArgAction::Append)]
    pub url: Vec<String>,

    /// The -h and -L brokers in the order given; filled by `Cli::parse_from_args`.
    #[arg(skip)]
    pub brokers: Vec<BrokerArg>,

    /// Keep trying the first connection for SECS seconds when no broker answers
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub connect_retry: Option<f64>,

    /// Seconds the broker may take to acknowledge a message or subscription
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = positive_secs)]
    pub ack_timeout: f64,

    /// Connect over WebSocket
    #[arg(long)]
    pub ws: bool,

    /// WebSocket path
    #[arg(long, value_name = "PATH", default_value = "/mqtt")]
    pub ws_path: String,

    /// Extra WebSocket handshake header 'Name: value' (repeatable)
    #[arg(long, value_name = "HEADER", action = ArgAction::Append)]
    pub ws_header: Vec<String>,

    /// Connect through a Unix domain socket instead of TCP
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,

    /// Bind the outgoing socket to this local address
    #[arg(short = 'A', value_name = "ADDR")]
    pub bind_address: Option<String>,

    /// MQTT protocol version: auto tries mqttv5, then mqttv311 if the broker refuses it
    /// [default: auto]
    #[arg(short = 'V', long, value_name = "VERSION")]
    pub protocol_version: Option<ProtocolVersion>,

    /// Client id [default: empty, the broker assigns one]
    #[arg(short = 'i', long, value_name = "ID", conflicts_with = "id_prefix")]
    pub id: Option<String>,

    /// Client id prefix; the process id is appended
    #[arg(short = 'I', long, value_name = "PREFIX")]
    pub id_prefix: Option<String>,

    /// Keep-alive seconds; 0 turns keep-alive off
    #[arg(short = 'k', long, value_name = "SECS", default_value_t = 60)]
    pub keepalive: u16,

    /// Keep the session when disconnected (needs -i)
    #[arg(short = 'c', long)]
    pub disable_clean_session: bool,

    /// MQTT 5 session expiry seconds; -1 or ∞ never expires
    #[arg(short = 'x', long, value_name = "SECS", allow_hyphen_values = true)]
    pub session_expiry: Option<String>,

    /// Username
    #[arg(short = 'u', long, value_name = "USER")]
    pub username: Option<String>,

    /// Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt, which win over it)
    #[arg(
        short = 'P',
        long = "pw",
        value_name = "PASS",
        env = "SMQ_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// Read the password from the first line of FILE
    #[arg(long, value_name = "FILE", conflicts_with = "pw_prompt")]
    pub pw_file: Option<PathBuf>,

    /// Ask for the password on the terminal
    #[arg(long)]
    pub pw_prompt: bool,

    /// Maximum QoS 1/2 messages in flight
    #[arg(short = 'M', long = "max-inflight", value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_inflight: u16,

    /// Topic of the Will (no wildcards)
    #[arg(long, value_name = "TOPIC")]
    pub will_topic: Option<String>,

    /// Will payload
    #[arg(long, value_name = "PAYLOAD", requires = "will_topic")]
    pub will_payload: Option<String>,

    /// Will QoS
    #[arg(long, value_name = "QOS", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub will_qos: u8,

    /// Retain the Will
    #[arg(long, requires = "will_topic")]
    pub will_retain: bool,

    /// MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)
    #[arg(id = "property", short = 'D', long = "property", num_args = 3..=4,
          action = ArgAction::Append, value_names = ["COMMAND", "NAME", "VALUE"])]
    property_values: Vec<String>,

    /// Each -D occurrence with its values; filled by `Cli::parse_from_args`.
    #[arg(skip)]
    pub property: Vec<Vec<String>>,

    /// Set TCP_NODELAY
    #[arg(long)]
    pub nodelay: bool,

    /// Trace every packet on stderr
    #[arg(short = 'd', long)]
    pub debug: bool,

    /// Print no error messages
    #[arg(long)]
    pub quiet: bool,

    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Trusted CA certificates (PEM); turns TLS on
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// Directory of trusted CA certificates (PEM); turns TLS on
    #[arg(long, value_name = "DIR")]
    pub capath: Option<PathBuf>,

    /// Trust the operating system's CA store; turns TLS on
    #[arg(long)]
    pub tls_use_os_certs: bool,

    /// Client certificate (PEM)
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Client private key (PEM; an encrypted one asks for its passphrase, or takes it from
    /// SMQ_KEY_PASSWORD or --key-pw-file)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Read the --key passphrase from the first line of FILE
    #[arg(long, value_name = "FILE", requires = "key")]
    pub key_pw_file: Option<PathBuf>,

    /// DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic
    #[arg(long)]
    pub insecure: bool,

    /// Lowest TLS version: tlsv1.2 or tlsv1.3
    #[arg(long, value_name = "VERSION")]
    pub tls_version: Option<String>,

    /// ALPN protocol to offer (repeatable)
    #[arg(long, value_name = "PROTO", action = ArgAction::Append)]
    pub tls_alpn: Vec<String>,

    /// Name to send as SNI and to verify the certificate against [default: the host]
    #[arg(long, value_name = "NAME")]
    pub servername: Option<String>,

    /// Cipher suites, by IANA name, separated by ':'
    #[arg(long, value_name = "LIST")]
    pub ciphers: Option<String>,

    /// Turn TLS off, even with -p 8883 or a CA option
    #[arg(long)]
    pub no_tls: bool,

    /// Not supported by smq (OpenSSL only)
    #[arg(
        long,
        value_name = "FORM",
        hide_short_help = true,
        long_help = "Not supported by smq: OpenSSL key forms and engines are not in rustls; give --key a PEM file"
    )]
    pub keyform: Option<String>,

    /// Not supported by smq (OpenSSL only)
    #[arg(
        long,
        value_name = "ID",
        hide_short_help = true,
        long_help = "Not supported by smq: OpenSSL engines are not in rustls; give --key a PEM file"
    )]
    pub tls_engine: Option<String>,

    /// Not supported by smq (OpenSSL only)
    #[arg(
        long,
        value_name = "HEX",
        hide_short_help = true,
        long_help = "Not supported by smq: OpenSSL engines are not in rustls; give --key a PEM file"
    )]
    pub tls_engine_kpass_sha1: Option<String>,

    /// Not supported by smq (TLS-PSK is not in rustls)
    #[arg(
        long,
        value_name = "HEX",
        hide_short_help = true,
        long_help = "Not supported by smq: TLS-PSK is not in rustls; use certificates (--cafile, --cert, --key)"
    )]
    pub psk: Option<String>,

    /// Not supported by smq (TLS-PSK is not in rustls)
    #[arg(
        long,
        value_name = "ID",
        hide_short_help = true,
        long_help = "Not supported by smq: TLS-PSK is not in rustls; use certificates (--cafile, --cert, --key)"
    )]
    pub psk_identity: Option<String>,
}

/// `-F`, in full: the long help of `sub -F` and `rr -F`, so `--help` and the man pages have it.
pub const FORMAT_HELP: &str = "\
Output format, mosquitto_sub's language; overrides -v. A newline follows each message unless -N.
Checked before connecting: an unknown or incomplete sequence is a usage error naming its position.

%[-][0][WIDTH][.PRECISION]LETTER prints a field of the message:
  %%  a %                          %t  topic
  %p  payload, raw bytes           %x  payload as lowercase hex   %X  uppercase hex
  %l  payload length in bytes      %q  QoS                        %r  retain flag (1/0)
  %m  message id (0 at QoS 0)      %I  receive time, ISO 8601: 2026-03-14T09:30:00+0000
  %U  Unix receive time with nanoseconds: 1773480600.130482917
  %j  JSON: tst, topic, qos, retain, payloadlen, mid, properties, payload (a string)
  %J  the same with the payload inserted as JSON (not JSON: printed as %j, with a warning)
  %f  payload as a 4-byte IEEE 754 float   %d  payload as an 8-byte double (mosquitto 2.1)
MQTT 5 properties (blank when absent): %A topic alias, %C content type, %D correlation data,
  %E message expiry interval, %F payload format indicator, %P user properties as key:value
  separated by spaces, %R response topic, %S subscription identifier.
Modifiers: - left-aligns; 0 pads with zeros (%A %E %F %l %m %S %x %X %d %f); WIDTH is the
  minimum width (it pads %p and %x but never cuts them); .N is the maximum width of %C %I %R %t,
  and on %x/%X groups the hex into N-digit groups, separated by spaces (%.2:x uses : instead;
  also - . , ; _ / |).
@X prints strftime's %X of the receive time (local), e.g. @Y-@m-@dT@H:@M:@S@z; @N the
  nanoseconds of the second (9 digits); @@ an @. One clock reading per message.
Escapes: \\\\ \\0 (NUL, for xargs -0) \\a \\e (ESC, for colours) \\n \\r \\t \\v.
%j and %J are always valid JSON: a payload that is not UTF-8 goes out as payload_b64 (base64),
  correlation data likewise as correlation-data-b64, user properties as an array of one-key
  objects; tst is 2026-03-14T09:30:00.130482+0000 (mosquitto 2.0.11 wrote ...130482Z+0000).
  --pretty prints them over several lines.";

fn non_negative_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds (0 or more)")),
    }
}

fn percentage(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a percentage from 0.1 to 100")),
    }
}

/// `16777216`, `64k`, `16M`, `16MiB`: sizes are binary (k = KiB, M = MiB).
fn byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "'{s}' is not a size: use bytes, or a number with k, M or G"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("'{s}' is not a positive size, e.g. 16MiB"))
}

/// A size as `byte_size` takes it, or 0.
fn byte_size_or_zero(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    byte_size(s)
}

pub(crate) fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

pub(crate) fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a positive number of messages per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::parse_from_args(line.split_whitespace())
    }

    fn pub_args(line: &str) -> PubArgs {
        match parse(line)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .command
        {
            Command::Pub(a) => *a,
            other => panic!("not pub: {other:?}"),
        }
    }

    fn sub_args(line: &str) -> SubArgs {
        match parse(line)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .command
        {
            Command::Sub(a) => *a,
            other => panic!("not sub: {other:?}"),
        }
    }

    #[test]
    fn byte_sizes_are_binary() {
        assert_eq!(byte_size("16MiB"), Ok(16 << 20));
        assert_eq!(byte_size("64k"), Ok(64 << 10));
        assert_eq!(byte_size("1000"), Ok(1000));
        assert!(byte_size("0").is_err());
        assert!(byte_size("1.5M").is_err());
        assert!(byte_size("99999999999G").is_err());
        assert_eq!(byte_size_or_zero("0"), Ok(0));
        assert_eq!(byte_size_or_zero("64MiB"), Ok(64 << 20));
        assert!(byte_size_or_zero("-1").is_err());
    }

    #[test]
    fn mosquitto_sub_lines_parse_the_same() {
        let a = sub_args("smq sub -h b -p 1884 -t a/# -t b/+ -v -q 1 -C 5 -W 10 -T a/x -R");
        assert_eq!(a.topics, ["a/#", "b/+"]);
        assert_eq!(a.filter_out, ["a/x"]);
        assert!(a.verbose && a.no_retained);
        assert_eq!((a.qos, a.count, a.timeout), (1, Some(5), Some(10)));
        let a = sub_args("smq sub -t t -F %t:%p -N --pretty -c -i me -x 60 -U old -E");
        assert_eq!(a.format.as_deref(), Some("%t:%p"));
        assert!(a.no_newline && a.pretty && a.conn.disable_clean_session && a.exit_after_subscribe);
        assert_eq!(a.unsubscribe, ["old"]);
        let a = sub_args(
            "smq sub -t t -V 5 -D subscribe subscription-identifier 3 --retain-handling never",
        );
        assert_eq!(
            a.conn.property,
            [vec!["subscribe", "subscription-identifier", "3"]]
        );
        assert_eq!(a.retain_handling, Some(RetainHandling::Never));
    }

    #[test]
    fn sub_rejects_bad_counts_and_percentages() {
        for line in [
            "smq sub -t a -C 0",
            "smq sub -t a -W 0",
            "smq sub -t a --random-filter 0",
        ] {
            assert!(parse(line).is_err(), "{line}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn mosquitto_pub_line_parses_the_same() {
        let a = pub_args("smq pub -h b -p 1884 -t a -m x -q 1 -r");
        assert_eq!(a.conn.host, ["b"]);
        assert_eq!(a.conn.port, Some(1884));
        assert_eq!(a.topic.as_deref(), Some("a"));
        assert_eq!(a.message.as_deref(), Some(std::ffi::OsStr::new("x")));
        assert_eq!(a.qos, 1);
        assert!(a.retain);
    }

    #[test]
    fn url_and_line_mode_parse() {
        let a = pub_args("smq pub -L mqtt://u:p@h:1/t -l -q 2 -M 100 -V 5 -k 0");
        assert_eq!(a.conn.url, ["mqtt://u:p@h:1/t"]);
        assert!(a.stdin_line);
        assert_eq!(a.conn.max_inflight, 100);
        assert_eq!(a.conn.protocol_version, Some(ProtocolVersion::V5));
        assert_eq!(a.conn.keepalive, 0);
    }

    #[test]
    fn brokers_keep_their_command_line_order() {
        let a = pub_args("smq pub -L mqtt://a/t -h b:1884 -t t -m x -L ws://c -h [::1]:1");
        assert_eq!(
            a.conn.brokers,
            [
                BrokerArg::Url("mqtt://a/t".into()),
                BrokerArg::Host("b:1884".into()),
                BrokerArg::Url("ws://c".into()),
                BrokerArg::Host("[::1]:1".into()),
            ]
        );
        let a = pub_args("smq pub -t t -m x");
        assert!(a.conn.brokers.is_empty());
        assert_eq!(a.conn.protocol_version, None);
        let a = pub_args("smq pub -t t -m x -V auto");
        assert_eq!(a.conn.protocol_version, Some(ProtocolVersion::Auto));
    }

    #[test]
    fn last_flag_wins_as_in_mosquitto() {
        let a = pub_args("smq pub -t a -t b -n -q 1 -q 2");
        assert_eq!(a.topic.as_deref(), Some("b"));
        assert_eq!(a.qos, 2);
    }

    #[test]
    fn properties_take_three_or_four_values() {
        let a = pub_args(
            "smq pub -t a -m x -D publish content-type text/plain -D publish user-property k v -q 1",
        );
        assert_eq!(
            a.conn.property,
            vec![
                vec!["publish", "content-type", "text/plain"],
                vec!["publish", "user-property", "k", "v"]
            ]
        );
        assert_eq!(a.qos, 1);
    }

    #[test]
    fn only_one_message_source() {
        let err = parse("smq pub -t a -m x -l").unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let err = parse("smq pub -t a").unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn bad_qos_is_a_usage_error() {
        let err = parse("smq pub -t a -m x -q 3").unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn session_expiry_accepts_minus_one() {
        let a = pub_args("smq pub -t a -m x -x -1 -i me");
        assert_eq!(a.conn.session_expiry.as_deref(), Some("-1"));
    }

    #[test]
    fn h_is_host_and_help_is_long_only() {
        let err = parse("smq pub --help").unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        let a = pub_args("smq pub -h ::1 -t a -n");
        assert_eq!(a.conn.host, ["::1"]);
    }
}
