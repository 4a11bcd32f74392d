//! Liveness, readiness and metrics for the orchestrator and Prometheus. No login: they reveal
//! nothing about citizens or users.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers and, if configured, Redis does; the body names what failed.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    match tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => problems.push(format!("database ({}): {error}", state.db.backend().name())),
        Err(_) => problems.push(format!("database ({}): no answer within 2 s", state.db.backend().name())),
    }
    if let Some(client) = &state.redis {
        let ping = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut connection).await
        };
        match tokio::time::timeout(Duration::from_secs(2), ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => problems.push(format!("redis: {error}")),
            Err(_) => problems.push("redis: no answer within 2 s".to_owned()),
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}\n", problems.join("\n")))
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}
