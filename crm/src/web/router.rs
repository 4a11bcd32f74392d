//! Every route of the console, merged in one place, with the layers that apply to all of them.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;

use super::metrics::RequestLabels;
use super::{
    AppState, accounts, admin_mailboxes, admin_templates, admin_users, assets, audit_view, board, cases, contacts,
    dial, facebook, forms, health, home, language, login, search, workspace,
};

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(assets::routes())
        .merge(login::routes())
        .merge(language::routes())
        .merge(home::routes())
        .merge(admin_users::routes())
        .merge(admin_templates::routes())
        .merge(admin_mailboxes::routes())
        .merge(audit_view::routes())
        .merge(contacts::routes())
        .merge(accounts::routes())
        .merge(cases::routes(state.config.max_upload_bytes))
        .merge(search::routes())
        .merge(workspace::routes())
        .merge(dial::routes())
        .merge(board::routes())
        .merge(forms::routes(state.config.max_upload_bytes))
        .merge(facebook::routes(state.config.facebook.as_ref()))
        .route_layer(middleware::from_fn_with_state(state.clone(), count_request))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn count_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.request(RequestLabels { method, route, status: response.status().as_u16() });
    response
}

/// The console loads nothing from elsewhere, so the policy can forbid everything else.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
