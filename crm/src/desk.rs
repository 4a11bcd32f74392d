//! The agent's desk as the console drives it: presence, offers and work in the router, and the
//! calls behind voice work items. The console holds it as a trait object because its
//! implementation joins the router and the voice flows, which depend on this crate: the binary
//! builds it (`flows::desk`) and hands it to `web::AppState::with_desk`.

use std::future::Future;
use std::pin::Pin;

use loket_be::PhoneNumber;
use loket_routing::core::{Action, AgentRecord, Input, WorkItem};
use loket_routing::error::StoreError;
use loket_routing::event::RoutingEvent;
use loket_routing::model::{AgentId, QueueId, ServiceLevelTarget, WorkItemId};
use tokio::sync::broadcast;

pub type DeskFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the call of a voice work item stands, as its agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CallState {
    /// The caller waits for the agent; nothing rings yet.
    Waiting,
    /// loket rings the agent's phone; for a call loket places (a callback, the agent's own
    /// call), the citizen's.
    Ringing,
    /// Caller and agent talk, since `since` (milliseconds since the epoch).
    Connected {
        since: i64,
    },
    /// The agent put the caller on hold (music); connected since `since`.
    Held {
        since: i64,
    },
    /// The caller waits on hold while the agent calls someone to consult (`answered`: they
    /// talk); connected since `since`.
    Consulting {
        since: i64,
        answered: bool,
    },
    /// The agent's phone did not answer and the caller is back in the queue; for a call loket
    /// places, the citizen did not answer.
    NotAnswered,
    Ended,
}

impl CallState {
    /// Caller and agent are in the call, talking or on hold: what coaching, a transfer or a
    /// supervisor's take-back act on.
    pub fn is_talking(self) -> bool {
        matches!(self, CallState::Connected { .. } | CallState::Held { .. })
    }

    /// The agent consults someone while the caller waits (coaching and transfers wait for the
    /// consultation to end).
    pub fn is_consulting(self) -> bool {
        matches!(self, CallState::Consulting { .. })
    }
}

/// How a supervisor takes part in an agent's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coaching {
    /// The supervisor hears the citizen and the agent; nobody hears the supervisor.
    Listen,
    /// As `Listen`, and the agent hears the supervisor; the citizen does not.
    Whisper,
    /// A three-way call: everyone hears everyone.
    Barge,
}

impl Coaching {
    pub fn parse(text: &str) -> Option<Coaching> {
        match text {
            "listen" => Some(Coaching::Listen),
            "whisper" => Some(Coaching::Whisper),
            "barge" => Some(Coaching::Barge),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Coaching::Listen => "listen",
            Coaching::Whisper => "whisper",
            Coaching::Barge => "barge",
        }
    }
}

/// Where a blind transfer sends the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// To wait in this queue, for whoever the router offers them to.
    Queue(QueueId),
    /// To this agent: the item is offered to them, and waits in its queue meanwhile (and stays
    /// there should they not be able to take it).
    Agent(AgentId),
    /// A supervisor takes the call back from its agent: the caller waits in this queue, and the
    /// router's log says the supervisor moved it (the agent may be offered it again).
    TakenBack(QueueId),
    /// To a number outside, dialled through the SIP trunk: the agent's part ends and the caller
    /// hears the number ring.
    Number(PhoneNumber),
}

/// A step of a consultative transfer: the caller waits on hold while the agent calls someone
/// (`Start`), then either puts the caller through to them (`Complete`: the agent leaves) or
/// comes back (`Cancel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsultStep {
    Start(Consulted),
    Complete,
    Cancel,
}

/// Whom an agent consults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consulted {
    /// A number outside, dialled through the SIP trunk: on completion the caller talks to it and
    /// the call leaves the console.
    Number(PhoneNumber),
    /// A colleague who is available, with their user name: their workspace shows the call's
    /// case, and their browser softphone answers from it or, without one, their registered phones
    /// ring; on completion the call becomes theirs, with its work item and its controls.
    Agent { agent: AgentId, username: String },
}

/// A colleague's consultation as the consulted agent's workspace shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consultation {
    /// The call's work item, whose case the consulted agent sees.
    pub item: WorkItemId,
    /// The agent who consults.
    pub from: AgentId,
    /// The consulted agent answered: the two talk while the caller waits.
    pub answered: bool,
    /// Their phones ring: they answer there, not from the workspace.
    pub on_phone: bool,
}

/// A call the agent places (click-to-dial), as the workspace shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dialled {
    /// E.164.
    pub number: String,
    pub case_id: Option<i64>,
    pub call: CallState,
}

/// What the agent asks of the call they placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialControl {
    HangUp,
    Hold(bool),
}

/// Where a call the agent places belongs (its case, or the contact it was made to), and who
/// places it, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DialFor {
    pub case_id: Option<i64>,
    pub contact_id: Option<i64>,
    /// The agent's name.
    pub by: String,
    /// The agent's user name: without a browser softphone, loket rings their registered phones
    /// first and dials the number once they answer.
    pub username: String,
}

