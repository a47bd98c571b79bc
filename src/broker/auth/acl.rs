//! mosquitto's ACL file: `topic [read|write|readwrite|deny] TOPIC` lines (before any `user`
//! line they are for anonymous clients; after `user NAME`, for that user) and
//! `pattern [read|write|readwrite|deny] PATTERN` lines for every client, where `%c` is the
//! client id and `%u` the user name. Without an access word a line grants readwrite. A `deny`
//! that matches wins over any grant; a topic no line grants is refused.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use crate::topic;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    filter: String,
    read: bool,
    write: bool,
}

impl Rule {
    fn deny(&self) -> bool {
        !self.read && !self.write
    }
}

#[derive(Debug, Clone, Default)]
pub struct AclFile {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

impl AclFile {
    pub fn read(path: &Path) -> anyhow::Result<AclFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading ACL file {}", path.display()))?;
        AclFile::parse(&text).map_err(|(line, why)| {
            crate::exit::usage(format!("ACL file {}:{line}: {why}", path.display()))
        })
    }

    /// Errors carry the 1-based line number.
    pub fn parse(text: &str) -> Result<AclFile, (usize, String)> {
        let mut acl = AclFile::default();
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |why: String| (i + 1, why);
            let (word, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
            let rest = rest.trim();
            match word {
                "user" if rest.is_empty() => {
                    return Err(err("`user` needs a user name".into()));
                }
                "user" => user = Some(rest.to_owned()),
                "topic" | "pattern" => {
                    let rule = parse_rule(rest).map_err(err)?;
                    if word == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(u) = &user {
                        acl.users.entry(u.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => {
                    return Err(err(format!(
                        "unknown keyword '{other}': expected user, topic or pattern"
                    )));
                }
            }
        }
        Ok(acl)
    }

    /// The rules that apply to one client, with `%c` and `%u` filled in.
    pub fn for_client(&self, username: Option<&str>, client_id: &str) -> ClientAcl {
        let mut rules = match username {
            Some(u) => self.users.get(u).cloned().unwrap_or_default(),
            None => self.anonymous.clone(),
        };
        // As mosquitto: a user name or client id holding a wildcard could reach other
        // clients' topics through a pattern, so such a client gets no pattern at all.
        let wild = |s: &str| s.contains(['+', '#']);
        if !(wild(client_id) || username.is_some_and(wild)) {
            for p in &self.patterns {
                if p.filter.contains("%u") && username.is_none() {
                    continue;
                }
                let filter = substitute(&p.filter, client_id, username.unwrap_or(""));
                rules.push(Rule {
                    filter,
                    ..p.clone()
                });
            }
        }
        ClientAcl { rules }
    }
}

/// `%c` and `%u` filled in one pass, so a client id that holds `%u` stays as it is.
fn substitute(pattern: &str, client_id: &str, username: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('c') => out.push_str(client_id),
            Some('u') => out.push_str(username),
            _ => {
                out.push('%');
                rest = after;
                continue;
            }
        }
        rest = &after[1..];
    }
    out.push_str(rest);
    out
}

fn parse_rule(rest: &str) -> Result<Rule, String> {
    let (first, after) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let (read, write, filter) = match first {
        "read" => (true, false, after.trim()),
        "write" => (false, true, after.trim()),
        "readwrite" => (true, true, after.trim()),
        "deny" => (false, false, after.trim()),
        _ => (true, true, rest),
    };
    if filter.is_empty() {
        return Err("missing the topic".into());
    }
    if let Some(why) = topic::filter_error(filter) {
        return Err(format!("'{filter}' is not a topic filter: {why}"));
    }
    Ok(Rule {
        filter: filter.to_owned(),
        read,
        write,
    })
}

/// One client's rules, resolved at CONNECT.
#[derive(Debug, Clone)]
pub struct ClientAcl {
    rules: Vec<Rule>,
}

impl ClientAcl {
    pub fn may_read(&self, topic: &[u8]) -> bool {
        self.check(topic, |r| r.read)
    }

    pub fn may_write(&self, topic: &[u8]) -> bool {
        self.check(topic, |r| r.write)
    }

    fn check(&self, topic: &[u8], grants: impl Fn(&Rule) -> bool) -> bool {
        let mut granted = false;
        for r in &self.rules {
            if topic::matches(&r.filter, topic) {
                if r.deny() {
                    return false;
                }
                granted |= grants(r);
            }
        }
        granted
    }

    /// Whether a subscription to `filter` is granted: some read rule must cover every topic
    /// the filter can match (`sensors/#` covers `sensors/+/t`, not `#`), and no deny rule may
    /// cover it all. A deny that covers part of it is applied to each message delivered.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        let mut granted = false;
        for r in &self.rules {
            if covers(&r.filter, filter) {
                if r.deny() {
                    return false;
                }
                granted |= r.read;
            }
        }
        granted
    }
}

