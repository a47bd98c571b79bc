//! The committed completions/ and man/ are exactly what `smq generate` writes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::support::{run_with_timeout, smq, text};

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["completions", "man"] {
        for entry in fs::read_dir(dir.join(sub)).unwrap_or_else(|e| panic!("{sub}: {e}")) {
            let path = entry.unwrap().path();
            let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            out.insert(name, fs::read(&path).unwrap());
        }
    }
    out
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_with_timeout(
        smq().args(["generate", "--out-dir"]).arg(tmp.path()),
        None,
        60,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fresh = files(tmp.path());
    let committed = files(Path::new(env!("CARGO_MANIFEST_DIR")));
    let stale: Vec<&String> = fresh
        .keys()
        .chain(committed.keys())
        .filter(|k| fresh.get(*k) != committed.get(*k))
        .collect();
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; run `cargo run -- generate --out-dir .`"
    );
    assert!(fresh.contains_key("man/smq-pub.1") && fresh.contains_key("completions/_smq"));
}

#[test]
fn help_documents_exit_codes_and_keeps_mosquitto_flags() {
    let out = run_with_timeout(smq().args(["pub", "--help"]), None, 30);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "-h, --host",
        "-p, --port",
        "-L, --url",
        "-t, --topic",
        "-m, --message",
        "-f, --file",
        "-s, --stdin-file",
        "-l, --stdin-line",
        "-n, --null-message",
        "-q, --qos",
        "-r, --retain",
        "--repeat",
        "--repeat-delay",
        "-V, --protocol-version",
        "-i, --id",
        "-I, --id-prefix",
        "-k, --keepalive",
        "-c, --disable-clean-session",
        "-x, --session-expiry",
        "-u, --username",
        "-P, --pw",
        "-M, --max-inflight",
        "--will-topic",
        "--will-payload",
        "--will-qos",
        "--will-retain",
        "-D, --property",
        "--cafile",
        "--capath",
        "--cert",
        "--key",
        "--insecure",
        "--tls-version",
        "--tls-alpn",
        "--tls-use-os-certs",
        "--servername",
        "-d, --debug",
        "--quiet",
        "--nodelay",
        "Exit codes:",
        "130",
    ] {
        assert!(help.contains(flag), "pub --help lacks {flag}");
    }
}
