//! Calls the agent places from the console (click-to-dial: from the workspace, a case or a
//! contact, or a number typed in), their control, and the keypad that sends digits to the other
//! party of the agent's call. The call itself is the desk's (`Desk::dial`): dialled through the
//! SIP trunk from the agent's browser softphone.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::routing::post;
use loket_be::PhoneNumber;
use serde::Deserialize;

use super::session::{CsrfForm, NoFields};
use super::workspace::agent_of;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::desk::{DialControl, DialFor};
use crate::records::cases::{self, CaseId};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/workspace/dial", post(dial))
        .route("/workspace/dial/{action}", post(control))
        .route("/workspace/keypad", post(keypad))
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
    let number =
        PhoneNumber::parse(&form.number).map_err(|error| WebError::BadRequest(format!("that number: {error}")))?;
    let mut on = DialFor { case_id: None, contact_id: form.contact_id, by: current.user.display_name.clone() };
    if let Some(case_id) = form.case_id {
        let case = cases::get(&state.db, CaseId(case_id)).await?.ok_or(WebError::NotFound)?;
        on.case_id = Some(case.id);
        on.contact_id = case.contact_id.or(on.contact_id);
    }
    desk.dial(agent_of(&current), number, on).await.map_err(|error| WebError::BadRequest(error.to_string()))?;
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
    desk.dial_control(agent_of(&current), control).map_err(|error| WebError::BadRequest(error.to_string()))?;
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
    desk.send_digit(agent_of(&current), digit).map_err(|error| WebError::BadRequest(error.to_string()))?;
    Ok(Redirect::to("/workspace"))
}
