//! The agent's workspace: presence, the current offer with its screen pop, the work in hand with
//! call control (hold, blind transfer to a queue or an available colleague, hang-up), wrap-up,
//! help requests, and the browser softphone. The page is a shell; `workspace.js` reads the state
//! from `/api/workspace` whenever the WebSocket `/workspace/events` says it changed, and on every
//! (re)connection: the state lives in the router, so a dropped connection loses no offer and never
//! leaves the screen in a state the agent is not in. The same socket carries the softphone's
//! offer and answer (`Signal`).
//!
//! The pop shows a case only to the agent it is offered to or assigned to; reading its contact is
//! audited with the purpose "screen pop".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use loket_routing::core::{AgentRecord, Input, ItemState, WorkItem};
use loket_routing::model::{AgentId, AgentProfile, Channel, Presence, QueueId, Skill, WorkItemId};
use minijinja::context;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::help::{self, HelpMessage, HelpThread};
use super::session::{CsrfForm, NoFields};
use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::desk::{CallState, Desk, Dialled, TransferTarget};
use crate::records::cases::{self, CaseFilter, CaseId, CaseStatus};
use crate::records::contacts::{self, ContactId};
use crate::records::timeline::{self, NewEntry, Summary};
use crate::records::{case_types, directory, users};
use loket_be::PhoneNumber;

/// Why the pop reads a citizen's data (the audit log's purpose).
const POP_PURPOSE: &str = "screen pop";
/// How often an idle WebSocket is pinged, so that proxies keep it and a dead one is noticed.
const PING_EVERY: Duration = Duration::from_secs(20);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/workspace", get(page))
        .route("/api/workspace", get(state))
        .route("/workspace/events", get(events))
        .route("/workspace/presence", post(presence))
        .route("/workspace/items/{item}/accept", post(accept))
        .route("/workspace/items/{item}/claim", post(claim))
        .route("/workspace/items/{item}/decline", post(decline))
        .route("/workspace/items/{item}/call/{action}", post(control))
        .route("/workspace/items/{item}/transfer", post(transfer))
        .route("/workspace/help", post(ask_help))
        .route("/workspace/items/{item}/link", post(link_contact))
        .route("/workspace/items/{item}/wrap-up", post(wrap_up))
}

/// What the console keeps of an accepted item for its wrap-up.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    item: WorkItemId,
    channel: Channel,
    queue: String,
    case_id: Option<i64>,
}

impl Accepted {
    pub(super) fn of(item: &WorkItem) -> Accepted {
        let queue = item.queue.as_str().to_owned();
        Accepted { item: item.id, channel: item.spec.channel, queue, case_id: item.spec.case_id }
    }
}

pub(super) fn agent_of(current: &CurrentUser) -> AgentId {
    AgentId(current.user.id.0)
}

async fn page(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require(Permission::HandleWork)?;
    let layout = Layout::for_user(&current, "/workspace");
    let language = current.language();
    let queues: Vec<(String, String)> = directory::queues(&state.db)
        .await?
        .into_iter()
        .map(|queue| (queue.names.get(language).to_owned(), queue.code))
        .collect();
    let page = context! {
        away_reasons => state.config.away_reasons,
        dispositions => state.config.dispositions,
        queues,
    };
    Ok(Html(state.templates.render("workspace.html", &layout, page)?))
}

#[derive(Serialize)]
struct DeskState {
    presence: &'static str,
    away_reason: Option<String>,
    /// `offline`, `available`, `away`, `offered`, `busy`, `after_work`.
    state: &'static str,
    after_work_until: Option<i64>,
    offer: Option<Offered>,
    work: Vec<InHand>,
    /// The item whose wrap-up is due (after its work ended).
    wrap_up: Option<Pop>,
    /// The agent's open request for help, with the supervisor's answers.
    help: Option<HelpThread>,
    /// The agent's browser softphone is connected: calls go to it rather than to a phone.
    softphone: bool,
    /// During a call: the agents available to take it (a blind transfer).
    transfer_agents: Vec<TransferAgent>,
    /// The call the agent placed, while it lasts.
    dialled: Option<Dialled>,
    /// A colleague's consultation that rings, or goes on, for this agent.
    consultation: Option<ConsultationShown>,
    /// The queues the agent works, with their first waiting items, to claim from.
    queues: Vec<QueueList>,
}

