//! `serve-broker -c FILE`: the mosquitto.conf keys that mean something here. Each key is one
//! `key value` line; `#` starts a comment line. A key smq does not support is a warning naming
//! the line, unless ignoring it would leave the broker less secure than the file asks (a
//! plugin, a CRL, PSK): that is an error. A bad value is a usage error naming the line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;

use super::listener::{ListenSpec, Scheme};
use super::log::{Dest, LogConfig, Stamp};

/// What the file says; None where it says nothing, so flags and defaults can fill in.
#[derive(Debug, Default)]
pub struct ConfFile {
    pub listeners: Vec<ListenSpec>,
    pub cafile: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub require_certificate: Option<bool>,
    pub use_identity_as_username: Option<bool>,
    pub allow_anonymous: Option<bool>,
    pub password_file: Option<PathBuf>,
    pub acl_file: Option<PathBuf>,
    pub persistence: Option<bool>,
    pub persistence_location: Option<PathBuf>,
    pub max_connections: Option<usize>,
    pub max_packet_size: Option<u32>,
    /// Some(None): explicitly unlimited (0).
    pub message_size_limit: Option<Option<usize>>,
    pub max_inflight: Option<u16>,
    pub max_queued: Option<usize>,
    /// `usize::MAX`: explicitly unlimited (0).
    pub max_queued_bytes: Option<usize>,
    pub max_keepalive: Option<u16>,
    pub retain_available: Option<bool>,
    pub sys_interval: Option<u64>,
    /// `log_type` lines' words, in order; `log_dest` lines (`none` clears them).
    pub log_types: Vec<String>,
    pub log_dests: Vec<Dest>,
    pub log_dest_given: bool,
    pub connection_messages: Option<bool>,
    pub log_timestamp: Option<bool>,
    pub log_timestamp_format: Option<String>,
    /// `connection NAME` sections, in order.
    pub bridges: Vec<super::bridge::Bridge>,
    /// `FILE:LINE: …` for every line that was ignored.
    pub warnings: Vec<String>,
    /// What each TLS listener, and the lines outside any listener, say about client
    /// certificates: smq applies one setting to every TLS listener, so they must agree.
    cert_settings: Vec<CertSettings>,
    /// `port N`: mosquitto's default listener, on every interface.
    default_port: Option<u16>,
}

/// Where a line is: `FILE:LINE`.
type At = (String, usize);

/// `require_certificate` and `use_identity_as_username` as one listener (or the lines
/// outside any listener, `at` None) gives them, with where.
#[derive(Debug, Default, Clone)]
struct CertSettings {
    at: Option<At>,
    require_certificate: Option<(bool, At)>,
    use_identity_as_username: Option<(bool, At)>,
}

/// A listener being read: its scheme is settled when the next `listener` line (or the end)
/// shows whether a certfile and `protocol websockets` were given for it.
struct Pending {
    port: u16,
    ip: IpAddr,
    websockets: bool,
    tls: bool,
    certs: CertSettings,
}

impl Pending {
    fn spec(&self) -> ListenSpec {
        let scheme = match (self.websockets, self.tls) {
            (false, false) => Scheme::Mqtt,
            (false, true) => Scheme::Mqtts,
            (true, false) => Scheme::Ws,
            (true, true) => Scheme::Wss,
        };
        ListenSpec {
            scheme,
            addr: SocketAddr::new(self.ip, self.port),
        }
    }
}

