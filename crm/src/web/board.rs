//! The supervisor's live board: every queue with its waiting work, longest wait and today's
//! service level; every agent with their state and time in it, help requests to answer, presence
//! to set, queues and skills to change (`/board/agents/{id}`), and the call in progress, which the
//! supervisor coaches from their browser softphone (listen, whisper, barge, leave); and the
//! items, waiting or held by an agent, to move to another queue (taking them back from their
//! agent), raise in priority or hand to an agent. Like the
//! workspace, the page reads `/api/board` whenever its WebSocket (`/board/events`) says something
//! changed, and on every reconnection.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use loket_routing::core::{Input, ItemState};
use loket_routing::event::EventKind;
use loket_routing::kpi::{self, Scope, SegmentOutcome};
use loket_routing::model::{
    AgentId, Channel, Presence, QueueConfig, QueueId, ServiceLevelFormula, Timestamp, WorkItemId,
};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::help::{self, HelpMessage};
use super::session::{CsrfForm, NoFields};
use super::templates::Layout;
use super::workspace::{
    Listed, PresenceForm, agent_of, follow, list_item, listed, profile, same_origin, shown_state, unavailable,
};
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::desk::{CallError, CallState, Coaching, TransferTarget};
use crate::records::audit::{self, AuditEntry};
use crate::records::timeline::{self, NewEntry, Summary};
use crate::records::{directory, users};

/// How many waiting items of a queue are counted; beyond, the board says "500+".
const COUNTED: usize = 500;
/// How many of them are listed, best first, for the supervisor to move.
const LISTED: usize = 10;
/// A supervisor sets priorities within ±9; each point is worth a step of waiting (a minute by
/// default).
const MAX_PRIORITY: i32 = 9;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/board", get(page))
        .route("/api/board", get(board))
        .route("/board/events", get(events))
        .route("/board/items/{item}/move", post(move_item))
        .route("/board/items/{item}/priority", post(set_priority))
        .route("/board/agents/{agent}/helped", post(helped))
        .route("/board/agents/{agent}/help-reply", post(reply))
        .route("/board/items/{item}/coach", post(coach))
        .route("/board/items/{item}/assign", post(assign))
        .route("/board/agents/{agent}/presence", post(set_presence))
        .route("/board/agents/{agent}", get(agent_page))
        .route("/board/agents/{agent}/routing", post(set_routing))
}

async fn page(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require(Permission::Supervise)?;
    let layout = Layout::for_user(&current, "/board");
    let language = current.language();
    let all_queues = directory::queues(&state.db).await?;
    let mut lines: Vec<i64> = all_queues.iter().map(|queue| queue.support_line).collect();
    lines.sort_unstable();
    lines.dedup();
    let queues: Vec<(String, String)> =
        all_queues.into_iter().map(|queue| (queue.names.get(language).to_owned(), queue.code)).collect();
    let away_reasons = &state.config.away_reasons;
    let services: Vec<(String, String)> = directory::services(&state.db)
        .await?
        .into_iter()
        .map(|service| (service.names.get(language).to_owned(), service.code))
        .collect();
    let agents: Vec<(String, i64)> = users::list(&state.db)
        .await?
        .into_iter()
        .filter(takes_work)
        .map(|user| (user.display_name, user.id.0))
        .collect();
    let page = context! { queues, away_reasons, services, lines, agents };
    Ok(Html(state.templates.render("board.html", &layout, page)?))
}

#[derive(Serialize)]
struct Board {
    queues: Vec<QueueRow>,
    agents: Vec<AgentRow>,
    /// The supervisor's own browser softphone is connected: they can coach.
    softphone: bool,
}

#[derive(Serialize)]
struct QueueRow {
    code: String,
    name: String,
    /// For the board's filters.
    service: String,
    line: i64,
    waiting: usize,
    /// The waiting items per channel (`voice`, `email`, …), of those counted.
    waiting_by_channel: BTreeMap<&'static str, usize>,
    longest_wait_seconds: u64,
    /// The queue's logged-in agents per state (`available`, `busy`, `away`, `after_work`, …).
    agents: BTreeMap<&'static str, usize>,
    /// The first waiting items, best first.
    items: Vec<Listed>,
    /// The items of the queue that agents hold: offered to them or in hand.
    held: Vec<HeldRow>,
    /// Today's service level in percent under the queue's formula (`loket_routing::kpi`, as the
    /// reports); `None` while nothing counts yet.
    service_level: Option<f64>,
    /// What the service level counts: the formula and its threshold.
    service_level_formula: &'static str,
    service_level_seconds: u64,
    answered_today: usize,
    abandoned_today: usize,
}