#[derive(Serialize)]
struct ConsultationShown {
    /// The consulting agent's name.
    from: String,
    answered: bool,
    /// Answered on the agent's phone, not from the page.
    on_phone: bool,
    /// The call's case, as the consulting agent sees it.
    pop: Pop,
}

#[derive(Serialize)]
struct QueueList {
    code: String,
    waiting: Vec<Listed>,
}

/// An item as the lists show it (the workspace's queues, the supervisor's board).
#[derive(Serialize)]
pub(super) struct Listed {
    item: u64,
    channel: Channel,
    waited_seconds: u64,
    priority: i32,
    case_number: Option<String>,
    subject: Option<String>,
}

/// The first `limit` items waiting in `queue`, best first, with their case.
pub(super) async fn listed(
    state: &AppState,
    desk: &dyn Desk,
    queue: &QueueId,
    limit: usize,
) -> Result<Vec<Listed>, WebError> {
    let mut listed = Vec::new();
    for item in desk.waiting(queue, limit).await.map_err(unavailable)? {
        listed.push(list_item(state, &item).await?);
    }
    Ok(listed)
}

/// A work item as the lists show it, with its case; its wait counts from entering its queue.
pub(super) async fn list_item(state: &AppState, item: &WorkItem) -> Result<Listed, WebError> {
    let case = match item.spec.case_id {
        Some(case_id) => cases::get(&state.db, CaseId(case_id)).await?,
        None => None,
    };
    Ok(Listed {
        item: item.id.0,
        channel: item.spec.channel,
        waited_seconds: loket_routing::model::Timestamp::now().since(item.queue_entered_at).as_secs(),
        priority: item.spec.priority,
        case_number: case.as_ref().map(|case| case.number.clone()),
        subject: case.map(|case| case.subject),
    })
}

#[derive(Serialize)]
struct Offered {
    lease_until: i64,
    pop: Pop,
}

#[derive(Serialize)]
struct InHand {
    call: Option<CallState>,
    pop: Pop,
}

#[derive(Serialize)]
struct Pop {
    item: u64,
    channel: Channel,
    queue: String,
    waited_seconds: u64,
    /// For a caller who chose a callback: the number loket calls when the agent accepts.
    callback: Option<String>,
    case: Option<PopCase>,
}

#[derive(Serialize)]
struct PopCase {
    id: i64,
    number: String,
    subject: String,
    service: String,
    request_type: String,
    caller: Option<String>,
    ivr_path: Option<String>,
    contact: Option<PopContact>,
    /// For a caller the IVR did not identify: the contacts with the caller's number.
    candidates: Vec<Candidate>,
    recent_cases: Vec<RecentCase>,
}

