//! `smq rr`: mosquitto_rr's flags, plus `-C N`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use super::{ConnectArgs, FORMAT_HELP, OptionsFileArgs};

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).multiple(false))]
pub struct RrArgs {
    /// Topic the request is published to (no wildcards); may come from -L
    #[arg(short = 't', long, value_name = "TOPIC")]
    pub topic: Option<String>,

    /// Response topic: subscribed to before the request goes out, and sent as its MQTT 5
    /// response topic
    #[arg(short = 'e', value_name = "TOPIC", required = true)]
    pub response_topic: String,

    /// Send this argument as the request
    #[arg(
        short = 'm',
        long = "message",
        group = "source",
        value_name = "MESSAGE"
    )]
    pub message: Option<OsString>,

    /// Send the whole file as the request (binary-safe)
    #[arg(short = 'f', long = "file", group = "source", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Send all of stdin as the request
    #[arg(short = 's', long = "stdin-file", group = "source")]
    pub stdin_file: bool,

    /// Send a zero-length request
    #[arg(short = 'n', long = "null-message", group = "source")]
    pub null_message: bool,

    /// QoS of the request and of the subscription to the response topic
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,

    /// Wait for N responses, then exit
    #[arg(short = 'C', value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,

    /// Give up after SECS seconds without every response: prints "Timed out" and exits 27
    #[arg(short = 'W', value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,

    /// Don't print retained (stale) responses
    #[arg(short = 'R')]
    pub no_retained: bool,

    /// Print the topic before each response
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Output format, mosquitto_sub's language; overrides -v
    #[arg(short = 'F', value_name = "FORMAT", long_help = FORMAT_HELP)]
    pub format: Option<String>,

    /// No newline after each response
    #[arg(short = 'N')]
    pub no_newline: bool,

    /// Multi-line JSON for %j and %J
    #[arg(long)]
    pub pretty: bool,

    #[command(flatten)]
    pub options_file: OptionsFileArgs,

    // Last, so the connection flags are listed under their own heading.
    #[command(flatten)]
    pub conn: ConnectArgs,
}
