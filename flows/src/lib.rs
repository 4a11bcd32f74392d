//! loket-flows: per-channel orchestration from arrival to a routed work item and a case. Today:
//! `voice` (calls through the IVR to cases and work items) and `email` (mailboxes over IMAP to
//! cases and work items), both handing work to the router through `work::WorkItems`, and `desk`,
//! the console's view of the router and the calls. Facebook and the automation rules join with
//! their issues.

pub mod desk;
pub mod email;
pub mod voice;
pub mod work;

#[cfg(feature = "testing")]
pub mod testing;