#[derive(Serialize)]
struct Candidate {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct PopContact {
    id: i64,
    name: String,
    /// Masked: `85.07.30-***.**`.
    national_number: Option<String>,
    language: &'static str,
    phones: Vec<String>,
    emails: Vec<String>,
    address: String,
}

#[derive(Serialize)]
struct RecentCase {
    id: i64,
    number: String,
    subject: String,
    status: String,
}

async fn state(State(state): State<AppState>, current: CurrentUser) -> Result<Json<DeskState>, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let agent = agent_of(&current);
    let record = desk.agent(agent).await.map_err(unavailable)?;
    let Some(record) = record else {
        return Ok(Json(DeskState {
            presence: "offline",
            away_reason: None,
            state: "offline",
            after_work_until: None,
            offer: None,
            work: Vec::new(),
            wrap_up: None,
            help: state.help_asked(agent),
            softphone: desk.has_softphone(agent),
            transfer_agents: Vec::new(),
            dialled: desk.dialled(agent),
            consultation: None,
            queues: Vec::new(),
        }));
    };
    let (presence, away_reason) = match &record.presence {
        Presence::Offline => ("offline", None),
        Presence::Available => ("available", None),
        Presence::Away { reason } => ("away", Some(reason.clone())),
    };
    let mut offer = None;
    let mut work = Vec::new();
    for held in &record.work {
        let Some(item) = desk.item(held.item).await.map_err(unavailable)? else { continue };
        let lease_until = match item.state {
            ItemState::Offered { agent: to, lease_until } if to == agent && !held.accepted => Some(lease_until.0),
            _ => None,
        };
        let pop = pop(&state, &current, &item).await?;
        match lease_until {
            Some(lease_until) => offer = Some(Offered { lease_until, pop }),
            None if held.accepted => work.push(InHand { call: desk.call_state(held.item), pop }),
            None => {}
        }
    }
    let talking = work.iter().any(|held| held.call.is_some_and(CallState::is_talking));
    let shown = shown_state(&record);
    let wrap_up = match (shown, state.last_accepted(agent)) {
        ("after_work", Some(accepted)) => {
            let case = match accepted.case_id {
                Some(case_id) => pop_case(&state, &current, case_id).await?,
                None => None,
            };
            let Accepted { item, channel, queue, .. } = accepted;
            Some(Pop { item: item.0, channel, queue, waited_seconds: 0, callback: None, case })
        }
        _ => None,
    };
    Ok(Json(DeskState {
        presence,
        away_reason,
        state: shown,
        after_work_until: record.after_work_until.map(|until| until.0),
        offer,
        work,
        wrap_up,
        help: state.help_asked(agent),
        softphone: desk.has_softphone(agent),
        transfer_agents: match talking {
            true => transfer_agents(&state, desk.as_ref(), agent).await?,
            false => Vec::new(),
        },
        dialled: desk.dialled(agent),
        consultation: consultation_shown(&state, &current, desk.as_ref()).await?,
        queues: queue_lists(&state, desk.as_ref(), &record.profile.queues).await?,
    }))
}

/// The consultation that rings, or goes on, for the current agent, with the call's case.
async fn consultation_shown(
    state: &AppState,
    current: &CurrentUser,
    desk: &dyn Desk,
) -> Result<Option<ConsultationShown>, WebError> {
    let Some(consultation) = desk.consultation(agent_of(current)) else { return Ok(None) };
    let Some(item) = desk.item(consultation.item).await.map_err(unavailable)? else { return Ok(None) };
    let from = users::get(&state.db, users::UserId(consultation.from.0)).await?;
    Ok(Some(ConsultationShown {
        from: from.map(|user| user.display_name).unwrap_or_default(),
        answered: consultation.answered,
        on_phone: consultation.on_phone,
        pop: pop(state, current, &item).await?,
    }))
}

/// How many waiting items of each of the agent's queues the workspace lists.
const LISTED: usize = 5;

async fn queue_lists(state: &AppState, desk: &dyn Desk, queues: &[QueueId]) -> Result<Vec<QueueList>, WebError> {
    let mut lists = Vec::new();
    for queue in queues {
        let waiting = listed(state, desk, queue, LISTED).await?;
        lists.push(QueueList { code: queue.as_str().to_owned(), waiting });
    }
    Ok(lists)
}

pub(super) fn shown_state(record: &AgentRecord) -> &'static str {
    use loket_routing::model::AgentState;
    match record.state() {
        AgentState::Offline => "offline",
        AgentState::Available => "available",
        AgentState::Away { .. } => "away",
        AgentState::Offered { .. } => "offered",
        AgentState::Busy => "busy",
        AgentState::AfterWork { .. } => "after_work",
    }
}

