//! `-D COMMAND NAME VALUE`: MQTT 5 properties, named as in mosquitto (the spec's names in
//! lowercase with dashes).

use bytes::Bytes;

use crate::exit::usage;
use crate::mqtt::PublishProperties;

/// The packets a subcommand may attach properties to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    Connect,
    Publish,
    Disconnect,
    Will,
    Subscribe,
    Unsubscribe,
}

impl Packet {
    fn name(self) -> &'static str {
        match self {
            Packet::Connect => "connect",
            Packet::Publish => "publish",
            Packet::Disconnect => "disconnect",
            Packet::Will => "will",
            Packet::Subscribe => "subscribe",
            Packet::Unsubscribe => "unsubscribe",
        }
    }
}

impl Packet {
    /// The property names `-D` takes for this packet, as mosquitto spells them.
    fn properties(self) -> &'static [&'static str] {
        match self {
            Packet::Connect => &[
                "session-expiry-interval",
                "receive-maximum",
                "maximum-packet-size",
                "topic-alias-maximum",
                "request-response-information",
                "request-problem-information",
                "user-property",
            ],
            Packet::Publish => &[
                "payload-format-indicator",
                "message-expiry-interval",
                "content-type",
                "response-topic",
                "correlation-data",
                "topic-alias",
                "user-property",
            ],
            Packet::Will => &[
                "will-delay-interval",
                "payload-format-indicator",
                "message-expiry-interval",
                "content-type",
                "response-topic",
                "correlation-data",
                "user-property",
            ],
            Packet::Subscribe => &["subscription-identifier", "user-property"],
            Packet::Unsubscribe => &["user-property"],
            Packet::Disconnect => &["session-expiry-interval", "reason-string", "user-property"],
        }
    }
}

/// Every `-D`, by packet; a packet no `-D` named is None.
#[derive(Debug, Default, Clone)]
pub struct Properties {
    pub connect: Option<ConnectProperties>,
    pub publish: Option<PublishProperties>,
    pub disconnect: Option<DisconnectProperties>,
    pub will: Option<WillProperties>,
    pub subscribe: Option<SubscribeProperties>,
    pub unsubscribe: Option<UnsubscribeProperties>,
}

/// `-D connect`: None where not given, so CONNECT carries the protocol's default.
#[derive(Debug, Default, Clone)]
pub struct ConnectProperties {
    pub session_expiry: Option<u32>,
    pub receive_max: Option<u16>,
    pub max_packet: Option<u32>,
    pub topic_alias_max: Option<u16>,
    pub request_response_info: Option<bool>,
    pub request_problem_info: Option<bool>,
    pub user_properties: Vec<(String, String)>,
}

/// `-D will`: the will's delay, and its message properties as a PUBLISH carries them.
#[derive(Debug, Default, Clone)]
pub struct WillProperties {
    pub delay: u32,
    pub message: PublishProperties,
}

/// `-D subscribe`.
#[derive(Debug, Default, Clone)]
pub struct SubscribeProperties {
    pub id: Option<u32>,
    pub user_properties: Vec<(String, String)>,
}

/// `-D unsubscribe`.
#[derive(Debug, Default, Clone)]
pub struct UnsubscribeProperties {
    pub user_properties: Vec<(String, String)>,
}

/// `-D disconnect`.
#[derive(Debug, Default, Clone)]
pub struct DisconnectProperties {
    pub session_expiry: Option<u32>,
    pub reason: Option<String>,
    pub user_properties: Vec<(String, String)>,
}