#[derive(Serialize)]
struct HeldRow {
    #[serde(flatten)]
    item: Listed,
    holder: String,
    holder_id: i64,
    /// Offered and not yet accepted.
    offered: bool,
}

#[derive(Serialize)]
struct AgentRow {
    name: String,
    /// As in the workspace: `offline`, `available`, `away`, `offered`, `busy`, `after_work`.
    state: &'static str,
    away_reason: Option<String>,
    /// Items offered or in hand.
    items: usize,
    /// Capacity units the items take, of the agent's capacity.
    capacity_used: u32,
    capacity: u32,
    id: i64,
    /// Seconds since the agent asked for help, while they wait for it.
    help_seconds: Option<u64>,
    /// Seconds in the current state, when it began today.
    state_seconds: Option<u64>,
    /// The exchange so far: the agent's messages and the supervisors' answers.
    help_messages: Vec<HelpMessage>,
    /// The agent's call in progress, which a supervisor can coach.
    call: Option<BoardCall>,
}

#[derive(Serialize)]
struct BoardCall {
    item: u64,
    #[serde(flatten)]
    state: CallState,
    /// Who coaches it, and how.
    coached_by: Option<String>,
    coaching: Option<Coaching>,
}

async fn board(State(state): State<AppState>, current: CurrentUser) -> Result<Json<Board>, WebError> {
    current.require(Permission::Supervise)?;
    let desk = state.desk()?;
    let now = Timestamp::now();
    let events = desk.today();
    // When each agent's state last changed today, from the event log.
    let mut changed_at = std::collections::HashMap::new();
    for event in &events {
        if let (EventKind::AgentStateChanged { .. }, Some(agent)) = (&event.kind, event.agent) {
            changed_at.insert(agent, event.at);
        }
    }
    let mut agents = Vec::new();
    // Each logged-in agent's state, once per queue they work.
    let mut states_in: Vec<(QueueId, &'static str)> = Vec::new();
    // The items agents hold, with their queue, to list under it.
    let mut held: Vec<(QueueId, HeldRow)> = Vec::new();
    for user in users::list(&state.db).await? {
        if !takes_work(&user) {
            continue;
        }
        let record = desk.agent(AgentId(user.id.0)).await.map_err(unavailable)?;
        let Some(record) = record else {
            let (id, (help_seconds, help_messages)) = (user.id.0, help_of(&state, AgentId(user.id.0)));
            agents.push(AgentRow {
                help_messages,
                name: user.display_name,
                state: "offline",
                away_reason: None,
                items: 0,
                capacity_used: 0,
                capacity: 0,
                id,
                help_seconds,
                state_seconds: None,
                call: None,
            });
            continue;
        };
        let shown = shown_state(&record);
        states_in.extend(record.profile.queues.iter().map(|queue| (queue.clone(), shown)));
        let away_reason = match &record.presence {
            Presence::Away { reason } => Some(reason.clone()),
            _ => None,
        };
        let (id, (help_seconds, help_messages)) = (user.id.0, help_of(&state, AgentId(user.id.0)));
        let items = record.work.len();
        for work in &record.work {
            let Some(item) = desk.item(work.item).await.map_err(unavailable)? else { continue };
            let row = HeldRow {
                item: list_item(&state, &item).await?,
                holder: user.display_name.clone(),
                holder_id: user.id.0,
                offered: !work.accepted,
            };
            held.push((item.queue, row));
        }
        let call = record.work.iter().filter(|held| held.accepted).find_map(|held| {
            let state = desk.call_state(held.item)?;
            state.is_talking().then_some((held.item, state))
        });
        let call = match call {
            Some((item, call_state)) => {
                let coaching = desk.coaching(item);
                let coached_by = match coaching {
                    Some((supervisor, _)) => {
                        users::get(&state.db, users::UserId(supervisor.0)).await?.map(|user| user.display_name)
                    }
                    None => None,
                };
                Some(BoardCall {
                    item: item.0,
                    state: call_state,
                    coached_by,
                    coaching: coaching.map(|(_, mode)| mode),
                })
            }
            None => None,
        };
        let state_seconds = changed_at.get(&AgentId(id)).map(|at| now.since(*at).as_secs());
        agents.push(AgentRow {
            name: user.display_name,
            state: shown,
            away_reason,
            items,
            capacity_used: record.used_capacity(),
            capacity: record.profile.capacity,
            id,
            help_seconds,
            help_messages,
            state_seconds,
            call,
        });
    }
    let language = current.language();
    let segments = kpi::queue_segments(&events);
    let mut queues = Vec::new();
    for queue in directory::queues(&state.db).await? {
        let id = QueueId::new(&queue.code);
        let target = desk.service_level_target(&id).unwrap_or_else(|| QueueConfig::new(id.clone()).service_level);
        let outcomes = segments.iter().filter(|segment| segment.queue == id).map(|segment| segment.outcome);
        let (answered_today, abandoned_today) = outcomes.fold((0, 0), |(answered, abandoned), outcome| match outcome {
            SegmentOutcome::Answered { .. } => (answered + 1, abandoned),
            SegmentOutcome::Abandoned { .. } => (answered, abandoned + 1),
            _ => (answered, abandoned),
        });
        let waiting = desk.waiting(&id, COUNTED).await.map_err(unavailable)?;
        let mut waiting_by_channel = BTreeMap::new();
        for item in &waiting {
            *waiting_by_channel.entry(item.spec.channel.name()).or_default() += 1;
        }
        let mut agents_by_state = BTreeMap::new();
        for (_, state) in states_in.iter().filter(|(queue, _)| *queue == id) {
            *agents_by_state.entry(*state).or_default() += 1;
        }
        let longest = waiting.iter().map(|item| now.since(item.queue_entered_at).as_secs()).max().unwrap_or(0);
        let items = listed(&state, desk.as_ref(), &id, LISTED).await?;
        let (in_queue, others): (Vec<_>, Vec<_>) = held.into_iter().partition(|(queue, _)| *queue == id);
        held = others;
        queues.push(QueueRow {
            held: in_queue.into_iter().map(|(_, row)| row).collect(),
            service_level: kpi::service_level(&events, &Scope::queue(id.clone()), &target),
            service_level_formula: formula_key(&target.formula),
            service_level_seconds: target.threshold.as_secs(),
            answered_today,
            abandoned_today,
            items,
            name: queue.names.get(language).to_owned(),
            service: queue.service_code,
            line: queue.support_line,
            agents: agents_by_state,
            code: queue.code,
            waiting: waiting.len(),
            waiting_by_channel,
            longest_wait_seconds: longest,
        });
    }
    Ok(Json(Board { queues, agents, softphone: desk.has_softphone(agent_of(&current)) }))
}

/// The users the board shows as agents.
fn takes_work(user: &users::User) -> bool {
    !user.disabled && user.roles.iter().any(|role| role.grants(Permission::HandleWork))
}

/// The message key of a service-level formula (`board-sl-<key>`).
fn formula_key(formula: &ServiceLevelFormula) -> &'static str {
    match formula {
        ServiceLevelFormula::AnsweredWithin => "answered_within",
        ServiceLevelFormula::AnsweredOrAbandonedWithin => "answered_or_abandoned_within",
        ServiceLevelFormula::RemovedFromQueueWithin => "removed_within",
        ServiceLevelFormula::Genesys { .. } => "genesys",
    }
}

