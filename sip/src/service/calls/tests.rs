//! Calls through the service over real UDP on 127.0.0.1, with a caller written here. Every wait
//! has a deadline; loket's own timers are set short (ringing, hang-up) instead of sleeping.

use std::convert::Infallible;

use tokio::net::UdpSocket;

use std::time::SystemTime;

use super::*;
use crate::digest::StoredHa1;
use crate::registrar::{MemoryStore, Policy};
use crate::service::application::{Application, ApplicationEnds, Destination, channels};
use crate::service::{Settings, Sockets};

const DEADLINE: Duration = Duration::from_secs(10);
const DEMO: &str = "+3225550100";
const OFFER: &str = "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

struct NoCredentials;

impl CredentialStore for NoCredentials {
    type Error = Infallible;
    async fn find(&self, _: &str) -> Result<Option<StoredHa1>, Infallible> {
        Ok(None)
    }
}

fn number(number: &str, ring: Duration, hangup_after: Option<Duration>) -> Number {
    Number { number: number.to_owned(), target: Target::Answer, ring, hangup_after }
}

async fn start(calls: CallSettings) -> SocketAddr {
    start_with(calls, MemoryStore::new()).await
}

async fn start_with(calls: CallSettings, store: MemoryStore) -> SocketAddr {
    serve(calls, store, None).await
}

async fn serve(calls: CallSettings, store: MemoryStore, application: Option<Application>) -> SocketAddr {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sockets = Sockets::bind(any, any).await.unwrap();
    let udp = sockets.udp_addr().unwrap();
    let settings = Settings { calls, ..Settings::new("loket.test", Policy::default()) };
    tokio::spawn(sockets.serve(settings, NoCredentials, store, application));
    udp
}

/// The number `ivr` goes to the application whose ends are returned.
async fn with_application() -> (SocketAddr, ApplicationEnds) {
    with_application_and(MemoryStore::new()).await
}

async fn with_application_and(store: MemoryStore) -> (SocketAddr, ApplicationEnds) {
    let (ends, application) = channels();
    let numbers = vec![Number { target: Target::Application, ..number("ivr", Duration::ZERO, None) }];
    let server = serve(CallSettings { numbers, ..CallSettings::default() }, store, Some(application)).await;
    (server, ends)
}

async fn next_event(ends: &mut ApplicationEnds) -> CallEvent {
    tokio::time::timeout(DEADLINE, ends.events.recv()).await.expect("an event within the deadline").unwrap()
}

/// The application's side of a new call: its id, once the event says who calls what.
async fn incoming(ends: &mut ApplicationEnds) -> LegId {
    match next_event(ends).await {
        CallEvent::Incoming { call, dialled, caller, offer } => {
            assert_eq!((dialled.as_str(), caller.as_str(), offer.as_deref()), ("ivr", "caller", Some(OFFER)));
            call
        }
        other => panic!("expected a new call, got {other:?}"),
    }
}

async fn demo() -> SocketAddr {
    let numbers = vec![
        number(DEMO, Duration::ZERO, None),
        number("ringing", Duration::from_secs(30), None),
        number("short", Duration::ZERO, Some(Duration::from_millis(200))),
    ];
    start(CallSettings { numbers, ..CallSettings::default() }).await
}

/// One caller's side of one call.
struct Caller {
    socket: UdpSocket,
    server: SocketAddr,
    number: String,
    call_id: String,
    to_tag: Option<String>,
    cseq: u32,
    invite_branch: String,
}

impl Caller {
    async fn new(server: SocketAddr, number: &str) -> Caller {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let call_id = format!("call-{}", socket.local_addr().unwrap().port());
        Caller {
            socket,
            server,
            number: number.to_owned(),
            call_id,
            to_tag: None,
            cseq: 0,
            invite_branch: String::new(),
        }
    }

    fn request(&self, method: &str, branch: &str, cseq: u32, body: &str) -> String {
        let local = self.socket.local_addr().unwrap();
        let to_tag = self.to_tag.as_ref().map(|tag| format!(";tag={tag}")).unwrap_or_default();
        let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
        format!(
            "{method} sip:{}@loket.test SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\nMax-Forwards: 70\r\n\
             From: <sip:caller@loket.test>;tag=c1\r\nTo: <sip:{}@loket.test>{to_tag}\r\nCall-ID: {}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:caller@{local}>\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            self.number,
            self.number,
            self.call_id,
            body.len()
        )
    }

    /// A new request in its own transaction (a new branch and CSeq).
    async fn send(&mut self, method: &str, body: &str) {
        self.cseq += 1;
        let branch = format!("z9hG4bK-{}-{}", self.call_id, self.cseq);
        if method == "INVITE" {
            self.invite_branch = branch.clone();
        }
        let text = self.request(method, &branch, self.cseq, body);
        self.send_text(&text).await;
    }

    /// ACK of a 2xx (a transaction of its own) or CANCEL/ACK of the INVITE's transaction.
    async fn send_in_invite_transaction(&mut self, method: &str) {
        // §9.1: a CANCEL's To is the INVITE's, without the tag of any response.
        let to_tag = if method == "CANCEL" { self.to_tag.take() } else { self.to_tag.clone() };
        let text = self.request(method, &self.invite_branch.clone(), self.cseq, "");
        self.to_tag = to_tag;
        self.send_text(&text).await;
    }

    async fn ack(&mut self) {
        let text = self.request("ACK", &format!("z9hG4bK-ack-{}", self.cseq), self.cseq, "");
        self.send_text(&text).await;
    }

    async fn send_text(&self, text: &str) {
        self.socket.send_to(text.as_bytes(), self.server).await.unwrap();
    }

    async fn receive(&mut self) -> String {
        let mut buffer = vec![0u8; 65_536];
        let (len, _) = tokio::time::timeout(DEADLINE, self.socket.recv_from(&mut buffer))
            .await
            .expect("a message within the deadline")
            .unwrap();
        let text = String::from_utf8(buffer[..len].to_vec()).unwrap();
        if let Some(tag) = text.lines().find_map(|line| line.strip_prefix("To: ")).and_then(tag_of) {
            self.to_tag.get_or_insert(tag.to_owned());
        }
        text
    }

    /// The next response with `status` to `method`, skipping earlier ones (100, retransmissions).
    async fn expect(&mut self, status: u16, method: &str) -> String {
        loop {
            let text = self.receive().await;
            let cseq_method = text.lines().find_map(|line| line.strip_prefix("CSeq: ")).unwrap_or_default();
            if text.starts_with(&format!("SIP/2.0 {status} ")) && cseq_method.ends_with(method) {
                return text;
            }
            assert!(text.starts_with("SIP/2.0 1") || text.starts_with("SIP/2.0 200 "), "expected {status}, got {text}");
        }
    }

    async fn established(server: SocketAddr, number: &str) -> Caller {
        let mut caller = Caller::new(server, number).await;
        caller.send("INVITE", OFFER).await;
        caller.expect(200, "INVITE").await;
        caller.ack().await;
        caller
    }
}

