//! Sessions as extractors: `Visitor` (anyone, with or without a session), `CurrentUser` (logged
//! in; otherwise a redirect to the login page, or 401 on the API) and `CsrfForm` (a form whose
//! token matches the session's).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use super::{AppState, WebError};
use crate::auth::Permission;
use crate::i18n::Language;
use crate::records::sessions::{self, NewSession, Session};
use crate::records::users::{self, User};

pub const SESSION_COOKIE: &str = "loket_session";

/// Whoever sent the request: the session if the cookie names a live one, and the language to
/// answer in (the user's, else the session's, else the browser's).
pub struct Visitor {
    pub session: Option<Session>,
    pub user: Option<User>,
    pub language: Language,
}

/// A logged-in, enabled user with the session that proves it.
pub struct CurrentUser {
    pub user: User,
    pub session: Session,
}

impl CurrentUser {
    pub fn may(&self, permission: Permission) -> bool {
        self.user.roles.iter().any(|role| role.grants(permission))
    }

    pub fn require(&self, permission: Permission) -> Result<(), WebError> {
        if self.may(permission) { Ok(()) } else { Err(WebError::Forbidden) }
    }

    /// For pages that serve several roles for different reasons (a company's page serves the
    /// agent and the tax teller).
    pub fn require_any(&self, permissions: &[Permission]) -> Result<(), WebError> {
        if permissions.iter().any(|permission| self.may(*permission)) { Ok(()) } else { Err(WebError::Forbidden) }
    }

    pub fn actor(&self) -> crate::records::audit::Actor<'_> {
        crate::records::audit::Actor::User { id: self.user.id, name: &self.user.username }
    }

    pub fn language(&self) -> Language {
        self.user.language
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = match session_token(&parts.headers) {
            Some(token) => sessions::find(&state.db, token, state.clock.now()).await?,
            None => None,
        };
        let user = match session.as_ref().and_then(|session| session.user_id) {
            Some(user_id) => users::get(&state.db, user_id).await?.filter(|user| !user.disabled),
            None => None,
        };
        let language = user
            .as_ref()
            .map(|user| user.language)
            .or_else(|| session.as_ref().and_then(|session| session.language))
            .unwrap_or_else(|| {
                let header = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
                Language::negotiate(header.unwrap_or_default())
            });
        Ok(Visitor { session, user, language })
    }
}

/// Why a request without a valid login was refused.
pub enum LoginRequired {
    Page,
    Api,
    Failed(WebError),
}

impl IntoResponse for LoginRequired {
    fn into_response(self) -> Response {
        match self {
            LoginRequired::Page => Redirect::to("/login").into_response(),
            LoginRequired::Api => {
                (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "login required"}))).into_response()
            }
            LoginRequired::Failed(error) => error.into_response(),
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = LoginRequired;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let visitor = Visitor::from_request_parts(parts, state).await.map_err(LoginRequired::Failed)?;
        match (visitor.user, visitor.session) {
            (Some(user), Some(session)) => Ok(CurrentUser { user, session }),
            _ if parts.uri.path().starts_with("/api/") => Err(LoginRequired::Api),
            _ => Err(LoginRequired::Page),
        }
    }
}

/// A form that carries nothing but its CSRF token: a button (`CsrfForm<NoFields>`).
#[derive(serde::Deserialize)]
pub struct NoFields {}

/// A urlencoded form whose `csrf` field matches the session's token. Every state-changing form
/// goes through this extractor, the login form included (its session is the anonymous one the
/// login page created).
pub struct CsrfForm<T> {
    pub visitor: Visitor,
    pub form: T,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    csrf: String,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, state).await?;
        let bytes =
            axum::body::to_bytes(body, 64 * 1024).await.map_err(|error| WebError::BadRequest(error.to_string()))?;
        let sent: CsrfField = serde_html_form::from_bytes(&bytes).map_err(|_| WebError::CsrfMismatch)?;
        let expected = visitor.session.as_ref().map(|session| session.csrf_token.as_str());
        if expected.is_none_or(|expected| !constant_time_eq(expected.as_bytes(), sent.csrf.as_bytes())) {
            return Err(WebError::CsrfMismatch);
        }
        let form = serde_html_form::from_bytes(&bytes).map_err(|error| WebError::BadRequest(error.to_string()))?;
        Ok(CsrfForm { visitor, form })
    }
}

pub fn session_cookie(new_session: &NewSession, state: &AppState) -> HeaderValue {
    let max_age = state.config.session_ttl.as_secs();
    let secure = if state.config.secure_cookies { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}", new_session.token);
    // The token is hex, so the cookie is always a valid header value.
    HeaderValue::from_str(&cookie).expect("hex session token is a valid header value")
}

/// The visitor's session, or a new anonymous one with the cookie that carries it: a public form
/// (the login page, the citizens' forms) needs a CSRF token before anyone has logged in.
pub(super) async fn session_or_anonymous(
    state: &AppState,
    session: Option<Session>,
) -> Result<(Session, Option<HeaderValue>), WebError> {
    if let Some(session) = session {
        return Ok((session, None));
    }
    let now = state.clock.now();
    let new_session = sessions::create(&state.db, None, None, now, now.plus(state.config.session_ttl)).await?;
    let cookie = session_cookie(&new_session, state);
    Ok((new_session.session, Some(cookie)))
}

pub fn expired_session_cookie() -> HeaderValue {
    HeaderValue::from_static("loket_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
