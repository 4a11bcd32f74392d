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
//! - [`transaction`]: RFC 3261 §17 server and client transactions as pure state machines (timers
//!   A–K and RFC 6026's L and M), and their tables on timer wheels.
//! - [`call`]: the pure call-control core (events and time in, actions out): inbound and outbound
//!   legs with hold/resume, and [`call::bridge`], the B2BUA coupling of a caller to forked legs.
//! - [`dialog`]: dialog state (RFC 3261 §12) and the requests loket sends within a dialog.
//! - [`digest`]: digest authentication (MD5 and SHA-256, RFC 7616/8760) against stored HA1 values,
//!   with stateless HMAC nonces.
//! - [`registrar`]: REGISTER as a pure core (bindings in, bindings out), and the location store
//!   trait with its in-process and Redis implementations.
//! - [`sdp`]: SDP offer/answer (RFC 3264) for G.711 and telephone-events, with hold directions.
//! - [`ratelimit`]: new calls per second, and failed authentications per source IP, bounded.
//! - [`trunk`]: the SIP trunk (the municipal PBX or a provider) that loket dials numbers through,
//!   and registration with it as a pure core; the client side of [`digest`] answers its challenges.
//! - [`service`]: the edge that runs all of this on the sockets: REGISTER, OPTIONS, and calls to
//!   configured numbers (answered by loket, or bridged to an agent's phones or a SIP URI), the
//!   application's calls to agents and to numbers through the trunk, and the trunk registration.
//!
//! Still to come (issue #3): WebSocket, TCP towards phones and trunks, DNS SRV/NAPTR targets,
//! RFC 4733 passthrough with the media engine.
//!
//! Errors: each failure domain has its own `thiserror` enum ([`message::MessageError`],
//! [`message::FramingError`], [`digest::ParseError`], [`registrar::StoreError`],
//! [`sdp::SdpError`]); socket failures stay `std::io::Error`; the [`call`] core cannot fail.
//! Nothing here panics on peer input.

pub mod call;
pub mod dialog;
pub mod digest;
pub mod message;
pub mod ratelimit;
pub mod registrar;
pub mod sdp;
pub mod service;
pub mod transaction;
pub mod transport;
pub mod trunk;
