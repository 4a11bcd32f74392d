//! Calls in the service task: INVITEs to configured numbers, handed to the application for the
//! target `ivr` (see [`super::application`]), answered by loket itself for the target `answer`, or
//! bridged (B2BUA) to an agent's registered phones (all forked) or to a SIP URI; and the
//! application's calls to numbers through the trunk, with loket's registration there ([`trunk`]).
//! The pure [`Leg`]s decide and the pure [`Bridge`] couples them; this module turns their actions
//! into messages. Each leg is one [`Call`] here: its leg, its dialog, the requests it still has to
//! answer and the messages it may have to send again.
//!
//! A call the application originates to a number is one outbound leg to the trunk under the
//! application's id, with no caller and so no bridge: the application is its other side, and
//! hears of it through the `Callee…` events until the answer, then as of an inbound call. One to
//! an agent's phones is forked as for a caller, by a bridge under the application's id whose
//! inbound side is the application itself, with no leg ([`originate`]); the phone that answers
//! first takes the id, and from then on the call is that same single leg.
//!
//! Media: the application's calls carry the SDP of its media sessions; loket's own answers (target
//! `answer`) name the configured media address and port, where nothing listens; bridged calls
//! pass SDP through unchanged, so media flows between the phones. See `sip/NOTES.md`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rsipstack::sip::{Header, Method, Request, Response};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::application::{CallCommand, CallEvent, CallIds, info_digit};
use super::{Addresses, CredentialStore, Peer, Service, send_to};
use crate::call::bridge::Bridge;
use crate::call::{Action, Change, EndReason, Event, Leg, LegId, SessionDescription, Status};
use crate::dialog::{Dialog, Invitation, tag_of};
use crate::message::{Reply, reason_phrase as reason};
use crate::ratelimit::NewCalls;
use crate::registrar::{Binding, LocationStore, StoreError, uri_of};
use crate::sdp::{self, Direction, LocalMedia, SdpError};
use crate::transaction::{
    ClientEnding, ClientKey, ClientOutput, ClientTransactions, Kind, ResponseBytes, TimerWheel, TransactionKey,
};
use crate::transport::{Protocol, ReplyPath};
use crate::trunk::Trunk;

mod originate;
mod trunk;

use originate::Originating;

/// Where a dialled number goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The application (the IVR in the binary) takes the call.
    Application,
    /// loket answers the call itself and plays nothing: a test target.
    Answer,
    /// The registered phones of this agent user, all rung at once; the first to answer wins.
    Agent(String),
    /// A SIP URI with an IP address (no DNS yet), e.g. a test callee or a PBX.
    Uri(String),
}

impl Target {
    /// `ivr`, `answer`, `agent:USER` or a `sip:`/`sips:` URI.
    pub fn parse(text: &str) -> Option<Target> {
        let text = text.trim();
        if text == "ivr" {
            return Some(Target::Application);
        }
        if text == "answer" {
            return Some(Target::Answer);
        }
        if let Some(user) = text.strip_prefix("agent:").filter(|user| !user.is_empty()) {
            return Some(Target::Agent(user.to_owned()));
        }
        (text.starts_with("sip:") || text.starts_with("sips:")).then(|| Target::Uri(text.to_owned()))
    }
}

/// A dialled number and what happens to its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// The user part of the Request-URI, as dialled (`+3225550100`).
    pub number: String,
    pub target: Target,
    /// For [`Target::Answer`]: how long the caller hears ringing (180) before loket answers.
    pub ring: Duration,
    /// For [`Target::Answer`]: loket hangs up this long after the call is set up.
    pub hangup_after: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct CallSettings {
    pub numbers: Vec<Number>,
    /// Where loket says it receives media (the SDP answer's address and port).
    pub media: SocketAddr,
    /// Legs alive at once (a bridged call is its inbound leg and one per fork); new calls beyond
    /// are answered 503.
    pub max_calls: usize,
    /// New calls admitted per second; beyond, 503.
    pub max_calls_per_second: u32,
    /// The Retry-After of those 503s, in seconds.
    pub retry_after: u32,
    /// A ceiling below `max_calls` while loket falls behind.
    pub overload: Overload,
    /// Where the application's calls to numbers go, and where loket registers; `None`: numbers
    /// cannot be dialled.
    pub trunk: Option<Trunk>,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            numbers: Vec::new(),
            media: SocketAddr::from(([127, 0, 0, 1], 40_000)),
            // Each call holds a few KiB (the INVITE, the dialog, the 200): 10,000 stay far below
            // 100 MB, and they are an order of magnitude beyond what the machine relays.
            max_calls: 10_000,
            max_calls_per_second: 1_000,
            retry_after: 5,
            overload: Overload::default(),
            trunk: None,
        }
    }
}

/// A ceiling on the legs alive at once, below `max_calls`, that whoever can tell that loket falls
/// behind sets (the media engine's prompts going out late): new calls beyond it are refused like
/// calls beyond `max_calls`, so that the calls in progress keep their audio instead of every call
/// losing it. It shows the legs alive, to set the ceiling from, and counts the new calls refused
/// with 503, for whichever reason.
#[derive(Debug, Clone)]
pub struct Overload(Arc<OverloadState>);

#[derive(Debug)]
struct OverloadState {
    /// `usize::MAX` when there is none.
    ceiling: AtomicUsize,
    legs: AtomicUsize,
    refused: AtomicU64,
}

impl Default for Overload {
    fn default() -> Self {
        Overload(Arc::new(OverloadState {
            ceiling: AtomicUsize::new(usize::MAX),
            legs: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }))
    }
}

impl Overload {
    pub fn set_ceiling(&self, ceiling: Option<usize>) {
        self.0.ceiling.store(ceiling.unwrap_or(usize::MAX), Ordering::Relaxed);
    }

    pub fn ceiling(&self) -> Option<usize> {
        Some(self.0.ceiling.load(Ordering::Relaxed)).filter(|&ceiling| ceiling != usize::MAX)
    }

    /// Legs alive (or about to be) when a new call last came in, before it was judged, or a leg
    /// last ended.
    pub fn legs(&self) -> usize {
        self.0.legs.load(Ordering::Relaxed)
    }

    /// New calls answered 503 so far.
    pub fn refused(&self) -> u64 {
        self.0.refused.load(Ordering::Relaxed)
    }

    fn count_refusal(&self) {
        self.0.refused.fetch_add(1, Ordering::Relaxed);
    }

    fn note_legs(&self, legs: usize) {
        self.0.legs.store(legs, Ordering::Relaxed);
    }
}

/// Twice what the TCP and WebSocket listeners hold open at most (1,024 each).
const MAX_REMEMBERED_CONNECTIONS: usize = 4_096;

/// Where an outbound leg goes: its Request-URI, and how its messages get there.
struct Callee {
    uri: String,
    peer: Peer,
    protocol: Protocol,
}

