//! `smq passwd`: mosquitto_passwd's add, change and delete, writing `$7$` entries as
//! mosquitto 2.0 does. The file is replaced in one rename, so a broker reading it never sees
//! half a file.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};

use crate::broker::auth::passwd::{Hash, PasswordFile};
use crate::cli::PasswdArgs;
use crate::exit::usage;

pub fn run(args: PasswdArgs) -> anyhow::Result<ExitCode> {
    if let Some(why) = bad_user_name(&args.user) {
        return Err(usage(format!("user name {:?}: {why}", args.user)));
    }
    let mut file = if args.create {
        PasswordFile::default()
    } else {
        match fs::metadata(&args.file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(usage(format!(
                    "password file {} does not exist: add -c to create it",
                    args.file.display()
                )));
            }
            _ => PasswordFile::read(&args.file)?,
        }
    };
    if args.delete {
        if !file.remove(&args.user) {
            return Err(anyhow!(
                "user '{}' is not in {}",
                args.user,
                args.file.display()
            ));
        }
    } else {
        let password = match args.password {
            Some(p) => p,
            None => prompt()?,
        };
        file.set(&args.user, Hash::new(password.as_bytes())?);
    }
    write_atomically(&args.file, &file.render())?;
    Ok(ExitCode::SUCCESS)
}

/// Why a user name cannot go in a password file: mosquitto_passwd refuses ':' and control
/// characters (a newline would start another entry); a leading '#' would make the line a
/// comment and edge whitespace a name no one types, so those are refused too.
fn bad_user_name(user: &str) -> Option<&'static str> {
    if user.is_empty() {
        Some("it is empty")
    } else if user.contains(':') {
        Some("it must not contain ':'")
    } else if user.chars().any(char::is_control) {
        Some("it must not contain control characters")
    } else if user.starts_with('#') {
        Some("it must not start with '#', which makes the line a comment")
    } else if user.trim() != user {
        Some("it must not start or end with white space")
    } else {
        None
    }
}

fn prompt() -> anyhow::Result<String> {
    let no_tty = |e: std::io::Error| {
        anyhow!("the password prompt needs a terminal ({e}): use -b FILE USER PASSWORD instead")
    };
    let first = rpassword::prompt_password("Password: ").map_err(no_tty)?;
    let again = rpassword::prompt_password("Reenter password: ").map_err(no_tty)?;
    if first != again {
        return Err(anyhow!("the passwords do not match"));
    }
    if first.is_empty() {
        return Err(anyhow!("the password is empty"));
    }
    Ok(first)
}

/// Writes a temporary file beside `path` and renames it over `path`. A new file is readable
/// by its owner only; a replaced one keeps its permissions.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path
        .file_name()
        .ok_or_else(|| usage(format!("{} is not a file name", path.display())))?;
    let tmp = path.with_file_name(format!(
        ".{}.smq-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mode = fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing password file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::bad_user_name;

    #[test]
    fn user_names_that_would_break_the_file_are_refused() {
        for ok in ["alice", "a b", "dev-7@site", "ünï"] {
            assert_eq!(bad_user_name(ok), None, "{ok:?}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("a:b", "':'"),
            ("#x\nmallory", "control"),
            ("x\ty", "control"),
            ("x\u{7f}", "control"),
            ("#x", "'#'"),
            (" x", "white space"),
            ("x ", "white space"),
        ] {
            assert!(
                bad_user_name(bad).is_some_and(|w| w.contains(why)),
                "{bad:?}"
            );
        }
    }
}
