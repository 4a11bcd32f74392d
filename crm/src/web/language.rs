//! The language switch. A logged-in user's choice is stored on the user, so it follows them to
//! any browser; a visitor's is stored on the anonymous session.

use axum::Router;
use axum::extract::State;
use axum::response::Redirect;
use axum::routing::post;
use serde::Deserialize;

use super::session::CsrfForm;
use super::{AppState, WebError};
use crate::i18n::Language;
use crate::records::{sessions, users};

pub fn routes() -> Router<AppState> {
    Router::new().route("/language", post(switch_language))
}

#[derive(Deserialize)]
struct LanguageForm {
    language: String,
    back: Option<String>,
}

async fn switch_language(
    State(state): State<AppState>,
    CsrfForm { visitor, form }: CsrfForm<LanguageForm>,
) -> Result<Redirect, WebError> {
    let language = Language::from_code(&form.language)
        .ok_or_else(|| WebError::BadRequest(format!("unknown language {:?}", form.language)))?;
    if let Some(user) = &visitor.user {
        users::set_language(&state.db, user.id, language).await?;
    }
    if let Some(session) = &visitor.session {
        sessions::set_language(&state.db, &session.token_hash, language).await?;
    }
    Ok(Redirect::to(local_path(form.back.as_deref())))
}

/// Only a path on this site: `//evil.example` and `https://…` would make the switch an open redirect.
fn local_path(back: Option<&str>) -> &str {
    match back {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path,
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/admin/users")), "/admin/users");
        assert_eq!(local_path(Some("//evil.example/x")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }
}
