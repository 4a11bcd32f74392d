//! The state of each mailbox the e-mail intake reads (`loket_flows::email`): where it stands,
//! its last success and error, and when it is tried again. Read-only; configuration is a file.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use minijinja::context;

use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::records::inbound_mail;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/mailboxes", get(list))
}

async fn list(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require(Permission::Configure)?;
    let mailboxes = inbound_mail::states(&state.db).await?;
    let layout = Layout::for_user(&current, "/admin/mailboxes");
    Ok(Html(state.templates.render("admin/mailboxes.html", &layout, context! { mailboxes })?))
}
