//! `smq bench conn|pub|sub|latency`: the load generator's flags, named as in emqtt-bench and
//! MQTTX's `bench` where they have one (`-c` clients, `-I` interval, `-s` size, `--ifaddr`).
//!
//! `-c` and `-I` mean the client count and the message interval here, as in those tools, so
//! the connection flags' `-c` (`--disable-clean-session`) and `-I` (`--id-prefix`) keep only
//! their long names in `bench`; see `BenchMode`.

use clap::{Args, Subcommand};

use super::{ConnectArgs, positive_rate, positive_secs};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub mode: BenchMode,
}

#[derive(Debug, Subcommand)]
pub enum BenchMode {
    /// Open many connections at a rate; report connect rate, CONNACK latency and failures
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        mut_arg("disable_clean_session", |a| a.short(None)),
        mut_arg("id_prefix", |a| a.short(None)),
    )]
    Conn(Box<BenchConnArgs>),
    /// Publishers at a rate or flat out; sequence-numbered, timestamped payloads
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        mut_arg("disable_clean_session", |a| a.short(None)),
        mut_arg("id_prefix", |a| a.short(None)),
    )]
    Pub(Box<BenchPubArgs>),
    /// Subscribers: delivered rate, latency, and loss, duplicates and order per publisher
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        mut_arg("disable_clean_session", |a| a.short(None)),
        mut_arg("id_prefix", |a| a.short(None)),
    )]
    Sub(Box<BenchSubArgs>),
    /// Publishers and subscribers in one process at a constant rate: end-to-end latency
    #[command(
        disable_help_flag = true,
        args_override_self = true,
        mut_arg("disable_clean_session", |a| a.short(None)),
        mut_arg("id_prefix", |a| a.short(None)),
    )]
    Latency(Box<BenchLatencyArgs>),
}

impl BenchMode {
    pub fn conn(&self) -> &ConnectArgs {
        match self {
            BenchMode::Conn(a) => &a.conn,
            BenchMode::Pub(a) => &a.conn,
            BenchMode::Sub(a) => &a.conn,
            BenchMode::Latency(a) => &a.conn,
        }
    }

    pub fn conn_mut(&mut self) -> &mut ConnectArgs {
        match self {
            BenchMode::Conn(a) => &mut a.conn,
            BenchMode::Pub(a) => &mut a.conn,
            BenchMode::Sub(a) => &mut a.conn,
            BenchMode::Latency(a) => &mut a.conn,
        }
    }
}

/// What every mode shares: where connections come from, how long, and what is printed.
#[derive(Debug, Args)]
#[command(next_help_heading = "Run")]
pub struct BenchRun {
    /// Bind connections to these local addresses in turn (ADDR,ADDR,...), to go past one
    /// address's ephemeral ports
    #[arg(
        long,
        value_name = "ADDRS",
        value_delimiter = ',',
        conflicts_with = "bind_address"
    )]
    pub ifaddr: Vec<String>,

    /// Stop after SECS seconds (conn: hold the connections open until then)
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub duration: Option<f64>,

    /// Print one JSON object (config, counts, rates, percentiles) on stdout at the end
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print one CSV row per second on stdout (the summary goes to stderr)
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct BenchConnArgs {
    /// Number of connections
    #[arg(short = 'c', long = "clients", value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,

    /// New connections per second [default: as fast as the broker answers, 100 handshakes at
    /// a time]
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    pub rate: Option<f64>,

    #[command(flatten)]
    pub run: BenchRun,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// How publishers send: shared by `pub` and `latency`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Messages")]
pub struct BenchLoad {
    /// Milliseconds between two messages of one publisher
    #[arg(short = 'I', long = "interval", value_name = "MS", value_parser = positive_ms,
          conflicts_with = "rate")]
    pub interval: Option<f64>,

    /// Messages per second from each publisher
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    pub rate: Option<f64>,

    /// Payload size in bytes; the first 24 carry the sequence number and send time
    #[arg(short = 's', long = "size", value_name = "BYTES", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(24..=268_435_455))]
    pub size: u32,

    /// QoS of every message
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,

    /// Set the retain flag
    #[arg(short = 'r', long)]
    pub retain: bool,

    /// Topic template: %i is the client index (from 1), %c the client id, %n the message
    /// number (from 1), %% a % [default: smq-bench/%i]
    #[arg(short = 't', long = "topic", value_name = "TEMPLATE")]
    pub topic: Option<String>,

    /// Messages per publisher, then stop
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BenchPubArgs {
    /// Number of publishers
    #[arg(short = 'c', long = "clients", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,

    #[command(flatten)]
    pub load: BenchLoad,

    #[command(flatten)]
    pub run: BenchRun,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct BenchSubArgs {
    /// Number of subscribers
    #[arg(short = 'c', long = "clients", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,

    /// Filter template: %i is the subscriber's index (from 1), %c its client id
    /// [default: smq-bench/#]
    #[arg(short = 't', long = "topic", value_name = "TEMPLATE")]
    pub topic: Option<String>,

    /// Requested QoS
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,

    /// Messages per subscriber, then stop
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    #[command(flatten)]
    pub run: BenchRun,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct BenchLatencyArgs {
    /// Number of publishers
    #[arg(short = 'c', long = "clients", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,

    /// Number of subscribers, each subscribed to every publisher's topic
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub subscribers: u32,

    /// Subscription filter [default: the topic template with each level that holds a %
    /// placeholder replaced by +]
    #[arg(long, value_name = "FILTER")]
    pub filter: Option<String>,

    #[command(flatten)]
    pub load: BenchLoad,

    #[command(flatten)]
    pub run: BenchRun,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

fn positive_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of milliseconds")),
    }
}