/// One leg of loket's: the pure leg and what the edge needs to carry out its actions.
struct Call {
    leg: Leg,
    dialog: Dialog,
    peer: Peer,
    protocol: Protocol,
    /// Inbound: the INVITE and its server transaction.
    invite: Option<(Request, TransactionKey)>,
    /// Outbound: the INVITE as its CANCEL and the ACK of a refusal repeat it.
    invitation: Option<Invitation>,
    /// Inbound: the INVITE's CSeq, which tells its ACK from that of a re-INVITE.
    invite_cseq: u32,
    /// The CSeq of loket's latest INVITE or re-INVITE, whose 2xx loket ACKs.
    ack_cseq: u32,
    /// The offer of an outbound leg's INVITE.
    offer: Option<SessionDescription>,
    /// The 200 to the INVITE, sent again while the ACK is missing.
    answer: Option<ResponseBytes>,
    /// The answer loket will give itself when ringing ends.
    ringing: Option<(Instant, SessionDescription)>,
    hangup_after: Option<Duration>,
    hangup_at: Option<Instant>,
    /// The request being handled, until the leg's actions answer it.
    current: Option<(Request, TransactionKey)>,
    /// The re-INVITE or UPDATE whose answer is being decided, and its 200 once sent.
    change: Option<(Request, TransactionKey)>,
    change_answer: Option<ResponseBytes>,
    sdp_version: u64,
    /// The bridge this leg belongs to, by its inbound side's id (which has no leg for the
    /// application's own call to an agent's phones).
    bridge: Option<LegId>,
    /// The application handles this leg.
    application: bool,
    /// The media address and port of the application's answer (or, on an agent's leg, of its
    /// offer), for later answers in the dialog.
    media: Option<(IpAddr, u16)>,
    /// The application's offer for the callee (agent or number) it asked to dial from this call.
    agent_offer: Option<SessionDescription>,
    /// A leg to the trunk, whose credentials answer its challenges.
    trunk: bool,
    /// A call the application originated (this outbound leg under its id: to the trunk, or the
    /// agent's phone that answered first): what it was told.
    origination: Option<Origination>,
    /// The answer to the trunk's challenge (header name and value), sent with the INVITE again
    /// and in the ACK of its 2xx.
    credentials: Option<(&'static str, String)>,
    /// The deadline the wheel holds for this leg; other entries are stale.
    scheduled: Option<Instant>,
}

impl Call {
    fn new(leg: Leg, dialog: Dialog, peer: Peer, protocol: Protocol) -> Call {
        Call {
            leg,
            dialog,
            peer,
            protocol,
            invite: None,
            invitation: None,
            invite_cseq: 0,
            ack_cseq: 0,
            offer: None,
            answer: None,
            ringing: None,
            hangup_after: None,
            hangup_at: None,
            current: None,
            change: None,
            change_answer: None,
            sdp_version: 1,
            bridge: None,
            application: false,
            media: None,
            agent_offer: None,
            trunk: false,
            origination: None,
            credentials: None,
            scheduled: None,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.leg.next_deadline(), self.ringing.as_ref().map(|(at, _)| *at), self.hangup_at].into_iter().flatten().min()
    }

    /// Answered by loket (an inbound call) or by the callee (an originated one).
    fn is_answered(&self) -> bool {
        self.answer.is_some() || self.origination == Some(Origination::Answered)
    }
}

/// What the application has heard of a call it originated, which tells what it hears next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origination {
    /// Nothing final: the end is a `CalleeFailed`.
    Dialling,
    /// `CalleeAnswered`: the end is an `Ended`, as for an inbound call.
    Answered,
    /// Nothing more: the application hung up before the answer, or has heard that it failed.
    Silent,
}

/// What one of loket's client transactions is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Invite,
    Cancel,
    Change,
    Bye,
    Info,
}

/// What a lookup outside the service task found, for what waits on it.
pub(super) enum Found {
    /// The contacts of an agent, from the location store, for the call waiting on them: the
    /// callee of the call `leg`, or, when `originated`, the application's own call `leg`.
    Agent { leg: LegId, bindings: Result<Vec<Binding>, StoreError>, originated: bool },
    /// The trunk's next hop, for the call to `number`: the callee of the call `leg`, or, when
    /// `originated`, the application's own call `leg`.
    Trunk { leg: LegId, number: String, addr: io::Result<SocketAddr>, originated: bool },
    /// The trunk's next hop, for the REGISTER of the registration's `attempt`.
    Registrar { attempt: u64, addr: io::Result<SocketAddr> },
}

/// How the outbound legs placed for one call present themselves.
struct Placement {
    /// The From, a name-addr without tag.
    from: String,
    /// The outbound proxy's Route (RFC 3261 §8.1.2).
    route: Option<String>,
    /// The trunk's credentials answer the legs' challenges.
    trunk: bool,
    timers: crate::call::Timers,
}

impl Placement {
    /// Straight to the target (a registered phone, a URI) as `from`, with the default guard on
    /// ringing.
    fn direct(from: String) -> Placement {
        Placement { from, route: None, trunk: false, timers: crate::call::Timers::default() }
    }
}

pub(super) struct Calls {
    settings: CallSettings,
    calls: HashMap<LegId, Call>,
    /// Call-ID and local tag → leg, for requests within a dialog.
    dialogs: HashMap<(String, String), LegId>,
    /// The INVITE's server transaction → inbound leg, for CANCEL.
    invites: HashMap<TransactionKey, LegId>,
    /// loket's requests → their leg.
    requests: HashMap<ClientKey, (LegId, Purpose)>,
    bridges: HashMap<LegId, Bridge>,
    wheel: TimerWheel<(LegId, Instant)>,
    new_calls: NewCalls,
    /// Shared with the application, whose originated calls take ids of the same sequence.
    ids: CallIds,
    /// The application's own calls with no leg under their id (yet); they count as calls.
    originating: HashMap<LegId, Originating>,
    client: ClientTransactions<Peer>,
    /// loket's own addresses, for Via and Contact, and the UDP socket its requests leave by.
    local: Addresses,
    socket: Arc<UdpSocket>,
    /// The connections REGISTERs came over, by transport and source: the way to their phones.
    connections: HashMap<(Protocol, SocketAddr), mpsc::Sender<Vec<u8>>>,
    found_tx: mpsc::UnboundedSender<Found>,
    pub(super) found_rx: mpsc::UnboundedReceiver<Found>,
    /// Where the application's calls are reported; `None` without an application.
    application: Option<mpsc::UnboundedSender<CallEvent>>,
    /// The registration at the trunk, when its settings ask for one.
    registrar: Option<trunk::Registrar>,
}

/// How many transactions of each side the admitted calls need: a call makes about two (INVITE
/// and BYE; on the B2BUA's side towards the phones, per fork) that live up to 64·T1 = 32 s, so
/// `max_calls_per_second` × 64, and never fewer than the 40,000 that suit 1,000 calls/s with
/// room for REGISTERs.
pub(super) fn transactions_for(settings: &CallSettings) -> usize {
    usize::try_from(settings.max_calls_per_second).unwrap_or(usize::MAX).saturating_mul(64).max(40_000)
}