fn body(message: &str) -> &str {
    message.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

#[tokio::test]
async fn answered_by_loket_and_hung_up_by_the_caller() {
    let server = demo().await;
    let mut caller = Caller::new(server, DEMO).await;
    caller.send("INVITE", OFFER).await;
    assert!(caller.receive().await.starts_with("SIP/2.0 100 Trying\r\n"));
    let ok = caller.expect(200, "INVITE").await;
    assert!(ok.contains("\r\nContact: <sip:loket@") && ok.contains("Content-Type: application/sdp\r\n"), "{ok}");
    let answer = body(&ok);
    assert!(
        answer.contains("c=IN IP4 127.0.0.1\r\n") && answer.contains("m=audio 40000 RTP/AVP 0 101\r\n"),
        "{answer}"
    );
    caller.ack().await;
    caller.send("BYE", "").await;
    caller.expect(200, "BYE").await;
    // The dialog is gone.
    caller.send("BYE", "").await;
    caller.expect(481, "BYE").await;
}

#[tokio::test]
async fn hung_up_by_loket() {
    let server = demo().await;
    let mut caller = Caller::established(server, "short").await;
    let bye = caller.receive().await;
    assert!(bye.starts_with("BYE sip:caller@127.0.0.1:"), "{bye}");
    assert!(
        bye.contains(&format!("Call-ID: {}\r\n", caller.call_id))
            && bye.contains("To: <sip:caller@loket.test>;tag=c1\r\n"),
        "{bye}"
    );
    // Answer it: the 200 copies the BYE's Via, From, To, Call-ID and CSeq.
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for line in bye
        .lines()
        .filter(|line| ["Via:", "From:", "To:", "Call-ID:", "CSeq:"].iter().any(|name| line.starts_with(name)))
    {
        ok.push_str(line);
        ok.push_str("\r\n");
    }
    ok.push_str("Content-Length: 0\r\n\r\n");
    caller.send_text(&ok).await;
    caller.send("BYE", "").await;
    caller.expect(481, "BYE").await;
}

/// RFC 3261 §9.2: CANCEL while ringing: 200 to the CANCEL, 487 to the INVITE.
#[tokio::test]
async fn cancel_before_the_answer() {
    let server = demo().await;
    let mut caller = Caller::new(server, "ringing").await;
    caller.send("INVITE", OFFER).await;
    caller.expect(180, "INVITE").await;
    caller.send_in_invite_transaction("CANCEL").await;
    caller.expect(200, "CANCEL").await;
    caller.expect(487, "INVITE").await;
    caller.send_in_invite_transaction("ACK").await;
    // A second CANCEL finds no call and no transaction it could still stop.
    caller.send_in_invite_transaction("CANCEL").await;
    let late = caller.receive().await;
    assert!(late.starts_with("SIP/2.0 200 ") || late.starts_with("SIP/2.0 481 "), "{late}");
}

/// RFC 3264 §8.4: hold by re-INVITE with sendonly, resume with sendrecv; UPDATE works too.
#[tokio::test]
async fn hold_and_resume() {
    let server = demo().await;
    let mut caller = Caller::established(server, DEMO).await;
    for (offered, answered, method) in [
        ("a=sendonly", "a=recvonly", "INVITE"),
        ("a=sendrecv", "a=sendrecv", "INVITE"),
        ("a=inactive", "a=inactive", "UPDATE"),
        ("a=sendrecv", "a=sendrecv", "UPDATE"),
    ] {
        caller.send(method, &format!("{OFFER}{offered}\r\n")).await;
        let ok = caller.expect(200, method).await;
        assert!(body(&ok).ends_with(&format!("{answered}\r\n")), "{offered}: {ok}");
        if method == "INVITE" {
            caller.ack().await;
        }
    }
    // A re-offer loket cannot take leaves the call as it was.
    let video = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 6002 RTP/AVP 96\r\n";
    caller.send("UPDATE", video).await;
    caller.expect(488, "UPDATE").await;
    caller.send("BYE", "").await;
    caller.expect(200, "BYE").await;
}

#[tokio::test]
async fn refusals() {
    let server = demo().await;
    let mut unknown = Caller::new(server, "+3225550999").await;
    unknown.send("INVITE", OFFER).await;
    unknown.expect(404, "INVITE").await;

    let mut opus = Caller::new(server, DEMO).await;
    opus.send("INVITE", "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n").await;
    opus.expect(488, "INVITE").await;

    let mut stranger = Caller::new(server, DEMO).await;
    stranger.to_tag = Some("nobody".into());
    stranger.send("BYE", "").await;
    stranger.expect(481, "BYE").await;
    stranger.send("INVITE", OFFER).await;
    stranger.expect(481, "INVITE").await;

    // An INVITE without an offer gets loket's offer in the 200 (RFC 3261 §13.2.1).
    let mut no_offer = Caller::new(server, DEMO).await;
    no_offer.send("INVITE", "").await;
    let ok = no_offer.expect(200, "INVITE").await;
    assert!(body(&ok).contains("m=audio 40000 RTP/AVP 8 0 101\r\n"), "{ok}");
    no_offer.ack().await;
}

/// Issue #3, overload: beyond the limits new calls get 503 with Retry-After, and calls alive
/// are not disturbed.
#[tokio::test]
async fn overload_is_refused_with_retry_after() {
    let numbers = vec![number(DEMO, Duration::ZERO, None)];
    let server = start(CallSettings { numbers: numbers.clone(), max_calls: 1, ..CallSettings::default() }).await;
    let mut first = Caller::established(server, DEMO).await;
    let mut second = Caller::new(server, DEMO).await;
    second.send("INVITE", OFFER).await;
    let refused = second.expect(503, "INVITE").await;
    assert!(refused.contains("\r\nRetry-After: 5\r\n"), "{refused}");
    first.send("BYE", "").await;
    first.expect(200, "BYE").await;
    let mut third = Caller::established(server, DEMO).await;
    third.send("BYE", "").await;
    third.expect(200, "BYE").await;

    let server =
        start(CallSettings { numbers, max_calls_per_second: 1, retry_after: 2, ..CallSettings::default() }).await;
    let _first = Caller::established(server, DEMO).await;
    let mut second = Caller::new(server, DEMO).await;
    second.send("INVITE", OFFER).await;
    assert!(second.expect(503, "INVITE").await.contains("\r\nRetry-After: 2\r\n"));
}

/// While the overload flag is raised new calls get 503 and the call in progress goes on; once
/// lowered, calls are taken again.
#[tokio::test]
async fn an_overload_ceiling_refuses_new_calls_beyond_it_only() {
    let overload = Overload::default();
    let settings = CallSettings {
        numbers: vec![number(DEMO, Duration::ZERO, None)],
        overload: overload.clone(),
        ..CallSettings::default()
    };
    let server = start(settings).await;
    let mut first = Caller::established(server, DEMO).await;
    let mut second = Caller::established(server, DEMO).await;
    assert_eq!(overload.legs(), 1, "the legs alive when the second call came");
    // Two legs alive, a ceiling of two: the calls in progress go on, a new one is refused.
    overload.set_ceiling(Some(2));
    let mut third = Caller::new(server, DEMO).await;
    third.send("INVITE", OFFER).await;
    assert!(third.expect(503, "INVITE").await.contains("\r\nRetry-After: 5\r\n"));
    assert_eq!(overload.refused(), 1);
    assert_eq!(overload.legs(), 2);
    // One ends: there is room under the ceiling again.
    first.send("BYE", "").await;
    first.expect(200, "BYE").await;
    let mut fourth = Caller::established(server, DEMO).await;
    fourth.send("BYE", "").await;
    fourth.expect(200, "BYE").await;
    second.send("BYE", "").await;
    second.expect(200, "BYE").await;
    assert_eq!(overload.legs(), 0);
    overload.set_ceiling(None);
    assert_eq!(overload.refused(), 1);
}

/// A phone that loket calls: it answers what it is told to, copying the request's Via, From, To
/// (with its own tag), Call-ID and CSeq.
struct Phone {
    socket: UdpSocket,
    tag: String,
}

impl Phone {
    async fn new(tag: &str) -> Phone {
        Phone { socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(), tag: tag.to_owned() }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// The next `method` request, skipping retransmitted INVITEs and ACKs.
    async fn request(&self, method: &str) -> (String, SocketAddr) {
        let mut buffer = vec![0u8; 65_536];
        loop {
            let (len, from) = tokio::time::timeout(DEADLINE, self.socket.recv_from(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("a {method} within the deadline"))
                .unwrap();
            let text = String::from_utf8(buffer[..len].to_vec()).unwrap();
            if text.starts_with(&format!("{method} ")) {
                return (text, from);
            }
            assert!(text.starts_with("INVITE ") || text.starts_with("ACK "), "expected {method}, got {text}");
        }
    }

    /// The next 200 to a request of the phone's, skipping anything else.
    async fn ok(&self) -> String {
        self.response(200).await
    }

    /// The next response with `status` to a request of the phone's, skipping anything else.
    async fn response(&self, status: u16) -> String {
        let mut buffer = vec![0u8; 65_536];
        loop {
            let (len, _) = tokio::time::timeout(DEADLINE, self.socket.recv_from(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("a {status} within the deadline"))
                .unwrap();
            let text = String::from_utf8(buffer[..len].to_vec()).unwrap();
            if text.starts_with(&format!("SIP/2.0 {status} ")) {
                return text;
            }
        }
    }

    async fn respond(&self, request: &(String, SocketAddr), status: &str, body: &str) {
        self.respond_with(request, status, &[], body).await;
    }

    /// [`Phone::respond`] with further header lines.
    async fn respond_with(&self, request: &(String, SocketAddr), status: &str, extra: &[String], body: &str) {
        let (text, from) = request;
        let mut reply = format!("SIP/2.0 {status}\r\n");
        for line in extra {
            reply.push_str(line);
            reply.push_str("\r\n");
        }
        for line in text.lines() {
            if ["Via:", "From:", "Call-ID:", "CSeq:"].iter().any(|name| line.starts_with(name)) {
                reply.push_str(line);
                reply.push_str("\r\n");
            }
            if let Some(to) = line.strip_prefix("To: ") {
                let tag = if tag_of(to).is_some() { String::new() } else { format!(";tag={}", self.tag) };
                reply.push_str(&format!("To: {to}{tag}\r\n"));
            }
        }
        let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
        reply.push_str(&format!(
            "Contact: <sip:phone@{}>\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            self.addr(),
            body.len()
        ));
        self.socket.send_to(reply.as_bytes(), from).await.unwrap();
    }

    /// Sends a request of the phone's within the dialog of loket's `invite`, which it answered,
    /// with a body of `content_type`.
    async fn send_in_dialog(
        &self,
        invite: &(String, SocketAddr),
        method: &str,
        cseq: u32,
        content_type: &str,
        body: &str,
    ) {
        let (invite, loket) = invite;
        let content_type = if body.is_empty() { String::new() } else { format!("Content-Type: {content_type}\r\n") };
        let request = format!(
            "{method} sip:loket@{loket} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-p{cseq}{method}\r\n\
             Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:phone@{}>\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            self.addr(),
            line_value(&ok_to(invite, &self.tag)),
            line_value(&header_line(invite, "From: ")),
            line_value(&header_line(invite, "Call-ID: ")),
            self.addr(),
            body.len(),
        );
        self.socket.send_to(request.as_bytes(), loket).await.unwrap();
    }
}

const PHONE_ANSWER: &str = "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 7000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

async fn registered(store: &MemoryStore, phones: &[&Phone]) {
    let now = SystemTime::now();
    let bindings: Vec<Binding> = phones
        .iter()
        .enumerate()
        .map(|(n, phone)| Binding {
            contact: format!("sip:agent@{}", phone.addr()),
            expires_at: now + Duration::from_secs(300),
            call_id: format!("reg-{n}"),
            cseq: 1,
            source: phone.addr(),
            transport: Protocol::Udp,
        })
        .collect();
    let change = move |_| Ok(bindings.clone());
    store.update("agent@loket.test", now, &change).await.unwrap().unwrap();
}

/// The B2BUA: a call to an agent rings both registered phones; the first to answer gets the
/// call and the other is cancelled; hold, INFO and the callee's hang-up cross to the caller.
#[tokio::test]
async fn a_call_to_an_agent_forks_and_is_bridged() {
    let (first, second) = (Phone::new("a").await, Phone::new("b").await);
    let store = MemoryStore::new();
    registered(&store, &[&first, &second]).await;
    let numbers = vec![Number {
        number: "agent".into(),
        target: Target::Agent("agent".into()),
        ring: Duration::ZERO,
        hangup_after: None,
    }];
    let server = start_with(CallSettings { numbers, ..CallSettings::default() }, store).await;
    let mut caller = Caller::new(server, "agent").await;
    caller.send("INVITE", OFFER).await;

    let invite_a = first.request("INVITE").await;
    let invite_b = second.request("INVITE").await;
    assert!(invite_a.0.starts_with(&format!("INVITE sip:agent@{} SIP/2.0\r\n", first.addr())), "{}", invite_a.0);
    assert!(
        body(&invite_a.0) == OFFER && invite_a.0.contains("From: <sip:caller@loket.test>;tag=lk"),
        "{}",
        invite_a.0
    );
    second.respond(&invite_b, "180 Ringing", "").await;
    caller.expect(180, "INVITE").await;
    first.respond(&invite_a, "200 OK", PHONE_ANSWER).await;
    let ok = caller.expect(200, "INVITE").await;
    assert_eq!(body(&ok), PHONE_ANSWER, "the callee's SDP is passed through");
    // The other phone is cancelled (§9.1) and its INVITE ends with 487, which loket ACKs.
    let cancel = second.request("CANCEL").await;
    second.respond(&cancel, "200 OK", "").await;
    second.respond(&invite_b, "487 Request Terminated", "").await;
    let ack_b = second.request("ACK").await;
    assert!(ack_b.0.contains("CSeq: 1 ACK\r\n") && ack_b.0.contains(";tag=b\r\n"), "{}", ack_b.0);
    // The winner gets its ACK when the caller's arrives.
    let ack_a = first.request("ACK").await;
    assert!(ack_a.0.starts_with(&format!("ACK sip:phone@{} SIP/2.0\r\n", first.addr())), "{}", ack_a.0);
    caller.ack().await;

    // Hold from the caller crosses to the phone, its answer back.
    caller.send("INVITE", &format!("{OFFER}a=sendonly\r\n")).await;
    let reinvite = first.request("INVITE").await;
    assert!(body(&reinvite.0).ends_with("a=sendonly\r\n"), "{}", reinvite.0);
    first.respond(&reinvite, "200 OK", &format!("{PHONE_ANSWER}a=recvonly\r\n")).await;
    let held = caller.expect(200, "INVITE").await;
    assert!(body(&held).ends_with("a=recvonly\r\n"), "{held}");
    first.request("ACK").await;
    caller.ack().await;

    // DTMF by INFO crosses too.
    caller.send("INFO", "").await;
    caller.expect(200, "INFO").await;
    let info = first.request("INFO").await;
    first.respond(&info, "200 OK", "").await;

    // The phone hangs up; loket answers it and hangs up the caller.
    first.send_in_dialog(&invite_a, "BYE", 7, "", "").await;
    let bye_to_caller = caller.receive().await;
    assert!(bye_to_caller.starts_with("BYE sip:caller@"), "{bye_to_caller}");
}

fn header_line(message: &str, prefix: &str) -> String {
    message.lines().find(|line| line.starts_with(prefix)).unwrap_or_default().to_owned()
}

fn line_value(line: &str) -> &str {
    line.split_once(": ").map_or("", |(_, value)| value)
}

/// The To of the phone's responses, which is the From of its own requests.
fn ok_to(invite: &str, tag: &str) -> String {
    format!("To: {};tag={tag}", line_value(&header_line(invite, "To: ")))
}

const MEDIA_ANSWER: &str = "v=0\r\no=loket 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

/// The application rings, answers with its media session's SDP, hears an INFO digit, keeps its
/// media address through a hold, and learns that the caller hung up.
#[tokio::test]
async fn the_application_answers_and_hears_the_caller() {
    let (server, mut ends) = with_application().await;
    let mut caller = Caller::new(server, "ivr").await;
    caller.send("INVITE", OFFER).await;
    let call = incoming(&mut ends).await;
    ends.commands.send(CallCommand::Ring { call }).unwrap();
    caller.expect(180, "INVITE").await;
    ends.commands.send(CallCommand::Answer { call, sdp: MEDIA_ANSWER.to_owned() }).unwrap();
    let ok = caller.expect(200, "INVITE").await;
    assert_eq!(body(&ok), MEDIA_ANSWER);
    caller.ack().await;

    caller.cseq += 1;
    let info =
        caller.request("INFO", &format!("z9hG4bK-info-{}", caller.cseq), caller.cseq, "Signal=5\r\nDuration=160\r\n");
    caller.send_text(&info.replace("application/sdp", "application/dtmf-relay")).await;
    caller.expect(200, "INFO").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::Digit { call, digit: '5' });

    caller.send("INVITE", &format!("{OFFER}a=sendonly\r\n")).await;
    let hold = caller.expect(200, "INVITE").await;
    assert!(
        body(&hold).contains("m=audio 30000 RTP/AVP 0 101\r\n") && body(&hold).ends_with("a=recvonly\r\n"),
        "{hold}"
    );
    caller.ack().await;

    caller.send("BYE", "").await;
    caller.expect(200, "BYE").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
}

#[tokio::test]
async fn the_application_hangs_up_and_refuses() {
    let (server, mut ends) = with_application().await;
    let mut caller = Caller::new(server, "ivr").await;
    caller.send("INVITE", OFFER).await;
    let call = incoming(&mut ends).await;
    ends.commands.send(CallCommand::Answer { call, sdp: MEDIA_ANSWER.to_owned() }).unwrap();
    caller.expect(200, "INVITE").await;
    caller.ack().await;
    ends.commands.send(CallCommand::HangUp { call }).unwrap();
    let bye = caller.receive().await;
    assert!(bye.starts_with("BYE sip:caller@127.0.0.1:"), "{bye}");

    let mut refused = Caller::new(server, "ivr").await;
    refused.send("INVITE", OFFER).await;
    let call = incoming(&mut ends).await;
    ends.commands.send(CallCommand::Refuse { call, status: 486 }).unwrap();
    refused.expect(486, "INVITE").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
    // A command for a call that is over changes nothing.
    ends.commands.send(CallCommand::Answer { call, sdp: MEDIA_ANSWER.to_owned() }).unwrap();

    let mut cancelled = Caller::new(server, "ivr").await;
    cancelled.send("INVITE", OFFER).await;
    let call = incoming(&mut ends).await;
    cancelled.send_in_invite_transaction("CANCEL").await;
    cancelled.expect(487, "INVITE").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
}

/// Without an application, its numbers are unavailable rather than silent.
#[tokio::test]
async fn no_application_no_calls() {
    let numbers = vec![Number { target: Target::Application, ..number("ivr", Duration::ZERO, None) }];
    let server = start(CallSettings { numbers, ..CallSettings::default() }).await;
    let mut caller = Caller::new(server, "ivr").await;
    caller.send("INVITE", OFFER).await;
    let refused = caller.expect(503, "INVITE").await;
    assert!(refused.contains("\r\nRetry-After: "), "{refused}");
}

const AGENT_OFFER: &str = "v=0\r\no=loket 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

/// The application dials the agent for its caller: without a registered phone it fails at once;
/// with two, both ring, the first to answer wins, the phone's hold is answered with the
/// application's media address (not passed to the caller), and the agent's hang-up leaves the
/// caller's leg to the application. A second dial reaches the phone again, and the application
/// hangs it up.
#[tokio::test]
async fn the_application_dials_the_agent_for_its_caller() {
    let store = MemoryStore::new();
    let (server, mut ends) = with_application_and(store.clone()).await;
    let mut caller = Caller::established_by(server, &mut ends).await;
    let call = caller.1;
    let dial = || CallCommand::DialAgent { call, agent: "agent".into(), offer: AGENT_OFFER.to_owned() };
    ends.commands.send(dial()).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 480 });

    let (first, second) = (Phone::new("a").await, Phone::new("b").await);
    registered(&store, &[&first, &second]).await;
    ends.commands.send(dial()).unwrap();
    let invite_a = first.request("INVITE").await;
    let invite_b = second.request("INVITE").await;
    assert_eq!(body(&invite_a.0), AGENT_OFFER);
    second.respond(&invite_b, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    first.respond(&invite_a, "200 OK", PHONE_ANSWER).await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeAnswered { call, sdp: PHONE_ANSWER.to_owned() });
    first.request("ACK").await;
    let cancel = second.request("CANCEL").await;
    second.respond(&cancel, "200 OK", "").await;
    second.respond(&invite_b, "487 Request Terminated", "").await;

    // The phone holds: loket answers with the agent session's port; the caller hears of nothing.
    first.send_in_dialog(&invite_a, "INVITE", 5, "application/sdp", &format!("{PHONE_ANSWER}a=sendonly\r\n")).await;
    let held = first.ok().await;
    assert!(body(&held).contains("m=audio 30002 ") && body(&held).ends_with("a=recvonly\r\n"), "{held}");

    // The agent hangs up: the application hears it, and the caller's leg stays.
    first.send_in_dialog(&invite_a, "BYE", 6, "", "").await;
    assert!(first.ok().await.contains("CSeq: 6 BYE\r\n"));
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeHungUp { call });

    // Dialled again (one phone now), the application hangs the agent up while it rings.
    registered(&store, &[&first]).await;
    ends.commands.send(dial()).unwrap();
    let again = first.request("INVITE").await;
    first.respond(&again, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    ends.commands.send(CallCommand::HangUpCallee { call }).unwrap();
    let cancel = first.request("CANCEL").await;
    first.respond(&cancel, "200 OK", "").await;
    first.respond(&again, "487 Request Terminated", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 480 });

    caller.0.send("BYE", "").await;
    caller.0.expect(200, "BYE").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
}

