//! Topic names and filters (MQTT 3.1.1 §4.7, MQTT 5 §4.7): the checks done before anything
//! reaches the wire, shared subscriptions (`$share/GROUP/FILTER`, parsed here and nowhere
//! else), and matching.

/// Why `topic` cannot be published to, if it cannot.
pub fn name_error(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        Some("it is empty")
    } else if topic.len() > 65535 {
        Some("it is longer than 65535 bytes")
    } else if topic.contains(['+', '#']) {
        Some("wildcards (+ and #) are only for subscribing")
    } else if topic.contains('\0') {
        Some("it contains a NUL character")
    } else {
        None
    }
}

/// Why `filter` cannot be subscribed to, if it cannot.
pub fn filter_error(filter: &str) -> Option<&'static str> {
    if filter.is_empty() {
        return Some("it is empty");
    }
    if filter.len() > 65535 {
        return Some("it is longer than 65535 bytes");
    }
    if filter.contains('\0') {
        return Some("it contains a NUL character");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != levels.len() - 1) {
            return Some("# must be a whole level, and the last one");
        }
        if level.contains('+') && *level != "+" {
            return Some("+ must be a whole level");
        }
    }
    None
}

/// Whether a well-formed topic filter can be subscribed to: `#` alone and last, `+` alone in
/// its level, not empty (§4.7.1, [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1]); and for a
/// shared subscription `$share/{group}/{filter}`, a non-empty group without `/`, `+` or `#`
/// followed by a valid filter (5.0 [MQTT-4.8.2-1], [MQTT-4.8.2-2]).
pub fn filter_valid(filter: &str) -> bool {
    match shared(filter) {
        Some(Ok((_, inner))) => filter_error(inner).is_none(),
        Some(Err(())) => false,
        None => filter_error(filter).is_none(),
    }
}

/// Whether `filter` asks for a shared subscription, valid or not: it starts with `$share/`.
pub fn looks_shared(filter: &str) -> bool {
    filter.starts_with("$share/")
}

/// Splits a shared subscription `$share/{group}/{filter}` into group and filter: None if
/// `filter` is not one, `Some(Err)` if it starts with `$share/` but its group is not valid.
pub fn shared(filter: &str) -> Option<Result<(&str, &str), ()>> {
    let rest = filter.strip_prefix("$share/")?;
    Some(match rest.split_once('/') {
        Some((group, inner)) if !group.is_empty() && !group.contains(['+', '#']) => {
            Ok((group, inner))
        }
        _ => Err(()),
    })
}

/// A subscribed filter's (group, filter) if it is a shared one. Only valid filters are ever
/// subscribed, so one that starts with `$share/` always has its parts.
pub fn shared_parts(filter: &str) -> Option<(&str, &str)> {
    shared(filter)?.ok()
}

/// Whether `topic` matches `filter` (MQTT §4.7): `+` is one level, `#` the rest, and a
/// leading wildcard does not match a `$` topic.
pub fn matches(filter: &str, topic: &[u8]) -> bool {
    if topic.first() == Some(&b'$') && matches!(filter.as_bytes().first(), Some(b'+' | b'#')) {
        return false;
    }
    let mut t = topic.split(|&b| b == b'/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(level)) if f.as_bytes() == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for ok in ["#", "+", "a/+/c", "a/#", "+/+", "/", "$SYS/#", "a//b"] {
            assert_eq!(filter_error(ok), None, "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a+/b", "a/b+", "#/"] {
            assert!(filter_error(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn matching() {
        let yes = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("#", "a/b"),
            ("+/+", "/x"),
            ("+", ""),
            ("$SYS/#", "$SYS/x"),
            ("a/+/c", "a//c"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t.as_bytes()), "{f} should match {t}");
        }
        let no = [
            ("a/b", "a/c"),
            ("a/+", "a/b/c"),
            ("a/+", "a"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("a", "a/b"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t.as_bytes()), "{f} should not match {t}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(name_error("a/b/ü"), None);
        assert_eq!(name_error("/"), None);
        assert!(name_error("").is_some());
        assert!(name_error("a/+").is_some());
        assert!(name_error("#").is_some());
        assert!(name_error("a\0b").is_some());
        assert!(name_error(&"x".repeat(65536)).is_some());
    }
}
