//! Options files, as mosquitto_pub/sub/rr read them, in a temporary $XDG_CONFIG_HOME.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::mosquitto::Mosquitto;
use crate::support::{Sub, mosquitto_client, run_with_timeout, smq, text};

const SECS: u64 = 30;

fn smq_in(config: &Path, args: &[&str]) -> Output {
    run_with_timeout(smq().env("XDG_CONFIG_HOME", config).args(args), None, SECS)
}

#[test]
fn pub_reads_mosquitto_pub_and_the_command_line_wins() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    // Port 1 would fail: the command line's -p must win over the file's.
    fs::write(
        dir.path().join("mosquitto_pub"),
        "# lab defaults\n-h 127.0.0.1\n-p 1\n-q 1\n-m hello  world\n",
    )
    .unwrap();
    let sub = Sub::start(
        broker.port(),
        &["-t", "opt/#", "-C", "2", "-q", "1", "-F", "%t %q %p"],
    );
    let out = smq_in(
        dir.path(),
        &["pub", "-t", "opt/smq", "-p", &broker.port().to_string()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // mosquitto_pub reads the same file the same way.
    let theirs = run_with_timeout(
        mosquitto_client("mosquitto_pub")
            .env("XDG_CONFIG_HOME", dir.path())
            .args(["-t", "opt/mosq", "-p", &broker.port().to_string()]),
        None,
        SECS,
    );
    assert!(theirs.status.success(), "{}", text(&theirs.stderr));
    assert_eq!(
        text(&sub.wait(SECS).stdout),
        "opt/smq 1 hello  world\nopt/mosq 1 hello  world\n"
    );
}

#[test]
fn sub_and_rr_read_their_own_files_and_o_names_another() {
    let broker = Mosquitto::start();
    let port = broker.port().to_string();
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("mosquitto_sub"),
        format!("-p {port}\n-h 127.0.0.1\n-v\n"),
    )
    .unwrap();
    // A pub file that would break pub: sub must not read it.
    fs::write(dir.path().join("mosquitto_pub"), "--bogus\n").unwrap();
    fs::write(dir.path().join("mosquitto_rr"), "-W 1\n").unwrap();
    let other = dir.path().join("other");
    fs::write(&other, format!("-p {port}\n-h 127.0.0.1\n-t opt/o\n-r\n")).unwrap();

    let out = smq_in(
        dir.path(),
        &["pub", "-o", other.to_str().unwrap(), "-m", "kept"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smq_in(dir.path(), &["sub", "-t", "opt/o", "-C", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "opt/o kept\n");
    // rr's file gives -W 1: nobody answers, so it times out.
    let out = smq_in(
        dir.path(),
        &[
            "rr",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "opt/q",
            "-e",
            "opt/r",
            "-n",
        ],
    );
    assert_eq!(out.status.code(), Some(27), "{}", text(&out.stderr));
}

#[test]
fn a_bad_line_names_the_file_and_no_options_file_ignores_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("mosquitto_pub"), "--bogus\n").unwrap();
    let out = smq_in(dir.path(), &["pub", "-t", "a", "-n", "-p", "1"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mosquitto_pub") && err.contains("--no-options-file"),
        "{err}"
    );
    // With the file ignored, the run gets as far as connecting (to a closed port).
    let out = smq_in(
        dir.path(),
        &["pub", "--no-options-file", "-t", "a", "-n", "-p", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let missing = dir.path().join("missing");
    let out = smq_in(
        dir.path(),
        &["pub", "-o", missing.to_str().unwrap(), "-t", "a", "-n"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("reading options file"));
}

#[test]
fn without_xdg_config_home_the_file_is_in_home_config() {
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join(".config")).unwrap();
    fs::write(home.path().join(".config/mosquitto_pub"), "--bogus\n").unwrap();
    let out = run_with_timeout(
        smq()
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", home.path())
            .args(["pub", "-t", "a", "-n", "-p", "1"]),
        None,
        SECS,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(".config/mosquitto_pub"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_profile_from_config_toml_connects_and_flags_win() {
    let broker = Mosquitto::builder().password("alice", "s3cret").start();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("lab.pw");
    fs::write(&pw, "s3cret\n").unwrap();
    fs::create_dir(dir.path().join("smq")).unwrap();
    fs::write(
        dir.path().join("smq/config.toml"),
        format!(
            "[profile.lab]\nhost = \"127.0.0.1\"\nport = {}\nusername = \"alice\"\npw-file = \"{}\"\n\n[profile.broken]\nport = 1\nhost = \"127.0.0.1\"\n",
            broker.port(),
            pw.display()
        ),
    )
    .unwrap();
    let sub = Sub::start(
        broker.port(),
        &[
            "-t", "prof/#", "-C", "2", "-v", "-u", "alice", "-P", "s3cret",
        ],
    );
    let out = smq_in(
        dir.path(),
        &["pub", "--profile", "lab", "-t", "prof/a", "-m", "one"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The command line wins over the profile, and so does an options file.
    fs::write(
        dir.path().join("mosquitto_pub"),
        format!("-p {}\n-u alice\n", broker.port()),
    )
    .unwrap();
    let out = smq_in(
        dir.path(),
        &[
            "pub",
            "--profile=broken",
            "--pw-file",
            pw.to_str().unwrap(),
            "-t",
            "prof/b",
            "-m",
            "two",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&sub.wait(SECS).stdout), "prof/a one\nprof/b two\n");
    let out = smq_in(dir.path(), &["pub", "--profile", "nope", "-t", "a", "-n"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no [profile.nope]"),
        "{}",
        text(&out.stderr)
    );
}