impl Calls {
    pub(super) fn new(
        now: Instant,
        settings: CallSettings,
        local: Addresses,
        socket: Arc<UdpSocket>,
        application: Option<mpsc::UnboundedSender<CallEvent>>,
        ids: CallIds,
    ) -> Calls {
        // Unbounded, but each message answers one call's lookup, and calls are bounded.
        let (found_tx, found_rx) = mpsc::unbounded_channel();
        let registrar = settings.trunk.as_ref().and_then(|trunk| trunk::Registrar::new(trunk, local.udp));
        Calls {
            new_calls: NewCalls::new(settings.max_calls_per_second, now),
            client: ClientTransactions::new(now, crate::transaction::Timers::default(), transactions_for(&settings)),
            settings,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            requests: HashMap::new(),
            bridges: HashMap::new(),
            wheel: TimerWheel::new(now, Duration::from_millis(10), 4_096),
            ids,
            originating: HashMap::new(),
            local,
            socket,
            connections: HashMap::new(),
            found_tx,
            found_rx,
            application,
            registrar,
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let registration = self.registrar.as_ref().and_then(trunk::Registrar::next_deadline);
        [self.wheel.next_deadline(), self.client.next_deadline(), registration].into_iter().flatten().min()
    }

    pub(super) fn is_cancellable(&self, key: &TransactionKey) -> bool {
        self.invites.contains_key(key)
    }

    /// Legs alive or about to be.
    fn legs(&self) -> usize {
        self.calls.len() + self.originating.len()
    }

    /// Whether `max_calls` legs are alive or about to be, or the overload ceiling's number.
    fn is_full(&self) -> bool {
        let legs = self.legs();
        legs >= self.settings.max_calls || self.settings.overload.ceiling().is_some_and(|ceiling| legs >= ceiling)
    }

    /// A callee reached over UDP at `addr`.
    fn over_udp(&self, uri: String, addr: SocketAddr) -> Callee {
        Callee { uri, peer: Peer { path: ReplyPath::Datagram(self.socket.clone()), addr }, protocol: Protocol::Udp }
    }

    /// Where the phone of `binding` is reached: over UDP at the address its REGISTER came from,
    /// or through the connection that brought it, while that connection lasts.
    fn callee_of(&self, binding: Binding) -> Option<Callee> {
        if !binding.transport.is_connection() {
            return Some(self.over_udp(binding.contact, binding.source));
        }
        let queue = self.connections.get(&(binding.transport, binding.source)).filter(|queue| !queue.is_closed())?;
        let peer = Peer { path: ReplyPath::Stream(queue.clone()), addr: binding.source };
        Some(Callee { uri: binding.contact, peer, protocol: binding.transport })
    }

    /// Remembers the connection a REGISTER came over, by which its phone is called.
    pub(super) fn remember_connection(&mut self, protocol: Protocol, source: SocketAddr, path: &ReplyPath) {
        let ReplyPath::Stream(queue) = path else { return };
        // Open connections are capped by the listeners; closed ones are forgotten every minute,
        // or sooner when many come and go.
        if self.connections.len() >= MAX_REMEMBERED_CONNECTIONS {
            self.purge_connections();
        }
        self.connections.insert((protocol, source), queue.clone());
    }

    /// Forgets the connections that have closed.
    pub(super) fn purge_connections(&mut self) {
        self.connections.retain(|_, queue| !queue.is_closed());
    }

    /// A new outbound leg `id` to `callee`, presented as `placement` says; not yet dialled.
    fn outbound(&mut self, id: LegId, callee: Callee, placement: &Placement) -> &mut Call {
        let call_id = format!("{:016x}{:016x}@loket", rand::random::<u64>(), rand::random::<u64>());
        let local_tag = format!("lk{:016x}", rand::random::<u64>());
        let dialog = Dialog::as_uac(&call_id, &placement.from, &local_tag, &callee.uri);
        let dialog = match &placement.route {
            Some(route) => dialog.with_route(route.clone()),
            None => dialog,
        };
        self.dialogs.insert((call_id, local_tag), id);
        let mut call = Call::new(Leg::outbound(id, placement.timers), dialog, callee.peer, callee.protocol);
        call.trunk = placement.trunk;
        self.calls.entry(id).insert_entry(call).into_mut()
    }

    /// The session id only has to be unique per origin; the leg's number is.
    fn local_media(&self, id: LegId) -> LocalMedia {
        let media = self.calls.get(&id).and_then(|call| call.media);
        let (address, port) = media.unwrap_or((self.settings.media.ip(), self.settings.media.port()));
        LocalMedia { address, port, session_id: id.0 }
    }

    /// Tells the application; `false` when it has stopped listening.
    fn report(&self, event: CallEvent) -> bool {
        self.application.as_ref().is_some_and(|application| application.send(event).is_ok())
    }

    /// loket's address on `protocol`'s listener. A leg over WebSocket exists only when that
    /// listener is bound; the TCP address is there for the type's sake.
    fn local(&self, protocol: Protocol) -> SocketAddr {
        match protocol {
            Protocol::Udp => self.local.udp,
            Protocol::Tcp => self.local.tcp,
            Protocol::Ws => self.local.ws.unwrap_or(self.local.tcp),
        }
    }

    fn contact(&self, protocol: Protocol) -> String {
        match protocol {
            Protocol::Udp => format!("<sip:loket@{}>", self.local.udp),
            _ => format!("<sip:loket@{};transport={}>", self.local(protocol), protocol.name().to_ascii_lowercase()),
        }
    }

    fn via(&self, protocol: Protocol) -> String {
        format!("SIP/2.0/{} {}", protocol.name(), self.local(protocol))
    }
}

impl<C: CredentialStore, L: LocationStore> Service<C, L> {
    /// An INVITE outside any dialog: a new call, or a refusal.
    pub(super) fn on_invite(&mut self, request: Request, key: TransactionKey, peer: Peer, protocol: Protocol) {
        let now = Instant::now();
        let settings = &self.calls.settings;
        let dialled = request.uri.user().unwrap_or_default();
        let Some(number) = settings.numbers.iter().find(|number| number.number == dialled).cloned() else {
            self.respond(&key, Reply::to_request(&request, 404, "Not Found"));
            return;
        };
        // Only calls that would be taken use up the admission budget.
        let no_application = number.target == Target::Application && self.calls.application.is_none();
        self.calls.settings.overload.note_legs(self.calls.legs());
        let refused = no_application || self.calls.is_full();
        if refused || !self.calls.new_calls.admit(now) {
            self.calls.settings.overload.count_refusal();
            let retry_after = self.calls.settings.retry_after.to_string();
            let reply =
                Reply::to_request_with(&request, 503, "Service Unavailable", &[("Retry-After", &retry_after)], &[]);
            self.respond(&key, reply);
            return;
        }
        let id = self.calls.ids.next();
        let offer = offer_of(&request);
        let own_answer = match (&number.target, &offer) {
            (Target::Answer, Some(offer)) => match sdp::answer(offer, &self.calls.local_media(id), 1) {
                Ok(answer) => Some(answer.text),
                Err(error) => {
                    self.respond(&key, sdp_refusal(&request, &error));
                    return;
                }
            },
            // RFC 3261 §13.2.1: no offer in the INVITE, so the 200 carries loket's.
            (Target::Answer, None) => Some(sdp::offer(&self.calls.local_media(id), 1, Direction::SendRecv)),
            (Target::Application, _) => None,
            // A bridged call passes the caller's offer on; an offer in the callee's 200 would
            // need its answer carried back in the ACK, which is not done (yet).
            (_, None) => {
                self.respond(&key, Reply::to_request(&request, 488, "Not Acceptable Here"));
                return;
            }
            (_, Some(_)) => None,
        };
        let local_tag = Reply::local_tag(&request);
        let (Some(dialog), Some(invite_cseq)) = (Dialog::as_uas(&request, &local_tag), cseq_of(&request)) else {
            self.respond(&key, Reply::to_request(&request, 400, "Missing Contact"));
            return;
        };
        self.calls.dialogs.insert((dialog.call_id.clone(), local_tag), id);
        self.calls.invites.insert(key.clone(), id);
        let mut call = Call::new(Leg::inbound(id, crate::call::Timers::default()), dialog, peer, protocol);
        call.invite = Some((request, key));
        call.invite_cseq = invite_cseq;
        call.hangup_after = number.hangup_after;
        call.application = number.target == Target::Application;
        let caller = caller_of(call.invite.as_ref().map(|(request, _)| request));
        call.offer = offer.map(SessionDescription);
        let offer = call.offer.clone();
        self.calls.calls.insert(id, call);
        self.feed_call(now, id, Event::InviteReceived { offer: offer.clone() });
        match (number.target, own_answer) {
            (Target::Application, _) => {
                let incoming =
                    CallEvent::Incoming { call: id, dialled: number.number, caller, offer: offer.map(|offer| offer.0) };
                if !self.calls.report(incoming) {
                    self.feed_call(now, id, Event::Rejected { status: Status(503) });
                }
            }
            (Target::Answer, Some(answer)) if !number.ring.is_zero() => {
                if let Some(call) = self.calls.calls.get_mut(&id) {
                    call.ringing = Some((now + number.ring, SessionDescription(answer)));
                }
                self.feed_call(now, id, Event::Progress { status: Status::RINGING, sdp: None });
            }
            (Target::Answer, Some(answer)) => {
                self.feed_call(now, id, Event::Answered { answer: SessionDescription(answer) })
            }
            (Target::Agent(user), _) => self.look_up_agent(id, &user, false),
            (Target::Uri(uri), _) => match socket_addr_of(&uri) {
                Some(addr) => {
                    let callee = self.calls.over_udp(uri, addr);
                    self.fork(now, id, vec![callee])
                }
                None => {
                    tracing::warn!(%uri, "a SIP target without an IP address cannot be reached (no DNS yet)");
                    self.feed_call(now, id, Event::Rejected { status: Status(502) });
                }
            },
            (Target::Answer, None) => {}
        }
    }

