//! Reason codes (MQTT 5 §2.4; 3.1.1 §3.2.2.3 for CONNACK's return codes): the number, the
//! spec's name, words for people, and which packets may carry each. Every packet kind that the
//! spec restricts has a type of its own ([`PubAckCode`], [`SubAckCode`], ...), made from a byte
//! with `TryFrom<u8>`, so a code that a packet may not carry cannot be written at all.

use super::protocol::Protocol;

macro_rules! reason_codes {
    ($($(#[$doc:meta])* $name:ident = $num:literal, $words:literal;)*) => {
        /// Every MQTT 5 reason code. Numbers shared by several meanings (0x00 is Success,
        /// Normal Disconnection and Granted QoS 0) have one variant, named for the first.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum ReasonCode {
            $($(#[$doc])* $name = $num,)*
        }

        impl ReasonCode {
            /// Words for people: "not authorized".
            pub fn words(self) -> &'static str {
                match self {
                    $(ReasonCode::$name => $words,)*
                }
            }
        }

        impl TryFrom<u8> for ReasonCode {
            type Error = u8;
            fn try_from(b: u8) -> Result<ReasonCode, u8> {
                match b {
                    $($num => Ok(ReasonCode::$name),)*
                    _ => Err(b),
                }
            }
        }
    };
}

reason_codes! {
    Success = 0x00, "success";
    GrantedQos1 = 0x01, "granted QoS 1";
    GrantedQos2 = 0x02, "granted QoS 2";
    DisconnectWithWill = 0x04, "disconnect with will message";
    NoMatchingSubscribers = 0x10, "no matching subscribers";
    NoSubscriptionExisted = 0x11, "no subscription existed";
    ContinueAuthentication = 0x18, "continue authentication";
    ReAuthenticate = 0x19, "re-authenticate";
    UnspecifiedError = 0x80, "unspecified error";
    MalformedPacket = 0x81, "malformed packet";
    ProtocolError = 0x82, "protocol error";
    ImplementationSpecificError = 0x83, "implementation specific error";
    UnsupportedProtocolVersion = 0x84, "unsupported protocol version";
    ClientIdentifierNotValid = 0x85, "client identifier not valid";
    BadUserNameOrPassword = 0x86, "bad user name or password";
    NotAuthorized = 0x87, "not authorized";
    ServerUnavailable = 0x88, "server unavailable";
    ServerBusy = 0x89, "server busy";
    Banned = 0x8A, "banned";
    ServerShuttingDown = 0x8B, "server shutting down";
    BadAuthenticationMethod = 0x8C, "bad authentication method";
    KeepAliveTimeout = 0x8D, "keep alive timeout";
    SessionTakenOver = 0x8E, "session taken over";
    TopicFilterInvalid = 0x8F, "topic filter invalid";
    TopicNameInvalid = 0x90, "topic name invalid";
    PacketIdentifierInUse = 0x91, "packet identifier in use";
    PacketIdentifierNotFound = 0x92, "packet identifier not found";
    ReceiveMaximumExceeded = 0x93, "receive maximum exceeded";
    TopicAliasInvalid = 0x94, "topic alias invalid";
    PacketTooLarge = 0x95, "packet too large";
    MessageRateTooHigh = 0x96, "message rate too high";
    QuotaExceeded = 0x97, "quota exceeded";
    AdministrativeAction = 0x98, "administrative action";
    PayloadFormatInvalid = 0x99, "payload format invalid";
    RetainNotSupported = 0x9A, "retain not supported";
    QosNotSupported = 0x9B, "QoS not supported";
    UseAnotherServer = 0x9C, "use another server";
    ServerMoved = 0x9D, "server moved";
    SharedSubscriptionsNotSupported = 0x9E, "shared subscriptions not supported";
    ConnectionRateExceeded = 0x9F, "connection rate exceeded";
    MaximumConnectTime = 0xA0, "maximum connect time";
    SubscriptionIdentifiersNotSupported = 0xA1, "subscription identifiers not supported";
    WildcardSubscriptionsNotSupported = 0xA2, "wildcard subscriptions not supported";
}

impl ReasonCode {
    pub fn number(self) -> u8 {
        self as u8
    }

    /// 0x80 and above are failures (5.0 §2.4).
    pub fn is_error(self) -> bool {
        self.number() >= 0x80
    }

    /// The 3.1.1 CONNACK return code closest to this CONNACK reason code (3.1.1 §3.2.2.3):
    /// 3.1.1 has six, so every refusal it has no word for is "server unavailable".
    pub fn v311_connack(self) -> u8 {
        match self {
            ReasonCode::Success => 0,
            ReasonCode::UnsupportedProtocolVersion => 1,
            ReasonCode::ClientIdentifierNotValid => 2,
            ReasonCode::BadUserNameOrPassword => 4,
            ReasonCode::NotAuthorized | ReasonCode::BadAuthenticationMethod => 5,
            _ => 3,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:#04x})", self.words(), self.number())
    }
}

/// A packet kind's own reason codes: a subset of [`ReasonCode`] that converts into it, and
/// from a byte only when the packet may carry it.
macro_rules! packet_codes {
    ($(#[$doc:meta])* $name:ident: $($v:ident),*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($v,)*
        }

        impl From<$name> for ReasonCode {
            fn from(c: $name) -> ReasonCode {
                match c {
                    $($name::$v => ReasonCode::$v,)*
                }
            }
        }

        impl TryFrom<u8> for $name {
            type Error = u8;
            fn try_from(b: u8) -> Result<$name, u8> {
                match ReasonCode::try_from(b)? {
                    $(ReasonCode::$v => Ok($name::$v),)*
                    _ => Err(b),
                }
            }
        }

        impl $name {
            pub fn number(self) -> u8 {
                ReasonCode::from(self).number()
            }
        }
    };
}

packet_codes! {
    /// CONNACK (5.0 §3.2.2.2). In 3.1.1 the encoder sends [`ReasonCode::v311_connack`].
    ConnAckCode: Success, UnspecifiedError, MalformedPacket, ProtocolError,
    ImplementationSpecificError, UnsupportedProtocolVersion, ClientIdentifierNotValid,
    BadUserNameOrPassword, NotAuthorized, ServerUnavailable, ServerBusy, Banned,
    BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge, QuotaExceeded,
    PayloadFormatInvalid, RetainNotSupported, QosNotSupported, UseAnotherServer, ServerMoved,
    ConnectionRateExceeded
}

packet_codes! {
    /// PUBACK and PUBREC (5.0 §3.4.2.1, §3.5.2.1), and 0x95 Packet Too Large, which the
    /// spec's list lacks but Mosquitto sends for a payload over its limit, and so does smq
    /// (see [`PubAckCode::in_spec`]).
    PubAckCode: Success, NoMatchingSubscribers, UnspecifiedError, ImplementationSpecificError,
    NotAuthorized, TopicNameInvalid, PacketIdentifierInUse, QuotaExceeded, PayloadFormatInvalid,
    PacketTooLarge
}

impl PubAckCode {
    pub fn is_error(self) -> bool {
        ReasonCode::from(self).is_error()
    }

    /// Whether the spec lists the code for PUBACK and PUBREC: what a decoder accepts.
    pub fn in_spec(self) -> bool {
        self != PubAckCode::PacketTooLarge
    }
}

packet_codes! {
    /// PUBREL and PUBCOMP (5.0 §3.6.2.1, §3.7.2.1).
    PubRelCode: Success, PacketIdentifierNotFound
}

packet_codes! {
    /// SUBACK (5.0 §3.9.3): the granted QoS or why not. 3.1.1 has 0, 1, 2 and 0x80 alone.
    SubAckCode: Success, GrantedQos1, GrantedQos2, UnspecifiedError,
    ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse,
    QuotaExceeded, SharedSubscriptionsNotSupported, SubscriptionIdentifiersNotSupported,
    WildcardSubscriptionsNotSupported
}

packet_codes! {
    /// UNSUBACK (5.0 §3.11.3).
    UnsubAckCode: Success, NoSubscriptionExisted, UnspecifiedError,
    ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse
}

packet_codes! {
    /// DISCONNECT as a client may send it (5.0 §3.14.2.1).
    ClientDisconnectCode: Success, DisconnectWithWill, UnspecifiedError, MalformedPacket,
    ProtocolError, ImplementationSpecificError, TopicNameInvalid, ReceiveMaximumExceeded,
    TopicAliasInvalid, PacketTooLarge, MessageRateTooHigh, QuotaExceeded, AdministrativeAction,
    PayloadFormatInvalid
}

packet_codes! {
    /// DISCONNECT as a server may send it (5.0 §3.14.2.1).
    ServerDisconnectCode: Success, UnspecifiedError, MalformedPacket, ProtocolError,
    ImplementationSpecificError, NotAuthorized, ServerBusy, ServerShuttingDown,
    KeepAliveTimeout, SessionTakenOver, TopicFilterInvalid, TopicNameInvalid,
    ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge, MessageRateTooHigh,
    QuotaExceeded, AdministrativeAction, PayloadFormatInvalid, RetainNotSupported,
    QosNotSupported, UseAnotherServer, ServerMoved, SharedSubscriptionsNotSupported,
    ConnectionRateExceeded, MaximumConnectTime, SubscriptionIdentifiersNotSupported,
    WildcardSubscriptionsNotSupported
}

packet_codes! {
    /// AUTH (5.0 §3.15.2.1).
    AuthCode: Success, ContinueAuthentication, ReAuthenticate
}

impl SubAckCode {
    pub fn is_error(self) -> bool {
        ReasonCode::from(self).is_error()
    }

    /// The success code for a granted QoS (0, 1 or 2).
    pub fn granted(qos: u8) -> SubAckCode {
        match qos {
            0 => SubAckCode::Success,
            1 => SubAckCode::GrantedQos1,
            _ => SubAckCode::GrantedQos2,
        }
    }
}

/// The words for a byte that any packet may carry: success and the failures. The rest
/// (0x01 granted QoS 1, 0x10 no matching subscribers, ...) mean something in one packet kind
/// only, and each packet's words below name the ones it has.
fn words_of(code: u8) -> &'static str {
    match ReasonCode::try_from(code) {
        Ok(c) if c == ReasonCode::Success || (c.is_error() && code != 0x92) => c.words(),
        _ => "unknown reason",
    }
}

/// CONNACK's code in words: a 3.1.1 return code, or a v5 reason code.
pub fn connack_words(proto: Protocol, code: u8) -> &'static str {
    match (proto, code) {
        (Protocol::V311, 1) => "unacceptable protocol version",
        (Protocol::V311, 2) => "client identifier rejected",
        (Protocol::V311, 3) => "server unavailable",
        (Protocol::V311, 4) => "bad username or password",
        (Protocol::V311, 5) => "not authorised",
        // A 3.1.1 code in answer to a v5 CONNECT: the broker does not speak MQTT 5.
        (Protocol::V5, 1) => {
            "unacceptable protocol version: the broker speaks only MQTT 3.1.1 (use -V mqttv311)"
        }
        (Protocol::V5, _) => words_of(code),
        _ => "unknown reason",
    }
}

/// DISCONNECT's code in words.
pub fn disconnect_words(code: u8) -> &'static str {
    match code {
        0x00 => "normal disconnection",
        0x04 => ReasonCode::DisconnectWithWill.words(),
        _ => words_of(code),
    }
}

