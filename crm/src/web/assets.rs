//! The console's stylesheet and scripts, compiled in: no build step, nothing to deploy beside
//! the binary.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/console.css", get(stylesheet))
        .route("/static/workspace.js", get(workspace_script))
        .route("/static/board.js", get(board_script))
        .route("/static/softphone.js", get(softphone_script))
        .route("/static/live.js", get(live_script))
}

async fn live_script() -> impl IntoResponse {
    script(include_str!("../../static/live.js"))
}

async fn softphone_script() -> impl IntoResponse {
    script(include_str!("../../static/softphone.js"))
}

async fn board_script() -> impl IntoResponse {
    script(include_str!("../../static/board.js"))
}

async fn workspace_script() -> impl IntoResponse {
    script(include_str!("../../static/workspace.js"))
}

fn script(text: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], text)
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/console.css"),
    )
}
