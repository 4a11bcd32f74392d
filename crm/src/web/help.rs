//! Help flags: an agent asks a supervisor for help, with a message, about the work in hand; the
//! supervisor answers with messages that only that agent sees, and lowers the flag. Each step is
//! written on the case's timeline (internal entries), so the exchange stays with the work. The
//! open threads live in this process: a second node's supervisors do not see them (yet).

use serde::Serialize;

use loket_routing::model::AgentId;

use super::{AppState, CurrentUser, WebError};
use crate::records::timeline::{self, NewEntry, Summary};

/// One agent's open request for help.
#[derive(Debug, Clone, Serialize)]
pub struct HelpThread {
    /// When the agent asked (milliseconds since the epoch).
    pub since: i64,
    /// The case of the work the agent had in hand, whose timeline keeps the exchange.
    #[serde(skip)]
    pub case_id: Option<i64>,
    pub messages: Vec<HelpMessage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelpMessage {
    pub author: String,
    /// From the supervisor (else from the agent).
    pub supervisor: bool,
    pub text: String,
    pub at: i64,
}

/// The longest message kept; a longer one is refused rather than cut.
pub const MAX_MESSAGE: usize = 2_000;

/// A message as sent: trimmed, and refused when too long.
pub fn message_text(text: &str) -> Result<String, WebError> {
    let text = text.trim();
    if text.chars().count() > MAX_MESSAGE {
        return Err(WebError::BadRequest(format!("a help message holds at most {MAX_MESSAGE} characters")));
    }
    Ok(text.to_owned())
}

/// Writes a step of the exchange on the case's timeline: `key` names it, the message is its body.
pub async fn note(
    state: &AppState,
    current: &CurrentUser,
    case_id: Option<i64>,
    key: &str,
    message: Option<&str>,
) -> Result<(), WebError> {
    let Some(case_id) = case_id else { return Ok(()) };
    let name = &current.user.display_name;
    let entry = NewEntry {
        case_id: Some(case_id),
        contact_id: None,
        kind: "help",
        actor_name: name,
        public: false,
        summary: Summary::new(key).arg("name", name.as_str()),
        body: message.filter(|message| !message.is_empty()).map(str::to_owned),
    };
    let mut conn = state.db.pool().acquire().await?;
    timeline::append(&mut conn, &entry, state.clock.now()).await?;
    Ok(())
}

/// Lowers the help flag of `agent` (the agent no longer needs help, or a supervisor helped),
/// notes it on the case's timeline, and tells the consoles.
pub async fn lower(state: &AppState, current: &CurrentUser, agent: AgentId) -> Result<(), WebError> {
    let desk = state.desk()?;
    if let Some(thread) = state.lower_help(agent) {
        note(state, current, thread.case_id, "timeline-help-done", None).await?;
    }
    desk.changed(agent);
    Ok(())
}