impl Caller {
    /// A call to `ivr` that the application answers; the caller and the application's id of it.
    async fn established_by(server: SocketAddr, ends: &mut ApplicationEnds) -> (Caller, LegId) {
        let mut caller = Caller::new(server, "ivr").await;
        caller.send("INVITE", OFFER).await;
        let call = incoming(ends).await;
        ends.commands.send(CallCommand::Answer { call, sdp: MEDIA_ANSWER.to_owned() }).unwrap();
        caller.expect(200, "INVITE").await;
        caller.ack().await;
        (caller, call)
    }
}

const TRUNK_REALM: &str = "pbx.test";
const NUMBER: &str = "+3250123456";

/// The trunk's settings: `pbx.test` behind the outbound proxy `proxy` (so no name is looked up),
/// or the trunk at `host` itself.
fn trunk(host: &str, proxy: Option<SocketAddr>, password: &str) -> Trunk {
    Trunk {
        host: host.to_owned(),
        username: "loket".into(),
        password: crate::trunk::Password::new(password),
        caller_id: DEMO.into(),
        register: None,
        outbound_proxy: proxy.map(|proxy| proxy.to_string()),
        ring_timeout: Duration::from_secs(30),
        retry: crate::trunk::Backoff { first: Duration::from_millis(300), max: Duration::from_secs(1) },
    }
}

