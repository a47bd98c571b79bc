//! Dispatch only.

mod bench;
mod certs;
pub mod connect;
pub mod generate;
mod passwd;
mod publish;
mod record;
mod replay;
mod rr;
mod serve_broker;
mod subscribe;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Pub(args) => publish::run(*args).await,
        Command::Sub(args) => subscribe::run(*args).await,
        Command::Record(args) => record::run(*args).await,
        Command::Replay(args) => replay::run(*args).await,
        Command::Rr(args) => rr::run(*args).await,
        Command::Bench(args) => bench::run(*args).await,
        Command::ServeBroker(args) => serve_broker::run(*args).await,
        Command::Passwd(args) => passwd::run(args),
        Command::Certs(args) => certs::run(&args),
        // Handled before the runtime starts; see main.
        Command::Generate(args) => generate::run(&args),
    }
}
