//! loket-sip: SIP for loket. It is the only crate that imports rsipstack, and it uses only its
//! `sip` module (a fork of rsip) for the message types; `sip/NOTES.md` records the measurements
//! behind that choice.
//!
//! What exists so far:
//! - [`message`]: the entry point for bytes from a transport. It frames (Content-Length over TCP),
//!   bounds (size, header count), validates (RFC 3261 §7, §8.2, §18.3, §20) and parses a message,
//!   or says how to refuse it: a stateless reply for requests that can be answered, a drop otherwise.
//! - [`transport`]: UDP and TCP sockets feeding the entry point and answering its refusals.
//! - [`transaction`]: RFC 3261 §17.2 server transactions as pure state machines (timers G, H, I,
//!   J and RFC 6026's L).
//! - [`call`]: the pure call-control core (events and time in, actions out), so far the inbound leg.
//!
//! Still to come (issue #3): WebSocket, client transactions and the transaction table with its
//! timer wheel, dialogs, the registrar,
//! outbound legs and the B2BUA.
//!
//! Errors: each failure domain has its own `thiserror` enum ([`message::MessageError`],
//! [`message::FramingError`]); socket failures stay `std::io::Error`; the [`call`] core cannot
//! fail. Nothing here panics on peer input.

pub mod call;
pub mod message;
pub mod transaction;
pub mod transport;