async fn with_trunk(trunk: Trunk) -> (SocketAddr, ApplicationEnds) {
    let (ends, application) = channels();
    let numbers = vec![Number { target: Target::Application, ..number("ivr", Duration::ZERO, None) }];
    let calls = CallSettings { numbers, trunk: Some(trunk), ..CallSettings::default() };
    (serve(calls, MemoryStore::new(), Some(application)).await, ends)
}

/// The trunk's side of digest authentication: loket's own server-side check, MD5 and SHA-256.
fn trunk_auth() -> crate::digest::DigestAuth {
    crate::digest::DigestAuth::new(TRUNK_REALM, [3; 32], Duration::from_secs(60), &crate::digest::Algorithm::OFFERED)
}

/// Whether the credentials in `header` of `request` are loket's with the trunk's password, for
/// `method` and the request's Request-URI.
fn authenticated(request: &str, header: &str, method: &str) -> bool {
    let value = header_line(request, &format!("{header}: "));
    let credentials = crate::digest::Credentials::parse(line_value(&value)).expect("credentials");
    let uri = request.split(' ').nth(1).unwrap_or_default();
    let stored = StoredHa1::from_password("loket", TRUNK_REALM, "s3cret");
    let verdict = trunk_auth().verify(SystemTime::now(), method, &credentials, &stored, credentials.uri == uri);
    credentials.username == "loket" && verdict == crate::digest::Verdict::Valid
}

