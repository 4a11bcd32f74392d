//! The case side of a call: the draft created before the caller waits, so that an abandoned call
//! still leaves a case, and what later happens to the call on its timeline.

use std::collections::HashMap;

use loket_be::PhoneNumber;
use loket_crm::clock::Millis;
use loket_crm::db::Db;
use loket_crm::i18n::Language;
use loket_crm::records::audit::Actor;
use loket_crm::records::cases::{self, CaseError, CaseInput};
use loket_crm::records::contacts::{self, ContactId};
use loket_crm::records::documents::{self, DocumentStore, Upload};
use loket_crm::records::timeline::{self, NewEntry, Summary};
use loket_crm::records::{case_types, directory};
use loket_crm::register::{Identified, NationalRegister, identify};
use loket_ivr::{Input, Outcome, Step};

/// The timeline's author of what the IVR did.
pub(super) const ACTOR: &str = "loket IVR";
/// The purpose of the register lookups and caller-ID matches in the audit log.
const PURPOSE: &str = "identification of a caller (IVR)";

#[derive(Debug, thiserror::Error)]
pub(super) enum DraftError {
    #[error("the queue {0} is not in the directory")]
    UnknownQueue(String),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The case a call became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Draft {
    pub case_id: i64,
    pub contact_id: Option<ContactId>,
}

/// Who is calling: the national number typed in (from the CRM, else from the register), else a
/// caller ID that belongs to exactly one contact. A failing register leaves the caller
/// unidentified: the call goes on.
pub(super) async fn identify_caller(
    db: &Db,
    register: &dyn NationalRegister,
    outcome: &Outcome,
    caller: &str,
    now: Millis,
) -> Option<ContactId> {
    if let Some(number) = &outcome.national_number {
        match identify(db, register, Actor::System, PURPOSE, number, now).await {
            Ok(Identified::Known(id) | Identified::Created(id)) => return Some(id),
            Ok(Identified::Unknown) => {}
            Err(error) => tracing::warn!(%error, "identifying a caller failed; the call goes on unidentified"),
        }
    }
    let phone = PhoneNumber::parse(caller).ok()?;
    match contacts::by_phone(db, Actor::System, PURPOSE, &phone, 2, now).await {
        Ok(found) if found.len() == 1 => Some(found[0].0),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "matching a caller ID failed");
            None
        }
    }
}

/// The case of a call that the IVR sent to `queue`: its service from the IVR (else the queue's),
/// its request type, the caller's contact, and the way through the IVR on its timeline.
#[allow(clippy::too_many_arguments)]
pub(super) async fn create_draft(
    db: &Db,
    queue_services: &HashMap<String, String>,
    outcome: &Outcome,
    queue: &str,
    priority: i32,
    contact_id: Option<ContactId>,
    caller: &str,
    now: Millis,
) -> Result<Draft, DraftError> {
    let service = match outcome.attributes.get("service") {
        Some(service) => service.clone(),
        None => queue_services.get(queue).cloned().ok_or_else(|| DraftError::UnknownQueue(queue.to_owned()))?,
    };
    let case_type = outcome.attributes.get("request_type").cloned().unwrap_or_default();
    let subject = subject(db, &service, &case_type, outcome.language).await?;
    let input = CaseInput {
        contact_id: contact_id.map(|id| id.0),
        account_id: None,
        service_code: service,
        case_type,
        channel: "phone".to_owned(),
        support_line: 1,
        priority: i64::from(priority),
        owner_id: None,
        queue_code: Some(queue.to_owned()),
        subject,
        custom_fields: serde_json::Map::new(),
    };
    let mut tx = db.pool().begin().await?;
    let (case_id, _number) = cases::insert(&mut tx, &input, now.year(), ACTOR, now).await?;
    let entry = NewEntry {
        case_id: Some(case_id.0),
        contact_id: input.contact_id,
        kind: "call",
        actor_name: ACTOR,
        public: false,
        summary: Summary::new("timeline-call-in")
            .arg("caller", shown_caller(caller))
            .arg("path", path_text(&outcome.path)),
        body: None,
    };
    timeline::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(Draft { case_id: case_id.0, contact_id })
}

