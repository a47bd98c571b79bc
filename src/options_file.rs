//! Options files, as mosquitto_pub, mosquitto_sub and mosquitto_rr read them: defaults for
//! `smq pub`, `smq sub` and `smq rr` from `$XDG_CONFIG_HOME/mosquitto_pub` (`_sub`, `_rr`), or
//! `$HOME/.config/mosquitto_pub` when XDG_CONFIG_HOME is unset, or from `-o FILE` (mosquitto
//! 2.1). `--no-options-file` reads none.
//!
//! The format is mosquitto's: one option per line; a line starting with `#` is a comment; the
//! line is split at its first space into the option and its value (the rest of the line, so
//! a value may hold spaces, and `-D`'s three values cannot be given). The file's options go
//! before the command line's, so the command line wins (`args_override_self`), and a message
//! source in the file conflicts with another on the command line, as in mosquitto.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::error::ErrorKind;

/// The subcommands that read an options file, and the mosquitto tool whose file they read.
const TOOLS: &[(&str, &str)] = &[
    ("pub", "mosquitto_pub"),
    ("sub", "mosquitto_sub"),
    ("rr", "mosquitto_rr"),
];

/// `args` with the options file's options put in front of the subcommand's own; and the file
/// read, for errors.
pub fn expand(args: Vec<OsString>) -> Result<(Vec<OsString>, Option<PathBuf>), clap::Error> {
    let Some((_, tool)) = args
        .get(1)
        .and_then(|a| TOOLS.iter().find(|(name, _)| OsStr::new(name) == a))
    else {
        return Ok((args, None));
    };
    let rest = &args[2..];
    if rest.iter().any(|a| a == "--no-options-file") {
        return Ok((args, None));
    }
    let given: Vec<&OsString> = rest
        .iter()
        .zip(rest.iter().skip(1))
        .filter(|(flag, _)| *flag == "-o")
        .map(|(_, file)| file)
        .collect();
    let (path, must_exist) = match given.as_slice() {
        [] => match default_path(tool) {
            Some(p) => (p, false),
            None => return Ok((args, None)),
        },
        [one] => (PathBuf::from(one), true),
        _ => return Err(error("-o is given more than once: give one options file")),
    };
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if !must_exist && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((args, None));
        }
        Err(e) => {
            return Err(error(&format!(
                "reading options file {}: {e}",
                path.display()
            )));
        }
    };
    let mut out = args[..2].to_vec();
    out.extend(without_brokers_given_in(split(&text), rest));
    out.extend_from_slice(rest);
    Ok((out, Some(path)))
}

/// `defaults` without its `-h`/`-L` brokers when `given` names brokers of its own. Other flags
/// are overridden by the last occurrence, but brokers accumulate (repeating them names brokers
/// to fail over to): without this a file's `-h lab` would become the first broker to try,
/// where mosquitto's command line replaces it.
pub fn without_brokers_given_in(defaults: Vec<OsString>, given: &[OsString]) -> Vec<OsString> {
    let names_broker = |a: &OsStr| {
        let a = a.to_string_lossy();
        ["-h", "--host", "-L", "--url"].iter().any(|f| {
            a == *f
                || a.strip_prefix(f)
                    .is_some_and(|rest| rest.starts_with('=') || (f.len() == 2 && !rest.is_empty()))
        })
    };
    if !given.iter().any(|a| names_broker(a)) {
        return defaults;
    }
    let mut out = Vec::with_capacity(defaults.len());
    let mut skip_value = false;
    for a in defaults {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if names_broker(&a) {
            // `-h HOST` takes the next word; `-hHOST` and `--host=HOST` do not.
            let s = a.to_string_lossy();
            skip_value = ["-h", "--host", "-L", "--url"].contains(&&*s);
            continue;
        }
        out.push(a);
    }
    out
}

fn default_path(tool: &str) -> Option<PathBuf> {
    // mosquitto looks in XDG_CONFIG_HOME if it is set, else in ~/.config; never both.
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) => Some(PathBuf::from(dir).join(tool)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config").join(tool)),
    }
}

/// mosquitto's `strtok(line, " ")` then `strtok(NULL, "")`: leading spaces skipped, then the
/// option up to the next space, then everything after that one space as the value.
fn split(text: &[u8]) -> Vec<OsString> {
    let mut args = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        if line.first() == Some(&b'#') {
            continue;
        }
        let mut line = line;
        while let [rest @ .., b'\r' | b'\n'] = line {
            line = rest;
        }
        let start = line.iter().position(|&b| b != b' ').unwrap_or(line.len());
        let line = &line[start..];
        if line.is_empty() {
            continue;
        }
        match line.iter().position(|&b| b == b' ') {
            Some(i) => {
                args.push(os(&line[..i]));
                if i + 1 < line.len() {
                    args.push(os(&line[i + 1..]));
                }
            }
            None => args.push(os(line)),
        }
    }
    args
}

fn os(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes).to_owned()
}

fn error(msg: &str) -> clap::Error {
    use clap::CommandFactory;
    crate::cli::Cli::command().error(ErrorKind::ValueValidation, msg)
}

/// A parse error that the options file may have caused says so, naming the file.
pub fn blame(err: clap::Error, path: Option<&PathBuf>) -> clap::Error {
    use clap::CommandFactory;
    let Some(path) = path else { return err };
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return err;
    }
    let rendered = err.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    crate::cli::Cli::command().error(
        err.kind(),
        format!(
            "{first} (the options in {} came first; --no-options-file ignores them)",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn brokers_on_the_command_line_replace_the_files_brokers() {
        let file = words("-h lab -p 1884 --host=lab2 -hlab3 -L mqtt://x/t -q 1 --url mqtt://y");
        assert_eq!(
            without_brokers_given_in(file.clone(), &words("-t a -h other")),
            words("-p 1884 -q 1")
        );
        assert_eq!(
            without_brokers_given_in(file.clone(), &words("-t a --url=mqtt://z")),
            words("-p 1884 -q 1")
        );
        assert_eq!(without_brokers_given_in(file.clone(), &words("-t a")), file);
    }

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn splits_lines_as_mosquitto_does() {
        let text =
            b"# comment\n-h broker.lab\n\n  -q 1\r\n-m hello  world \n-r\n#-t ignored\n-t a/b\n";
        assert_eq!(
            strs(split(text)),
            [
                "-h",
                "broker.lab",
                "-q",
                "1",
                "-m",
                "hello  world ",
                "-r",
                "-t",
                "a/b"
            ]
        );
    }
}