    pub(super) fn on_found(&mut self, found: Found) {
        match found {
            Found::Agent { leg, bindings, originated } => self.on_agent_found(leg, bindings, originated),
            Found::Trunk { leg, number, addr, originated } => self.on_trunk_found(leg, number, addr, originated),
            Found::Registrar { attempt, addr } => self.on_registrar_found(attempt, addr),
        }
    }

    /// The agent's contacts are known: ring them all, or refuse the call when there are none.
    fn on_agent_found(&mut self, leg: LegId, bindings: Result<Vec<Binding>, StoreError>, originated: bool) {
        let now = Instant::now();
        let targets: Vec<Callee> = match bindings {
            // A phone whose connection has closed, or is held by another node, cannot be reached.
            Ok(bindings) => bindings.into_iter().filter_map(|binding| self.calls.callee_of(binding)).collect(),
            Err(error) => {
                tracing::warn!(%error, "the location store failed");
                Vec::new()
            }
        };
        if originated {
            return self.ring_phones(leg, targets);
        }
        let application = self.calls.calls.get(&leg).is_some_and(|call| call.application);
        match (targets.is_empty(), application) {
            (true, true) => {
                let status = Status::TEMPORARILY_UNAVAILABLE.0;
                self.calls.report(CallEvent::CalleeFailed { call: leg, status });
            }
            (true, false) => self.feed_call(now, leg, Event::Rejected { status: Status::TEMPORARILY_UNAVAILABLE }),
            (false, _) => self.fork(now, leg, targets),
        }
    }

    /// Places one outbound leg per target for the inbound leg `inbound` and bridges them.
    fn fork(&mut self, now: Instant, inbound: LegId, targets: Vec<Callee>) {
        let Some(caller) = self.calls.calls.get(&inbound) else { return };
        // The callee sees the caller's From (without its tag) as a B2BUA's own From.
        let from =
            header(caller.invite.as_ref().map(|(request, _)| request), |header| matches!(header, Header::From(_)))
                .map(|from| format!("<{}>", uri_of(from)))
                .unwrap_or_else(|| self.loket_from());
        self.place(now, inbound, targets, Placement::direct(from));
    }

    /// loket's own From, a name-addr without tag.
    fn loket_from(&self) -> String {
        format!("<sip:loket@{}>", self.settings.domain)
    }

    /// [`Self::fork`] with the legs presented as `placement` says.
    fn place(&mut self, now: Instant, inbound: LegId, targets: Vec<Callee>, placement: Placement) {
        let Some(caller) = self.calls.calls.get_mut(&inbound) else { return };
        caller.bridge = Some(inbound);
        // The application's legs to a callee carry its media session's offer.
        let application = caller.application;
        let offer = if application { caller.agent_offer.clone() } else { caller.offer.clone() };
        self.couple(now, inbound, targets, &placement, offer, application);
    }

    /// Places one outbound leg per target with `offer`, bridged under `inbound`: the inbound leg
    /// (already told of its bridge), or the application's own call to an agent's phones, which
    /// has none. `anchored`: the offer is of an application's media session, whose address
    /// answers the callees' later offers, which so do not cross the bridge.
    fn couple(
        &mut self,
        now: Instant,
        inbound: LegId,
        targets: Vec<Callee>,
        placement: &Placement,
        offer: Option<SessionDescription>,
        anchored: bool,
    ) {
        let media = offer.as_ref().filter(|_| anchored).and_then(|offer| media_of(&offer.0));
        let mut forks = Vec::new();
        for callee in targets {
            let id = self.calls.ids.next();
            let call = self.calls.outbound(id, callee, placement);
            call.bridge = Some(inbound);
            call.media = media;
            forks.push(id);
        }
        self.calls.bridges.insert(inbound, Bridge::new(inbound, forks.clone()));
        for fork in forks {
            self.feed_call(now, fork, Event::Dial { offer: offer.clone() });
        }
    }

    /// A CANCEL whose INVITE belongs to a call (RFC 3261 §9.2).
    pub(super) fn on_cancel(&mut self, request: Request, key: TransactionKey) {
        let Some(&id) = self.calls.invites.get(&key.cancelled_invite()) else { return };
        if let Some(call) = self.calls.calls.get_mut(&id) {
            call.current = Some((request, key));
        }
        self.feed_call(Instant::now(), id, Event::CancelReceived);
    }

