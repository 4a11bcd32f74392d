//! loket-sip: SIP for loket. It is the only crate that imports rsipstack, and it uses only its
//! `sip` module (a fork of rsip) for the message types; `sip/NOTES.md` records the measurements
//! behind that choice.
//!
//! What exists so far:
//! - [`message`]: the entry point for bytes from a transport. It frames (Content-Length over TCP),
//!   bounds (size, header count), validates (RFC 3261 §7, §8.2, §18.3, §20) and parses a message,
//!   or says how to refuse it: a stateless reply for requests that can be answered, a drop otherwise.
//! - [`transport`]: UDP and TCP sockets feeding the entry point and answering its refusals; later
//!   answers go back through each message's [`transport::ReplyPath`].
//! - [`transaction`]: RFC 3261 §17.2 server transactions as pure state machines (timers G, H, I,
//!   J and RFC 6026's L), and their table on a timer wheel.
//! - [`call`]: the pure call-control core (events and time in, actions out), so far the inbound leg.
//! - [`digest`]: digest authentication (MD5 and SHA-256, RFC 7616/8760) against stored HA1 values,
//!   with stateless HMAC nonces.
//! - [`registrar`]: REGISTER as a pure core (bindings in, bindings out), and the location store
//!   trait with its in-process and Redis implementations.
//! - [`ratelimit`]: failed authentications per source IP, bounded.
//! - [`service`]: the edge that runs all of this on the sockets: REGISTER, OPTIONS, and interim
//!   answers for the rest (INVITE 480 until calls are wired).
//!
//! Still to come (issue #3): WebSocket, client transactions, dialogs, calls through the service,
//! outbound legs and the B2BUA.
//!
//! Errors: each failure domain has its own `thiserror` enum ([`message::MessageError`],
//! [`message::FramingError`], [`digest::ParseError`], [`registrar::StoreError`]); socket failures stay `std::io::Error`; the [`call`] core cannot
//! fail. Nothing here panics on peer input.

pub mod call;
pub mod digest;
pub mod message;
pub mod ratelimit;
pub mod registrar;
pub mod service;
pub mod transaction;
pub mod transport;
