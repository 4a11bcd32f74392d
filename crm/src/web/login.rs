//! Login and logout. A failed login counts towards a lock-out of the account; the answer to a
//! wrong user name and to a wrong password is the same, and takes the same time.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;

use super::session::{CsrfForm, Visitor, expired_session_cookie, session_cookie, session_or_anonymous};
use super::templates::Layout;
use super::{AppState, WebError};
use crate::auth::{hash_password, verify_password};
use crate::records::audit::{self, Actor, AuditEntry};
use crate::records::{sessions, users};

pub fn routes() -> Router<AppState> {
    Router::new().route("/login", get(login_page).post(login)).route("/logout", post(logout))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

/// A hash of a password nobody has, verified when the user name is unknown so that the reply
/// takes as long as for a known user.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("no user has this password").expect("a long password hashes"));

async fn login_page(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    if visitor.user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    render_login(&state, visitor, None).await
}

async fn login(
    State(state): State<AppState>,
    CsrfForm { visitor, form }: CsrfForm<LoginForm>,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let username = form.username.trim();
    let Some(candidate) = users::find_for_login(&state.db, username).await? else {
        verify_password(&form.password, &DUMMY_HASH);
        state.metrics.login("unknown_user");
        return render_login(&state, visitor, Some("login-failed")).await;
    };
    let user = candidate.user;
    let actor = Actor::User { id: user.id, name: &user.username };
    if user.disabled {
        verify_password(&form.password, &DUMMY_HASH);
        state.metrics.login("disabled");
        return render_login(&state, visitor, Some("login-failed")).await;
    }
    if user.locked_until.is_some_and(|until| until > now) {
        state.metrics.login("locked");
        return render_login(&state, visitor, Some("login-locked")).await;
    }
    if !verify_password(&form.password, &candidate.password_hash) {
        let lock_until = now.plus(state.config.lockout_duration);
        let locked = users::record_failed_login(&state.db, user.id, state.config.lockout_threshold, lock_until).await?;
        let now_locked = locked.is_some_and(|until| until > now);
        let action = if now_locked { "login.locked" } else { "login.failed" };
        let entry = AuditEntry {
            actor,
            action,
            subject_type: "user",
            subject_id: Some(user.id.0.to_string()),
            purpose: None,
            detail: None,
        };
        audit::record(state.db.pool(), &entry, now).await?;
        state.metrics.login(if now_locked { "locked" } else { "wrong_password" });
        return render_login(&state, visitor, Some(if now_locked { "login-locked" } else { "login-failed" })).await;
    }
    users::clear_failed_logins(&state.db, user.id).await?;
    // A new session id at login, so that a session planted before it (fixation) is worth nothing.
    if let Some(old) = &visitor.session {
        sessions::delete(&state.db, &old.token_hash).await?;
    }
    let new_session =
        sessions::create(&state.db, Some(user.id), Some(user.language), now, now.plus(state.config.session_ttl))
            .await?;
    let entry = AuditEntry {
        actor,
        action: "login.succeeded",
        subject_type: "user",
        subject_id: Some(user.id.0.to_string()),
        purpose: None,
        detail: None,
    };
    audit::record(state.db.pool(), &entry, now).await?;
    state.metrics.login("succeeded");
    tracing::info!(user = %user.username, "login");
    Ok(([(header::SET_COOKIE, session_cookie(&new_session, &state))], Redirect::to("/")).into_response())
}

async fn logout(
    State(state): State<AppState>,
    CsrfForm { visitor, .. }: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, WebError> {
    if let Some(session) = &visitor.session {
        sessions::delete(&state.db, &session.token_hash).await?;
    }
    Ok(([(header::SET_COOKIE, expired_session_cookie())], Redirect::to("/login")).into_response())
}

async fn render_login(state: &AppState, visitor: Visitor, error: Option<&str>) -> Result<Response, WebError> {
    let (session, cookie) = session_or_anonymous(state, visitor.session).await?;
    let layout = Layout { lang: visitor.language.code(), csrf: Some(&session.csrf_token), path: "/login", user: None };
    let minutes = state.config.lockout_duration.as_secs().div_ceil(60);
    let html = state.templates.render("login.html", &layout, context! { error, minutes })?;
    let status = if error.is_some() { axum::http::StatusCode::UNAUTHORIZED } else { axum::http::StatusCode::OK };
    let mut response = (status, Html(html)).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}