    /// A request with a To tag: within a dialog, or 481 (RFC 3261 §12.2.2).
    pub(super) fn on_in_dialog(&mut self, request: Request, key: TransactionKey) {
        let now = Instant::now();
        let call_id = header(Some(&request), |header| matches!(header, Header::CallId(_))).unwrap_or_default();
        let to_tag =
            header(Some(&request), |header| matches!(header, Header::To(_))).and_then(tag_of).unwrap_or_default();
        let found = self.calls.dialogs.get(&(call_id.trim().to_owned(), to_tag.to_owned())).copied();
        let Some(id) = found else {
            if request.method != Method::Ack {
                self.respond(&key, Reply::to_request(&request, 481, "Call/Transaction Does Not Exist"));
            }
            return;
        };
        let cseq = cseq_of(&request).unwrap_or_default();
        let Some(call) = self.calls.calls.get_mut(&id) else { return };
        let application = call.application;
        if request.method == Method::Ack {
            let event = if cseq == call.invite_cseq { Event::AckReceived } else { Event::ChangeAcked };
            self.feed_call(now, id, event);
            return;
        }
        if call.dialog.receive(cseq).is_err() {
            self.respond(&key, Reply::to_request(&request, 500, "CSeq Out Of Order"));
            return;
        }
        let event = match request.method {
            Method::Bye => Event::ByeReceived,
            Method::Invite | Method::Update => {
                let change = if request.method == Method::Invite { Change::Reinvite } else { Change::Update };
                Event::ChangeReceived { change, offer: offer_of(&request).map(SessionDescription) }
            }
            Method::Info => {
                self.respond(&key, Reply::to_request(&request, 200, "OK"));
                if application {
                    let content_type = header(Some(&request), |header| matches!(header, Header::ContentType(_)));
                    let digit = info_digit(content_type.unwrap_or_default(), &String::from_utf8_lossy(&request.body));
                    if let Some(digit) = digit {
                        self.calls.report(CallEvent::Digit { call: id, digit });
                    }
                } else {
                    self.pass_info(now, id, &request);
                }
                return;
            }
            Method::Options => {
                self.respond(&key, Reply::to_request(&request, 200, "OK"));
                return;
            }
            _ => {
                self.respond(&key, Reply::to_request(&request, 501, "Not Implemented"));
                return;
            }
        };
        call.current = Some((request, key));
        self.feed_call(now, id, event);
        // A request the leg did not take in its state is still answered, so that its
        // transaction ends: 491 for an offer (RFC 3261 §14.2), 481 otherwise.
        let unanswered = self.calls.calls.get_mut(&id).and_then(|call| call.current.take());
        if let Some((request, key)) = unanswered {
            let reply = match request.method {
                Method::Invite | Method::Update => Reply::to_request(&request, 491, "Request Pending"),
                _ => Reply::to_request(&request, 481, "Call/Transaction Does Not Exist"),
            };
            self.respond(&key, reply);
        }
    }

    /// DTMF by INFO (and any other INFO) crosses to the other side of a bridged call.
    fn pass_info(&mut self, now: Instant, from: LegId, request: &Request) {
        let Some(bridge) = self.calls.calls.get(&from).and_then(|call| call.bridge) else { return };
        let Some(bridge) = self.calls.bridges.get(&bridge) else { return };
        let other = if from == bridge.inbound() { bridge.winner() } else { Some(bridge.inbound()) };
        let Some(other) = other.filter(|other| self.calls.calls.get(other).is_some_and(|call| call.leg.is_confirmed()))
        else {
            return;
        };
        let content_type = header(Some(request), |header| matches!(header, Header::ContentType(_))).map(str::to_owned);
        let extra: Vec<(&str, &str)> = content_type.iter().map(|value| ("Content-Type", value.as_str())).collect();
        let body = String::from_utf8_lossy(&request.body).into_owned();
        self.send_request(now, other, "INFO", &extra, &body, Purpose::Info);
    }

    /// A response: to one of loket's client transactions, or stray.
    pub(super) fn on_response(&mut self, response: Response) {
        let Some(key) = client_key(&response) else { return };
        let now = Instant::now();
        let outputs = self.calls.client.on_response(now, &key, response.status_code.code());
        self.client_outputs(now, outputs, Some(&response));
    }

    pub(super) fn on_calls_deadline(&mut self, now: Instant) {
        let outputs = self.calls.client.on_deadline(now);
        self.client_outputs(now, outputs, None);
        if self.calls.registrar.as_ref().and_then(trunk::Registrar::next_deadline).is_some_and(|at| at <= now) {
            self.feed_registration(now, crate::trunk::RegistrationEvent::DeadlineReached);
        }
        let mut due = Vec::new();
        self.calls.wheel.expire(now, &mut due);
        for (id, at) in due {
            let Some(call) = self.calls.calls.get_mut(&id).filter(|call| call.scheduled == Some(at)) else { continue };
            call.scheduled = None;
            if let Some((_, answer)) = call.ringing.take_if(|(until, _)| *until <= now) {
                self.feed_call(now, id, Event::Answered { answer });
            }
            let hang_up = self.calls.calls.get_mut(&id).and_then(|call| call.hangup_at.take_if(|at| *at <= now));
            if hang_up.is_some() {
                self.feed_call(now, id, Event::HangupRequested);
            }
            self.feed_call(now, id, Event::DeadlineReached);
        }
    }

    /// `response` is the one that caused `outputs` (none for deadlines).
    fn client_outputs(&mut self, now: Instant, outputs: Vec<ClientOutput<Peer>>, response: Option<&Response>) {
        let status = response.map_or(0, |response| response.status_code.code());
        for output in outputs {
            match output {
                ClientOutput::Send { to, bytes } => send_to(&to, &bytes),
                ClientOutput::SendAck { key, to } => {
                    let to_header = response.and_then(|response| {
                        response.headers.iter().find(|header| matches!(header, Header::To(_))).map(Header::value)
                    });
                    let invitation =
                        self.calls.requests.get(&key).and_then(|(id, _)| self.calls.calls.get(id)?.invitation.as_ref());
                    if let (Some(invitation), Some(to_header)) = (invitation, to_header) {
                        send_to(&to, invitation.ack(to_header).as_bytes());
                    }
                }
                ClientOutput::Deliver { key } if self.is_registering(&key) => {
                    if let Some(response) = response {
                        self.on_register_response(now, response);
                    }
                }
                ClientOutput::Terminated { key, ending } if self.is_registering(&key) => {
                    if ending != ClientEnding::Completed {
                        self.feed_registration(now, crate::trunk::RegistrationEvent::NoResponse);
                    }
                }
                ClientOutput::Deliver { key } => {
                    let Some(&(id, purpose)) = self.calls.requests.get(&key) else { continue };
                    let Some(response) = response else { continue };
                    let sdp = (!response.body.is_empty())
                        .then(|| SessionDescription(String::from_utf8_lossy(&response.body).into_owned()));
                    let event = match purpose {
                        Purpose::Invite => {
                            if (200..300).contains(&status)
                                && let Some(call) = self.calls.calls.get_mut(&id)
                            {
                                call.dialog.establish(response);
                            }
                            if matches!(status, 401 | 407) && self.answer_challenge(id, response) {
                                Event::InviteChallenged { status: Status(status) }
                            } else {
                                Event::InviteResponse { status: Status(status), sdp }
                            }
                        }
                        Purpose::Change if status >= 200 => Event::ChangeResponse { status: Status(status), sdp },
                        Purpose::Bye if status >= 200 => Event::ByeAnswered,
                        _ => continue,
                    };
                    self.feed_call(now, id, event);
                }
                ClientOutput::Terminated { key, ending } => {
                    let Some((id, purpose)) = self.calls.requests.remove(&key) else { continue };
                    if ending == ClientEnding::Completed {
                        continue;
                    }
                    let event = match purpose {
                        Purpose::Invite => Event::InviteFailed,
                        Purpose::Change => Event::ChangeResponse { status: Status(408), sdp: None },
                        // Timer F: an unanswered BYE still ends the call (RFC 3261 §15.1.1).
                        Purpose::Bye => Event::ByeAnswered,
                        Purpose::Cancel | Purpose::Info => continue,
                    };
                    self.feed_call(now, id, event);
                }
            }
        }
    }

