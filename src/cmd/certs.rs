//! `smq certs`: what the mosquitto-tls(7) recipe makes, in one command, but as X.509 v3
//! certificates (the recipe's `openssl x509 -req` without extensions makes version 1, which
//! rustls refuses): a CA, a server certificate whose subjectAltNames are localhost,
//! 127.0.0.1, ::1, this machine's host name and LAN addresses and every `--name`, and a client
//! certificate. Keys are EC P-256, written readable by their owner only.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use chrono::{Datelike, Duration, Utc};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
    date_time_ymd,
};

use crate::broker::listener::lan::interface_addrs;
use crate::cli::CertsArgs;
use crate::exit::usage;
use crate::output::Output;

const FILES: [&str; 6] = [
    "ca.pem",
    "ca.key",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
];

pub fn run(args: &CertsArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.out_dir;
    if !args.force {
        if let Some(f) = FILES.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
            return Err(usage(format!(
                "{} is already there: pass --force to replace the certificates, or choose another --out-dir",
                f.display()
            )));
        }
    }
    let names = server_names(&args.name)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let ca_key = key()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name("smq lab CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca, args.days);
    let ca_cert = ca
        .self_signed(&ca_key)
        .context("making the CA certificate")?;

    let server_cn = names
        .first()
        .map_or("localhost".to_owned(), |(n, _)| n.clone());
    let (server, server_key) = leaf(
        &server_cn,
        names.iter().map(|(_, san)| san.clone()).collect(),
        ExtendedKeyUsagePurpose::ServerAuth,
        (&ca_cert, &ca_key),
        args.days,
    )?;
    let (client, client_key) = leaf(
        &args.client_cn,
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
        (&ca_cert, &ca_key),
        args.days,
    )?;
    write(dir, "ca.pem", &ca_cert.pem(), false)?;
    write(dir, "ca.key", &ca_key.serialize_pem(), true)?;
    write(dir, "server.pem", &server.pem(), false)?;
    write(dir, "server.key", &server_key.serialize_pem(), true)?;
    write(dir, "client.pem", &client.pem(), false)?;
    write(dir, "client.key", &client_key.serialize_pem(), true)?;

    let d = dir.display();
    let host = names
        .iter()
        .map(|(n, _)| n.as_str())
        .find(|n| *n != "localhost");
    let mut out = Output::stdout();
    let text = format!(
        "smq certs: wrote {d}/ca.pem, ca.key, server.pem, server.key, client.pem, client.key (v3, EC P-256, {days} days)
server certificate names: {all}
keep ca.key and the other .key files private

broker (smq):
  smq serve-broker --listen mqtts://0.0.0.0:8883 --cert {d}/server.pem --key {d}/server.key --cafile {d}/ca.pem
  (add --require-certificate to refuse clients without client.pem, --use-identity-as-username to log them in as {cn})
broker (mosquitto.conf):
  listener 8883
  certfile {d}/server.pem
  keyfile {d}/server.key
  cafile {d}/ca.pem
clients:
  smq sub -h {h} -p 8883 --cafile {d}/ca.pem --cert {d}/client.pem --key {d}/client.key -t '#' -v
  mosquitto_pub -h {h} -p 8883 --cafile {d}/ca.pem --cert {d}/client.pem --key {d}/client.key -t test -m hello
",
        days = args.days,
        all = names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
        cn = args.client_cn,
        h = host.unwrap_or("localhost"),
    );
    out.write(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The names on the server certificate, each with its SAN: the given ones first, then
/// localhost, loopback, the host name and every LAN address (the ones serve-broker prints for
/// a listener on all interfaces), without repeats.
fn server_names(given: &[String]) -> anyhow::Result<Vec<(String, SanType)>> {
    let mut names: Vec<String> = given.to_vec();
    names.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
    if let Some(h) = hostname() {
        names.push(h);
    }
    names.extend(interface_addrs().iter().map(IpAddr::to_string));
    let mut out: Vec<(String, SanType)> = Vec::new();
    for n in names {
        if out.iter().any(|(seen, _)| *seen == n) {
            continue;
        }
        let san = match n.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(n.clone().try_into().map_err(|_| {
                usage(format!(
                    "--name '{n}' is neither an IP address nor a DNS name"
                ))
            })?),
        };
        out.push((n, san));
    }
    Ok(out)
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty() && h != "localhost").then(|| h.to_owned())
}

/// From yesterday, so a clock a little behind on another machine still accepts them.
fn set_validity(params: &mut CertificateParams, days: u32) {
    let from = (Utc::now() - Duration::days(1)).date_naive();
    let to = from + Duration::days(i64::from(days) + 1);
    let ymd = |d: chrono::NaiveDate| date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    params.not_before = ymd(from);
    params.not_after = ymd(to);
}

fn key() -> anyhow::Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| anyhow!("making a key: {e}"))
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn leaf(
    cn: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    (ca, ca_key): (&Certificate, &KeyPair),
    days: u32,
) -> anyhow::Result<(Certificate, KeyPair)> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, days);
    let key = key()?;
    let cert = params
        .signed_by(&key, ca, ca_key)
        .map_err(|e| anyhow!("making the {cn} certificate: {e}"))?;
    Ok((cert, key))
}

fn write(dir: &Path, file: &str, text: &str, private: bool) -> anyhow::Result<()> {
    let path = dir.join(file);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