/// `challenge_header` lines of a 401 or 407, SHA-256 first.
fn challenges(challenge_header: &str) -> Vec<String> {
    let challenges = trunk_auth().challenges(SystemTime::now(), false);
    challenges.iter().map(|challenge| format!("{challenge_header}: {challenge}")).collect()
}

/// DialNumber through an outbound proxy: the INVITE names the number at the trunk's domain, from
/// the municipality's number, with the proxy's Route; its 407 is ACKed and answered by the INVITE
/// again (CSeq 2, same Call-ID and tag) with credentials that the trunk's check accepts; ringing
/// and the answer reach the application, the ACK repeats the credentials, and HangUpCallee ends
/// the trunk's side with a BYE through the proxy.
#[tokio::test]
async fn the_application_dials_a_number_through_the_trunk() {
    let proxy = Phone::new("t").await;
    let (server, mut ends) = with_trunk(trunk(TRUNK_REALM, Some(proxy.addr()), "s3cret")).await;
    let (mut caller, call) = Caller::established_by(server, &mut ends).await;
    ends.commands.send(CallCommand::DialNumber { call, number: NUMBER.into(), offer: AGENT_OFFER.into() }).unwrap();

    let route = format!("Route: <sip:{};lr>", proxy.addr());
    let first = proxy.request("INVITE").await;
    assert!(first.0.starts_with(&format!("INVITE sip:{NUMBER}@pbx.test SIP/2.0\r\n")), "{}", first.0);
    assert_eq!(header_line(&first.0, "Route: "), route);
    assert!(header_line(&first.0, "From: ").starts_with(&format!("From: <sip:{DEMO}@pbx.test>;tag=lk")), "{}", first.0);
    assert_eq!((body(&first.0), header_line(&first.0, "Proxy-Authorization: ")), (AGENT_OFFER, String::new()));
    proxy.respond_with(&first, "407 Proxy Authentication Required", &challenges("Proxy-Authenticate"), "").await;
    let ack = proxy.request("ACK").await;
    assert!(ack.0.contains(";tag=t\r\n") && header_line(&ack.0, "CSeq: ") == "CSeq: 1 ACK", "{}", ack.0);
    assert_eq!(header_line(&ack.0, "Route: "), route);

    let second = proxy.request("INVITE").await;
    assert_eq!(header_line(&second.0, "CSeq: "), "CSeq: 2 INVITE");
    for same in ["Call-ID: ", "From: ", "Route: "] {
        assert_eq!(header_line(&second.0, same), header_line(&first.0, same), "{same}");
    }
    assert!(authenticated(&second.0, "Proxy-Authorization", "INVITE"), "{}", second.0);
    assert_eq!(body(&second.0), AGENT_OFFER);
    proxy.respond(&second, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    proxy.respond(&second, "200 OK", PHONE_ANSWER).await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeAnswered { call, sdp: PHONE_ANSWER.to_owned() });
    let ack = proxy.request("ACK").await;
    assert!(ack.0.starts_with(&format!("ACK sip:phone@{} SIP/2.0\r\n", proxy.addr())), "{}", ack.0);
    assert_eq!((header_line(&ack.0, "CSeq: "), header_line(&ack.0, "Route: ")), ("CSeq: 2 ACK".into(), route.clone()));
    // RFC 3261 §13.2.2.4: the ACK carries the INVITE's credentials.
    assert_eq!(header_line(&ack.0, "Proxy-Authorization: "), header_line(&second.0, "Proxy-Authorization: "));

    ends.commands.send(CallCommand::HangUpCallee { call }).unwrap();
    let bye = proxy.request("BYE").await;
    assert_eq!(header_line(&bye.0, "Route: "), route);
    proxy.respond(&bye, "200 OK", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeHungUp { call });
    caller.send("BYE", "").await;
    caller.expect(200, "BYE").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
}

