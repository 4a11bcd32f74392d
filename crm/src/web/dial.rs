//! Calls the agent places from the console: their own (click-to-dial: from the workspace, a case
//! or a contact, or a number typed in) and its control, and the consultation of a transfer (the
//! caller waits while the agent calls a number or a colleague, then is put through or taken
//! back), with the consulted colleague's side of it; and the keypad that sends digits to the
//! other party of the agent's call. The calls themselves are the desk's (`Desk::dial`,
//! `Desk::consult`).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::routing::post;
use loket_be::PhoneNumber;
use loket_routing::model::AgentId;
use serde::Deserialize;

use super::session::{CsrfForm, NoFields};
use super::workspace::{Accepted, agent_of, holds, is_available_colleague, unavailable};
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::desk::{ConsultStep, Consulted, DialControl, DialFor};
use crate::records::cases::{self, CaseId};
use crate::records::users;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/workspace/dial", post(dial))
        .route("/workspace/dial/{action}", post(control))
        .route("/workspace/keypad", post(keypad))
        .route("/workspace/items/{item}/consult", post(consult))
        .route("/workspace/items/{item}/consult/{step}", post(consult_step))
        .route("/workspace/consultation/{action}", post(consultation))
}

/// A number typed in, in E.164.
pub(super) fn number_of(text: &str) -> Result<PhoneNumber, WebError> {
    PhoneNumber::parse(text).map_err(|error| WebError::BadRequest(format!("that number: {error}")))
}

#[derive(Deserialize)]
struct DialForm {
    number: String,
    /// The case the call is about; its contact's timeline gets it too.
    #[serde(default)]
    case_id: Option<i64>,
    /// The contact called, when there is no case.
    #[serde(default)]
    contact_id: Option<i64>,
}

async fn dial(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<DialForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let number = number_of(&form.number)?;
    let by = current.user.display_name.clone();
    let username = current.user.username.clone();
    let mut on = DialFor { case_id: None, contact_id: form.contact_id, by, username };
    if let Some(case_id) = form.case_id {
        let case = cases::get(&state.db, CaseId(case_id)).await?.ok_or(WebError::NotFound)?;
        on.case_id = Some(case.id);
        on.contact_id = case.contact_id.or(on.contact_id);
    }
    desk.dial(agent_of(&current), number, on).await?;
    Ok(Redirect::to("/workspace"))
}

/// `hangup`, `hold` or `resume` on the call the agent placed.
async fn control(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(action): Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let control = match action.as_str() {
        "hangup" => DialControl::HangUp,
        "hold" => DialControl::Hold(true),
        "resume" => DialControl::Hold(false),
        _ => return Err(WebError::NotFound),
    };
    desk.dial_control(agent_of(&current), control)?;
    Ok(Redirect::to("/workspace"))
}

#[derive(Deserialize)]
struct KeypadForm {
    digit: String,
}

async fn keypad(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<KeypadForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let mut chars = form.digit.chars();
    let digit = match (chars.next(), chars.next()) {
        (Some(digit @ ('0'..='9' | '*' | '#')), None) => digit,
        _ => return Err(WebError::BadRequest("a key is one of 0–9, * and #".into())),
    };
    desk.send_digit(agent_of(&current), digit)?;
    Ok(Redirect::to("/workspace"))
}

#[derive(Deserialize)]
struct ConsultForm {
    #[serde(default)]
    number: String,
    /// A colleague's id, in place of a number.
    #[serde(default)]
    agent: Option<i64>,
}

/// The agent calls `number`, or a colleague who is available, about the call of `item` while
/// its caller waits on hold.
async fn consult(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    CsrfForm { form, .. }: CsrfForm<ConsultForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let me = agent_of(&current);
    let item = holds(desk.as_ref(), me, item).await?;
    let consulted = match form.agent {
        Some(colleague) => {
            let user = users::get(&state.db, users::UserId(colleague)).await?;
            let agent = AgentId(colleague);
            let available = is_available_colleague(&state, desk.as_ref(), me, agent).await?;
            let Some(user) = user.filter(|_| available) else {
                return Err(WebError::BadRequest("that colleague is not available now".into()));
            };
            Consulted::Agent { agent, username: user.username }
        }
        None => Consulted::Number(number_of(&form.number)?),
    };
    desk.consult(item, ConsultStep::Start(consulted))?;
    Ok(Redirect::to("/workspace"))
}

/// The consulted colleague's side: `answer` the consultation that rings for them (on their
/// softphone), or `hangup`: decline it, or leave it once answered.
async fn consultation(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(action): Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let me = agent_of(&current);
    let answer = match action.as_str() {
        "answer" => true,
        "hangup" => false,
        _ => return Err(WebError::NotFound),
    };
    desk.answer_consultation(me, answer)?;
    Ok(Redirect::to("/workspace"))
}

/// `complete`: the caller talks to the consulted party and the agent wraps up; `cancel`: back
/// to the caller.
async fn consult_step(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((item, step)): Path<(u64, String)>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let item = holds(desk.as_ref(), agent_of(&current), item).await?;
    let step = match step.as_str() {
        "complete" => ConsultStep::Complete,
        "cancel" => ConsultStep::Cancel,
        _ => return Err(WebError::NotFound),
    };
    // A colleague consulted takes the call over: its wrap-up becomes theirs.
    if let (ConsultStep::Complete, Some(colleague)) = (&step, desk.consulted(item))
        && let Some(handed) = desk.item(item).await.map_err(unavailable)?
    {
        state.set_last_accepted(colleague, Accepted::of(&handed));
    }
    desk.consult(item, step)?;
    Ok(Redirect::to("/workspace"))
}
