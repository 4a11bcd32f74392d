//! The Facebook Page channel on the web: Meta's webhook (`/webhooks/facebook`), through which each
//! new comment becomes a case with its work item, and the agent's public reply from a case's page.
//!
//! The webhook is anonymous and carries no CSRF token: each delivery is signed instead, and the
//! signature is checked over the raw body before anything is parsed or stored. Each new comment
//! is one transaction: the comment id claimed first (a retried delivery finds it taken), the case
//! on the `facebook` channel, the comment on its timeline and the request for a work item in the
//! first-line queue of the comment's language. The answer waits for those commits, so a failure
//! is a 500 that Meta retries, and the claim makes the retry safe. Without a `[facebook]`
//! configuration both answer 404.
//!
//! Privacy: the commenter's name and text are on the case and its timeline only, never in a log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use loket_routing::model::Channel;
use serde::Deserialize;

use super::cases::{PageNotes, unprocessable};
use super::forms::PUBLIC_FORMS;
use super::session::{CsrfForm, constant_time_eq};
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::facebook::{self, FacebookConfig, GraphClient, NewComment};
use crate::i18n::{Language, Texts, detect};
use crate::records::audit::{self, AuditEntry};
use crate::records::case_types::{self, CaseType};
use crate::records::cases::{self, CaseError, CaseId, CaseInput};
use crate::records::directory::{self, Queue};
use crate::records::facebook_comments::{self, SentReply};
use crate::records::timeline::{self, NewEntry, Summary};
use crate::records::work_requests::{self, WorkRequest};

/// Meta's deliveries are a few kilobytes; a batch of many changes stays far below this.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Facebook's own limit on a comment.
pub(super) const MAX_REPLY_CHARS: usize = 8_000;
const CHANNEL: &str = "facebook";
/// The name the cases are opened under.
const ACTOR: &str = "Facebook";

/// The Graph API client, made once from the configuration; `None` without one, the reason when
/// it could not be made.
#[derive(Clone)]
struct Graph(Option<Result<Arc<GraphClient>, String>>);

pub fn routes(config: Option<&FacebookConfig>) -> Router<AppState> {
    let graph = Graph(config.map(|config| {
        GraphClient::new(config).map(Arc::new).map_err(|error| {
            tracing::error!(%error, "the Facebook Graph API client cannot be set up; replies will fail");
            error.to_string()
        })
    }));
    Router::new()
        .route("/webhooks/facebook", get(handshake).post(deliver).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)))
        .route("/cases/{id}/facebook-reply", post(reply))
        .layer(Extension(graph))
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode", default)]
    mode: String,
    #[serde(rename = "hub.verify_token", default)]
    verify_token: String,
    #[serde(rename = "hub.challenge", default)]
    challenge: String,
}

/// Meta's check that the callback is ours: the challenge back, as it came, for our token.
async fn handshake(State(state): State<AppState>, Query(query): Query<Handshake>) -> Result<Response, WebError> {
    let config = state.config.facebook.as_ref().ok_or(WebError::NotFound)?;
    if query.mode != "subscribe" || !constant_time_eq(query.verify_token.as_bytes(), config.verify_token.as_bytes()) {
        return Err(WebError::Forbidden);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], query.challenge).into_response())
}

async fn deliver(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, WebError> {
    let config = state.config.facebook.as_ref().ok_or(WebError::NotFound)?;
    let signature = headers.get("x-hub-signature-256").and_then(|value| value.to_str().ok()).unwrap_or_default();
    if !facebook::verify_signature(&config.app_secret, &body, signature) {
        tracing::warn!(bytes = body.len(), "a Facebook webhook delivery without a valid signature was refused");
        return Err(WebError::Forbidden);
    }
    let comments =
        facebook::new_comments(&config.page_id, &body).map_err(|error| WebError::BadRequest(error.to_string()))?;
    if comments.is_empty() {
        return Ok(StatusCode::OK);
    }
    let target = Target::resolve(&state, config).await?;
    let mut opened = 0;
    for comment in &comments {
        if open_case(&state, config, &target, comment).await? {
            opened += 1;
        }
    }
    if opened > 0 {
        state.work_requested();
    }
    tracing::info!(comments = comments.len(), opened, "Facebook webhook delivery processed");
    Ok(StatusCode::OK)
}

/// Where the comments' cases go: the case type and the queues to choose from.
struct Target {
    case_type: CaseType,
    queues: Vec<Queue>,
}

impl Target {
    async fn resolve(state: &AppState, config: &FacebookConfig) -> Result<Target, StoreError> {
        let all = case_types::all(&state.db).await?;
        let of_service =
            |code: &str| all.iter().find(|case_type| case_type.code == code && case_type.service == config.service);
        let case_type = match &config.case_type {
            Some(code) => of_service(code),
            None => PUBLIC_FORMS.iter().find_map(|code| of_service(code)),
        };
        let case_type = case_type.cloned().ok_or_else(|| StoreError::NoCaseType(config.service.clone()))?;
        Ok(Target { case_type, queues: directory::queues(&state.db).await? })
    }
}

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("facebook.case_type: no case type of the service {0:?} (set one in [facebook])")]
    NoCaseType(String),
    #[error("the service {0:?} has no first-line queue to route Facebook comments to")]
    NoQueue(String),
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> WebError {
        match error {
            StoreError::Database(error) | StoreError::Case(CaseError::Database(error)) => WebError::Database(error),
            // A configuration that does not fit the municipality's: Meta retries once it is fixed.
            other => WebError::Unavailable(other.to_string()),
        }
    }
}

