//! The protocol version a connection speaks, which decides how most packets are read and
//! written.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V311,
    V5,
}
