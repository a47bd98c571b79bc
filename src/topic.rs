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

#[cfg(test)]
mod tests {
    use super::*;

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
