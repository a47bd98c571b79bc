//! `--profile NAME`: connection settings kept in smq's own config file,
//! `$XDG_CONFIG_HOME/smq/config.toml` (else `~/.config/smq/config.toml`), one `[profile.NAME]`
//! table each:
//!
//! ```toml
//! [profile.lab]
//! host = "broker.lab"
//! port = 8883
//! cafile = "~/lab/ca.pem"
//! username = "alice"
//! pw-file = "~/.config/smq/lab.pw"   # the password itself is never read from here
//! ```
//!
//! A profile turns into the long flags of the same names, put before everything else on the
//! command line (and before an options file's), so both of those win over it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap::error::ErrorKind;

/// The subcommands that connect as clients, and take `--profile`.
const CLIENTS: &[&str] = &["pub", "sub", "rr", "record", "replay", "bench"];

/// Keys a profile may hold: each is the long flag of the same name. `true` for a flag that
/// takes a path (a leading `~/` is the home directory), `None` for a switch.
const KEYS: &[(&str, Option<bool>)] = &[
    ("host", Some(false)),
    ("port", Some(false)),
    ("url", Some(false)),
    ("protocol-version", Some(false)),
    ("keepalive", Some(false)),
    ("ws", None),
    ("ws-path", Some(false)),
    ("cafile", Some(true)),
    ("capath", Some(true)),
    ("tls-use-os-certs", None),
    ("cert", Some(true)),
    ("key", Some(true)),
    ("servername", Some(false)),
    ("tls-version", Some(false)),
    ("username", Some(false)),
    ("pw-file", Some(true)),
];

fn error(msg: String) -> clap::Error {
    crate::cli::Cli::command().error(ErrorKind::ValueValidation, msg)
}

pub fn config_path() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) => Some(PathBuf::from(dir).join("smq/config.toml")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/smq/config.toml")),
    }
}

/// `args` with the named profile's flags put first, after the subcommand (and bench's mode).
pub fn expand(args: Vec<OsString>) -> Result<Vec<OsString>, clap::Error> {
    let Some(sub) = args.get(1).and_then(|a| a.to_str()) else {
        return Ok(args);
    };
    if !CLIENTS.contains(&sub) {
        return Ok(args);
    }
    let at = if sub == "bench" { 3 } else { 2 };
    let mut name = None;
    for (i, a) in args.iter().enumerate().skip(at.min(args.len())) {
        let a = a.to_string_lossy();
        if let Some(v) = a.strip_prefix("--profile=") {
            name = Some(v.to_owned());
        } else if a == "--profile" {
            name = args.get(i + 1).map(|v| v.to_string_lossy().into_owned());
        }
    }
    let Some(name) = name else { return Ok(args) };
    let path = config_path().ok_or_else(|| {
        error(
            "--profile: neither XDG_CONFIG_HOME nor HOME is set, so there is no config file".into(),
        )
    })?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| error(format!("--profile {name}: reading {}: {e}", path.display())))?;
    let flags = flags(&text, &name, &path)?;
    let mut out = args[..at.min(args.len())].to_vec();
    out.extend(crate::options_file::without_brokers_given_in(
        flags,
        &args[at.min(args.len())..],
    ));
    out.extend_from_slice(&args[at.min(args.len())..]);
    Ok(out)
}

fn flags(text: &str, name: &str, path: &Path) -> Result<Vec<OsString>, clap::Error> {
    let file = path.display();
    let table: toml::Table = text
        .parse()
        .map_err(|e| error(format!("{file} is not valid TOML: {e}")))?;
    let profiles = table.get("profile").and_then(toml::Value::as_table);
    let Some(profile) = profiles
        .and_then(|p| p.get(name))
        .and_then(toml::Value::as_table)
    else {
        let known: Vec<&String> = profiles.map(|p| p.keys().collect()).unwrap_or_default();
        return Err(error(format!(
            "--profile {name}: {file} has no [profile.{name}] (it has: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    };
    let mut out = Vec::new();
    for (key, value) in profile {
        if key == "password" || key == "pw" {
            return Err(error(format!(
                "[profile.{name}] in {file}: a password is not read from the config file; put it in a file named by pw-file, or in SMQ_PASSWORD"
            )));
        }
        let Some(&(_, kind)) = KEYS.iter().find(|(k, _)| k == key) else {
            let all: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            return Err(error(format!(
                "[profile.{name}] in {file}: unknown key '{key}': use {}",
                all.join(", ")
            )));
        };
        let bad = |want: &str| error(format!("[profile.{name}] in {file}: {key} must be {want}"));
        match (kind, value) {
            (None, toml::Value::Boolean(true)) => out.push(OsString::from(format!("--{key}"))),
            (None, toml::Value::Boolean(false)) => {}
            (None, _) => return Err(bad("true or false")),
            (Some(is_path), v) => {
                let text = match v {
                    toml::Value::String(s) if is_path => home(s),
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) if !is_path => n.to_string(),
                    _ => {
                        return Err(bad(if is_path {
                            "a path (a string)"
                        } else {
                            "a string or a number"
                        }));
                    }
                };
                out.push(OsString::from(format!("--{key}")));
                out.push(OsString::from(text));
            }
        }
    }
    Ok(out)
}

/// `~/x` is `$HOME/x`.
fn home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(h)) => format!("{h}/{rest}"),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_profile_becomes_long_flags() {
        let text = "[profile.lab]\nhost = \"b.lab\"\nport = 8883\ncafile = \"/etc/ca.pem\"\nws = true\ninsecure_ignored = 1\n";
        let err = flags(text, "lab", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown key 'insecure_ignored'") && err.contains("pw-file"),
            "{err}"
        );
        let text = "[profile.lab]\nhost = \"b.lab\"\nport = 8883\ncafile = \"/etc/ca.pem\"\nws = true\ntls-use-os-certs = false\n";
        assert_eq!(
            strs(flags(text, "lab", Path::new("c.toml")).unwrap()),
            // Keys come in name order; each flag is given once, so order does not matter.
            [
                "--cafile",
                "/etc/ca.pem",
                "--host",
                "b.lab",
                "--port",
                "8883",
                "--ws"
            ]
        );
    }

    #[test]
    fn passwords_and_missing_profiles_are_refused() {
        let text = "[profile.lab]\nusername = \"a\"\npassword = \"s3cret\"\n[profile.home]\n";
        let err = flags(text, "lab", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pw-file") && !err.contains("s3cret"), "{err}");
        let err = flags(text, "work", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has no [profile.work]") && err.contains("home, lab"),
            "{err}"
        );
        let err = flags("port = [", "x", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid TOML"), "{err}");
    }
}