/// How long the agent has waited for help, in seconds, and the exchange so far.
fn help_of(state: &AppState, agent: AgentId) -> (Option<u64>, Vec<HelpMessage>) {
    match state.help_asked(agent) {
        Some(thread) => {
            let waited = u64::try_from(state.clock.now().0.saturating_sub(thread.since) / 1000).unwrap_or(0);
            (Some(waited), thread.messages)
        }
        None => (None, Vec::new()),
    }
}

/// The supervisor has helped the agent: their flag goes down.
async fn helped(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(agent): Path<i64>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    current.require(Permission::Supervise)?;
    help::lower(&state, &current, AgentId(agent)).await?;
    Ok(Redirect::to("/board"))
}

#[derive(Deserialize)]
struct ReplyForm {
    text: String,
}

/// A supervisor's answer to an agent's request for help: only that agent sees it.
async fn reply(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(agent): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<ReplyForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::Supervise)?;
    let desk = state.desk()?;
    let text = help::message_text(&form.text)?;
    if text.is_empty() {
        return Err(WebError::BadRequest("an empty answer".into()));
    }
    let message =
        HelpMessage { author: current.user.display_name.clone(), supervisor: true, text, at: state.clock.now().0 };
    let thread = state
        .add_help_message(AgentId(agent), message.clone())
        .ok_or_else(|| WebError::BadRequest("that agent is not waiting for help".into()))?;
    help::note(&state, &current, thread.case_id, "timeline-help-reply", Some(&message.text)).await?;
    desk.changed(AgentId(agent));
    Ok(Redirect::to("/board"))
}