/// Why the browser's softphone could not connect.
#[derive(Debug, thiserror::Error)]
#[error("the softphone cannot connect: {0}")]
pub struct SoftphoneError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no call belongs to work item {0}")]
    NoCall(i64),
    #[error("the call of work item {0} is not between a citizen and an agent now")]
    NotTalking(i64),
    #[error("connect your softphone first: coaching happens in the browser")]
    NoSoftphone,
    #[error("another supervisor coaches this call")]
    CoachedByAnother,
    #[error("you are not coaching this call")]
    NotCoaching,
    #[error("your softphone is in another call: finish it first")]
    SoftphoneBusy,
    #[error("you have no call to which this applies")]
    NoCallOfYours,
    #[error("answer or decline the offer first")]
    OfferPending,
    #[error("the router is unavailable: {0}")]
    Router(String),
    #[error("the call cannot be placed: {0}")]
    CannotDial(String),
    #[error("that colleague cannot be consulted now: they are in another call")]
    ColleagueUnavailable,
}

pub trait Desk: Send + Sync + 'static {
    fn execute(&self, input: Input) -> DeskFuture<'_, Result<Vec<Action>, StoreError>>;
    fn agent(&self, agent: AgentId) -> DeskFuture<'_, Result<Option<AgentRecord>, StoreError>>;
    fn item(&self, item: WorkItemId) -> DeskFuture<'_, Result<Option<WorkItem>, StoreError>>;
    /// The items waiting in `queue`, best first, at most `limit`.
    fn waiting<'a>(&'a self, queue: &'a QueueId, limit: usize) -> DeskFuture<'a, Result<Vec<WorkItem>, StoreError>>;
    /// The agents whose desk changed (an offer, a withdrawal, a state, a call): their consoles
    /// fetch their state again. A receiver that lags misses names, never a state: the state is
    /// always read whole.
    fn changes(&self) -> broadcast::Receiver<AgentId>;
    /// Tells the consoles that the desk of `agent` changed outside the router (a help flag).
    fn changed(&self, agent: AgentId);
    /// The router's event log grew: work came, left or moved in the queues, perhaps with no
    /// agent concerned (an item that waits, a caller who hangs up). The board reads itself again.
    fn logged(&self) -> broadcast::Receiver<()>;
    /// Puts the caller of the voice item `item` through to the phones of `agent`, whose user
    /// name is `username`.
    fn connect(&self, item: WorkItemId, agent: AgentId, username: &str) -> Result<(), CallError>;
    /// Ends the call of the voice item `item`.
    fn hang_up(&self, item: WorkItemId) -> Result<(), CallError>;
    /// Sends the caller of `item` to `to` (a blind transfer): the agent's phone
    /// is hung up and the agent goes to wrap-up.
    fn transfer(&self, item: WorkItemId, to: TransferTarget) -> Result<(), CallError>;
    /// Puts the caller of `item` on hold (`true`: music, and the agent no longer hears them) or
    /// takes them off it.
    fn hold(&self, item: WorkItemId, on: bool) -> Result<(), CallError>;
    /// A step of the agent's consultative transfer of the call of `item`.
    fn consult(&self, item: WorkItemId, step: ConsultStep) -> Result<(), CallError>;
    /// The consultation that rings, or goes on, in the workspace of the colleague `agent`.
    fn consultation(&self, agent: AgentId) -> Option<Consultation>;
    /// The colleague consulted about the call of `item`.
    fn consulted(&self, item: WorkItemId) -> Option<AgentId>;
    /// The colleague `agent` answers the consultation that rings for them (`true`), or declines
    /// it or leaves it once answered (`false`): the consulting agent is back with the caller.
    fn answer_consultation(&self, agent: AgentId, answer: bool) -> Result<(), CallError>;
    fn call_state(&self, item: WorkItemId) -> Option<CallState>;
    /// The number loket calls back for the voice item `item` (a caller who chose a callback),
    /// shown in its pop.
    fn callback(&self, item: WorkItemId) -> Option<String>;
    /// The agent calls `number` through the trunk (click-to-dial) from their browser softphone,
    /// or from their desk phone, which rings first; the router offers them nothing until the call
    /// ends, and the call joins the timeline of the case or contact it was made for.
    fn dial<'a>(&'a self, agent: AgentId, number: PhoneNumber, on: DialFor) -> DeskFuture<'a, Result<(), CallError>>;
    /// The call the agent placed, while it lasts.
    fn dialled(&self, agent: AgentId) -> Option<Dialled>;
    fn dial_control(&self, agent: AgentId, control: DialControl) -> Result<(), CallError>;
    /// Sends a keypad digit (`0`–`9`, `*`, `#`) to the other party of the agent's call: the
    /// citizen, or the number they called (an IVR, a switchboard).
    fn send_digit(&self, agent: AgentId, digit: char) -> Result<(), CallError>;
    /// Connects the agent's browser softphone: the browser's SDP offer in, loket's answer out.
    /// Calls the agent accepts then go to the browser instead of ringing a phone. A new
    /// softphone replaces the agent's previous one, even during a call.
    fn softphone<'a>(&'a self, agent: AgentId, offer: &'a str) -> DeskFuture<'a, Result<String, SoftphoneError>>;
    /// The agent's browser softphone is connected.
    fn has_softphone(&self, agent: AgentId) -> bool;
    /// `supervisor` coaches the call of `item` through their browser softphone in `mode`, or
    /// leaves it (`None`) without disturbing it.
    fn coach(&self, item: WorkItemId, supervisor: AgentId, mode: Option<Coaching>) -> Result<(), CallError>;
    /// Who coaches the call of `item`, and how.
    fn coaching(&self, item: WorkItemId) -> Option<(AgentId, Coaching)>;
    /// The router's events of today (Brussels), for the board's figures (`loket_routing::kpi`).
    fn today(&self) -> Vec<RoutingEvent>;
    /// The service-level target the router has for `queue`.
    fn service_level_target(&self, queue: &QueueId) -> Option<ServiceLevelTarget>;
}
