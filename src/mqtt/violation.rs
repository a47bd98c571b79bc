//! What a decoder reports when a packet breaks the protocol: the reason code, the rule in
//! words, and whether the peer is owed an answer before the connection closes.

use super::protocol::Protocol;
use super::reason::{ConnAckCode, ReasonCode};

/// What went wrong with a packet received, and what the receiver must do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The v5 reason code: malformed, protocol error, too large, ...
    pub code: ReasonCode,
    pub why: String,
    /// Which protocol's packet to answer with before closing: a CONNACK from `decode_connect`
    /// (see [`Violation::connack_code`]), a DISCONNECT from the other decoders (always V5
    /// there). None: close the connection without a word.
    pub answer: Option<Protocol>,
}

impl Violation {
    pub fn new(code: ReasonCode, why: impl Into<String>) -> Violation {
        Violation {
            code,
            why: why.into(),
            answer: None,
        }
    }

    /// Malformed Packet (0x81): the bytes do not parse.
    pub fn malformed(why: impl Into<String>) -> Violation {
        Violation::new(ReasonCode::MalformedPacket, why)
    }

    /// Protocol Error (0x82): the bytes parse, but break a rule.
    pub fn protocol(why: impl Into<String>) -> Violation {
        Violation::new(ReasonCode::ProtocolError, why)
    }

    /// The code to put in the CONNACK that answers a refused CONNECT, if one is owed.
    pub fn connack_code(&self) -> Option<ConnAckCode> {
        self.answer?;
        Some(ConnAckCode::try_from(self.code.number()).unwrap_or(ConnAckCode::UnspecifiedError))
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (reason code {:#04x})", self.why, self.code.number())
    }
}

impl std::error::Error for Violation {}
