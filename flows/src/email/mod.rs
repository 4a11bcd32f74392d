//! E-mail to case (issue 9): mailboxes polled over IMAP or delivered to by the MX over SMTP, each
//! message classified (a person or a machine), threaded onto its case or opening a new one with
//! an acknowledgement, and each new case handed to the router as an e-mail work item.
//!
//! - `config`: the mailboxes and their rules (service, case type, queue, skills, language).
//! - `message`, `classify`, `thread`: pure functions over a message's bytes and the
//!   evidence the caller looked up; tested on their own.
//! - `intake::Processor`: one message into the CRM, in one transaction.
//! - `route`: new cases to the router, through `crate::work::WorkItems`.
//! - `poller::MailIntake`: the IMAP edge (IDLE or polling, back-off, state for the admin page),
//!   which also starts the SMTP listener and the routing task.
//! - `smtp`: the optional SMTP listener for the MX (a pure session core and its tokio edge).
//!
//! Errors: `ConfigError` for a bad file, `IntakeError` for one message, `MailboxError` for a
//! mailbox's connection (stored on its state and retried), `RouteError` for the router, and
//! `io::Error` from `SmtpListener::start` for an address it cannot listen on.
//! **Invariant:** no address, name, subject or body of a citizen is ever logged.

pub mod classify;
pub mod config;
pub mod intake;
pub mod message;
pub mod poller;
pub mod route;
pub mod smtp;
pub mod thread;

pub use config::{ConfigError, IntakeConfig, MailboxConfig, Security};
pub use intake::{Outcome, Processor, Source};
pub use poller::{IntakeEvent, MailIntake};
pub use smtp::{SmtpLimits, SmtpListener};
