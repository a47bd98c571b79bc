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
mod output;
mod progress;
mod sensors;
mod stats;
mod topic;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Parse first: --help and usage errors never start a runtime.
    let cli = cli::Cli::parse_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
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