    /// Feeds `event` to leg `id`, and what its actions cause to the legs bridged with it.
    fn feed_call(&mut self, now: Instant, id: LegId, event: Event) {
        let mut queue = VecDeque::from([(id, event)]);
        while let Some((mut id, event)) = queue.pop_front() {
            let Some(call) = self.calls.calls.get_mut(&id) else { continue };
            let actions = call.leg.handle(now, event);
            let bridge = call.bridge;
            // An application's call and its agent's legs: the application learns what the agent's
            // side did and answers each side's offers itself (its media sessions anchor both).
            let application = bridge.is_some_and(|inbound| self.calls.is_application(inbound));
            for action in actions {
                if let Some(inbound) = bridge
                    && let Some(coupling) = self.calls.bridges.get_mut(&inbound)
                {
                    let passed = !application || id != inbound || matches!(action, Action::Ended(_));
                    let events = if passed { coupling.on_action(id, &action) } else { Vec::new() };
                    for (leg, event) in events {
                        if !application || leg != inbound {
                            queue.push_back((leg, event));
                        } else if self.calls.rings_phones(inbound) {
                            // The answer gives this leg the call's id, under which it carries out
                            // the rest of its actions (and its bridge is gone).
                            id = self.phones_did(inbound, id, event, &mut queue);
                        } else {
                            self.report_callee(inbound, event);
                        }
                    }
                }
                queue.extend(self.perform(now, id, action));
            }
            if let Some(call) = self.calls.calls.get_mut(&id) {
                let deadline = call.next_deadline();
                if let Some(at) = deadline.filter(|at| call.scheduled != Some(*at)) {
                    self.calls.wheel.insert(at, (id, at));
                }
                call.scheduled = deadline;
            }
            if let Some(bridge) = bridge.filter(|bridge| self.calls.bridges.get(bridge).is_some_and(Bridge::is_over)) {
                self.calls.bridges.remove(&bridge);
            }
        }
    }

    /// Carries out one action of leg `id`; returns events for legs (its own included).
    fn perform(&mut self, now: Instant, id: LegId, action: Action) -> Vec<(LegId, Event)> {
        let Some(protocol) = self.calls.calls.get(&id).map(|call| call.protocol) else { return Vec::new() };
        let (contact, via) = (self.calls.contact(protocol), self.calls.via(protocol));
        let local = self.calls.local_media(id);
        let Some(call) = self.calls.calls.get_mut(&id) else { return Vec::new() };
        match action {
            Action::Reply(status) => self.reply_invite(id, status.0, None),
            Action::Provisional { status, sdp } => {
                self.reply_invite(id, status.0, sdp.as_ref().map(|sdp| sdp.0.as_str()))
            }
            Action::Answer { sdp } => {
                let Some((invite, key)) = &call.invite else { return Vec::new() };
                let bytes: ResponseBytes = dialog_reply(invite, 200, &contact, Some(&sdp.0)).into_bytes().into();
                call.answer = Some(bytes.clone());
                let key = key.clone();
                let outputs = self.transactions.respond(now, &key, 200, bytes);
                self.send(outputs);
            }
            Action::RetransmitAnswer => {
                if let Some(answer) = &call.answer {
                    send_to(&call.peer, answer);
                }
            }
            Action::RetransmitChangeAnswer => {
                if let Some(answer) = &call.change_answer {
                    send_to(&call.peer, answer);
                }
            }
            Action::ConfirmBye | Action::ConfirmCancel => {
                if let Some((request, key)) = call.current.take() {
                    self.respond(&key, Reply::to_request(&request, 200, "OK"));
                }
            }
            Action::Connected => call.hangup_at = call.hangup_after.map(|after| now + after),
            Action::ChangeOffered { offer, .. } => {
                call.change = call.current.take();
                if call.bridge.is_some() && call.media.is_none() {
                    // The bridge passes the offer to the other side.
                    return Vec::new();
                }
                call.sdp_version += 1;
                let event = match offer {
                    Some(offer) => match sdp::answer(&offer.0, &local, call.sdp_version) {
                        Ok(answer) => Event::ChangeAnswered { answer: SessionDescription(answer.text) },
                        Err(SdpError::NoCommonCodec) => Event::ChangeRefused { status: Status(488) },
                        Err(SdpError::Malformed(_)) => Event::ChangeRefused { status: Status(400) },
                    },
                    None => Event::ChangeAnswered {
                        answer: SessionDescription(sdp::offer(&local, call.sdp_version, Direction::SendRecv)),
                    },
                };
                return vec![(id, event)];
            }
            Action::ReplyChange(status) => {
                if let Some((request, key)) = call.current.take().or_else(|| call.change.take()) {
                    self.respond(&key, Reply::to_request(&request, status.0, reason(status.0)));
                }
            }
            Action::AnswerChange { sdp } => {
                if let Some((request, key)) = call.change.take() {
                    let bytes: ResponseBytes = dialog_reply(&request, 200, &contact, Some(&sdp.0)).into_bytes().into();
                    call.change_answer = (request.method == Method::Invite).then(|| bytes.clone());
                    let outputs = self.transactions.respond(now, &key, 200, bytes);
                    self.send(outputs);
                }
            }
            Action::SendInvite { offer } => {
                call.offer.clone_from(&offer);
                let body = offer.map(|offer| offer.0).unwrap_or_default();
                let headers = [("Contact", contact.as_str()), ("Content-Type", "application/sdp")];
                if !self.send_request(now, id, "INVITE", &headers, &body, Purpose::Invite) {
                    return vec![(id, Event::InviteFailed)];
                }
            }
            Action::Authenticate => {
                let body = call.offer.as_ref().map(|offer| offer.0.clone()).unwrap_or_default();
                let Some((name, value)) = call.credentials.clone() else { return vec![(id, Event::InviteFailed)] };
                let headers = [("Contact", contact.as_str()), ("Content-Type", "application/sdp"), (name, &value)];
                if !self.send_request(now, id, "INVITE", &headers, &body, Purpose::Invite) {
                    return vec![(id, Event::InviteFailed)];
                }
            }
            Action::SendChange { offer } => {
                let headers = [("Contact", contact.as_str()), ("Content-Type", "application/sdp")];
                if !self.send_request(now, id, "INVITE", &headers, &offer.0, Purpose::Change) {
                    return vec![(id, Event::ChangeResponse { status: Status(503), sdp: None })];
                }
            }
            Action::SendAck => {
                let branch = new_branch();
                let credentials: Vec<(&str, &str)> =
                    call.credentials.iter().map(|(name, value)| (*name, value.as_str())).collect();
                let ack = call.dialog.ack(&via, &branch, call.ack_cseq, &credentials);
                send_to(&call.peer, ack.as_bytes());
            }
            Action::SendCancel => {
                let Some(invitation) = &call.invitation else { return Vec::new() };
                let cancel = invitation.cancel();
                let branch = invitation_branch(&cancel);
                let key = ClientKey { branch, method: "CANCEL".to_owned() };
                let peer = call.peer.clone();
                if let Some(outputs) = self.calls.client.start(
                    now,
                    key.clone(),
                    Kind::NonInvite,
                    protocol.reliability(),
                    peer,
                    cancel.into_bytes().into(),
                ) {
                    self.calls.requests.insert(key, (id, Purpose::Cancel));
                    self.client_outputs(now, outputs, None);
                }
            }
            Action::SendBye => {
                // When the table is full the leg ends by its own timer, the peer by its own.
                self.send_request(now, id, "BYE", &[], "", Purpose::Bye);
            }
            // An originated call has the application as its other side.
            Action::Progress { .. } if call.origination == Some(Origination::Dialling) => {
                self.calls.report(CallEvent::CalleeRinging { call: id });
            }
            Action::Accepted { sdp } if call.origination == Some(Origination::Dialling) => {
                let Some(sdp) = sdp else {
                    // Without an answer to its offer the application has no media to connect.
                    call.origination = Some(Origination::Silent);
                    self.calls.report(CallEvent::CalleeFailed { call: id, status: 502 });
                    return vec![(id, Event::Abandon)];
                };
                call.origination = Some(Origination::Answered);
                self.calls.report(CallEvent::CalleeAnswered { call: id, sdp: sdp.0 });
            }
            // For the bridge only, which has seen them.
            Action::Progress { .. }
            | Action::Accepted { .. }
            | Action::ChangeAccepted { .. }
            | Action::ChangeFailed { .. } => {}
            Action::Ended(reason) => {
                tracing::debug!(leg = id.0, ?reason, "call leg ended");
                if let Some(call) = self.calls.calls.remove(&id) {
                    self.calls.settings.overload.note_legs(self.calls.legs());
                    self.calls.dialogs.remove(&(call.dialog.call_id, call.dialog.local_tag));
                    if let Some((_, key)) = &call.invite {
                        self.calls.invites.remove(key);
                    }
                    let event = match call.origination {
                        None if call.application => Some(CallEvent::Ended { call: id }),
                        Some(Origination::Answered) => Some(CallEvent::Ended { call: id }),
                        Some(Origination::Dialling) => {
                            Some(CallEvent::CalleeFailed { call: id, status: failure(reason) })
                        }
                        None | Some(Origination::Silent) => None,
                    };
                    if let Some(event) = event {
                        self.calls.report(event);
                    }
                }
            }
        }
        Vec::new()
    }

