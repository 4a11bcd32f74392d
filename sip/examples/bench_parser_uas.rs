//! Benchmark stand-in: a UAS that uses only rsipstack's message types (its fork of rsip) over one
//! plain tokio `UdpSocket`, with the smallest stateful answer that is still correct on UDP:
//! 100 and 200 to an INVITE, the 200 retransmitted until the ACK arrives (RFC 3261 §13.3.1.4),
//! the last response repeated for a retransmitted INVITE (§17.2.1), and 200 to BYE.
//! Compared with `bench_rsipstack_uas` it shows whether parsing or rsipstack's transaction and
//! dialog layers dominate the cost of a call; see `sip/NOTES.md`.
//!
//! With `loket-entry` as second argument, datagrams go through loket's message entry point
//! (`loket_sip::message::parse_datagram`: framing, limits and RFC 3261 checks before the same
//! parser), to measure what the checks add.
//!
//! Usage: `bench_parser_uas [127.0.0.1:25072] [loket-entry]`

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use loket_sip::message::{Inbound, Limits, parse_datagram};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Headers, Method, Request, Response, SipMessage, StatusCode, Version};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// RFC 3261 §17.1.1.1 default round-trip estimate and the cap on the retransmission interval.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// RFC 3261 §13.3.1.4: the UAS gives up on the ACK after 64·T1.
const ACK_WAIT: Duration = Duration::from_secs(32);

const SDP_ANSWER: &str = "v=0\r\no=loket 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args().nth(1).as_deref().unwrap_or("127.0.0.1:25072").parse()?;
    let socket = UdpSocket::bind(addr).await?;
    let entry_point = std::env::args().nth(2).as_deref() == Some("loket-entry");
    let mut uas = Uas {
        contact: format!("<sip:loket@{addr}>"),
        calls: HashMap::new(),
        timers: BinaryHeap::new(),
        n_answered: 0,
        entry_point,
        limits: Limits::default(),
    };
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::new();
    loop {
        let next_timer = uas.timers.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (len, peer) = received?;
                uas.on_datagram(Instant::now(), &buf[..len], peer, &mut out);
            }
            () = sleep_until(next_timer) => uas.on_timer(Instant::now(), &mut out),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        for (bytes, peer) in out.drain(..) {
            // A full socket buffer loses this datagram like the network would; the peer retransmits.
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Call {
    peer: SocketAddr,
    /// The final response, kept to answer a retransmitted INVITE and to retransmit until the ACK.
    answer: Vec<u8>,
    /// While `Some`, the 200 is unacknowledged: the next retransmission interval.
    retransmit_interval: Option<Duration>,
    answered_at: Instant,
}

struct Uas {
    contact: String,
    calls: HashMap<String, Call>,
    /// Retransmission deadlines; entries of calls that were acknowledged or ended are skipped.
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    /// Makes each To tag unique (RFC 3261 §19.3).
    n_answered: u64,
    /// Parse through loket's entry point instead of rsipstack's parser alone.
    entry_point: bool,
    limits: Limits,
}

impl Uas {
    fn on_datagram(&mut self, now: Instant, bytes: &[u8], peer: SocketAddr, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
        // A benchmark peer only: anything unparsable or without the headers a reply needs is dropped.
        let request = if self.entry_point {
            let Ok(Inbound::Request(request)) = parse_datagram(bytes, &self.limits) else { return };
            request
        } else {
            let Ok(SipMessage::Request(request)) = SipMessage::try_from(bytes) else { return };
            request
        };
        let Ok(call_id) = request.call_id_header().map(|h| h.value().to_owned()) else { return };
        match request.method {
            Method::Invite => {
                if let Some(call) = self.calls.get(&call_id) {
                    out.push((call.answer.clone(), call.peer));
                    return;
                }
                out.push((response(&request, StatusCode::Trying, None, Vec::new()), peer));
                self.n_answered += 1;
                let tag = format!("l{}", self.n_answered);
                let extra =
                    vec![Header::Contact(self.contact.clone().into()), Header::ContentType("application/sdp".into())];
                let answer = response(&request, StatusCode::OK, Some((&tag, extra)), SDP_ANSWER.as_bytes().to_vec());
                out.push((answer.clone(), peer));
                self.timers.push(Reverse((now + T1, call_id.clone())));
                self.calls.insert(call_id, Call { peer, answer, retransmit_interval: Some(T1), answered_at: now });
            }
            Method::Ack => {
                if let Some(call) = self.calls.get_mut(&call_id) {
                    call.retransmit_interval = None;
                }
            }
            Method::Bye => {
                self.calls.remove(&call_id);
                out.push((response(&request, StatusCode::OK, None, Vec::new()), peer));
            }
            _ => out.push((response(&request, StatusCode::OK, None, Vec::new()), peer)),
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, call_id))) = self.timers.pop() else { break };
            let Some(call) = self.calls.get_mut(&call_id) else { continue };
            let Some(interval) = call.retransmit_interval else { continue };
            if now.duration_since(call.answered_at) >= ACK_WAIT {
                self.calls.remove(&call_id);
                continue;
            }
            out.push((call.answer.clone(), call.peer));
            let interval = (interval * 2).min(T2);
            call.retransmit_interval = Some(interval);
            self.timers.push(Reverse((now + interval, call_id)));
        }
    }
}

/// A response carrying the request's Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2); with a
/// tag, the To gets it and `extra` headers are added.
fn response(request: &Request, status: StatusCode, tagged: Option<(&str, Vec<Header>)>, body: Vec<u8>) -> Vec<u8> {
    let mut headers = Headers::default();
    for header in request.headers.iter() {
        match header {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => headers.push(header.clone()),
            Header::To(to) => match &tagged {
                Some((tag, _)) if !to.value().contains(";tag=") => {
                    headers.push(Header::To(format!("{};tag={tag}", to.value()).into()));
                }
                _ => headers.push(header.clone()),
            },
            _ => {}
        }
    }
    if let Some((_, extra)) = tagged {
        headers.extend(extra);
    }
    headers.push(Header::ContentLength(body.len().to_string().into()));
    Response { status_code: status, wire_reason: None, version: Version::V2, headers, body }.to_bytes()
}
