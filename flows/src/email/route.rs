//! New cases become work items in the router, through [`WorkItems`].

use loket_crm::clock::Millis;
use loket_crm::db::Db;
use loket_crm::records::inbound_mail::{self, Unrouted};
use loket_routing::error::StoreError;
use loket_routing::model::Channel;

use super::config::IntakeConfig;
use crate::work::{WorkItems, case_item};

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the router refused the work item of case {case_id}: {source}")]
    Router { case_id: i64, source: StoreError },
}

/// Hands every new case the router does not have yet to it: those just committed, and after a
/// restart those whose process stopped between the commit and the router. Returns how many.
/// A case whose mailbox is no longer configured is routed without skills; one whose queue the
/// router refuses stays for the next pass, with the error returned.
pub async fn route_pending(
    db: &Db,
    config: &IntakeConfig,
    work: &impl WorkItems,
    now: impl Fn() -> Millis,
) -> Result<usize, RouteError> {
    let mut routed = 0;
    loop {
        let batch = inbound_mail::unrouted(db, 100).await?;
        if batch.is_empty() {
            return Ok(routed);
        }
        for pending in &batch {
            let Unrouted { inbound_id, mailbox, case_id, queue_code, language } = pending;
            let mailbox = config.mailbox(mailbox);
            let language = language.unwrap_or(config.intake.default_language);
            let queue = queue_code.clone().or_else(|| mailbox.map(|mailbox| mailbox.queue_for(language)));
            let skills = mailbox.map(|mailbox| mailbox.skills.as_slice()).unwrap_or_default();
            let queue = queue.as_deref().unwrap_or_default();
            let item = case_item(Channel::Email, queue, skills, language.code(), *case_id);
            let id = work.submit(item).await.map_err(|source| RouteError::Router { case_id: *case_id, source })?;
            inbound_mail::mark_routed(db, *inbound_id, id.0, now()).await?;
            routed += 1;
        }
    }
}
