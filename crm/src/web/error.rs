use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// What a handler can fail with. Error pages speak the three languages at once: they are rare,
/// and this keeps them independent of a session that may be the very thing that failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("the form was sent from a page that has expired")]
    CsrfMismatch,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    /// The router or the telephony is not running, or failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// The desk refused a call operation: the agent's request does not fit the call as it is.
impl From<crate::desk::CallError> for WebError {
    fn from(error: crate::desk::CallError) -> WebError {
        WebError::BadRequest(error.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, nl, fr, en) = match &self {
            WebError::Forbidden => (StatusCode::FORBIDDEN, "Geen toegang", "Accès refusé", "Access denied"),
            WebError::NotFound => (StatusCode::NOT_FOUND, "Niet gevonden", "Introuvable", "Not found"),
            WebError::CsrfMismatch => (
                StatusCode::FORBIDDEN,
                "Deze pagina is verlopen; laad ze opnieuw",
                "Cette page a expiré ; rechargez-la",
                "This page has expired; reload it",
            ),
            WebError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "Ongeldige aanvraag", "Requête invalide", "Bad request")
            }
            WebError::Unavailable(_) => {
                tracing::warn!(error = %self, "request failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "De telefonie en de verdeling van het werk zijn niet beschikbaar",
                    "La téléphonie et la distribution du travail sont indisponibles",
                    "Telephony and work distribution are unavailable",
                )
            }
            WebError::Database(_) | WebError::Template(_) => {
                tracing::error!(error = %self, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Er ging iets mis",
                    "Une erreur s'est produite",
                    "Something went wrong",
                )
            }
        };
        let body = format!(
            "<!doctype html><html lang=\"nl\"><head><meta charset=\"utf-8\"><title>{code}</title>\
             <link rel=\"stylesheet\" href=\"/static/console.css\"></head><body><main id=\"main\" class=\"error-page\">\
             <h1>{code}</h1><p lang=\"nl\">{nl}</p><p lang=\"fr\">{fr}</p><p lang=\"en\">{en}</p>\
             <p><a href=\"/\">loket</a></p></main></body></html>",
            code = status.as_u16()
        );
        (status, Html(body)).into_response()
    }
}