#[derive(Debug, thiserror::Error)]
pub(super) enum AttachError {
    #[error("reading the recording: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Document(#[from] documents::DocumentError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A call's recording among its case's documents, named after the case and the time.
pub(super) async fn attach_recording(
    db: &Db,
    store: &dyn DocumentStore,
    draft: Draft,
    path: &std::path::Path,
    now: Millis,
) -> Result<(), AttachError> {
    let bytes = tokio::fs::read(path).await?;
    let stamp = time::OffsetDateTime::from_unix_timestamp(now.0.div_euclid(1000))
        .map(|at| {
            format!(
                "{:04}{:02}{:02}-{:02}{:02}{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )
        })
        .unwrap_or_default();
    let file_name = format!("call-{}-{stamp}.wav", draft.case_id);
    let upload = Upload {
        case_id: draft.case_id,
        file_name: &file_name,
        content_type: "audio/wav",
        bytes: &bytes,
        uploaded_by: ACTOR,
    };
    let mut conn = db.pool().acquire().await?;
    documents::store(&mut conn, store, &upload, now).await?;
    Ok(())
}

/// The caller hung up while waiting.
pub(super) async fn abandoned(db: &Db, draft: Draft, waited_seconds: u64, now: Millis) -> Result<(), sqlx::Error> {
    let summary = Summary::new("timeline-call-abandoned").arg("seconds", waited_seconds.to_string());
    note(db, draft, summary, now).await
}

/// The caller chose to be called back; the work item keeps its place.
pub(super) async fn callback_requested(db: &Db, draft: Draft, caller: &str, now: Millis) -> Result<(), sqlx::Error> {
    note(db, draft, Summary::new("timeline-callback-requested").arg("caller", shown_caller(caller)), now).await
}

/// The agent sent the caller to a number outside, which answered.
pub(super) async fn transferred_to_number(
    db: &Db,
    draft: Draft,
    number: &PhoneNumber,
    now: Millis,
) -> Result<(), sqlx::Error> {
    note(db, draft, Summary::new("timeline-transferred-to-number").arg("number", number.e164()), now).await
}

/// A call loket placed (a callback, an agent's own call) on the timeline of its case, else of
/// the contact it was made to: how long it lasted, or that nobody answered. `by`: the agent.
pub(super) async fn call_out(
    db: &Db,
    case_id: Option<i64>,
    contact_id: Option<i64>,
    by: &str,
    number: &PhoneNumber,
    talked_seconds: Option<u64>,
    now: Millis,
) -> Result<(), sqlx::Error> {
    if case_id.is_none() && contact_id.is_none() {
        return Ok(());
    }
    let summary = match talked_seconds {
        Some(seconds) => Summary::new("timeline-call-out").arg("seconds", seconds.to_string()),
        None => Summary::new("timeline-call-out-unanswered"),
    };
    let entry = NewEntry {
        case_id,
        contact_id,
        kind: "call",
        actor_name: by,
        public: false,
        summary: summary.arg("number", number.e164()),
        body: None,
    };
    let mut conn = db.pool().acquire().await?;
    timeline::append(&mut conn, &entry, now).await
}

async fn note(db: &Db, draft: Draft, summary: Summary, now: Millis) -> Result<(), sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    let entry = NewEntry {
        case_id: Some(draft.case_id),
        contact_id: draft.contact_id.map(|id| id.0),
        kind: "call",
        actor_name: ACTOR,
        public: false,
        summary,
        body: None,
    };
    timeline::append(&mut conn, &entry, now).await
}

/// The request type's name in the caller's language, else the service's.
async fn subject(db: &Db, service: &str, case_type: &str, language: Language) -> Result<String, sqlx::Error> {
    if let Some(found) = case_types::get(db, case_type).await? {
        return Ok(found.name.get(language).to_owned());
    }
    let services = directory::services(db).await?;
    Ok(services
        .iter()
        .find(|found| found.code == service)
        .map_or_else(|| service.to_owned(), |found| found.names.get(language).to_owned()))
}

/// A withheld number shows as such rather than as an empty string.
fn shown_caller(caller: &str) -> String {
    match PhoneNumber::parse(caller) {
        Ok(phone) => phone.e164().to_owned(),
        Err(_) if caller.is_empty() || caller.eq_ignore_ascii_case("anonymous") => "—".to_owned(),
        Err(_) => caller.to_owned(),
    }
}

/// The choices made in the IVR, node by node: `language 1 › service 1 › identify ✓`.
fn path_text(path: &[Step]) -> String {
    let shown: Vec<String> = path
        .iter()
        .filter_map(|step| {
            let input = match step.input {
                Input::Passed => return None,
                Input::Choice(key) => key.to_string(),
                Input::Entered => "…".to_owned(),
                Input::Identified => "✓".to_owned(),
                Input::Skipped => "#".to_owned(),
                Input::NoInput => "∅".to_owned(),
                Input::Invalid => "✗".to_owned(),
                // The next node shows where the flow went; a third mark would read as a third try.
                Input::GaveUp | Input::Open | Input::Closed => return None,
            };
            Some(format!("{} {input}", step.node))
        })
        .collect();
    shown.join(" › ")
}
