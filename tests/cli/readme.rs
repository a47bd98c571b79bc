//! The README's tour stays runnable: every line of it runs, in order, against serve-broker on a
//! port the OS picks, and what its comments say a line prints, it prints.
//!
//! The tour is the first ```sh block under `## A tour`. Its first line starts the broker
//! (`smq serve-broker ARGS &`): the test starts it with those ARGS on `mqtt://127.0.0.1:0`.
//! Every other line goes through `sh` in a fresh directory with `-p PORT` added after the
//! subcommand, since the README's lines talk to `localhost:1883`, which tests never use.

use std::process::Command;

use crate::support::smq_broker::SmqBroker;
use crate::support::{assert_ok, hermetic, run_with_timeout, text};

const README: &str = include_str!("../../README.md");
const SECS: u64 = 60;

/// The lines of the tour's block, comments included.
fn tour() -> Vec<&'static str> {
    let (_, after) = README
        .split_once("\n## A tour\n")
        .expect("README.md has a `## A tour` section");
    let (_, block) = after
        .split_once("```sh\n")
        .expect("the tour has a ```sh block");
    let (block, _) = block.split_once("```").expect("the tour's block ends");
    block.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// A line's command and its comment (after two spaces and `#`; a `#` inside a quoted filter is
/// part of the command).
fn split_comment(line: &str) -> (&str, &str) {
    match line.split_once("  # ") {
        Some((command, comment)) => (command.trim(), comment.trim()),
        None => (line.trim(), ""),
    }
}

/// The line the comment says the command prints: "prints `X`".
fn promised(comment: &str) -> Option<&str> {
    let (_, rest) = comment.split_once("prints `")?;
    rest.split_once('`').map(|(line, _)| line)
}

#[test]
fn every_command_in_the_readme_tour_runs() {
    let lines = tour();
    let (first, _) = split_comment(lines[0]);
    let broker_args = first
        .strip_prefix("smq serve-broker")
        .and_then(|rest| rest.strip_suffix('&'))
        .unwrap_or_else(|| panic!("the tour starts with `smq serve-broker … &`: {first:?}"));
    let broker_args: Vec<&str> = broker_args.split_whitespace().collect();
    let broker = SmqBroker::start_with_listeners(&["mqtt://127.0.0.1:0"], &broker_args);
    let port = broker.port().to_string();
    let dir = tempfile::tempdir().unwrap();

    let mut subcommands = Vec::new();
    for line in &lines[1..] {
        let (command, comment) = split_comment(line);
        let rest = command
            .strip_prefix("smq ")
            .unwrap_or_else(|| panic!("a tour line that is not an smq command: {line:?}"));
        assert!(
            !command.ends_with('&'),
            "only the broker runs in the background: {line:?}"
        );
        let (sub, args) = rest.split_once(' ').unwrap_or((rest, ""));
        subcommands.push(sub);
        let script = format!("\"$SMQ\" {sub} -p {port} {args}");
        let mut cmd = Command::new("sh");
        hermetic(&mut cmd);
        cmd.arg("-c")
            .arg(&script)
            .env("SMQ", env!("CARGO_BIN_EXE_smq"))
            .current_dir(dir.path());
        let out = run_with_timeout(&mut cmd, None, SECS);
        assert_ok(&out, line);
        if let Some(expected) = promised(comment) {
            let stdout = text(&out.stdout);
            assert!(
                stdout.lines().any(|l| l == expected),
                "{line:?} printed {stdout:?}, not the line {expected:?}"
            );
        }
    }
    // The tour shows each of these; a tour that lost one would pass without running it.
    for wanted in ["pub", "sub", "record", "replay"] {
        assert!(
            subcommands.contains(&wanted),
            "the tour has no `smq {wanted}`"
        );
    }
}