/// The trunk's refusals reach the application as failures: credentials challenged again (a
/// wrong password), 403, silence while ringing (cancelled after the ring timeout), a number that
/// is not one, and no trunk at all.
#[tokio::test]
async fn calls_to_numbers_that_fail() {
    let pbx = Phone::new("t").await;
    let mut settings = trunk(&pbx.addr().to_string(), None, "wrong");
    settings.ring_timeout = Duration::from_millis(300);
    let (server, mut ends) = with_trunk(settings).await;
    let (_caller, call) = Caller::established_by(server, &mut ends).await;
    let dial = |number: &str| CallCommand::DialNumber { call, number: number.into(), offer: AGENT_OFFER.into() };

    ends.commands.send(dial(NUMBER)).unwrap();
    let first = pbx.request("INVITE").await;
    assert!(first.0.starts_with(&format!("INVITE sip:{NUMBER}@{} SIP/2.0\r\n", pbx.addr())), "{}", first.0);
    assert_eq!(header_line(&first.0, "Route: "), "", "no outbound proxy, no Route");
    pbx.respond_with(&first, "401 Unauthorized", &challenges("WWW-Authenticate"), "").await;
    pbx.request("ACK").await;
    let second = pbx.request("INVITE").await;
    assert!(!authenticated(&second.0, "Authorization", "INVITE"), "the password is wrong");
    pbx.respond_with(&second, "401 Unauthorized", &challenges("WWW-Authenticate"), "").await;
    pbx.request("ACK").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 401 });

    ends.commands.send(dial(NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "403 Forbidden", "").await;
    pbx.request("ACK").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 403 });

    ends.commands.send(dial(NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    let cancel = pbx.request("CANCEL").await;
    pbx.respond(&cancel, "200 OK", "").await;
    pbx.respond(&invite, "487 Request Terminated", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 480 });

    // An answer without SDP gives the application's media session no far end: 502, and the
    // callee is hung up rather than left connected. The call may dial again (no 486), and the
    // callee's end reports nothing more.
    ends.commands.send(dial(NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "200 OK", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 502 });
    let bye = pbx.request("BYE").await;
    pbx.respond(&bye, "200 OK", "").await;
    ends.commands.send(dial(NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "486 Busy Here", "").await;
    pbx.request("ACK").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 486 });

    ends.commands.send(dial("+32 50 12")).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 484 });

    let (server, mut ends) = with_application().await;
    let (_caller, call) = Caller::established_by(server, &mut ends).await;
    ends.commands.send(CallCommand::DialNumber { call, number: NUMBER.into(), offer: AGENT_OFFER.into() }).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 503 });
}

/// The application's ids and the service's are one sequence: a call arriving after the
/// application drew some gets none of them, and the application's next is new too.
#[tokio::test]
async fn the_application_and_the_service_draw_ids_from_one_sequence() {
    let (server, mut ends) = with_application().await;
    let drawn = [ends.ids.next(), ends.ids.next()];
    let mut caller = Caller::new(server, "ivr").await;
    caller.send("INVITE", OFFER).await;
    let call = incoming(&mut ends).await;
    assert!(!drawn.contains(&call), "{call:?} was drawn: {drawn:?}");
    assert_ne!(ends.ids.next(), call);
}

fn originate(call: LegId, number: &str) -> CallCommand {
    CallCommand::Originate { call, to: Destination::Number(number.into()), offer: AGENT_OFFER.into() }
}

/// An originated call: the trunk gets the number at its host from the municipality's number with
/// the application's offer, challenges it (answered with credentials), rings and answers; the
/// application hears each step, then a digit by INFO, and its hang-up is a BYE.
#[tokio::test]
async fn the_application_originates_a_call_through_the_trunk() {
    let pbx = Phone::new("t").await;
    let (_server, mut ends) = with_trunk(trunk(&pbx.addr().to_string(), None, "s3cret")).await;
    let call = ends.ids.next();
    ends.commands.send(originate(call, NUMBER)).unwrap();

    let first = pbx.request("INVITE").await;
    assert!(first.0.starts_with(&format!("INVITE sip:{NUMBER}@{} SIP/2.0\r\n", pbx.addr())), "{}", first.0);
    let from = format!("From: <sip:{DEMO}@{}>;tag=lk", pbx.addr());
    assert!(header_line(&first.0, "From: ").starts_with(&from), "{}", first.0);
    assert_eq!(body(&first.0), AGENT_OFFER);
    pbx.respond_with(&first, "401 Unauthorized", &challenges("WWW-Authenticate"), "").await;
    pbx.request("ACK").await;
    let second = pbx.request("INVITE").await;
    assert!(authenticated(&second.0, "Authorization", "INVITE"), "{}", second.0);
    assert_eq!((header_line(&second.0, "CSeq: "), body(&second.0)), ("CSeq: 2 INVITE".into(), AGENT_OFFER));
    pbx.respond(&second, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    pbx.respond(&second, "200 OK", PHONE_ANSWER).await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeAnswered { call, sdp: PHONE_ANSWER.to_owned() });
    let ack = pbx.request("ACK").await;
    assert!(ack.0.starts_with(&format!("ACK sip:phone@{} SIP/2.0\r\n", pbx.addr())), "{}", ack.0);
    assert_eq!(header_line(&ack.0, "Authorization: "), header_line(&second.0, "Authorization: "));

    pbx.send_in_dialog(&second, "INFO", 1, "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n").await;
    assert!(pbx.ok().await.contains("CSeq: 1 INFO\r\n"));
    assert_eq!(next_event(&mut ends).await, CallEvent::Digit { call, digit: '5' });

    ends.commands.send(CallCommand::HangUp { call }).unwrap();
    let bye = pbx.request("BYE").await;
    assert!(bye.0.starts_with(&format!("BYE sip:phone@{} SIP/2.0\r\n", pbx.addr())), "{}", bye.0);
    pbx.respond(&bye, "200 OK", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
}

/// An originated call, once answered, is one of the application's calls: the callee's hold is
/// answered with the application's media address, a number can be dialled for it (the
/// originated call standing for the caller), and the callee's hang-up ends it.
#[tokio::test]
async fn an_originated_call_hung_up_by_the_callee() {
    let pbx = Phone::new("t").await;
    let (_server, mut ends) = with_trunk(trunk(&pbx.addr().to_string(), None, "s3cret")).await;
    let call = ends.ids.next();
    ends.commands.send(originate(call, NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "200 OK", PHONE_ANSWER).await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeAnswered { call, sdp: PHONE_ANSWER.to_owned() });
    pbx.request("ACK").await;

    pbx.send_in_dialog(&invite, "INVITE", 1, "application/sdp", &format!("{PHONE_ANSWER}a=sendonly\r\n")).await;
    let held = pbx.ok().await;
    assert!(body(&held).contains("m=audio 30002 ") && body(&held).ends_with("a=recvonly\r\n"), "{held}");
    pbx.send_in_dialog(&invite, "ACK", 1, "", "").await;

    let other = "+3250999999";
    ends.commands.send(CallCommand::DialNumber { call, number: other.into(), offer: MEDIA_ANSWER.into() }).unwrap();
    let dialled = pbx.request("INVITE").await;
    assert!(dialled.0.starts_with(&format!("INVITE sip:{other}@")), "{}", dialled.0);
    assert_eq!(body(&dialled.0), MEDIA_ANSWER);
    pbx.respond(&dialled, "200 OK", PHONE_ANSWER).await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeAnswered { call, sdp: PHONE_ANSWER.to_owned() });
    pbx.request("ACK").await;
    ends.commands.send(CallCommand::HangUpCallee { call }).unwrap();
    let bye = pbx.request("BYE").await;
    assert_eq!(header_line(&bye.0, "Call-ID: "), header_line(&dialled.0, "Call-ID: "));
    pbx.respond(&bye, "200 OK", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeHungUp { call });

    pbx.send_in_dialog(&invite, "BYE", 2, "", "").await;
    assert!(pbx.ok().await.contains("CSeq: 2 BYE\r\n"));
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
}

