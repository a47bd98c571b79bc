//! `smq certs`: a lab CA, a server and a client certificate in one command.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory for ca.pem, ca.key, server.pem, server.key, client.pem, client.key
    #[arg(long, value_name = "DIR", default_value = "certs")]
    pub out_dir: PathBuf,

    /// Another name the server certificate is for: a DNS name or an IP address (repeatable);
    /// localhost, 127.0.0.1, ::1, this machine's host name and LAN addresses are always on it
    #[arg(long, value_name = "NAME", action = clap::ArgAction::Append)]
    pub name: Vec<String>,

    /// Common name of the client certificate (the user name with
    /// --use-identity-as-username)
    #[arg(long, value_name = "CN", default_value = "smq-client")]
    pub client_cn: String,

    /// Days the certificates are valid
    #[arg(long, value_name = "N", default_value_t = 825,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,

    /// Replace certificate files that are already there
    #[arg(long)]
    pub force: bool,
}
