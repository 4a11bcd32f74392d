//! Calls with a real SIP peer: SIPp callers (`tests/sipp/call-*.xml`) against `loket serve --demo`
//! with numbers that loket answers itself: a call hung up by the caller and one hung up by loket,
//! CANCEL before the answer, hold and resume by re-INVITE, and an unknown number (404); and a
//! SIPp caller bridged by loket to a SIPp phone, to baresip, and to a phone on SIP over WebSocket,
//! each registered as the demo agent.
//! SIPp is required: without it the test fails and says how to install it.

mod support;

/// The demo number as in the defaults, one that rings (for CANCEL), one loket hangs up, and one
/// that reaches the demo agent's phones through the B2BUA.
const NUMBERS: &str = r#"
[[sip.numbers]]
number = "+3225550100"
target = "answer"

[[sip.numbers]]
number = "+3225550101"
target = "answer"
ring_seconds = 30

[[sip.numbers]]
number = "+3225550102"
target = "answer"
hangup_seconds = 1

[[sip.numbers]]
number = "+3225550103"
target = "agent:agent"
"#;

/// One SIPp caller of `number` through to its end.
fn call(scenario: &str, loket: &support::Loket, number: &str) {
    let dir = support::TempDir::new();
    let run = support::sipp(&dir, scenario, &["-s", number, "-p", "0", &loket.sip_udp]).status();
    support::check_sipp(&dir, &format!("{scenario} calling {number}"), run);
}

#[test]
fn sipp_calls_answered_by_loket() {
    let loket = support::start_with_config(NUMBERS, &[]);
    call("call-caller-hangs-up.xml", &loket, "+3225550100");
    call("call-loket-hangs-up.xml", &loket, "+3225550102");
    call("call-cancel.xml", &loket, "+3225550101");
    call("call-hold.xml", &loket, "+3225550100");
    call("call-unknown-number.xml", &loket, "+3225550199");
    loket.stop();
}