/// HangUp while the originated call rings: a CANCEL, the INVITE's 487 ACKed, and nothing more
/// reported (the next event is another call's).
#[tokio::test]
async fn an_originated_call_hung_up_while_ringing() {
    let pbx = Phone::new("t").await;
    let (_server, mut ends) = with_trunk(trunk(&pbx.addr().to_string(), None, "s3cret")).await;
    let call = ends.ids.next();
    ends.commands.send(originate(call, NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });

    ends.commands.send(CallCommand::HangUp { call }).unwrap();
    let cancel = pbx.request("CANCEL").await;
    assert!(cancel.0.starts_with(&format!("CANCEL sip:{NUMBER}@{} SIP/2.0\r\n", pbx.addr())), "{}", cancel.0);
    assert_eq!(header_line(&cancel.0, "CSeq: "), "CSeq: 1 CANCEL");
    pbx.respond(&cancel, "200 OK", "").await;
    pbx.respond(&invite, "487 Request Terminated", "").await;
    let ack = pbx.request("ACK").await;
    assert_eq!(header_line(&ack.0, "CSeq: "), "CSeq: 1 ACK");
    // The 487 was handled before its ACK left, so an event of it would come first.
    let next = ends.ids.next();
    ends.commands.send(originate(next, "not a number")).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call: next, status: 484 });
}

/// Originated calls that fail: the trunk's refusal, a full house, silence after ringing
/// (cancelled at the ring timeout), an answer without SDP (hung up at once), a number that is
/// not one, and no trunk at all.
#[tokio::test]
async fn originated_calls_that_fail() {
    let pbx = Phone::new("t").await;
    let mut settings = trunk(&pbx.addr().to_string(), None, "s3cret");
    settings.ring_timeout = Duration::from_millis(300);
    let (mut ends, application) = channels();
    let calls = CallSettings { trunk: Some(settings), max_calls: 1, ..CallSettings::default() };
    serve(calls, MemoryStore::new(), Some(application)).await;

    let call = ends.ids.next();
    ends.commands.send(originate(call, NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "486 Busy Here", "").await;
    pbx.request("ACK").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 486 });

    // One call ringing is all `max_calls` allows.
    let call = ends.ids.next();
    ends.commands.send(originate(call, NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    let refused = ends.ids.next();
    ends.commands.send(originate(refused, NUMBER)).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call: refused, status: 503 });
    // Nobody answers: cancelled at the ring timeout.
    let cancel = pbx.request("CANCEL").await;
    pbx.respond(&cancel, "200 OK", "").await;
    pbx.respond(&invite, "487 Request Terminated", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 480 });

    let call = ends.ids.next();
    ends.commands.send(originate(call, NUMBER)).unwrap();
    let invite = pbx.request("INVITE").await;
    pbx.respond(&invite, "200 OK", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 502 });
    let bye = pbx.request("BYE").await;
    pbx.respond(&bye, "200 OK", "").await;

    let call = ends.ids.next();
    ends.commands.send(originate(call, "+32 50 12")).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 484 });

    let (_server, mut ends) = with_application().await;
    let call = ends.ids.next();
    ends.commands.send(originate(call, NUMBER)).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 503 });
}

fn call_agent(call: LegId, user: &str) -> CallCommand {
    CallCommand::Originate { call, to: Destination::Agent(user.into()), offer: AGENT_OFFER.into() }
}

/// An originated call to an agent rings both registered phones from loket with the
/// application's offer; the first to answer wins and the other is cancelled. Answered, it is one
/// of the application's calls: a digit by INFO, a hold answered with its media address, a callee
/// dialled for it (no phone of the colleague: 480, not busy), and the phone's hang-up ends it and
/// its dialog. With `max_calls` 1, it counts while it rings, and nothing of it counts afterwards.
#[tokio::test]
async fn the_application_originates_a_call_to_an_agents_phones() {
    let (first, second) = (Phone::new("a").await, Phone::new("b").await);
    let store = MemoryStore::new();
    registered(&store, &[&first, &second]).await;
    let (mut ends, application) = channels();
    serve(CallSettings { max_calls: 1, ..CallSettings::default() }, store, Some(application)).await;
    let call = ends.ids.next();
    ends.commands.send(call_agent(call, "agent")).unwrap();

    let invite_a = first.request("INVITE").await;
    let invite_b = second.request("INVITE").await;
    for (invite, phone) in [(&invite_a, &first), (&invite_b, &second)] {
        assert!(invite.0.starts_with(&format!("INVITE sip:agent@{} SIP/2.0\r\n", phone.addr())), "{}", invite.0);
        assert!(header_line(&invite.0, "From: ").starts_with("From: <sip:loket@loket.test>;tag=lk"), "{}", invite.0);
        assert_eq!(body(&invite.0), AGENT_OFFER);
    }
    second.respond(&invite_b, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    let refused = ends.ids.next();
    ends.commands.send(call_agent(refused, "agent")).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call: refused, status: 503 });

    first.respond(&invite_a, "200 OK", PHONE_ANSWER).await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeAnswered { call, sdp: PHONE_ANSWER.to_owned() });
    first.request("ACK").await;
    // The 200 again, as if the ACK were lost: its INVITE's transaction still finds the leg.
    first.respond(&invite_a, "200 OK", PHONE_ANSWER).await;
    first.request("ACK").await;
    let cancel = second.request("CANCEL").await;
    assert!(cancel.0.starts_with(&format!("CANCEL sip:agent@{} SIP/2.0\r\n", second.addr())), "{}", cancel.0);
    second.respond(&cancel, "200 OK", "").await;
    second.respond(&invite_b, "487 Request Terminated", "").await;
    let ack = second.request("ACK").await;
    assert_eq!(header_line(&ack.0, "CSeq: "), "CSeq: 1 ACK");

    first.send_in_dialog(&invite_a, "INFO", 1, "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n").await;
    assert!(first.ok().await.contains("CSeq: 1 INFO\r\n"));
    assert_eq!(next_event(&mut ends).await, CallEvent::Digit { call, digit: '5' });
    first.send_in_dialog(&invite_a, "INVITE", 2, "application/sdp", &format!("{PHONE_ANSWER}a=sendonly\r\n")).await;
    let held = first.ok().await;
    assert!(body(&held).contains("m=audio 30002 ") && body(&held).ends_with("a=recvonly\r\n"), "{held}");
    first.send_in_dialog(&invite_a, "ACK", 2, "", "").await;
    let colleague = CallCommand::DialAgent { call, agent: "colleague".into(), offer: MEDIA_ANSWER.into() };
    ends.commands.send(colleague).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 480 });

    first.send_in_dialog(&invite_a, "BYE", 3, "", "").await;
    assert!(first.ok().await.contains("CSeq: 3 BYE\r\n"));
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
    first.send_in_dialog(&invite_a, "BYE", 4, "", "").await;
    assert!(first.response(481).await.contains("CSeq: 4 BYE\r\n"));
    let next = ends.ids.next();
    ends.commands.send(call_agent(next, "nobody")).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call: next, status: 480 });
}

