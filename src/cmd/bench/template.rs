//! Topic and filter templates, as emqtt-bench and MQTTX write them: `%i` the client index
//! (from 1), `%c` the client id, `%n` the message number (from 1), `%%` a `%`.
//!
//! A template is parsed once; a publisher renders its topic once, or per message when the
//! template holds `%n`.

use std::fmt::Write as _;

use crate::exit::usage;
use crate::topic;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Index,
    ClientId,
    Number,
}

#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Topic,
    Filter,
}

impl Template {
    /// Parses `source` and checks that what it renders is a valid topic or filter: the flag
    /// is named in errors (`-t`, `--filter`).
    pub fn parse(source: &str, kind: Kind, flag: &str) -> anyhow::Result<Template> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            let part = match chars.next() {
                Some('%') => {
                    text.push('%');
                    continue;
                }
                Some('i') => Part::Index,
                Some('c') => Part::ClientId,
                Some('n') if kind == Kind::Topic => Part::Number,
                Some('n') => {
                    return Err(usage(format!(
                        "{flag} '{source}': %n (the message number) is only for publishers' topics"
                    )));
                }
                other => {
                    let what = other.map_or("the end".to_owned(), |c| format!("'%{c}'"));
                    return Err(usage(format!(
                        "{flag} '{source}': unknown placeholder at {what}: use %i (client index), %c (client id), %n (message number) or %% (a %)"
                    )));
                }
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        let template = Template { parts };
        // Placeholders render as digits or a client id, so one sample shows what every
        // rendering looks like; client ids are checked where they are made.
        let sample = template.render(1, "id", 1);
        let why = match kind {
            Kind::Topic => topic::name_error(&sample),
            Kind::Filter => topic::filter_error(&sample),
        };
        if let Some(why) = why {
            return Err(usage(format!("bad {flag} '{source}': {why}")));
        }
        Ok(template)
    }

    /// Whether each message gets its own topic (`%n`).
    pub fn per_message(&self) -> bool {
        self.parts.contains(&Part::Number)
    }

    pub fn render(&self, index: u32, client_id: &str, number: u64) -> String {
        let mut out = String::with_capacity(64);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Index => {
                    let _ = write!(out, "{index}");
                }
                Part::ClientId => out.push_str(client_id),
                Part::Number => {
                    let _ = write!(out, "{number}");
                }
            }
        }
        out
    }

    /// A filter that matches every topic this template renders: each level holding a
    /// placeholder becomes `+`.
    pub fn covering_filter(&self) -> String {
        let level =
            |text: String, placeholder: bool| if placeholder { "+".to_owned() } else { text };
        let mut levels = Vec::new();
        let (mut text, mut placeholder) = (String::new(), false);
        for part in &self.parts {
            match part {
                Part::Text(t) => {
                    let mut pieces = t.split('/');
                    text.push_str(pieces.next().unwrap_or_default());
                    for piece in pieces {
                        levels.push(level(std::mem::take(&mut text), placeholder));
                        placeholder = false;
                        text.push_str(piece);
                    }
                }
                _ => placeholder = true,
            }
        }
        levels.push(level(text, placeholder));
        levels.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let t = Template::parse("bench/%i/%c/m%n/100%%", Kind::Topic, "-t").unwrap();
        assert_eq!(t.render(7, "dev-7", 42), "bench/7/dev-7/m42/100%");
        assert!(t.per_message());
        let t = Template::parse("plain/topic", Kind::Topic, "-t").unwrap();
        assert_eq!(t.render(1, "x", 1), "plain/topic");
        assert!(!t.per_message());
    }

    #[test]
    fn covering_filter_replaces_levels_with_placeholders() {
        let t = Template::parse("bench/%i/x%c/m%n/fixed", Kind::Topic, "-t").unwrap();
        assert_eq!(t.covering_filter(), "bench/+/+/+/fixed");
        let t = Template::parse("%i", Kind::Topic, "-t").unwrap();
        assert_eq!(t.covering_filter(), "+");
        let t = Template::parse("a/b", Kind::Topic, "-t").unwrap();
        assert_eq!(t.covering_filter(), "a/b");
    }

    #[test]
    fn refuses_bad_templates() {
        for (source, kind, needle) in [
            ("a/%x", Kind::Topic, "unknown placeholder at '%x'"),
            ("a/%", Kind::Topic, "unknown placeholder at the end"),
            ("a/%n", Kind::Filter, "only for publishers"),
            ("a/+/%i", Kind::Topic, "wildcards"),
            ("a/#/%i", Kind::Filter, "# must be"),
            ("", Kind::Topic, "empty"),
        ] {
            let err = Template::parse(source, kind, "-t").unwrap_err().to_string();
            assert!(err.contains(needle), "{source}: {err}");
        }
        assert!(Template::parse("a/+/%i", Kind::Filter, "-t").is_ok());
    }
}
