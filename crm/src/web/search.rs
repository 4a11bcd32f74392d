//! One search box for the console: case numbers, enterprise numbers, names, phones, e-mails.
//! A national register number is never searched here (it would sit in the URL): the contact
//! page's exact search takes it in a POST with a purpose.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use loket_be::NationalRegisterNumber;
use minijinja::context;
use serde::Deserialize;

use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::records::{accounts, cases, contacts};

pub fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(query): Query<SearchQuery>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let text = query.q.trim();
    let layout = Layout::for_user(&current, "/search");
    if NationalRegisterNumber::parse(text, 9999).is_ok() {
        let html = state.templates.render(
            "search.html",
            &layout,
            context! { q => "", national_number_refused => true, contacts => Vec::<()>::new(), accounts => Vec::<()>::new() },
        )?;
        return Ok(Html(html).into_response());
    }
    if let Some(id) = cases::id_by_number(&state.db, text).await? {
        return Ok(Redirect::to(&format!("/cases/{}", id.0)).into_response());
    }
    let (found_contacts, found_accounts) = if text.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            contacts::search(&state.db, current.actor(), text, 50, state.clock.now()).await?,
            accounts::search(&state.db, text, 50).await?,
        )
    };
    let html = state.templates.render(
        "search.html",
        &layout,
        context! { q => text, contacts => found_contacts, accounts => found_accounts, searched => !text.is_empty() },
    )?;
    Ok(Html(html).into_response())
}
