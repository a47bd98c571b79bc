//! One password from --pw-file, --pw-prompt, -P or SMQ_PASSWORD (clap fills -P from it), in
//! that order, so it need not appear in `ps`; a broker's -L URL is the fallback. Never logged. The file and the
//! prompt win over -P because an exported SMQ_PASSWORD should not block an explicit choice.

use std::fs;

use anyhow::{Context, anyhow};

use crate::cli::ConnectArgs;

pub fn resolve(args: &ConnectArgs) -> anyhow::Result<Option<String>> {
    if let Some(path) = &args.pw_file {
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading password file {}", path.display()))?;
        let line = text.lines().next().unwrap_or_default();
        return Ok(Some(line.to_owned()));
    }
    if args.pw_prompt {
        let prompt = match &args.username {
            Some(user) => format!("Password for {user}: "),
            None => "Password: ".to_owned(),
        };
        return rpassword::prompt_password(prompt).map(Some).map_err(|e| {
            anyhow!("--pw-prompt needs a terminal ({e}): use --pw-file or SMQ_PASSWORD instead")
        });
    }
    Ok(args.password.clone())
}