/// Whether every topic matched by `filter` is matched by `rule`.
fn covers(rule: &str, filter: &str) -> bool {
    if filter.starts_with('$') && !rule.starts_with('$') {
        return false;
    }
    let mut r = rule.split('/');
    let mut f = filter.split('/');
    loop {
        match (r.next(), f.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# anonymous clients
topic read public/#
topic deny public/secret

user alice
topic readwrite alice/#
topic write  sensors/+/temp
topic sensors/room 1/on

user bob
topic read #

pattern readwrite clients/%c/#
pattern read users/%u/inbox
";

    #[test]
    fn anonymous_rules_come_before_any_user() {
        let acl = AclFile::parse(FILE).unwrap().for_client(None, "c1");
        assert!(acl.may_read(b"public/news"));
        assert!(!acl.may_write(b"public/news"));
        assert!(!acl.may_read(b"public/secret"), "deny wins");
        assert!(!acl.may_read(b"alice/x"));
        assert!(acl.may_write(b"clients/c1/state"), "patterns apply to all");
        assert!(!acl.may_write(b"clients/c2/state"));
        assert!(!acl.may_read(b"users//inbox"), "%u needs a user name");
    }

    #[test]
    fn user_blocks_and_patterns() {
        let file = AclFile::parse(FILE).unwrap();
        let alice = file.for_client(Some("alice"), "a1");
        assert!(alice.may_read(b"alice/a/b") && alice.may_write(b"alice/a/b"));
        assert!(alice.may_write(b"sensors/k/temp"));
        assert!(!alice.may_read(b"sensors/k/temp"));
        assert!(
            alice.may_write(b"sensors/room 1/on"),
            "a topic may hold spaces"
        );
        assert!(alice.may_read(b"users/alice/inbox"));
        assert!(!alice.may_read(b"users/bob/inbox"));
        assert!(
            !alice.may_read(b"public/news"),
            "anonymous rules are not hers"
        );

        let bob = file.for_client(Some("bob"), "b1");
        assert!(bob.may_read(b"anything/at/all"));
        assert!(
            !bob.may_read(b"$SYS/broker/uptime"),
            "# does not reach $ topics"
        );
        assert!(!bob.may_write(b"anything"));

        let stranger = file.for_client(Some("carol"), "c");
        assert!(!stranger.may_read(b"public/news"));
        assert!(stranger.may_read(b"users/carol/inbox"));
    }

    #[test]
    fn wildcards_in_ids_get_no_patterns() {
        let file = AclFile::parse(FILE).unwrap();
        let sneaky = file.for_client(None, "+");
        assert!(!sneaky.may_write(b"clients/x/state"));
        let sneaky = file.for_client(Some("#"), "c");
        assert!(!sneaky.may_read(b"users/x/inbox"));
    }

    #[test]
    fn ids_are_substituted_in_one_pass() {
        let file =
            AclFile::parse("pattern readwrite clients/%c/#\npattern read u/%u/%c\n").unwrap();
        let acl = file.for_client(Some("mallory"), "x%u");
        assert!(acl.may_write(b"clients/x%u/a"));
        assert!(
            !acl.may_write(b"clients/xmallory/a"),
            "a client id holding %u does not pick up the user name"
        );
        assert!(acl.may_read(b"u/mallory/x%u"));
        let acl = file.for_client(Some("%c"), "id");
        assert!(acl.may_read(b"u/%c/id"));
        assert_eq!(substitute("a%%c/%x/%", "C", "U"), "a%C/%x/%");
    }

    #[test]
    fn subscriptions_must_be_covered_by_a_read_rule() {
        let file = AclFile::parse(FILE).unwrap();
        let anon = file.for_client(None, "c1");
        assert!(anon.may_subscribe("public/#"));
        assert!(anon.may_subscribe("public/+/x"));
        assert!(anon.may_subscribe("public/news"));
        assert!(!anon.may_subscribe("public/secret"), "denied outright");
        assert!(!anon.may_subscribe("#"), "wider than any grant");
        assert!(!anon.may_subscribe("+/news"));
        assert!(anon.may_subscribe("clients/c1/#"));
        let alice = file.for_client(Some("alice"), "a1");
        assert!(!alice.may_subscribe("sensors/+/temp"), "write only");
        let bob = file.for_client(Some("bob"), "b1");
        assert!(bob.may_subscribe("#"));
        assert!(!bob.may_subscribe("$SYS/#"));
    }

    #[test]
    fn covering() {
        for (rule, filter) in [
            ("#", "a/b"),
            ("a/#", "a"),
            ("a/#", "a/#"),
            ("a/+", "a/+"),
            ("+/+", "a/b"),
            ("a/b", "a/b"),
        ] {
            assert!(covers(rule, filter), "{rule} covers {filter}");
        }
        for (rule, filter) in [
            ("a/+", "a/#"),
            ("a/b", "a/+"),
            ("a", "a/b"),
            ("a/b", "a"),
            ("+", "$SYS"),
        ] {
            assert!(!covers(rule, filter), "{rule} does not cover {filter}");
        }
    }

    #[test]
    fn bad_lines_name_their_line() {
        for (text, line, why) in [
            ("topic read\n", 1, "missing"),
            ("\nuser\n", 2, "user name"),
            ("topic read a/#/b", 1, "not a topic filter"),
            ("# c\nallow a\n", 2, "unknown keyword 'allow'"),
        ] {
            let (l, msg) = AclFile::parse(text).unwrap_err();
            assert_eq!(l, line, "{text:?}");
            assert!(msg.contains(why), "{text:?}: {msg}");
        }
    }
}