    /// A command of the application for one of its calls; others are ignored (the call may have
    /// ended while the command was on its way).
    pub(super) fn on_command(&mut self, command: CallCommand) {
        let now = Instant::now();
        let id = match &command {
            CallCommand::Ring { call }
            | CallCommand::Answer { call, .. }
            | CallCommand::Refuse { call, .. }
            | CallCommand::HangUp { call }
            | CallCommand::DialAgent { call, .. }
            | CallCommand::DialNumber { call, .. }
            | CallCommand::HangUpCallee { call }
            | CallCommand::Originate { call, .. } => *call,
        };
        let Some(call) = self.calls.calls.get_mut(&id).filter(|call| call.application) else {
            match command {
                // An originated call has no leg until its destination is looked up.
                CallCommand::Originate { to, offer, .. } => self.originate(id, to, offer),
                CallCommand::HangUp { .. } => self.hang_up_unplaced(id),
                _ => {}
            }
            return;
        };
        let event = match command {
            CallCommand::DialAgent { agent, offer, .. } => return self.dial_agent(id, agent, offer),
            CallCommand::DialNumber { number, offer, .. } => return self.dial_number(id, number, offer, false),
            // An id in use, which is refused there.
            CallCommand::Originate { to, offer, .. } => return self.originate(id, to, offer),
            CallCommand::HangUpCallee { .. } => {
                let forks = self.calls.bridges.get(&id).map(|bridge| bridge.forks().to_vec()).unwrap_or_default();
                for fork in forks {
                    self.feed_call(now, fork, Event::Abandon);
                }
                return;
            }
            CallCommand::Ring { .. } => Event::Progress { status: Status::RINGING, sdp: None },
            CallCommand::Answer { sdp, .. } => {
                call.media = media_of(&sdp);
                Event::Answered { answer: SessionDescription(sdp) }
            }
            CallCommand::Refuse { status, .. } => Event::Rejected { status: Status(status) },
            CallCommand::HangUp { .. } if call.origination.is_some() => {
                // A cancel of the application's own is no failure to report to it.
                if call.origination == Some(Origination::Dialling) {
                    call.origination = Some(Origination::Silent);
                }
                Event::Abandon
            }
            CallCommand::HangUp { .. } if call.answer.is_some() => Event::HangupRequested,
            CallCommand::HangUp { .. } => Event::Rejected { status: Status::TEMPORARILY_UNAVAILABLE },
        };
        self.feed_call(now, id, event);
    }

    /// Looks up the agent's phones for the application's call `id`; [`Self::on_found`] rings them.
    fn dial_agent(&mut self, id: LegId, agent: String, offer: String) {
        if self.may_dial(id, offer) {
            self.look_up_agent(id, &agent, false);
        }
    }

    /// Whether the application's call `id` may dial a callee with `offer` now: answered (an
    /// originated call too, which then stands for the caller), and without one ringing or
    /// talking (else 486 is reported). The offer is kept for the legs.
    fn may_dial(&mut self, id: LegId, offer: String) -> bool {
        let busy = self.calls.bridges.get(&id).is_some_and(|bridge| !bridge.forks().is_empty());
        let Some(call) = self.calls.calls.get_mut(&id).filter(|call| call.is_answered() && !busy) else {
            self.calls.report(CallEvent::CalleeFailed { call: id, status: 486 });
            return false;
        };
        call.agent_offer = Some(SessionDescription(offer));
        true
    }