/// What the agent sees of an item: its case, the citizen and their history, the way through the
/// IVR. Only called for items the router has offered or assigned to this agent.
async fn pop(state: &AppState, current: &CurrentUser, item: &loket_routing::core::WorkItem) -> Result<Pop, WebError> {
    let waited = loket_routing::model::Timestamp::now().since(item.enqueued_at);
    let case = match item.spec.case_id {
        Some(case_id) => pop_case(state, current, case_id).await?,
        None => None,
    };
    Ok(Pop {
        item: item.id.0,
        channel: item.spec.channel,
        queue: item.queue.as_str().to_owned(),
        waited_seconds: waited.as_secs(),
        callback: state.desk()?.callback(item.id),
        case,
    })
}

async fn pop_case(state: &AppState, current: &CurrentUser, case_id: i64) -> Result<Option<PopCase>, WebError> {
    let Some(case) = cases::get(&state.db, CaseId(case_id)).await? else { return Ok(None) };
    let language = current.language();
    let request_type = match case_types::get(&state.db, &case.case_type).await? {
        Some(found) => found.name.get(language).to_owned(),
        None => case.case_type.clone(),
    };
    let services = directory::services(&state.db).await?;
    let service = services
        .iter()
        .find(|service| service.code == case.service_code)
        .map_or_else(|| case.service_code.clone(), |service| service.names.get(language).to_owned());
    let call = timeline::for_case(&state.db, case_id, 50)
        .await?
        .into_iter()
        .find(|entry| entry.summary.key == "timeline-call-in");
    let (caller, ivr_path) = match call {
        Some(entry) => (entry.summary.args.get("caller").cloned(), entry.summary.args.get("path").cloned()),
        None => (None, None),
    };
    let mut contact = None;
    let mut candidates = Vec::new();
    let mut recent_cases = Vec::new();
    if case.contact_id.is_none()
        && let Some(phone) = caller.as_deref().and_then(|caller| PhoneNumber::parse(caller).ok())
    {
        let now = state.clock.now();
        for (id, _) in contacts::by_phone(&state.db, current.actor(), POP_PURPOSE, &phone, 5, now).await? {
            if let Some(name) = contacts::display_name(&state.db, id).await? {
                candidates.push(Candidate { id: id.0, name });
            }
        }
    }
    if let Some(contact_id) = case.contact_id {
        let read = contacts::read(&state.db, current.actor(), POP_PURPOSE, ContactId(contact_id), state.clock.now());
        if let Some(found) = read.await? {
            let address = &found.address;
            contact = Some(PopContact {
                id: contact_id,
                name: format!("{} {}", found.first_name, found.last_name),
                national_number: found.national_number.as_ref().map(ToString::to_string),
                language: found.language.code(),
                phones: found.phones,
                emails: found.emails,
                address: [address.street.as_str(), address.postcode.as_str(), address.city.as_str()]
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let filter = CaseFilter { contact_id: Some(contact_id), ..CaseFilter::default() };
        let (rows, _) = cases::list(&state.db, &filter, current.user.id.0).await?;
        recent_cases = rows
            .into_iter()
            .filter(|row| row.id != case_id)
            .take(5)
            .map(|row| RecentCase { id: row.id, number: row.number, subject: row.subject, status: row.status })
            .collect();
    }
    Ok(Some(PopCase {
        id: case.id,
        number: case.number,
        subject: case.subject,
        service,
        request_type,
        caller,
        ivr_path,
        contact,
        candidates,
        recent_cases,
    }))
}

/// A WebSocket that says `changed` whenever this agent's desk changed, and once at the start so
/// that a reconnected page reads its state again; it also carries the softphone's signalling
/// (`Signal`). Only pages of this site may open it.
async fn events(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = Arc::clone(state.desk()?);
    if !same_origin(&headers) {
        return Err(WebError::Forbidden);
    }
    let agent = agent_of(&current);
    Ok(upgrade.on_upgrade(move |socket| follow(socket, desk, Some(agent), None, agent)).into_response())
}

/// A browser sends the page's origin with every WebSocket; it must be this host's.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get("host").and_then(|value| value.to_str().ok());
    let origin = headers.get("origin").and_then(|value| value.to_str().ok());
    match (host, origin) {
        (Some(host), Some(origin)) => origin.split_once("://").is_some_and(|(_, rest)| rest == host),
        // Not a browser (a test client, a script with the session cookie): nothing to forge.
        (_, None) => true,
        _ => false,
    }
}

/// The softphone's signalling on the workspace's socket, as JSON: the browser's offer, loket's
/// answer, or why there is none.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Signal {
    #[serde(rename = "softphone-offer")]
    Offer { sdp: String },
    #[serde(rename = "softphone-answer")]
    Answer { sdp: String },
    #[serde(rename = "softphone-error")]
    Error { message: String },
}

/// Tells the page `changed` when the desk of `only` changes (every agent's, for `None`), and,
/// with `logged`, whenever the router's event log grows; answers its softphone signalling.
pub(super) async fn follow(
    mut socket: WebSocket,
    desk: Arc<dyn Desk>,
    only: Option<AgentId>,
    mut logged: Option<broadcast::Receiver<()>>,
    user: AgentId,
) {
    let mut changes = desk.changes();
    if socket.send(Message::text("changed")).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        let send = tokio::select! {
            change = changes.recv() => match change {
                Ok(changed) if only.is_none_or(|agent| agent == changed) => Message::text("changed"),
                Ok(_) => continue,
                // Names were missed: read the state again to be sure.
                Err(broadcast::error::RecvError::Lagged(_)) => Message::text("changed"),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            grew = next_log(&mut logged) => match grew {
                true => Message::text("changed"),
                false => return,
            },
            _ = ping.tick() => Message::Ping(Vec::new().into()),
            received = socket.recv() => match received {
                Some(Ok(Message::Text(text))) => {
                    let Some(reply) = signal(desk.as_ref(), user, &text).await else { continue };
                    Message::text(serde_json::to_string(&reply).unwrap_or_default())
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return,
            },
        };
        if socket.send(send).await.is_err() {
            return;
        }
    }
}

/// Waits until the event log grew (`true`; also when growth was missed), or the desk is gone
/// (`false`). Without a receiver, never.
async fn next_log(logged: &mut Option<broadcast::Receiver<()>>) -> bool {
    match logged {
        Some(receiver) => !matches!(receiver.recv().await, Err(broadcast::error::RecvError::Closed)),
        None => std::future::pending().await,
    }
}

/// The reply to a message from the agent's page; `None` for one that needs none.
async fn signal(desk: &dyn Desk, agent: AgentId, text: &str) -> Option<Signal> {
    let reply = match serde_json::from_str::<Signal>(text) {
        Ok(Signal::Offer { sdp }) => match desk.softphone(agent, &sdp).await {
            Ok(sdp) => Signal::Answer { sdp },
            Err(error) => {
                tracing::info!(agent = agent.0, %error, "a softphone did not connect");
                Signal::Error { message: error.to_string() }
            }
        },
        Ok(_) => return None,
        Err(error) => Signal::Error { message: format!("an unreadable message: {error}") },
    };
    Some(reply)
}

#[derive(Deserialize)]
pub(super) struct PresenceForm {
    presence: String,
    #[serde(default)]
    reason: String,
}

impl PresenceForm {
    /// The presence asked for; away needs one of the configured reasons.
    pub(super) fn presence(self, state: &AppState) -> Result<Presence, WebError> {
        match self.presence.as_str() {
            "available" => Ok(Presence::Available),
            "offline" => Ok(Presence::Offline),
            "away" if state.config.away_reasons.contains(&self.reason) => Ok(Presence::Away { reason: self.reason }),
            _ => Err(WebError::BadRequest("an unknown presence or away reason".into())),
        }
    }
}

async fn presence(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<PresenceForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let presence = form.presence(&state)?;
    let agent = agent_of(&current);
    let known = desk.agent(agent).await.map_err(unavailable)?.is_some();
    let input = if known {
        Input::PresenceChanged { agent, presence }
    } else {
        Input::AgentLoggedIn { profile: profile(&state, agent).await?, presence }
    };
    desk.execute(input).await.map_err(unavailable)?;
    Ok(Redirect::to("/workspace"))
}

/// The router's view of the agent: skills and queues from the directory, one item at a time,
/// and the configured wrap-up time after calls.
pub(super) async fn profile(state: &AppState, agent: AgentId) -> Result<AgentProfile, WebError> {
    let (skills, queues) = directory::user_routing(&state.db, agent.0).await?;
    let mut profile = AgentProfile::new(agent);
    profile.skills = skills
        .into_iter()
        .map(|(skill, level)| (Skill(skill.into()), u8::try_from(level.clamp(0, 10)).unwrap_or(0)))
        .collect::<BTreeMap<_, _>>();
    profile.queues = queues.iter().map(|queue| QueueId::new(queue)).collect();
    profile.after_work.insert(Channel::Voice, state.config.after_call_work);
    Ok(profile)
}

async fn accept(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let (agent, item) = (agent_of(&current), WorkItemId(item));
    let record = desk.agent(agent).await.map_err(unavailable)?;
    if record.and_then(|record| record.offered_item()) != Some(item) {
        return Err(WebError::BadRequest("this item is not offered to you (any more)".into()));
    }
    take(&state, &current, item, Input::OfferAccepted { agent, item }).await
}

/// The agent takes a waiting item from one of their queues' lists, without an offer.
async fn claim(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let (agent, item) = (agent_of(&current), WorkItemId(item));
    take(&state, &current, item, Input::ItemClaimed { agent, item }).await
}

/// The item becomes the agent's by `input` (an accepted offer or a claim); a call is put through.
async fn take(state: &AppState, current: &CurrentUser, item: WorkItemId, input: Input) -> Result<Redirect, WebError> {
    let desk = state.desk()?;
    let agent = agent_of(current);
    let Some(accepted) = desk.item(item).await.map_err(unavailable)? else {
        return Err(WebError::BadRequest("this item is gone".into()));
    };
    desk.execute(input).await.map_err(|error| WebError::BadRequest(format!("the item cannot be taken: {error}")))?;
    state.set_last_accepted(agent, Accepted::of(&accepted));
    if accepted.spec.channel == Channel::Voice {
        desk.connect(item, agent, &current.user.username).map_err(|error| WebError::Unavailable(error.to_string()))?;
    }
    Ok(Redirect::to("/workspace"))
}

async fn decline(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let agent = agent_of(&current);
    desk.execute(Input::OfferDeclined { agent, item: WorkItemId(item) })
        .await
        .map_err(|error| WebError::BadRequest(format!("the offer cannot be declined: {error}")))?;
    Ok(Redirect::to("/workspace"))
}

/// Call control on an item the agent holds: `hangup`, `hold` or `resume`.
async fn control(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((item, action)): Path<(u64, String)>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let item = holds(desk.as_ref(), agent_of(&current), item).await?;
    match action.as_str() {
        "hangup" => desk.hang_up(item),
        "hold" => desk.hold(item, true),
        "resume" => desk.hold(item, false),
        _ => return Err(WebError::NotFound),
    }?;
    Ok(Redirect::to("/workspace"))
}

#[derive(Deserialize)]
struct HelpForm {
    /// Present: ask for help (again, with another message); absent: no longer needed.
    ask: Option<String>,
    #[serde(default)]
    message: String,
}

/// The agent's hand up, with a message about the work in hand, or down again: supervisors see
/// it on the board, and the case's timeline keeps the exchange.
async fn ask_help(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<HelpForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let agent = agent_of(&current);
    let message = help::message_text(&form.message)?;
    if form.ask.is_none() {
        help::lower(&state, &current, agent).await?;
        return Ok(Redirect::to("/workspace"));
    }
    let now = state.clock.now();
    let case_id = match desk.agent(agent).await.map_err(unavailable)? {
        Some(record) => match record.work.iter().find(|held| held.accepted) {
            Some(held) => desk.item(held.item).await.map_err(unavailable)?.and_then(|item| item.spec.case_id),
            None => None,
        },
        None => None,
    };
    let messages = match message.is_empty() {
        true => Vec::new(),
        false => vec![HelpMessage {
            author: current.user.display_name.clone(),
            supervisor: false,
            text: message.clone(),
            at: now.0,
        }],
    };
    let thread = state.ask_help(agent, HelpThread { since: now.0, case_id, messages });
    help::note(&state, &current, thread.case_id, "timeline-help-asked", Some(&message)).await?;
    desk.changed(agent);
    Ok(Redirect::to("/workspace"))
}

#[derive(Deserialize)]
struct LinkForm {
    contact_id: i64,
}

/// One click from the pop: the case of an item offered to or held by the agent gets the contact
/// they recognised among the candidates.
async fn link_contact(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    CsrfForm { form, .. }: CsrfForm<LinkForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let (agent, item) = (agent_of(&current), WorkItemId(item));
    let record = desk.agent(agent).await.map_err(unavailable)?;
    if !record.is_some_and(|record| record.work.iter().any(|held| held.item == item)) {
        return Err(WebError::BadRequest("this item is not yours".into()));
    }
    let case_id = desk.item(item).await.map_err(unavailable)?.and_then(|item| item.spec.case_id);
    let case_id = case_id.ok_or(WebError::NotFound)?;
    contacts::display_name(&state.db, ContactId(form.contact_id)).await?.ok_or(WebError::NotFound)?;
    let mut conn = state.db.pool().acquire().await?;
    cases::set_contact(&mut conn, CaseId(case_id), form.contact_id, &current.user.username, state.clock.now())
        .await
        .map_err(|error| WebError::BadRequest(error.to_string()))?;
    desk.changed(agent);
    Ok(Redirect::to("/workspace"))
}

#[derive(Deserialize)]
struct TransferForm {
    #[serde(default)]
    queue: String,
    /// Another agent's id, in place of a queue.
    #[serde(default)]
    agent: Option<i64>,
    /// A number outside, in place of a queue or an agent.
    #[serde(default)]
    number: String,
}

/// A blind transfer: the caller waits again, in `queue`, or is offered to another agent who is
/// available now; the agent goes to wrap-up.
async fn transfer(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    CsrfForm { form, .. }: CsrfForm<TransferForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    let desk = state.desk()?;
    let me = agent_of(&current);
    let item = holds(desk.as_ref(), me, item).await?;
    let to = match form.agent {
        _ if !form.number.trim().is_empty() => TransferTarget::Number(super::dial::number_of(&form.number)?),
        Some(target) => {
            if !is_available_colleague(&state, desk.as_ref(), me, AgentId(target)).await? {
                return Err(WebError::BadRequest("that agent cannot take a call now".into()));
            }
            TransferTarget::Agent(AgentId(target))
        }
        None => {
            let queues = directory::queues(&state.db).await?;
            if !queues.iter().any(|queue| queue.code == form.queue) {
                return Err(WebError::BadRequest("an unknown queue".into()));
            }
            TransferTarget::Queue(QueueId::new(&form.queue))
        }
    };
    desk.transfer(item, to)?;
    Ok(Redirect::to("/workspace"))
}

#[derive(Serialize)]
struct TransferAgent {
    id: i64,
    name: String,
}

/// The agents other than `me` who are available now: where a call can be transferred.
async fn transfer_agents(state: &AppState, desk: &dyn Desk, me: AgentId) -> Result<Vec<TransferAgent>, WebError> {
    let mut agents = Vec::new();
    for user in users::list(&state.db).await? {
        let id = AgentId(user.id.0);
        if user.disabled || id == me {
            continue;
        }
        let record = desk.agent(id).await.map_err(unavailable)?;
        if record.is_some_and(|record| shown_state(&record) == "available") {
            agents.push(TransferAgent { id: id.0, name: user.display_name });
        }
    }
    Ok(agents)
}

/// `colleague` is another agent than `me` and available now: a call can go to them.
pub(super) async fn is_available_colleague(
    state: &AppState,
    desk: &dyn Desk,
    me: AgentId,
    colleague: AgentId,
) -> Result<bool, WebError> {
    Ok(transfer_agents(state, desk, me).await?.iter().any(|agent| agent.id == colleague.0))
}

/// The item, if the agent holds it (accepted).
pub(super) async fn holds(desk: &dyn Desk, agent: AgentId, item: u64) -> Result<WorkItemId, WebError> {
    let item = WorkItemId(item);
    let record = desk.agent(agent).await.map_err(unavailable)?;
    let held = record.is_some_and(|record| record.work.iter().any(|held| held.item == item && held.accepted));
    if held { Ok(item) } else { Err(WebError::BadRequest("this item is not yours".into())) }
}

#[derive(Deserialize)]
struct WrapUpForm {
    disposition: String,
    #[serde(default)]
    note: String,
    /// Present: the case is closed as answered by phone.
    close: Option<String>,
}

/// After-call work: the disposition and the note on the case's timeline, the case closed if
/// asked, the item finished if it was still in hand, and the agent available again.
async fn wrap_up(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(item): Path<u64>,
    CsrfForm { form, .. }: CsrfForm<WrapUpForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::HandleWork)?;
    if !state.config.dispositions.contains(&form.disposition) {
        return Err(WebError::BadRequest("an unknown disposition".into()));
    }
    let desk = state.desk()?;
    let agent = agent_of(&current);
    let record = desk.agent(agent).await.map_err(unavailable)?;
    let item = WorkItemId(item);
    let in_hand =
        record.as_ref().is_some_and(|record| record.work.iter().any(|held| held.item == item && held.accepted));
    let Some(accepted) = state.last_accepted(agent).filter(|accepted| accepted.item == item) else {
        return Err(WebError::BadRequest("this item is not yours".into()));
    };
    let case_id = accepted.case_id;
    if let Some(case_id) = case_id {
        let now = state.clock.now();
        let mut tx = state.db.pool().begin().await?;
        let summary = Summary::new("timeline-wrap-up").term("disposition", format!("disposition-{}", form.disposition));
        let note = form.note.trim();
        let entry = NewEntry {
            case_id: Some(case_id),
            contact_id: None,
            kind: "note",
            actor_name: &current.user.username,
            public: false,
            summary,
            body: (!note.is_empty()).then(|| note.to_owned()),
        };
        timeline::append(&mut tx, &entry, now).await?;
        if form.close.is_some() {
            cases::set_status(
                &mut tx,
                CaseId(case_id),
                CaseStatus::Closed,
                Some("answered_by_phone"),
                &current.user.username,
                now,
            )
            .await
            .map_err(|error| WebError::BadRequest(error.to_string()))?;
        }
        tx.commit().await?;
    }
    if in_hand {
        desk.execute(Input::WorkCompleted { agent, item }).await.map_err(unavailable)?;
    }
    desk.execute(Input::AfterWorkDone { agent }).await.map_err(unavailable)?;
    state.clear_last_accepted(agent);
    Ok(Redirect::to("/workspace"))
}

pub(super) fn unavailable(error: impl std::fmt::Display) -> WebError {
    WebError::Unavailable(error.to_string())
}