/// PUBACK/PUBREC/PUBCOMP codes in words.
pub fn delivery_words(code: u8) -> &'static str {
    match code {
        0x10 => ReasonCode::NoMatchingSubscribers.words(),
        0x92 => ReasonCode::PacketIdentifierNotFound.words(),
        _ => words_of(code),
    }
}

/// SUBACK codes in words; 3.1.1 has only 0x80 for a refusal.
pub fn subscribe_words(code: u8) -> &'static str {
    match code {
        0x80 => "refused",
        _ => words_of(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips_and_has_words() {
        let mut known = 0;
        for b in 0..=255u8 {
            if let Ok(c) = ReasonCode::try_from(b) {
                known += 1;
                assert_eq!(c.number(), b);
                assert!(!c.words().is_empty());
                assert_eq!(c.is_error(), b >= 0x80);
            }
        }
        assert_eq!(known, 43);
        // The spec's name (5.0 §2.4) is the variant's.
        assert_eq!(format!("{:?}", ReasonCode::NotAuthorized), "NotAuthorized");
        assert_eq!(
            ReasonCode::QuotaExceeded.to_string(),
            "quota exceeded (0x97)"
        );
    }

    #[test]
    fn packet_codes_refuse_what_their_packet_may_not_carry() {
        // What the broker's decoder accepted from a client before these types existed.
        let pub_codes = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
        let rel_codes = [0x00, 0x92];
        let disconnect_codes = [
            0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        ];
        for b in 0..=255u8 {
            let in_spec = PubAckCode::try_from(b).is_ok_and(PubAckCode::in_spec);
            assert_eq!(in_spec, pub_codes.contains(&b), "{b:#x}");
            assert_eq!(PubRelCode::try_from(b).is_ok(), rel_codes.contains(&b));
            assert_eq!(
                ClientDisconnectCode::try_from(b).is_ok(),
                disconnect_codes.contains(&b)
            );
            assert_eq!(
                AuthCode::try_from(b).is_ok(),
                matches!(b, 0x00 | 0x18 | 0x19)
            );
            if let Ok(c) = SubAckCode::try_from(b) {
                assert_eq!(c.number(), b);
            }
        }
        assert_eq!(
            ServerDisconnectCode::try_from(0x8E),
            Ok(ServerDisconnectCode::SessionTakenOver)
        );
        assert!(ClientDisconnectCode::try_from(0x8E).is_err());
        assert_eq!(SubAckCode::granted(2).number(), 2);
    }

    #[test]
    fn v311_connack_codes() {
        use ReasonCode::*;
        let codes = [
            Success,
            UnsupportedProtocolVersion,
            ClientIdentifierNotValid,
            BadUserNameOrPassword,
            NotAuthorized,
            ServerUnavailable,
            MalformedPacket,
            QuotaExceeded,
        ];
        assert_eq!(
            codes.map(ReasonCode::v311_connack),
            [0, 1, 2, 4, 5, 3, 3, 3]
        );
    }

    #[test]
    fn words_by_packet() {
        assert_eq!(connack_words(Protocol::V311, 5), "not authorised");
        assert_eq!(connack_words(Protocol::V5, 0x87), "not authorized");
        assert_eq!(disconnect_words(0), "normal disconnection");
        assert_eq!(disconnect_words(0x8E), "session taken over");
        assert_eq!(delivery_words(0x10), "no matching subscribers");
        assert_eq!(subscribe_words(0x80), "refused");
        assert_eq!(subscribe_words(0xFF), "unknown reason");
        // A code that means something in another packet only.
        assert_eq!(subscribe_words(0x10), "unknown reason");
        assert_eq!(connack_words(Protocol::V5, 0x92), "unknown reason");
        assert_eq!(delivery_words(0x92), "packet identifier not found");
    }
}