impl Properties {
    pub fn is_empty(&self) -> bool {
        self.connect.is_none()
            && self.publish.is_none()
            && self.disconnect.is_none()
            && self.will.is_none()
            && self.subscribe.is_none()
            && self.unsubscribe.is_none()
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str, range: &str) -> anyhow::Result<T> {
    value
        .parse()
        .map_err(|_| usage(format!("-D {name}: '{value}' is not a number in {range}")))
}

/// Parses every `-D` occurrence; `allowed` lists the packets this subcommand sends.
pub fn parse(specs: &[Vec<String>], allowed: &[Packet]) -> anyhow::Result<Properties> {
    let mut props = Properties::default();
    for spec in specs {
        let (cmd, name, values) = match spec.as_slice() {
            [cmd, name, rest @ ..] => (cmd.as_str(), name.as_str(), rest),
            _ => return Err(usage("-D needs COMMAND NAME VALUE")),
        };
        let packet = match cmd {
            "connect" => Packet::Connect,
            "publish" => Packet::Publish,
            "disconnect" => Packet::Disconnect,
            "will" => Packet::Will,
            "subscribe" => Packet::Subscribe,
            "unsubscribe" => Packet::Unsubscribe,
            "auth" | "puback" | "pubrec" | "pubrel" | "pubcomp" => {
                return Err(usage(format!(
                    "-D {cmd}: this subcommand sends no {} packet",
                    cmd.to_uppercase()
                )));
            }
            other => {
                return Err(usage(format!(
                    "-D: unknown command '{other}': use connect, publish, subscribe, unsubscribe, disconnect or will"
                )));
            }
        };
        if !allowed.contains(&packet) {
            return Err(usage(format!(
                "-D {cmd}: this subcommand sends no {} packet",
                cmd.to_uppercase()
            )));
        }
        let (value, pair) = match (name, values) {
            ("user-property", [k, v]) => (String::new(), Some((k.clone(), v.clone()))),
            ("user-property", _) => return Err(usage("-D user-property needs KEY VALUE")),
            (_, [v]) => (v.clone(), None),
            _ => return Err(usage(format!("-D {cmd} {name} takes one value"))),
        };
        let not_allowed = || {
            usage(format!(
                "-D: property '{name}' is not allowed on {}: use {}",
                packet.name(),
                packet.properties().join(", ")
            ))
        };
        let v = value.as_str();
        match packet {
            Packet::Connect => {
                let p = props.connect.get_or_insert_with(Default::default);
                match name {
                    "session-expiry-interval" => {
                        p.session_expiry = Some(number(name, v, "0-4294967295")?)
                    }
                    "receive-maximum" => {
                        let n: u16 = number(name, v, "1-65535")?;
                        if n == 0 {
                            return Err(usage("-D connect receive-maximum must be at least 1"));
                        }
                        p.receive_max = Some(n)
                    }
                    "maximum-packet-size" => {
                        let n: u32 = number(name, v, "1-268435460")?;
                        if n == 0 {
                            return Err(usage("-D connect maximum-packet-size must be at least 1"));
                        }
                        p.max_packet = Some(n)
                    }
                    "topic-alias-maximum" => p.topic_alias_max = Some(number(name, v, "0-65535")?),
                    "request-response-information" => {
                        p.request_response_info = Some(flag(name, v)? == 1)
                    }
                    "request-problem-information" => {
                        p.request_problem_info = Some(flag(name, v)? == 1)
                    }
                    "user-property" => p.user_properties.extend(pair),
                    "authentication-method" | "authentication-data" => {
                        return Err(usage(format!(
                            "-D connect {name}: enhanced authentication is not supported by smq"
                        )));
                    }
                    _ => return Err(not_allowed()),
                }
            }
            Packet::Publish => {
                let p = props.publish.get_or_insert_with(PublishProperties::default);
                match name {
                    "payload-format-indicator" => p.payload_format_indicator = Some(flag(name, v)?),
                    "message-expiry-interval" => {
                        p.message_expiry_interval = Some(number(name, v, "0-4294967295")?)
                    }
                    "content-type" => p.content_type = Some(value),
                    "response-topic" => p.response_topic = Some(value),
                    "correlation-data" => p.correlation_data = Some(Bytes::from(value)),
                    "topic-alias" => {
                        let n: u16 = number(name, v, "1-65535")?;
                        if n == 0 {
                            return Err(usage("-D publish topic-alias must be at least 1"));
                        }
                        p.topic_alias = Some(n)
                    }
                    "user-property" => p.user_properties.extend(pair),
                    _ => return Err(not_allowed()),
                }
            }
            Packet::Will => {
                let w = props.will.get_or_insert_with(Default::default);
                let p = &mut w.message;
                match name {
                    "will-delay-interval" => w.delay = number(name, v, "0-4294967295")?,
                    "payload-format-indicator" => p.payload_format_indicator = Some(flag(name, v)?),
                    "message-expiry-interval" => {
                        p.message_expiry_interval = Some(number(name, v, "0-4294967295")?)
                    }
                    "content-type" => p.content_type = Some(value),
                    "response-topic" => p.response_topic = Some(value),
                    "correlation-data" => p.correlation_data = Some(Bytes::from(value)),
                    "user-property" => p.user_properties.extend(pair),
                    _ => return Err(not_allowed()),
                }
            }
            Packet::Subscribe => {
                let p = props.subscribe.get_or_insert_with(Default::default);
                match name {
                    "subscription-identifier" => {
                        let n: u32 = number(name, v, "1-268435455")?;
                        if !(1..=268_435_455).contains(&n) {
                            return Err(usage(
                                "-D subscribe subscription-identifier must be 1-268435455",
                            ));
                        }
                        p.id = Some(n)
                    }
                    "user-property" => p.user_properties.extend(pair),
                    _ => return Err(not_allowed()),
                }
            }
            Packet::Unsubscribe => {
                let p = props.unsubscribe.get_or_insert_with(Default::default);
                match name {
                    "user-property" => p.user_properties.extend(pair),
                    _ => return Err(not_allowed()),
                }
            }
            Packet::Disconnect => {
                let p = props.disconnect.get_or_insert_with(Default::default);
                match name {
                    "session-expiry-interval" => {
                        p.session_expiry = Some(number(name, v, "0-4294967295")?)
                    }
                    "reason-string" => p.reason = Some(value),
                    "user-property" => p.user_properties.extend(pair),
                    _ => return Err(not_allowed()),
                }
            }
        }
    }
    Ok(props)
}

fn flag(name: &str, value: &str) -> anyhow::Result<u8> {
    match value {
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(usage(format!("-D {name}: '{value}' must be 0 or 1"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter()
            .map(|s| s.iter().map(|x| x.to_string()).collect())
            .collect()
    }

    const PUB: &[Packet] = &[
        Packet::Connect,
        Packet::Publish,
        Packet::Disconnect,
        Packet::Will,
    ];

    #[test]
    fn parses_publish_and_connect_properties() {
        let p = parse(
            &specs(&[
                &["publish", "content-type", "text/plain"],
                &["publish", "user-property", "k", "v"],
                &["publish", "user-property", "k", "w"],
                &["publish", "message-expiry-interval", "30"],
                &["connect", "session-expiry-interval", "60"],
                &["will", "will-delay-interval", "5"],
            ]),
            PUB,
        )
        .unwrap();
        let publish = p.publish.unwrap();
        assert_eq!(publish.content_type.as_deref(), Some("text/plain"));
        assert_eq!(publish.user_properties.len(), 2);
        assert_eq!(publish.message_expiry_interval, Some(30));
        assert_eq!(p.connect.unwrap().session_expiry, Some(60));
        assert_eq!(p.will.unwrap().delay, 5);
    }

    #[test]
    fn every_listed_name_is_taken_and_an_unknown_one_gets_the_list() {
        let all = [
            Packet::Connect,
            Packet::Publish,
            Packet::Will,
            Packet::Subscribe,
            Packet::Unsubscribe,
            Packet::Disconnect,
        ];
        for packet in all {
            for name in packet.properties() {
                let value = match *name {
                    "content-type" | "response-topic" | "correlation-data" | "reason-string" => "x",
                    _ => "1",
                };
                let mut spec = vec![packet.name(), name, value];
                if *name == "user-property" {
                    spec.push("v");
                }
                let result = parse(&specs(&[&spec]), &all);
                assert!(result.is_ok(), "{spec:?}: {}", result.unwrap_err());
            }
        }
        let err = parse(&specs(&[&["publish", "bogus", "1"]]), PUB)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'bogus' is not allowed on publish"), "{err}");
        for name in Packet::Publish.properties() {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn rejects_what_mosquitto_rejects() {
        for (spec, needle) in [
            (
                &["publish", "session-expiry-interval", "5"][..],
                "not allowed on publish",
            ),
            (
                &["subscribe", "user-property", "a", "b"][..],
                "sends no SUBSCRIBE",
            ),
            (&["bogus", "x", "y"][..], "unknown command"),
            (
                &["publish", "message-expiry-interval", "x"][..],
                "not a number",
            ),
            (
                &["publish", "content-type", "a", "b"][..],
                "takes one value",
            ),
            (&["publish", "user-property", "k"][..], "needs KEY VALUE"),
            (&["publish", "topic-alias", "0"][..], "at least 1"),
        ] {
            let err = parse(&specs(&[spec]), PUB).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec:?}: {err}");
        }
    }
}