/// The application hangs up its call to an agent: while the phones ring, both are cancelled and
/// nothing is reported; once one answered (the other cancelled as soon as it rings), with a BYE
/// to it, and the call ends.
#[tokio::test]
async fn the_application_hangs_up_its_call_to_an_agent() {
    let (first, second) = (Phone::new("a").await, Phone::new("b").await);
    let store = MemoryStore::new();
    registered(&store, &[&first, &second]).await;
    let (_server, mut ends) = with_application_and(store).await;
    let call = ends.ids.next();
    ends.commands.send(call_agent(call, "agent")).unwrap();
    let invites = [(&first, first.request("INVITE").await), (&second, second.request("INVITE").await)];
    for (phone, invite) in &invites {
        phone.respond(invite, "180 Ringing", "").await;
        assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    }
    ends.commands.send(CallCommand::HangUp { call }).unwrap();
    for (phone, invite) in &invites {
        let cancel = phone.request("CANCEL").await;
        phone.respond(&cancel, "200 OK", "").await;
        phone.respond(invite, "487 Request Terminated", "").await;
        phone.request("ACK").await;
    }
    // The 487s were handled before their ACKs left, so an event of them would come first.
    let probe = ends.ids.next();
    ends.commands.send(call_agent(probe, "nobody")).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call: probe, status: 480 });

    let call = ends.ids.next();
    ends.commands.send(call_agent(call, "agent")).unwrap();
    let invite_a = first.request("INVITE").await;
    let invite_b = second.request("INVITE").await;
    second.respond(&invite_b, "200 OK", PHONE_ANSWER).await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeAnswered { call, sdp: PHONE_ANSWER.to_owned() });
    second.request("ACK").await;
    // RFC 3261 §9.1: no CANCEL before a provisional response.
    first.respond(&invite_a, "180 Ringing", "").await;
    let cancel = first.request("CANCEL").await;
    first.respond(&cancel, "200 OK", "").await;
    first.respond(&invite_a, "487 Request Terminated", "").await;
    first.request("ACK").await;

    ends.commands.send(CallCommand::HangUp { call }).unwrap();
    let bye = second.request("BYE").await;
    assert!(bye.0.starts_with(&format!("BYE sip:phone@{} SIP/2.0\r\n", second.addr())), "{}", bye.0);
    assert_eq!(header_line(&bye.0, "Call-ID: "), header_line(&invite_b.0, "Call-ID: "));
    second.respond(&bye, "200 OK", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::Ended { call });
}

/// Originated calls to an agent that fail: no phone registered (480), every phone refusing (486
/// before any other refusal), and a first answer without SDP (502), which is hung up while the
/// other phone is cancelled, with nothing more reported.
#[tokio::test]
async fn originated_calls_to_an_agent_that_fail() {
    let store = MemoryStore::new();
    let (_server, mut ends) = with_application_and(store.clone()).await;
    let call = ends.ids.next();
    ends.commands.send(call_agent(call, "agent")).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 480 });

    let (first, second) = (Phone::new("a").await, Phone::new("b").await);
    registered(&store, &[&first, &second]).await;
    let call = ends.ids.next();
    ends.commands.send(call_agent(call, "agent")).unwrap();
    let invite_a = first.request("INVITE").await;
    let invite_b = second.request("INVITE").await;
    first.respond(&invite_a, "603 Decline", "").await;
    first.request("ACK").await;
    second.respond(&invite_b, "486 Busy Here", "").await;
    second.request("ACK").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 486 });

    let call = ends.ids.next();
    ends.commands.send(call_agent(call, "agent")).unwrap();
    let invite_a = first.request("INVITE").await;
    let invite_b = second.request("INVITE").await;
    second.respond(&invite_b, "180 Ringing", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeRinging { call });
    first.respond(&invite_a, "200 OK", "").await;
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call, status: 502 });
    let bye = first.request("BYE").await;
    first.respond(&bye, "200 OK", "").await;
    let cancel = second.request("CANCEL").await;
    second.respond(&cancel, "200 OK", "").await;
    second.respond(&invite_b, "487 Request Terminated", "").await;
    second.request("ACK").await;
    let probe = ends.ids.next();
    ends.commands.send(call_agent(probe, "nobody")).unwrap();
    assert_eq!(next_event(&mut ends).await, CallEvent::CalleeFailed { call: probe, status: 480 });
}

/// The registrar's side: REGISTERs from one socket, answered by the test.
struct Registrar(Phone);

impl Registrar {
    /// The next REGISTER, skipping retransmissions of the one answered last.
    async fn register(&self, last_cseq: &mut u32) -> (String, SocketAddr) {
        loop {
            let request = self.0.request("REGISTER").await;
            let cseq: u32 = line_value(&header_line(&request.0, "CSeq: ")).split(' ').next().unwrap().parse().unwrap();
            if cseq > *last_cseq {
                *last_cseq = cseq;
                return request;
            }
        }
    }
}

/// Registration at the trunk: challenged and answered with the credentials the trunk's check
/// accepts; renewed at half the interval granted with the last nonce (the next nonce count), a
/// fresh challenge then answered; a refusal retried after the back-off; and at shutdown the
/// binding removed (Expires: 0) before the service returns.
#[tokio::test]
async fn loket_registers_at_the_trunk() {
    let registrar = Registrar(Phone::new("r").await);
    let pbx = registrar.0.addr().to_string();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sockets = Sockets::bind(any, any).await.unwrap();
    let udp = sockets.udp_addr().unwrap();
    let calls = CallSettings {
        trunk: Some(Trunk { register: Some(600), ..trunk(&pbx, None, "s3cret") }),
        ..CallSettings::default()
    };
    let settings = Settings { calls, ..Settings::new("loket.test", Policy::default()) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(sockets.serve_until(settings, NoCredentials, MemoryStore::new(), None, async {
        let _ = stopped.await;
    }));

    let mut cseq = 0;
    let first = registrar.register(&mut cseq).await;
    assert!(first.0.starts_with(&format!("REGISTER sip:{pbx} SIP/2.0\r\n")), "{}", first.0);
    assert_eq!(header_line(&first.0, "To: "), format!("To: <sip:loket@{pbx}>"));
    assert_eq!(header_line(&first.0, "Contact: "), format!("Contact: <sip:{DEMO}@{udp}>"));
    assert_eq!(header_line(&first.0, "Expires: "), "Expires: 600");
    registrar.0.respond_with(&first, "401 Unauthorized", &challenges("WWW-Authenticate")[1..], "").await;
    let second = registrar.register(&mut cseq).await;
    assert!(authenticated(&second.0, "Authorization", "REGISTER"), "{}", second.0);
    assert_eq!(header_line(&second.0, "Call-ID: "), header_line(&first.0, "Call-ID: "));
    let granted = [format!("Contact: <sip:{DEMO}@{udp}>;expires=1")];
    registrar.0.respond_with(&second, "200 OK", &granted, "").await;

    // The renewal, half a second later, reuses the nonce; the registrar wants a new one.
    let renewal = registrar.register(&mut cseq).await;
    assert!(authenticated(&renewal.0, "Authorization", "REGISTER"), "{}", renewal.0);
    assert!(renewal.0.contains("nc=00000002"), "{}", renewal.0);
    registrar.0.respond_with(&renewal, "401 Unauthorized", &challenges("WWW-Authenticate"), "").await;
    let answered = registrar.register(&mut cseq).await;
    assert!(answered.0.contains("nc=00000001") && answered.0.contains("algorithm=SHA-256"), "{}", answered.0);
    registrar.0.respond(&answered, "503 Service Unavailable", "").await;
    // Retried after the back-off (300 ms).
    let retried = registrar.register(&mut cseq).await;
    registrar.0.respond_with(&retried, "200 OK", &[format!("Contact: <sip:{DEMO}@{udp}>;expires=600")], "").await;

    stop.send(()).unwrap();
    let removal = registrar.register(&mut cseq).await;
    assert_eq!(header_line(&removal.0, "Expires: "), "Expires: 0");
    registrar.0.respond(&removal, "200 OK", "").await;
    let returned = tokio::time::timeout(DEADLINE, service).await.expect("the service stops within the deadline");
    assert!(returned.unwrap().is_ok());
}
