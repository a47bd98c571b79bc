//! `smq serve-broker`: flags → `broker::Config`.

use std::process::ExitCode;

use crate::broker::{self, Config, listener};
use crate::cli::ServeBrokerArgs;

pub async fn run(args: ServeBrokerArgs) -> anyhow::Result<ExitCode> {
    let listen = if args.listen.is_empty() {
        listener::default_specs()
    } else {
        args.listen
            .iter()
            .map(|u| listener::parse_listen(u))
            .collect::<anyhow::Result<_>>()?
    };
    let tls = match (args.cert, args.key) {
        (Some(cert), Some(key)) => Some(listener::TlsFiles {
            cert,
            key,
            cafile: args.cafile,
            require_certificate: args.require_certificate,
        }),
        _ => None,
    };
    broker::run(Config {
        listen,
        tls,
        max_connections: args.max_connections,
        max_packet: args.max_packet_size as usize,
        max_inflight: args.max_inflight,
        max_queued: args.max_queued as usize,
        max_keepalive: args.max_keepalive,
        sys_interval: args.sys_interval,
        persist: args.persist,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