    /// Starts the lookup of `user`'s registered phones for the call `id` (`originated`: the
    /// application's own); the answer comes back as a [`Found`].
    fn look_up_agent(&self, id: LegId, user: &str, originated: bool) {
        let aor = format!("{user}@{}", self.settings.domain.to_ascii_lowercase());
        let (locations, found) = (self.locations.clone(), self.calls.found_tx.clone());
        tokio::spawn(async move {
            let bindings = locations.lookup(&aor, SystemTime::now()).await;
            // The service task only goes away with the whole service.
            let _ = found.send(Found::Agent { leg: id, bindings, originated });
        });
    }

    /// What the agent's side of the application's call `call` did, for the application.
    fn report_callee(&mut self, call: LegId, event: Event) {
        let event = match event {
            Event::Progress { .. } => CallEvent::CalleeRinging { call },
            Event::Answered { answer } => CallEvent::CalleeAnswered { call, sdp: answer.0 },
            Event::Rejected { status } => CallEvent::CalleeFailed { call, status: status.0 },
            Event::HangupRequested => CallEvent::CalleeHungUp { call },
            // The agent's phone's offers are answered on its own leg.
            _ => return,
        };
        self.calls.report(event);
    }

    /// A response to an inbound leg's INVITE.
    fn reply_invite(&mut self, id: LegId, status: u16, sdp: Option<&str>) {
        let Some(call) = self.calls.calls.get(&id) else { return };
        let Some((invite, key)) = &call.invite else { return };
        let reply = dialog_reply(invite, status, &self.calls.contact(call.protocol), sdp);
        let key = key.clone();
        self.respond(&key, reply);
    }

    /// Sends a new request within leg `id`'s dialog in a client transaction; `false` when the
    /// table of client transactions is full.
    fn send_request(
        &mut self,
        now: Instant,
        id: LegId,
        method: &str,
        extra: &[(&str, &str)],
        body: &str,
        purpose: Purpose,
    ) -> bool {
        let Some(protocol) = self.calls.calls.get(&id).map(|call| call.protocol) else { return false };
        let via = self.calls.via(protocol);
        let Some(call) = self.calls.calls.get_mut(&id) else { return false };
        let branch = new_branch();
        let text = call.dialog.request(method, &via, &branch, extra, body);
        if method == "INVITE" {
            call.ack_cseq = call.dialog.local_cseq();
            if purpose == Purpose::Invite {
                call.invitation = Some(call.dialog.invitation(&via, &branch));
            }
        }
        let kind = if method == "INVITE" { Kind::Invite } else { Kind::NonInvite };
        let key = ClientKey { branch, method: method.to_owned() };
        let peer = call.peer.clone();
        match self.calls.client.start(now, key.clone(), kind, protocol.reliability(), peer, text.into_bytes().into()) {
            Some(outputs) => {
                self.calls.requests.insert(key, (id, purpose));
                self.client_outputs(now, outputs, None);
                true
            }
            None => {
                tracing::warn!(method, "no room for a client transaction");
                false
            }
        }
    }
}

/// The `CalleeFailed` status of an originated call that ended before its answer.
fn failure(reason: EndReason) -> u16 {
    match reason {
        // A redirection's contacts are the trunk's business, as for a bridged callee.
        EndReason::Refused(status) if status.0 >= 400 => status.0,
        EndReason::NoAnswer => 408,
        // Cancelled at the ring timeout (or ended as that CANCEL crossed the answer).
        _ => Status::TEMPORARILY_UNAVAILABLE.0,
    }
}

fn new_branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

/// The branch of the Via of a request loket wrote.
fn invitation_branch(request: &str) -> String {
    request
        .lines()
        .find_map(|line| line.strip_prefix("Via: "))
        .and_then(|via| via.split(';').find_map(|param| param.strip_prefix("branch=")))
        .unwrap_or_default()
        .to_owned()
}

/// `sip:user@1.2.3.4:5070;params` → 1.2.3.4:5070 (5060 without a port); `None` for host names.
fn socket_addr_of(uri: &str) -> Option<SocketAddr> {
    let rest = uri.strip_prefix("sip:")?;
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host_port = host_port.split([';', '?', '>']).next()?;
    if let Ok(addr) = host_port.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = host_port.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    Some(SocketAddr::new(ip, 5060))
}

/// A response to `request` within its dialog: with loket's Contact and the Record-Route copied
/// (RFC 3261 §12.1.1) when it establishes one, and an SDP body if given.
fn dialog_reply(request: &Request, status: u16, contact: &str, sdp: Option<&str>) -> Reply {
    let mut headers = Vec::new();
    if (101..300).contains(&status) {
        headers.push(("Contact", contact.to_owned()));
        for header in request.headers.iter() {
            if let Header::RecordRoute(value) = header {
                headers.push(("Record-Route", value.value().to_owned()));
            }
        }
    }
    if sdp.is_some() {
        headers.push(("Content-Type", "application/sdp".to_owned()));
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    Reply::to_request_with(request, status, reason(status), &headers, sdp.unwrap_or_default().as_bytes())
}

fn sdp_refusal(request: &Request, error: &SdpError) -> Reply {
    match error {
        SdpError::NoCommonCodec => Reply::to_request(request, 488, "Not Acceptable Here"),
        SdpError::Malformed(_) => Reply::to_request(request, 400, "Bad Session Description"),
    }
}

/// The SDP body of a request, if it has one.
fn offer_of(request: &Request) -> Option<String> {
    (!request.body.is_empty()).then(|| String::from_utf8_lossy(&request.body).into_owned())
}

fn header(request: Option<&Request>, which: impl Fn(&Header) -> bool) -> Option<&str> {
    request?.headers.iter().find(|header| which(header)).map(Header::value)
}

/// The audio address and port of an SDP.
fn media_of(text: &str) -> Option<(IpAddr, u16)> {
    let parsed = sdp::Sdp::parse(text).ok()?;
    let audio = parsed.media.iter().find(|media| media.kind == "audio")?;
    Some((audio.connection.or(parsed.connection)?, audio.port))
}

/// The user part of the From URI: `sip:+3225551234@pbx;user=phone` → `+3225551234`.
fn caller_of(request: Option<&Request>) -> String {
    let Some(from) = header(request, |header| matches!(header, Header::From(_))) else { return String::new() };
    let uri = uri_of(from);
    let rest = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    let user = rest.split_once('@').map_or(rest, |(user, _)| user);
    user.split(';').next().unwrap_or_default().to_owned()
}

fn cseq_of(request: &Request) -> Option<u32> {
    header(Some(request), |header| matches!(header, Header::CSeq(_)))?.split_whitespace().next()?.parse().ok()
}

/// RFC 3261 §17.1.3: the top Via's branch and the CSeq method.
fn client_key(response: &Response) -> Option<ClientKey> {
    let mut branch = None;
    let mut method = None;
    for header in response.headers.iter() {
        match header {
            Header::Via(via) if branch.is_none() => {
                let top = via.value().split(',').next()?;
                branch = top.split(';').skip(1).find_map(|param| {
                    let (name, value) = param.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("branch").then(|| value.trim().to_owned())
                });
            }
            Header::CSeq(cseq) => method = cseq.value().split_whitespace().nth(1).map(str::to_owned),
            _ => {}
        }
    }
    Some(ClientKey { branch: branch?, method: method? })
}

#[cfg(test)]
mod tests;