/// SIPp registers as the demo agent (MD5 digest, as SIPp 3.6 knows only that) from one port,
/// then answers there as the agent's phone; a SIPp caller's call, with a hold and a resume,
/// crosses loket's B2BUA to it and back, and the caller's BYE reaches the phone.
#[test]
fn sipp_caller_reaches_a_sipp_agent_through_the_b2bua() {
    let loket = support::start_with_config(NUMBERS, &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let password = loket.sip_password("agent").to_owned();
    let port =
        std::net::UdpSocket::bind("127.0.0.1:0").and_then(|socket| socket.local_addr()).expect("a free port").port();
    let port = port.to_string();
    let dir = support::TempDir::new();
    let register = ["-s", "agent", "-au", "agent", "-ap", &password, "-key", "domain", "loket.invalid"];
    let run = support::sipp(&dir, "register-auth.xml", &register)
        .args(["-auth_uri", "loket.invalid", "-p", &port, &loket.sip_udp])
        .status();
    support::check_sipp(&dir, "register-auth.xml", run);
    let phone_dir = support::TempDir::new();
    let phone = support::sipp(&phone_dir, "agent-callee.xml", &["-p", &port]).spawn();
    let mut phone =
        phone.unwrap_or_else(|error| panic!("this test needs SIPp (`apt-get install sip-tester`): {error}"));
    call("call-hold.xml", &loket, "+3225550103");
    support::check_sipp(&phone_dir, "agent-callee.xml", phone.wait());
    loket.stop();
}

/// baresip registers as the demo agent's phone and answers automatically; a SIPp caller's call
/// crosses loket to it, and the caller's hang-up ends both legs: baresip reports the call
/// established and then closed by the BYE (SIPp checks the 200 to its BYE). baresip is required
/// (`apt-get install baresip`).
#[test]
fn sipp_caller_reaches_baresip_as_the_agent() {
    let loket = support::start_with_config(NUMBERS, &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let mut baresip = support::Baresip::register(&loket, "agent");
    call("call-caller-hangs-up.xml", &loket, "+3225550103");
    baresip.wait_for("the call established", |line| line.contains("Call established"));
    // libre reports the peer's BYE as "session closed: Connection reset by peer".
    baresip.wait_for("the call closed by the BYE", |line| line.contains("session closed"));
    loket.stop();
}

/// A phone on SIP over WebSocket (RFC 7118), as a browser phone speaks it: its Contact is a
/// host nobody can reach, so loket must call it through the connection it registered over.
struct WsPhone {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

const WS_CONTACT: &str = "sip:agent@df7jal23ls0d.invalid;transport=ws";

impl WsPhone {
    async fn connect(loket: &support::Loket) -> WsPhone {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}", loket.sip_ws).into_client_request().expect("a request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "sip".parse().expect("a header value"));
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("loket's SIP WebSocket");
        WsPhone { socket }
    }

    async fn send(&mut self, text: String) {
        use futures_util::SinkExt;
        self.socket.send(tokio_tungstenite::tungstenite::Message::text(text)).await.expect("send");
    }

    async fn receive(&mut self) -> String {
        use futures_util::StreamExt;
        let next = tokio::time::timeout(support::DEADLINE, self.socket.next()).await;
        let message = next.expect("a SIP message within the deadline").expect("the connection open").expect("read");
        message.into_text().expect("SIP as a text frame").to_string()
    }

    fn register(cseq: u32, authorization: &str) -> String {
        format!(
            "REGISTER sip:loket.invalid SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-ws{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:agent@loket.invalid>;tag=ws\r\nTo: <sip:agent@loket.invalid>\r\n\
             Call-ID: ws-registration\r\nCSeq: {cseq} REGISTER\r\nContact: <{WS_CONTACT}>;expires=300\r\n\
             {authorization}Content-Length: 0\r\n\r\n"
        )
    }

    /// REGISTER, answered 401, then again with the digest of the agent's password: 200.
    async fn register_as_agent(&mut self, password: &str) {
        self.send(WsPhone::register(1, "")).await;
        let challenge = self.receive().await;
        assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
        let value = challenge.lines().find_map(|line| line.strip_prefix("WWW-Authenticate: ")).expect("a challenge");
        let challenge = loket_sip::digest::Challenge::parse(value).expect("a digest challenge");
        let answer = challenge.answer("agent", password, "REGISTER", "sip:loket.invalid", "c0ffee", 1);
        self.send(WsPhone::register(2, &format!("Authorization: {answer}\r\n"))).await;
        let ok = self.receive().await;
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n") && ok.contains(WS_CONTACT), "{ok}");
    }

    /// The response `status` to `request`, from the phone, with its tag and `body` (SDP).
    async fn respond(&mut self, request: &str, status: &str, body: &str) {
        let copied: String = request
            .lines()
            .filter(|line| ["Via:", "From:", "Call-ID:", "CSeq:"].iter().any(|name| line.starts_with(name)))
            .map(|line| format!("{line}\r\n"))
            .collect();
        let to = request.lines().find(|line| line.starts_with("To:")).expect("a To");
        let to = if to.contains(";tag=") { to.to_owned() } else { format!("{to};tag=wsphone") };
        let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
        self.send(format!(
            "SIP/2.0 {status}\r\n{copied}{to}\r\nContact: <{WS_CONTACT}>\r\n{content_type}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .await;
    }
}

/// A phone on SIP over WebSocket registers as the demo agent; a SIPp caller's call crosses
/// loket's B2BUA to it over that connection (Via `SIP/2.0/WS`, the Request-URI its Contact), it
/// rings and answers, gets the ACK, and the caller's BYE reaches it there too.
#[tokio::test]
async fn sipp_caller_reaches_a_websocket_phone() {
    let loket = support::start_with_config(NUMBERS, &[]);
    let mut phone = WsPhone::connect(&loket).await;
    phone.register_as_agent(loket.sip_password("agent")).await;
    let dir = support::TempDir::new();
    let caller = support::sipp(&dir, "call-caller-hangs-up.xml", &["-s", "+3225550103", "-p", "0", &loket.sip_udp])
        .spawn()
        .unwrap_or_else(|error| panic!("this test needs SIPp (`apt-get install sip-tester`): {error}"));

    let invite = phone.receive().await;
    assert!(invite.starts_with(&format!("INVITE {WS_CONTACT} SIP/2.0\r\n")), "{invite}");
    assert!(invite.contains("\r\nVia: SIP/2.0/WS "), "{invite}");
    phone.respond(&invite, "180 Ringing", "").await;
    let answer = "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                  m=audio 7000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    phone.respond(&invite, "200 OK", answer).await;
    let ack = phone.receive().await;
    assert!(ack.starts_with("ACK ") && ack.contains("CSeq: 1 ACK\r\n"), "{ack}");
    let bye = phone.receive().await;
    assert!(bye.starts_with("BYE "), "{bye}");
    phone.respond(&bye, "200 OK", "").await;
    support::finish_sipp("call-caller-hangs-up.xml", (caller, dir)).await;
    loket.stop();
}
