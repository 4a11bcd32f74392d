//! Benchmark stand-in: loket's own stack answering calls. One tokio `UdpSocket` feeds the
//! message entry point (`sip::message`), the sans-IO server transactions (`sip::transaction`) and
//! one call leg per call (`sip::call`), which answers at once with a fixed SDP. All cores run in
//! one task; their deadlines come from two timer wheels. It shows what the architecture chosen in
//! `sip/NOTES.md` costs per call next to Kamailio, rsipstack and the bare parser.
//!
//! Simplifications (a benchmark, not the edge to come): calls are found by Call-ID alone, and a
//! BYE the leg would send after an ACK timeout is not sent (that needs client transactions).
//!
//! Usage: `bench_loket_uas [127.0.0.1:25075]`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use loket_sip::call::{self, Action as CallAction, Event as CallEvent, Leg, LegId, SessionDescription};
use loket_sip::message::{Inbound, Limits, Reply, parse_datagram, reason_phrase as reason};
use loket_sip::transaction::{
    Dispatch, Output, RequestKind, ServerTransactions, TimerWheel, Timers, TransactionKey, Transport,
};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, Request};
use tokio::net::UdpSocket;
use tokio::time::Instant;

const SDP_ANSWER: &str = "v=0\r\no=loket 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args().nth(1).as_deref().unwrap_or("127.0.0.1:25075").parse()?;
    let socket = UdpSocket::bind(addr).await?;
    let now = Instant::now().into_std();
    let mut uas = Uas {
        contact: format!("<sip:loket@{addr}>"),
        limits: Limits::default(),
        transactions: ServerTransactions::new(now, Timers::default(), 200_000),
        calls: HashMap::new(),
        call_timers: TimerWheel::new(now, Duration::from_millis(10), 4_096),
        n_legs: 0,
        out: Vec::new(),
    };
    let mut buffer = vec![0u8; 65_536];
    loop {
        let deadline = [uas.transactions.next_deadline(), uas.call_timers.next_deadline()].into_iter().flatten().min();
        tokio::select! {
            received = socket.recv_from(&mut buffer) => {
                let (len, peer) = received?;
                uas.on_datagram(Instant::now().into_std(), &buffer[..len], peer);
            }
            () = sleep_until(deadline) => uas.on_deadline(Instant::now().into_std()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        for (bytes, peer) in uas.out.drain(..) {
            // A lost datagram is recovered by the retransmission timers on either side.
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

struct Call {
    leg: Leg,
    peer: SocketAddr,
    invite: Request,
    invite_key: TransactionKey,
    /// The 200, kept for the leg's retransmissions (RFC 3261 §13.3.1.4).
    answer: Option<Arc<[u8]>>,
    scheduled: Option<std::time::Instant>,
}

struct Uas {
    contact: String,
    limits: Limits,
    transactions: ServerTransactions<SocketAddr>,
    calls: HashMap<String, Call>,
    call_timers: TimerWheel<(String, std::time::Instant)>,
    n_legs: u64,
    out: Vec<(Arc<[u8]>, SocketAddr)>,
}

impl Uas {
    fn on_datagram(&mut self, now: std::time::Instant, bytes: &[u8], peer: SocketAddr) {
        let request = match parse_datagram(bytes, &self.limits) {
            Ok(Inbound::Request(request)) => request,
            Ok(Inbound::Response(_)) => return,
            Err(rejection) => {
                if let Some(reply) = rejection.reply {
                    self.out.push((reply.into_bytes().into(), peer));
                }
                return;
            }
        };
        let Some(key) = TransactionKey::of(&request) else { return };
        let kind = RequestKind::of(&request.method);
        match self.transactions.on_request(now, key.clone(), kind, Transport::Unreliable, peer) {
            Dispatch::Handled(outputs) => self.send(outputs),
            Dispatch::Overloaded => {
                let reply = Reply::to_request_with(&request, 503, "Service Unavailable", &[("Retry-After", "5")], &[]);
                self.out.push((reply.into_bytes().into(), peer));
            }
            Dispatch::ToTransactionUser => self.on_new_request(now, request, key, peer),
        }
    }

    fn on_new_request(&mut self, now: std::time::Instant, request: Request, key: TransactionKey, peer: SocketAddr) {
        let Ok(call_id) = request.call_id_header().map(|header| header.value().to_owned()) else { return };
        match request.method {
            Method::Invite if !self.calls.contains_key(&call_id) => {
                self.n_legs += 1;
                let leg = Leg::inbound(LegId(self.n_legs), call::Timers::default());
                let offer = Some(SessionDescription(String::from_utf8_lossy(&request.body).into_owned()));
                let call = Call { leg, peer, invite: request, invite_key: key, answer: None, scheduled: None };
                self.calls.insert(call_id.clone(), call);
                self.feed(now, &call_id, CallEvent::InviteReceived { offer });
                // The benchmark's application answers every call at once.
                self.feed(now, &call_id, CallEvent::Answered { answer: SessionDescription(SDP_ANSWER.into()) });
            }
            Method::Ack => self.feed(now, &call_id, CallEvent::AckReceived),
            Method::Bye | Method::Cancel if self.calls.contains_key(&call_id) => {
                let event =
                    if request.method == Method::Bye { CallEvent::ByeReceived } else { CallEvent::CancelReceived };
                // The leg's ConfirmBye / ConfirmCancel is this response to this request.
                self.respond(now, &key, &request, 200);
                self.feed(now, &call_id, event);
            }
            // RFC 3261 §12.2.2 (BYE, CANCEL, re-INVITE without a dialog) and §11.2 (OPTIONS).
            Method::Options => self.respond(now, &key, &request, 200),
            _ => self.respond(now, &key, &request, 481),
        }
    }

    fn feed(&mut self, now: std::time::Instant, call_id: &str, event: CallEvent) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        let actions = call.leg.handle(now, event);
        for action in actions {
            self.perform(now, call_id, action);
        }
        if let Some(call) = self.calls.get_mut(call_id) {
            let deadline = call.leg.next_deadline();
            if let Some(at) = deadline.filter(|at| call.scheduled != Some(*at)) {
                self.call_timers.insert(at, (call_id.to_owned(), at));
            }
            call.scheduled = deadline;
        }
    }

    fn perform(&mut self, now: std::time::Instant, call_id: &str, action: CallAction) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        match action {
            CallAction::Reply(status) => {
                let reply = Reply::to_request(&call.invite, status.0, reason(status.0));
                let key = call.invite_key.clone();
                let outputs = self.transactions.respond(now, &key, status.0, reply.into_bytes().into());
                self.send(outputs);
            }
            CallAction::Answer { sdp } => {
                let headers = [("Contact", self.contact.as_str()), ("Content-Type", "application/sdp")];
                let reply = Reply::to_request_with(&call.invite, 200, "OK", &headers, sdp.0.as_bytes());
                let bytes: Arc<[u8]> = reply.into_bytes().into();
                call.answer = Some(bytes.clone());
                let key = call.invite_key.clone();
                let outputs = self.transactions.respond(now, &key, 200, bytes);
                self.send(outputs);
            }
            CallAction::RetransmitAnswer => {
                if let Some(answer) = &call.answer {
                    self.out.push((answer.clone(), call.peer));
                }
            }
            CallAction::Ended(_) => {
                self.calls.remove(call_id);
            }
            // ConfirmBye and ConfirmCancel were sent with the request that caused them; the
            // benchmark sends no BYE of its own, and its callers use neither re-INVITEs nor
            // outbound legs (the service, `sip::service`, does all of that).
            _ => {}
        }
    }

    fn respond(&mut self, now: std::time::Instant, key: &TransactionKey, request: &Request, status: u16) {
        let reply = Reply::to_request(request, status, reason(status));
        let outputs = self.transactions.respond(now, key, status, reply.into_bytes().into());
        self.send(outputs);
    }

    fn on_deadline(&mut self, now: std::time::Instant) {
        let outputs = self.transactions.on_deadline(now);
        self.send(outputs);
        let mut due = Vec::new();
        self.call_timers.expire(now, &mut due);
        for (call_id, at) in due {
            if self.calls.get(&call_id).is_some_and(|call| call.scheduled == Some(at)) {
                self.feed(now, &call_id, CallEvent::DeadlineReached);
            }
        }
    }

    fn send(&mut self, outputs: Vec<Output<SocketAddr>>) {
        for output in outputs {
            if let Output::Send { to, bytes } = output {
                self.out.push((bytes, to));
            }
        }
    }
}
