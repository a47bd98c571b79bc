mod alloc;
mod broker;
mod capture;
mod cli;
mod cmd;
mod conn;
mod exit;
mod format;
mod layout;
mod mqtt;
mod options_file;
mod output;
mod profile;
mod progress;
mod sensors;
mod stats;
mod topic;
mod transport;
mod x509;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Parse first: --help and usage errors never start a runtime.
    // Precedence, lowest first: a --profile, then an options file, then the command line.
    let (args, file) =
        options_file::expand(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    let args = profile::expand(args).unwrap_or_else(|e| e.exit());
    let cli = cli::Cli::parse_from_args(args)
        .map_err(|e| options_file::blame(e, file.as_ref()))
        .unwrap_or_else(|e| e.exit());
    let quiet = cli.quiet();
    if let cli::Command::Generate(args) = &cli.command {
        return exit::finish(cmd::generate::run(args), quiet);
    }
    // A client holds one connection: one thread is enough. The broker gets worker threads.
    let mut builder = if cli.serves() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let result = builder
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            let result = rt.block_on(cmd::run(cli));
            // A blocking stdin read may still be parked; do not wait for it.
            rt.shutdown_background();
            result
        });
    exit::finish(result, quiet)
}