#[derive(Deserialize)]
struct MoveForm {
    queue: String,
}

/// Moves an item to another queue: a waiting or offered one, or one an agent holds, which the
/// supervisor takes back. A call taken back waits again with music, its agent's leg hung up.
async fn move_item(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    CsrfForm { form, .. }: CsrfForm<MoveForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::Supervise)?;
    let desk = state.desk()?;
    if !directory::queues(&state.db).await?.iter().any(|queue| queue.code == form.queue) {
        return Err(WebError::BadRequest("an unknown queue".into()));
    }
    let (item, to) = (WorkItemId(item), QueueId::new(&form.queue));
    let work_item = desk.item(item).await.map_err(unavailable)?.ok_or(WebError::NotFound)?;
    let call_in_hand =
        matches!(work_item.state, ItemState::Assigned { .. }) && work_item.spec.channel == Channel::Voice;
    if call_in_hand {
        if !desk.call_state(item).is_some_and(CallState::is_talking) {
            return Err(WebError::BadRequest("the call is being put through; try again in a moment".into()));
        }
        desk.transfer(item, TransferTarget::TakenBack(to))?;
    } else {
        let input = Input::ItemMoved { item, to };
        desk.execute(input).await.map_err(|error| WebError::BadRequest(format!("the item cannot move: {error}")))?;
    }
    Ok(Redirect::to("/board"))
}

#[derive(Deserialize)]
struct PriorityForm {
    priority: i32,
}

async fn set_priority(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    CsrfForm { form, .. }: CsrfForm<PriorityForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::Supervise)?;
    let desk = state.desk()?;
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&form.priority) {
        return Err(WebError::BadRequest(format!("a priority is from -{MAX_PRIORITY} to {MAX_PRIORITY}")));
    }
    let input = Input::PriorityChanged { item: WorkItemId(item), priority: form.priority };
    desk.execute(input).await.map_err(|error| WebError::BadRequest(format!("the priority cannot change: {error}")))?;
    Ok(Redirect::to("/board"))
}

async fn events(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, WebError> {
    current.require(Permission::Supervise)?;
    let desk = Arc::clone(state.desk()?);
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    let supervisor = agent_of(&current);
    let logged = desk.logged();
    Ok(upgrade.on_upgrade(move |socket| follow(socket, desk, None, Some(logged), supervisor)).into_response())
}

#[derive(Deserialize)]
struct CoachForm {
    /// `listen`, `whisper`, `barge`, or `leave`.
    mode: String,
}

/// The supervisor coaches the call of `item` through their softphone, or leaves it. Every
/// coaching step is written to the audit log and to the case's timeline.
async fn coach(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    CsrfForm { form, .. }: CsrfForm<CoachForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::Supervise)?;
    let desk = state.desk()?;
    let mode = match form.mode.as_str() {
        "leave" => None,
        other => Some(Coaching::parse(other).ok_or_else(|| WebError::BadRequest("an unknown coaching mode".into()))?),
    };
    let item = WorkItemId(item);
    desk.coach(item, agent_of(&current), mode).map_err(|error| match error {
        CallError::NoCall(_) => WebError::NotFound,
        refused => refused.into(),
    })?;
    let case_id = desk.item(item).await.map_err(unavailable)?.and_then(|item| item.spec.case_id);
    let action = mode.map_or("leave", Coaching::as_str);
    let now = state.clock.now();
    let mut tx = state.db.pool().begin().await?;
    let entry = AuditEntry {
        actor: current.actor(),
        action: &format!("call.coaching.{action}"),
        subject_type: "work_item",
        subject_id: Some(item.0.to_string()),
        purpose: None,
        detail: case_id.map(|case_id| format!("case {case_id}")),
    };
    audit::record(&mut *tx, &entry, now).await?;
    if let Some(case_id) = case_id {
        let summary =
            Summary::new(&format!("timeline-coaching-{action}")).arg("supervisor", &current.user.display_name);
        let entry = NewEntry {
            case_id: Some(case_id),
            contact_id: None,
            kind: "call",
            actor_name: &current.user.display_name,
            public: false,
            summary,
            body: None,
        };
        timeline::append(&mut tx, &entry, now).await?;
    }
    tx.commit().await?;
    Ok(Redirect::to("/board"))
}

#[derive(Deserialize)]
struct AssignForm {
    agent: i64,
}

