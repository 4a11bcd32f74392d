//! The start page: who you are, what your roles let you do, and the API's view of the same.

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use minijinja::context;

use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(home)).route("/api/me", get(me))
}

async fn home(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    let permissions: Vec<&str> =
        Permission::ALL.into_iter().filter(|permission| current.may(*permission)).map(Permission::as_str).collect();
    let roles: Vec<&str> = current.user.roles.iter().map(|role| role.as_str()).collect();
    let layout = Layout::for_user(&current, "/");
    let html = state.templates.render(
        "home.html",
        &layout,
        context! { name => current.user.display_name, roles, permissions },
    )?;
    Ok(Html(html))
}

#[derive(serde::Serialize)]
struct Me<'a> {
    username: &'a str,
    display_name: &'a str,
    language: &'a str,
    roles: Vec<&'a str>,
    permissions: Vec<&'a str>,
}

async fn me(current: CurrentUser) -> Json<serde_json::Value> {
    let me = Me {
        username: &current.user.username,
        display_name: &current.user.display_name,
        language: current.language().code(),
        roles: current.user.roles.iter().map(|role| role.as_str()).collect(),
        permissions: Permission::ALL
            .into_iter()
            .filter(|permission| current.may(*permission))
            .map(Permission::as_str)
            .collect(),
    };
    Json(serde_json::to_value(me).unwrap_or_default())
}
