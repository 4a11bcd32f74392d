//! loket-flows: per-channel orchestration from arrival to a routed work item and a case. Today:
//! `email` (mailboxes over IMAP to cases and work items). Voice, web forms, Facebook and the
//! automation rules join with their issues.

pub mod email;

#[cfg(feature = "testing")]
pub mod testing;
