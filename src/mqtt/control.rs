//! The packets that carry no message: PINGREQ and PINGRESP (3.1.1 §3.12-3.13), DISCONNECT
//! (§3.14; in 5.0 from either side, with a reason code) and AUTH (5.0 §3.15).

use bytes::{BufMut, BytesMut};

use super::props::{self, id, int, text};
use super::reason::{AuthCode, ClientDisconnectCode, ServerDisconnectCode};
use super::violation::Violation;
use super::wire::{Reader, put_packet, put_str, put_varint};

/// A DISCONNECT as it was decoded: `C` is the reason codes its sender may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect<C> {
    pub code: C,
    pub session_expiry: Option<u32>,
    pub reason: Option<String>,
    pub server_reference: Option<String>,
}

/// 3.1.1: nothing. 5.0: optionally a reason code, then optionally properties.
pub(super) fn parse_disconnect<C: TryFrom<u8>>(
    v5: bool,
    body: &[u8],
    normal: C,
    sender: &str,
) -> Result<Disconnect<C>, Violation> {
    let mut r = Reader::new(body, "DISCONNECT");
    let mut d = Disconnect {
        code: normal,
        session_expiry: None,
        reason: None,
        server_reference: None,
    };
    if v5 && !r.is_empty() {
        let b = r.u8()?;
        d.code = C::try_from(b).map_err(|_| {
            Violation::protocol(format!(
                "DISCONNECT with reason code {b:#04x}, not one a {sender} sends"
            ))
        })?;
        if !r.is_empty() {
            props::read(&mut r, props::DISCONNECT, |id, v| {
                match id {
                    id::SESSION_EXPIRY => d.session_expiry = Some(int(&v)),
                    id::REASON_STRING => d.reason = Some(text(&v)),
                    id::SERVER_REFERENCE => d.server_reference = Some(text(&v)),
                    _ => {}
                }
                Ok(())
            })?;
        }
    }
    // 3.1.1 §3.14: no variable header, no payload.
    r.end()?;
    Ok(d)
}

/// A client's DISCONNECT: a server's codes (0x8E session taken over, ...) are refused.
pub(super) fn parse_client_disconnect(
    v5: bool,
    body: &[u8],
) -> Result<Disconnect<ClientDisconnectCode>, Violation> {
    parse_disconnect(v5, body, ClientDisconnectCode::Success, "client")
}

/// A server's DISCONNECT. It may not carry a Session Expiry Interval [MQTT-3.14.2-2].
pub(super) fn parse_server_disconnect(
    v5: bool,
    body: &[u8],
) -> Result<Disconnect<ServerDisconnectCode>, Violation> {
    let d = parse_disconnect(v5, body, ServerDisconnectCode::Success, "server")?;
    if d.session_expiry.is_some() {
        return Err(Violation::protocol(
            "DISCONNECT from a server with a Session Expiry Interval (5.0 §3.14.2.2.2)",
        ));
    }
    Ok(d)
}

/// AUTH: optionally a reason code, then optionally properties (5.0 §3.15.2).
pub(super) fn parse_auth(body: &[u8]) -> Result<AuthCode, Violation> {
    let mut r = Reader::new(body, "AUTH");
    let mut code = AuthCode::Success;
    if !r.is_empty() {
        let b = r.u8()?;
        code = AuthCode::try_from(b)
            .map_err(|_| Violation::protocol(format!("AUTH with reason code {b:#04x}")))?;
        if !r.is_empty() {
            props::read(&mut r, props::AUTH, |_, _| Ok(()))?;
        }
    }
    r.end()?;
    Ok(code)
}

pub fn encode_pingreq(buf: &mut BytesMut) {
    buf.put_slice(&[0xC0, 0]);
}

pub fn encode_pingresp(buf: &mut BytesMut) {
    buf.put_slice(&[0xD0, 0]);
}

/// A v5 DISCONNECT from the server, with an optional reason string.
pub fn encode_disconnect(code: ServerDisconnectCode, reason: Option<&str>, buf: &mut BytesMut) {
    disconnect(code.number(), None, reason, buf);
}

/// A client's DISCONNECT: in 3.1.1 (or with nothing to say) the two-byte one; in 5.0 with a
/// reason code and, if given, a new Session Expiry Interval, a reason string and user
/// properties.
pub fn encode_client_disconnect(
    v5: bool,
    code: ClientDisconnectCode,
    session_expiry: Option<u32>,
    reason: Option<&str>,
    user_properties: &[(String, String)],
    buf: &mut BytesMut,
) -> anyhow::Result<()> {
    if !v5 {
        buf.put_slice(&[0xE0, 0]);
        return Ok(());
    }
    let mut strings: Vec<&[u8]> = reason.map(str::as_bytes).into_iter().collect();
    for (k, v) in user_properties {
        strings.extend([k.as_bytes(), v.as_bytes()]);
    }
    if let Some(n) = props::too_long(&strings) {
        anyhow::bail!("cannot encode DISCONNECT: a {n}-byte string, longer than MQTT allows");
    }
    disconnect_with(code.number(), session_expiry, reason, user_properties, buf);
    Ok(())
}

fn disconnect(code: u8, session_expiry: Option<u32>, reason: Option<&str>, buf: &mut BytesMut) {
    disconnect_with(code, session_expiry, reason, &[], buf);
}

fn disconnect_with(
    code: u8,
    session_expiry: Option<u32>,
    reason: Option<&str>,
    user_properties: &[(String, String)],
    buf: &mut BytesMut,
) {
    if session_expiry.is_none() && reason.is_none() && user_properties.is_empty() {
        // The short forms: "normal disconnection" with no properties (5.0 §3.14.2.1).
        if code == 0 {
            buf.put_slice(&[0xE0, 0]);
        } else {
            buf.put_slice(&[0xE0, 1, code]);
        }
        return;
    }
    let mut props = BytesMut::with_capacity(8 + reason.map_or(0, str::len));
    if let Some(v) = session_expiry {
        props.put_u8(id::SESSION_EXPIRY);
        props.put_u32(v);
    }
    if let Some(reason) = reason {
        props.put_u8(id::REASON_STRING);
        put_str(&mut props, reason);
    }
    props::write_user_properties(&mut props, user_properties);
    let mut body = BytesMut::with_capacity(5 + props.len());
    body.put_u8(code);
    put_varint(&mut body, props.len());
    body.put_slice(&props);
    put_packet(buf, 0xE0, &body);
}