impl ConfFile {
    pub fn read(path: &Path) -> anyhow::Result<ConfFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        ConfFile::parse(&text, &path.display().to_string())
            .map_err(|e| crate::exit::usage(e.to_string()))
    }

    /// `name` labels errors and warnings; `include_dir` paths are read from the disk.
    pub fn parse(text: &str, name: &str) -> Result<ConfFile, LineError> {
        let mut c = ConfFile {
            cert_settings: vec![CertSettings::default()],
            ..ConfFile::default()
        };
        let mut current: Option<Pending> = None;
        c.parse_into(text, name, &mut current, 0)?;
        if let Some(p) = current {
            c.close(p);
        }
        if let Some(port) = c.default_port {
            c.listeners.push(ListenSpec {
                scheme: Scheme::Mqtt,
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            });
        }
        if let Some(b) = c.bridges.last() {
            b.check().map_err(|why| LineError {
                file: name.to_owned(),
                line: text.lines().count(),
                why,
            })?;
        }
        c.require_certificate = c.agreed("require_certificate", |s| &s.require_certificate)?;
        c.use_identity_as_username =
            c.agreed("use_identity_as_username", |s| &s.use_identity_as_username)?;
        Ok(c)
    }

    fn close(&mut self, p: Pending) {
        if p.tls {
            self.cert_settings.push(p.certs.clone());
        }
        self.listeners.push(p.spec());
    }

    /// The one value of a per-listener certificate setting: what every TLS listener says
    /// (its own line, else one outside any listener, else false), or an error naming the
    /// line that disagrees. Without TLS listeners, what the lines outside any say.
    fn agreed(
        &self,
        key: &str,
        get: impl Fn(&CertSettings) -> &Option<(bool, At)>,
    ) -> Result<Option<bool>, LineError> {
        let Some((global, listeners)) = self.cert_settings.split_first() else {
            return Ok(None);
        };
        let global = get(global);
        let mut first: Option<(bool, &At)> = None;
        for l in listeners {
            let Some(listener_at) = &l.at else { continue };
            let (value, at) = match (get(l), global) {
                (Some((v, at)), _) | (None, Some((v, at))) => (*v, at),
                (None, None) => (false, listener_at),
            };
            match first {
                None => first = Some((value, at)),
                Some((v0, at0)) if v0 != value => {
                    return Err(LineError {
                        file: at.0.clone(),
                        line: at.1,
                        why: format!(
                            "{key} {value} here, but {v0} for the TLS listener at {}:{}: smq applies one {key} to every TLS listener",
                            at0.0, at0.1
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(first.map(|(v, _)| v).or(global.as_ref().map(|(v, _)| *v)))
    }

    /// One file's lines; `current` is the listener being read, which an included file
    /// continues (as in mosquitto).
    fn parse_into(
        &mut self,
        text: &str,
        name: &str,
        current: &mut Option<Pending>,
        depth: usize,
    ) -> Result<(), LineError> {
        let c = self;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once([' ', '\t']).unwrap_or((line, ""));
            let value = value.trim();
            let err = |why: String| LineError {
                file: name.to_owned(),
                line: n,
                why,
            };
            let need = || {
                if value.is_empty() {
                    Err(err(format!("{key} needs a value")))
                } else {
                    Ok(value)
                }
            };
            let path = || need().map(PathBuf::from);
            match key {
                "listener" => {
                    if let Some(p) = current.take() {
                        c.close(p);
                    }
                    let mut p = parse_listener(value).map_err(err)?;
                    p.certs.at = Some((name.to_owned(), n));
                    *current = Some(p);
                }
                "port" => {
                    // mosquitto's classic default listener: plain MQTT on every interface.
                    let v: u16 = number(need()?).map_err(err)?;
                    c.default_port = Some(v);
                }
                "crlfile" | "plugin" | "auth_plugin" | "global_plugin" | "psk_file"
                | "psk_hint" => {
                    return Err(err(format!(
                        "'{key}' is not supported by smq; refusing to start without it"
                    )));
                }
                "protocol" => {
                    let websockets = match need()? {
                        "mqtt" => false,
                        "websockets" => true,
                        other => {
                            return Err(err(format!(
                                "protocol '{other}': smq serves mqtt or websockets"
                            )));
                        }
                    };
                    in_listener(current, key).map_err(err)?.websockets = websockets;
                }
                "bind_address" => {
                    let ip = parse_ip(need()?).map_err(err)?;
                    in_listener(current, key).map_err(err)?.ip = ip;
                }
                "cafile" => set_tls(&mut c.cafile, path()?, current).map_err(err)?,
                "certfile" => {
                    set_tls(&mut c.certfile, path()?, current).map_err(err)?;
                    if let Some(p) = current.as_mut() {
                        p.tls = true;
                    }
                }
                "keyfile" => set_tls(&mut c.keyfile, path()?, current).map_err(err)?,
                "require_certificate" => {
                    let v = (boolean(value).map_err(err)?, (name.to_owned(), n));
                    match current.as_mut() {
                        Some(p) => p.certs.require_certificate = Some(v),
                        None => c.cert_settings[0].require_certificate = Some(v),
                    }
                }
                "use_identity_as_username" => {
                    let v = (boolean(value).map_err(err)?, (name.to_owned(), n));
                    match current.as_mut() {
                        Some(p) => p.certs.use_identity_as_username = Some(v),
                        None => c.cert_settings[0].use_identity_as_username = Some(v),
                    }
                }
                "allow_anonymous" => c.allow_anonymous = Some(boolean(value).map_err(err)?),
                "password_file" => c.password_file = Some(path()?),
                "acl_file" => c.acl_file = Some(path()?),
                "persistence" => c.persistence = Some(boolean(value).map_err(err)?),
                "persistence_location" => c.persistence_location = Some(path()?),
                "max_connections" => {
                    let v: i64 = number(value).map_err(err)?;
                    // -1 (or any negative) is mosquitto's "no limit".
                    c.max_connections = Some(usize::try_from(v).unwrap_or(usize::MAX));
                }
                "max_packet_size" => {
                    let v: u32 = number(value).map_err(err)?;
                    c.max_packet_size = Some(match v {
                        0 => MAX_PACKET,
                        64..=MAX_PACKET => v,
                        _ => {
                            return Err(err(format!(
                                "max_packet_size {v}: use 0 (no limit) or 64 to {MAX_PACKET}"
                            )));
                        }
                    });
                }
                "message_size_limit" => {
                    let v: u32 = number(value).map_err(err)?;
                    if v > MAX_PACKET {
                        return Err(err(format!(
                            "message_size_limit {v}: use 0 (no limit) up to {MAX_PACKET}"
                        )));
                    }
                    c.message_size_limit = Some((v > 0).then_some(v as usize));
                }
                "max_inflight_messages" => {
                    let v: u16 = number(value).map_err(err)?;
                    c.max_inflight = Some(if v == 0 { u16::MAX } else { v });
                }
                "max_queued_messages" => {
                    let v: u32 = number(value).map_err(err)?;
                    c.max_queued = Some(if v == 0 { usize::MAX } else { v as usize });
                }
                "max_queued_bytes" => {
                    let v: u64 = number(value).map_err(err)?;
                    c.max_queued_bytes = Some(match usize::try_from(v) {
                        Ok(0) | Err(_) => usize::MAX,
                        Ok(v) => v,
                    });
                }
                "max_keepalive" => {
                    let v: u16 = number(value).map_err(err)?;
                    if v == 0 {
                        return Err(err("max_keepalive 0: use 1 to 65535 seconds".into()));
                    }
                    c.max_keepalive = Some(v);
                }
                "retain_available" => c.retain_available = Some(boolean(value).map_err(err)?),
                "sys_interval" => c.sys_interval = Some(number(value).map_err(err)?),
                "log_type" => {
                    let t = need()?;
                    if !LOG_TYPES.contains(&t) {
                        return Err(err(format!(
                            "log_type '{t}': use one of {}",
                            LOG_TYPES.join(", ")
                        )));
                    }
                    c.log_types.push(t.to_owned());
                }
                "log_dest" => {
                    c.log_dest_given = true;
                    let v = need()?;
                    let (kind, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
                    match kind {
                        "stderr" => c.log_dests.push(Dest::Stderr),
                        "stdout" => c.log_dests.push(Dest::Stdout),
                        "file" if !rest.trim().is_empty() => {
                            c.log_dests.push(Dest::File(PathBuf::from(rest.trim())));
                        }
                        "file" => return Err(err("log_dest file needs a path: log_dest file /var/log/mosquitto.log".into())),
                        "none" => c.log_dests.clear(),
                        "syslog" | "topic" | "dlt" => c.warnings.push(format!(
                            "config file {name}:{n}: 'log_dest {kind}' is not supported by smq, ignored (use stderr, stdout or file PATH)"
                        )),
                        other => {
                            return Err(err(format!(
                                "log_dest '{other}': use stderr, stdout, file PATH or none"
                            )));
                        }
                    }
                }
                "connection_messages" => {
                    c.connection_messages = Some(boolean(value).map_err(err)?);
                }
                "log_timestamp" => c.log_timestamp = Some(boolean(value).map_err(err)?),
                "log_timestamp_format" => c.log_timestamp_format = Some(need()?.to_owned()),
                "per_listener_settings" => {
                    if boolean(value).map_err(err)? {
                        return Err(err(
                            "per_listener_settings true is not supported: smq applies one set of security settings to every listener".into(),
                        ));
                    }
                }
                "include_dir" => {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(err(format!(
                            "include_dir nested more than {MAX_INCLUDE_DEPTH} deep"
                        )));
                    }
                    for file in conf_files(need()?).map_err(err)? {
                        let text = std::fs::read_to_string(&file).map_err(|e| {
                            err(format!("reading config file {}: {e}", file.display()))
                        })?;
                        c.parse_into(&text, &file.display().to_string(), current, depth + 1)?;
                    }
                }
                "connection" => {
                    let bridge = need()?;
                    if let Some(b) = c.bridges.last() {
                        b.check().map_err(err)?;
                    }
                    c.bridges.push(super::bridge::Bridge::new(bridge));
                }
                _ => {
                    // After `connection`, a bridge key configures that bridge.
                    let taken = match c.bridges.last_mut() {
                        Some(b) => b.apply(key, value).map_err(err)?,
                        None => false,
                    };
                    if taken {
                        continue;
                    }
                    if super::bridge::is_bridge_key(key) {
                        return Err(err(format!(
                            "'{key}' is a bridge key: put it after a 'connection NAME' line"
                        )));
                    } else {
                        c.warnings.push(format!(
                            "config file {name}:{n}: '{key}' is not supported by smq, ignored"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// mosquitto.conf's `log_type` words.
const LOG_TYPES: [&str; 10] = [
    "error",
    "warning",
    "notice",
    "information",
    "subscribe",
    "unsubscribe",
    "websockets",
    "debug",
    "all",
    "none",
];

impl ConfFile {
    /// The log the file asks for, `-v` (every type) over it. Without `-v` or any `log_type`
    /// or `log_dest` line the broker stays quiet, as it always was; with them it follows
    /// Mosquitto: types error to information unless listed, to stderr unless `log_dest` says.
    pub fn log(&self, verbose: bool) -> LogConfig {
        let asked = verbose || !self.log_types.is_empty() || self.log_dest_given;
        let notice = verbose
            || self.log_types.is_empty()
            || self.log_types.iter().any(|t| t == "notice" || t == "all");
        let dests = if self.log_dest_given {
            self.log_dests.clone()
        } else {
            vec![Dest::Stderr]
        };
        let stamp = match (self.log_timestamp, &self.log_timestamp_format) {
            (Some(false), _) => Stamp::None,
            (_, Some(f)) => Stamp::Format(f.clone()),
            _ => Stamp::Epoch,
        };
        LogConfig {
            dests,
            stamp,
            connections: asked && notice && self.connection_messages != Some(false),
        }
    }
}

/// A bad line: `config file FILE:LINE: why`.
#[derive(Debug)]
pub struct LineError {
    pub file: String,
    pub line: usize,
    pub why: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config file {}:{}: {}", self.file, self.line, self.why)
    }
}

const MAX_INCLUDE_DEPTH: usize = 8;

/// The `*.conf` files of an `include_dir`, in name order, as mosquitto reads them.
fn conf_files(dir: &str) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("include_dir {dir}: cannot read it ({e})"))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

const MAX_PACKET: u32 = crate::mqtt::MAX_REMAINING_LENGTH as u32;

fn parse_listener(value: &str) -> Result<Pending, String> {
    let mut words = value.split_whitespace();
    let port = words
        .next()
        .ok_or("listener needs a port: listener PORT [ADDRESS]")?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("listener '{port}': the port must be 0 to 65535"))?;
    let ip = match words.next() {
        // mosquitto listens on every interface when no address is given.
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(addr) => parse_ip(addr)?,
    };
    if let Some(extra) = words.next() {
        return Err(format!("listener: unexpected '{extra}' after the address"));
    }
    Ok(Pending {
        port,
        ip,
        websockets: false,
        tls: false,
        certs: CertSettings::default(),
    })
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    if text.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .or_else(|_| bare.parse::<Ipv6Addr>().map(IpAddr::V6))
        .map_err(|_| {
            format!("'{text}' is not an IP address: smq listens on IP addresses or localhost")
        })
}

fn in_listener<'a>(current: &'a mut Option<Pending>, key: &str) -> Result<&'a mut Pending, String> {
    current
        .as_mut()
        .ok_or_else(|| format!("{key} must follow a `listener PORT [ADDRESS]` line"))
}

/// mosquitto sets TLS files per listener; smq has one TLS setup shared by every mqtts/wss
/// listener, so a second, different value is an error rather than silently ignored.
fn set_tls(
    slot: &mut Option<PathBuf>,
    value: PathBuf,
    current: &mut Option<Pending>,
) -> Result<(), String> {
    if current.is_none() {
        return Err("TLS files must follow a `listener PORT [ADDRESS]` line".into());
    }
    match slot {
        Some(old) if *old != value => Err(format!(
            "{} differs from {} given earlier: smq uses one certificate setup for every TLS listener",
            value.display(),
            old.display()
        )),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("'{value}' is not true or false")),
    }
}

fn number<T: FromStr>(value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("'{value}' is not a number in range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_supported_keys() {
        let text = "\
# a mosquitto 2.0 config
per_listener_settings false
allow_anonymous false
password_file /etc/mosquitto/passwd
acl_file /etc/mosquitto/acl
persistence true
persistence_location /var/lib/mosquitto/
max_connections -1
max_packet_size 0
message_size_limit 1024
max_inflight_messages 0
max_queued_messages 500
max_queued_bytes 1048576
max_keepalive 60
retain_available false
sys_interval 0
autosave_interval 1800

listener 1883 127.0.0.1
listener 8883
certfile /c.pem
keyfile /k.pem
cafile /ca.pem
require_certificate true
use_identity_as_username true
listener 9001 ::1
protocol websockets
listener 9002
bind_address 127.0.0.1
protocol websockets
certfile /c.pem
require_certificate true
use_identity_as_username true
port 1884
";
        let c = ConfFile::parse(text, "m.conf").unwrap();
        let urls: Vec<String> = c.listeners.iter().map(ListenSpec::url).collect();
        assert_eq!(
            urls,
            [
                "mqtt://127.0.0.1:1883",
                "mqtts://0.0.0.0:8883",
                "ws://[::1]:9001",
                "wss://127.0.0.1:9002",
                "mqtt://0.0.0.0:1884"
            ]
        );
        assert_eq!(c.allow_anonymous, Some(false));
        assert_eq!(c.password_file, Some("/etc/mosquitto/passwd".into()));
        assert_eq!(c.acl_file, Some("/etc/mosquitto/acl".into()));
        assert_eq!(c.persistence, Some(true));
        assert_eq!(c.persistence_location, Some("/var/lib/mosquitto/".into()));
        assert_eq!(c.max_connections, Some(usize::MAX));
        assert_eq!(c.max_packet_size, Some(MAX_PACKET));
        assert_eq!(c.message_size_limit, Some(Some(1024)));
        assert_eq!(c.max_inflight, Some(u16::MAX));
        assert_eq!(c.max_queued, Some(500));
        assert_eq!(c.max_queued_bytes, Some(1 << 20));
        assert_eq!(c.max_keepalive, Some(60));
        assert_eq!(c.retain_available, Some(false));
        assert_eq!(c.sys_interval, Some(0));
        assert_eq!(c.certfile, Some("/c.pem".into()));
        assert_eq!(c.cafile, Some("/ca.pem".into()));
        assert_eq!(c.require_certificate, Some(true));
        assert_eq!(c.use_identity_as_username, Some(true));
        assert_eq!(
            c.warnings,
            ["config file m.conf:17: 'autosave_interval' is not supported by smq, ignored"]
        );
    }

    #[test]
    fn certificate_settings_agree_across_tls_listeners_only() {
        let c = ConfFile::parse(
            "require_certificate true\nlistener 1\ncertfile /c\nlistener 2\nlistener 3\ncertfile /c\n",
            "m.conf",
        )
        .unwrap();
        assert_eq!(
            c.require_certificate,
            Some(true),
            "the global line covers both"
        );
        let c = ConfFile::parse(
            "listener 1\nrequire_certificate true\nlistener 2\ncertfile /c\n",
            "m.conf",
        )
        .unwrap();
        assert_eq!(
            c.require_certificate,
            Some(false),
            "a plain listener's setting does not reach the TLS one"
        );
    }

    #[test]
    fn include_dir_reads_its_conf_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("b.conf"), "max_queued_messages 7\nbogus_key 1\n").unwrap();
        std::fs::write(
            d.join("a.conf"),
            "max_queued_messages 5\nprotocol websockets\n",
        )
        .unwrap();
        std::fs::write(d.join("c.txt"), "max_queued_messages 9\n").unwrap();
        let text = format!("listener 0 127.0.0.1\ninclude_dir {}\n", d.display());
        let c = ConfFile::parse(&text, "m.conf").unwrap();
        assert_eq!(c.max_queued, Some(7), "a.conf, then b.conf; not c.txt");
        assert_eq!(
            c.listeners[0].scheme,
            Scheme::Ws,
            "the listener goes on in a.conf"
        );
        assert_eq!(
            c.warnings,
            [format!(
                "config file {}:2: 'bogus_key' is not supported by smq, ignored",
                d.join("b.conf").display()
            )]
        );
        std::fs::write(d.join("d.conf"), "\nsys_interval soon\n").unwrap();
        let e = ConfFile::parse(&text, "m.conf").unwrap_err();
        assert_eq!(e.file, d.join("d.conf").display().to_string());
        assert_eq!(e.line, 2);
        let e = ConfFile::parse("include_dir /nonexistent/smq", "m.conf").unwrap_err();
        assert!(e.why.contains("cannot read it"), "{e}");
    }

    #[test]
    fn bad_values_name_their_line() {
        for (text, line, why) in [
            ("allow_anonymous yes", 1, "not true or false"),
            ("\nmax_inflight_messages 70000", 2, "not a number"),
            ("per_listener_settings true", 1, "not supported"),
            ("listener", 1, "needs a port"),
            ("listener 1883 example.com", 1, "not an IP address"),
            ("listener 99999", 1, "0 to 65535"),
            ("protocol websockets", 1, "must follow"),
            ("listener 1\nprotocol http", 2, "mqtt or websockets"),
            ("certfile /a", 1, "must follow"),
            (
                "listener 1\ncertfile /a\nlistener 2\ncertfile /b",
                4,
                "one certificate",
            ),
            ("max_packet_size 10", 1, "64 to"),
            ("max_keepalive 0", 1, "1 to 65535"),
            ("password_file", 1, "needs a value"),
            ("\ncrlfile /crl.pem", 2, "refusing to start without it"),
            ("plugin /x.so", 1, "'plugin' is not supported by smq"),
            ("auth_plugin /x.so", 1, "refusing to start"),
            ("listener 1\npsk_file /p", 2, "refusing to start"),
            ("psk_hint h", 1, "refusing to start"),
            ("port x", 1, "not a number"),
            ("max_queued_bytes -1", 1, "not a number"),
            (
                "listener 1\ncertfile /c\nrequire_certificate true\nlistener 2\ncertfile /c\n",
                4,
                "require_certificate false here, but true for the TLS listener at m.conf:3",
            ),
            (
                "use_identity_as_username true\nlistener 1\ncertfile /c\nlistener 2\ncertfile /c\nuse_identity_as_username false\n",
                6,
                "one use_identity_as_username to every TLS listener",
            ),
        ] {
            let e = ConfFile::parse(text, "m.conf").unwrap_err();
            assert_eq!((e.file.as_str(), e.line), ("m.conf", line), "{text:?}");
            assert!(e.why.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn zero_queued_bytes_is_no_limit() {
        let c = ConfFile::parse("max_queued_bytes 0\n", "m.conf").unwrap();
        assert_eq!(c.max_queued_bytes, Some(usize::MAX));
        assert_eq!(ConfFile::default().max_queued_bytes, None);
    }

    #[test]
    fn log_lines_ask_for_the_connection_log() {
        let quiet = ConfFile::default().log(false);
        assert!(!quiet.connections, "no -v and no log lines: quiet");
        assert!(ConfFile::default().log(true).connections);
        let c = ConfFile::parse(
            "log_type error\nlog_type notice\nlog_dest stdout\nlog_dest file /tmp/m.log\nlog_timestamp_format %H:%M\n",
            "m.conf",
        )
        .unwrap();
        let log = c.log(false);
        assert!(log.connections);
        assert_eq!(log.dests, [Dest::Stdout, Dest::File("/tmp/m.log".into())]);
        assert_eq!(log.stamp, Stamp::Format("%H:%M".into()));
        // Only errors asked for, or connection messages turned off: no connection log.
        let c = ConfFile::parse("log_type error\n", "m.conf").unwrap();
        assert!(!c.log(false).connections);
        assert!(c.log(true).connections, "-v is every type");
        let c = ConfFile::parse("log_dest stderr\nconnection_messages false\n", "m.conf").unwrap();
        assert!(!c.log(true).connections);
        let c = ConfFile::parse("log_dest none\nlog_timestamp false\n", "m.conf").unwrap();
        let log = c.log(false);
        assert!(log.dests.is_empty() && log.stamp == Stamp::None);
        let c = ConfFile::parse("log_dest syslog\n", "m.conf").unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        for (text, why) in [
            ("log_type loud", "log_type 'loud': use one of error"),
            ("log_dest file", "log_dest file needs a path"),
            ("log_dest pigeon", "use stderr, stdout, file PATH or none"),
        ] {
            let e = ConfFile::parse(text, "m.conf").unwrap_err();
            assert!(e.why.contains(why), "{text}: {e}");
        }
    }
}