/// Hands a waiting or offered item to an agent who can take it now: it is offered to them.
async fn assign(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    CsrfForm { form, .. }: CsrfForm<AssignForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::Supervise)?;
    let desk = state.desk()?;
    let input = Input::ItemReassigned { item: WorkItemId(item), to: AgentId(form.agent) };
    desk.execute(input)
        .await
        .map_err(|error| WebError::BadRequest(format!("the item cannot go to that agent: {error}")))?;
    Ok(Redirect::to("/board"))
}

/// Sets a logged-in agent's presence, as the agent would in the workspace.
async fn set_presence(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(agent): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<PresenceForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::Supervise)?;
    let desk = state.desk()?;
    let presence = form.presence(&state)?;
    let agent = AgentId(agent);
    if desk.agent(agent).await.map_err(unavailable)?.is_none() {
        return Err(WebError::BadRequest("that agent has not logged in to the workspace".into()));
    }
    let input = Input::PresenceChanged { agent, presence };
    desk.execute(input).await.map_err(|error| WebError::BadRequest(format!("the presence cannot change: {error}")))?;
    Ok(Redirect::to("/board"))
}

/// The highest skill level; 0 means the agent does not have the skill.
const MAX_LEVEL: i64 = 10;

/// The queues and skills an agent works with, for the supervisor to change.
async fn agent_page(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(agent): Path<i64>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::Supervise)?;
    let user = users::get(&state.db, users::UserId(agent)).await?.ok_or(WebError::NotFound)?;
    let (skills, queues) = directory::user_routing(&state.db, agent).await?;
    let language = current.language();
    let all_queues: Vec<_> = directory::queues(&state.db)
        .await?
        .into_iter()
        .map(|queue| {
            let held = queues.contains(&queue.code);
            context! { code => queue.code, name => queue.names.get(language), held }
        })
        .collect();
    let all_skills: Vec<_> = directory::skills(&state.db)
        .await?
        .into_iter()
        .map(|(code, names)| {
            let level = skills.iter().find(|(held, _)| *held == code).map_or(0, |(_, level)| *level);
            context! { name => names.get(language), code, level }
        })
        .collect();
    let layout = Layout::for_user(&current, "/board");
    let agent = context! { id => agent, name => user.display_name };
    let page = context! { agent, queues => all_queues, skills => all_skills };
    Ok(Html(state.templates.render("board_agent.html", &layout, page)?))
}

/// Saves an agent's queues and skills in one transaction, audited, and hands the new profile to
/// the router at once when the agent is logged in: work is routed by it from the next decision.
async fn set_routing(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(agent): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<Vec<(String, String)>>,
) -> Result<Redirect, WebError> {
    current.require(Permission::Supervise)?;
    users::get(&state.db, users::UserId(agent)).await?.ok_or(WebError::NotFound)?;
    let mut queues = Vec::new();
    let mut skills = Vec::new();
    for (name, value) in form {
        if name == "queue" {
            queues.push(value);
        } else if let Some(skill) = name.strip_prefix("skill:") {
            let level = match value.trim() {
                "" => 0,
                level => {
                    level.parse::<i64>().ok().filter(|level| (0..=MAX_LEVEL).contains(level)).ok_or_else(|| {
                        WebError::BadRequest(format!(
                            "the level of {skill} must be a whole number from 0 to {MAX_LEVEL}"
                        ))
                    })?
                }
            };
            if level > 0 {
                skills.push((skill.to_owned(), level));
            }
        }
    }
    let mut tx = state.db.pool().begin().await?;
    directory::replace_user_routing(&mut tx, agent, &skills, &queues)
        .await
        .map_err(|_| WebError::BadRequest("an unknown queue or skill".into()))?;
    let detail = format!(
        "queues: {}; skills: {}",
        queues.join(", "),
        skills.iter().map(|(skill, level)| format!("{skill} {level}")).collect::<Vec<_>>().join(", ")
    );
    let entry = AuditEntry {
        actor: current.actor(),
        action: "agent.routing.changed",
        subject_type: "user",
        subject_id: Some(agent.to_string()),
        purpose: None,
        detail: Some(detail),
    };
    audit::record(&mut *tx, &entry, state.clock.now()).await?;
    tx.commit().await?;
    let desk = state.desk()?;
    let agent = AgentId(agent);
    if desk.agent(agent).await.map_err(unavailable)?.is_some() {
        let input = Input::ProfileChanged { profile: profile(&state, agent).await? };
        desk.execute(input).await.map_err(unavailable)?;
    }
    Ok(Redirect::to("/board"))
}
