//! loket-ivr: declarative IVR flows, their validation and a pure interpreter.
//!
//! - [`config`]: the TOML file as written (prompt catalog, opening hours, flows).
//! - [`Ivr::parse`] validates it into [`Flow`]s: references, prompts in NL, FR and EN, reachable
//!   nodes, no loop that never waits for the caller; each error names the file, flow and node.
//! - [`Session`]: one caller's way through a flow as a state machine (events and time in, actions
//!   out), ending in an [`Outcome`] for the router and the case draft.
//! - [`Waiting`]: what a queued caller hears: music, place and expected wait, a callback offer.
//! - [`numbers`]: numbers as words in NL, FR (Belgian) and EN, one prompt each.
//! - [`schedule`]: opening hours with closed days and exceptions.
//!
//! The demo municipality's flow is [`DEMO`]. Keypad identification uses
//! `loket_be::NationalRegisterNumber`; the digits never enter the attributes or the path.

pub mod config;
mod flow;
pub mod numbers;
pub mod schedule;
mod session;
mod waiting;

pub use flow::{ConfigError, Flow, Ivr, Language};
pub use session::{Action, End, Event, Input, Outcome, PromptRef, Session, Step};
pub use waiting::{Offer, WaitAction, WaitEvent, Waiting, WaitingConfig};

/// The demo flow, prompts and opening hours (`ivr/demo.toml`).
pub const DEMO: &str = include_str!("../demo.toml");