/// One comment's case, timeline entry and work request, in one transaction; `false` when the
/// comment had been taken before.
async fn open_case(
    state: &AppState,
    config: &FacebookConfig,
    target: &Target,
    comment: &NewComment,
) -> Result<bool, StoreError> {
    let now = state.clock.now();
    let language = config.language.or_else(|| detect::language(&comment.message)).unwrap_or(Language::Nl);
    let queue = work_requests::first_line_queue(&target.queues, &config.service, language.code())
        .ok_or_else(|| StoreError::NoQueue(config.service.clone()))?;
    let mut tx = state.db.pool().begin().await?;
    let Some(claimed) = facebook_comments::claim(&mut tx, comment, now).await? else {
        return Ok(false);
    };
    let input = CaseInput {
        contact_id: None,
        account_id: None,
        service_code: config.service.clone(),
        case_type: target.case_type.code.clone(),
        channel: CHANNEL.to_owned(),
        support_line: 1,
        priority: 0,
        owner_id: None,
        queue_code: Some(queue.code.clone()),
        subject: comment.subject(),
        custom_fields: serde_json::Map::new(),
    };
    let (case_id, _) = cases::insert(&mut tx, &input, state.year(), ACTOR, now).await?;
    facebook_comments::set_case(&mut tx, claimed, case_id.0).await?;
    let author = comment.from_name.as_deref().filter(|name| !name.trim().is_empty()).unwrap_or(ACTOR);
    let entry = NewEntry {
        case_id: Some(case_id.0),
        contact_id: None,
        kind: "facebook_in",
        actor_name: author,
        public: true,
        summary: Summary::new("timeline-facebook-in").arg("from", author),
        body: Some(comment.message.clone()).filter(|message| !message.trim().is_empty()),
    };
    timeline::append(&mut tx, &entry, now).await?;
    let request = WorkRequest {
        case_id: case_id.0,
        channel: Channel::Facebook,
        queue_code: queue.code.clone(),
        skills: vec![config.service.clone()],
        language: language.code().to_owned(),
    };
    work_requests::add(&mut tx, &request, now).await?;
    tx.commit().await?;
    Ok(true)
}

#[derive(Deserialize)]
struct ReplyForm {
    #[serde(default)]
    message: String,
}

/// The page's public reply to the comment that opened the case. Facebook first: only a reply it
/// accepted is written (timeline, reply row, audit); a refusal leaves nothing and is shown.
async fn reply(
    State(state): State<AppState>,
    Extension(graph): Extension<Graph>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<ReplyForm>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let (Some(config), Some(client)) = (state.config.facebook.as_ref(), graph.0) else {
        return Err(WebError::NotFound);
    };
    let case = cases::get(&state.db, CaseId(id)).await?.ok_or(WebError::NotFound)?;
    let answered = facebook_comments::incoming_for_case(&state.db, id).await?.ok_or(WebError::NotFound)?;
    let language = current.language();
    let message = form.message.trim();
    let problem = if message.is_empty() {
        Some(language.text("facebook-reply-empty"))
    } else if message.chars().count() > MAX_REPLY_CHARS {
        Some(language.text_with("facebook-reply-too-long", &[("count", MAX_REPLY_CHARS.to_string())]))
    } else {
        None
    };
    let posted = match (problem, client) {
        (Some(problem), _) => Err(problem),
        (None, Err(reason)) => Err(language.text_with("facebook-reply-failed", &[("reason", reason)])),
        (None, Ok(client)) => client.reply(&answered.comment_id, message).await.map_err(|error| {
            tracing::warn!(case = id, %error, "Facebook did not take a reply");
            language.text_with("facebook-reply-failed", &[("reason", error.to_string())])
        }),
    };
    let reply_id = match posted {
        Ok(reply_id) => reply_id,
        Err(problem) => {
            return unprocessable(&state, &current, case, PageNotes::facebook_reply(problem, form.message)).await;
        }
    };
    let now = state.clock.now();
    let sent = SentReply { case_id: id, reply_id: &reply_id, answered: &answered, page_id: &config.page_id };
    let entry = NewEntry {
        case_id: Some(id),
        contact_id: None,
        kind: "facebook_out",
        actor_name: &current.user.display_name,
        public: true,
        summary: Summary::new("timeline-facebook-out"),
        body: Some(message.to_owned()),
    };
    let audit_entry = AuditEntry {
        actor: current.actor(),
        action: "facebook.replied",
        subject_type: "case",
        subject_id: Some(id.to_string()),
        purpose: None,
        detail: Some(format!("reply {reply_id} to comment {}", answered.comment_id)),
    };
    let written = async {
        let mut tx = state.db.pool().begin().await?;
        facebook_comments::add_reply(&mut tx, &sent, now).await?;
        timeline::append(&mut tx, &entry, now).await?;
        audit::record(&mut *tx, &audit_entry, now).await?;
        tx.commit().await
    }
    .await;
    if let Err(error) = written {
        // The reply is public by now; whoever looks into this needs to find it on Facebook.
        tracing::error!(case = id, reply = %reply_id, "a reply posted on Facebook could not be recorded");
        return Err(WebError::Database(error));
    }
    Ok(Redirect::to(&format!("/cases/{id}")).into_response())
}
