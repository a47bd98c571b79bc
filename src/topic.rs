//! Topic name checks (MQTT 3.1.1 §4.7, MQTT 5 §4.7), done before anything reaches the wire.

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
