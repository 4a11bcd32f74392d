//! The service over real sockets on 127.0.0.1, with the in-process location store and a table of
//! credentials. Every wait has a deadline; nothing sleeps.

use std::collections::HashMap;
use std::convert::Infallible;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::digest::{Algorithm, Answer, ha1};
use crate::registrar::MemoryStore;

const DOMAIN: &str = "loket.test";
const DEADLINE: Duration = Duration::from_secs(10);

struct Table(HashMap<String, StoredHa1>);

impl CredentialStore for Table {
    type Error = Infallible;
    async fn find(&self, username: &str) -> Result<Option<StoredHa1>, Infallible> {
        Ok(self.0.get(username).cloned())
    }
}

async fn start(failed_auth: ratelimit::Limits) -> (SocketAddr, SocketAddr) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sockets = Sockets::bind(any, any).await.unwrap();
    let addrs = (sockets.udp_addr().unwrap(), sockets.tcp_addr().unwrap());
    let users = [("agent", "secret"), ("agent2", "other")]
        .map(|(user, password)| (user.to_owned(), StoredHa1::from_password(user, DOMAIN, password)));
    // The number `agent` rings the agent's phones, wherever they registered from.
    let number = calls::Number {
        number: "agent".into(),
        target: calls::Target::Agent("agent".into()),
        ring: Duration::ZERO,
        hangup_after: None,
    };
    let calls = calls::CallSettings { numbers: vec![number], ..calls::CallSettings::default() };
    let settings = Settings { failed_auth, calls, ..Settings::new(DOMAIN, Policy::default()) };
    tokio::spawn(sockets.serve(settings, Table(HashMap::from(users)), MemoryStore::new(), None));
    addrs
}

struct Phone {
    socket: UdpSocket,
    server: SocketAddr,
    cseq: u32,
}

impl Phone {
    async fn new(server: SocketAddr) -> Phone {
        Phone::on("127.0.0.1", server).await
    }

    async fn on(ip: &str, server: SocketAddr) -> Phone {
        Phone { socket: UdpSocket::bind((ip, 0)).await.unwrap(), server, cseq: 0 }
    }

    fn request(&mut self, method: &str, user: &str, extra: &str) -> String {
        self.cseq += 1;
        let local = self.socket.local_addr().unwrap();
        format!(
            "{method} sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{}-{}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=ph1\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
             Call-ID: call-{}\r\nCSeq: {} {method}\r\n{extra}Content-Length: 0\r\n\r\n",
            local.port(),
            self.cseq,
            local.port(),
            self.cseq,
        )
    }

    async fn send(&self, text: &str) -> String {
        self.socket.send_to(text.as_bytes(), self.server).await.unwrap();
        self.receive().await
    }

    async fn receive(&self) -> String {
        let mut buffer = vec![0u8; 65_536];
        let (len, _) = tokio::time::timeout(DEADLINE, self.socket.recv_from(&mut buffer))
            .await
            .expect("an answer within the deadline")
            .unwrap();
        String::from_utf8(buffer[..len].to_vec()).unwrap()
    }

    /// REGISTER, and on a 401 REGISTER again with credentials for `password`.
    async fn register(&mut self, user: &str, password: &str, algorithm: Algorithm, extra: &str) -> String {
        let first = self.request("REGISTER", user, extra);
        let challenge = self.send(&first).await;
        assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
        let authorization = authorization(&challenge, algorithm, user, password, "REGISTER");
        let second = self.request("REGISTER", user, &format!("{extra}Authorization: {authorization}\r\n"));
        self.send(&second).await
    }
}

fn authorization(challenge: &str, algorithm: Algorithm, user: &str, password: &str, method: &str) -> String {
    let line = challenge
        .lines()
        .find(|line| line.starts_with("WWW-Authenticate:") && line.contains(algorithm.name()))
        .expect("a challenge for the algorithm");
    let start = line.find("nonce=\"").unwrap() + 7;
    let nonce = &line[start..start + line[start..].find('"').unwrap()];
    let uri = format!("sip:{DOMAIN}");
    let answer = Answer { nonce, nc: "00000001", cnonce: "c0ffee", method, uri: &uri };
    let response = answer.response(algorithm, &ha1(algorithm, user, DOMAIN, password));
    format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"c0ffee\"",
        algorithm.name()
    )
}

fn header_values<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message.lines().filter_map(|line| line.strip_prefix(name)?.strip_prefix(": ")).collect()
}

#[tokio::test]
async fn register_is_challenged_then_accepted_and_lists_the_contacts() {
    let (udp, _) = start(ratelimit::Limits::default()).await;
    let mut phone = Phone::new(udp).await;
    let first = phone.request("REGISTER", "agent", "Contact: <sip:agent@10.0.0.5>\r\n");
    let challenge = phone.send(&first).await;
    let offered = header_values(&challenge, "WWW-Authenticate");
    assert_eq!(offered.len(), 2, "{challenge}");
    assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"), "{challenge}");
    // A retransmission gets the same answer from the transaction.
    assert_eq!(phone.send(&first).await, challenge);

    let ok =
        phone.register("agent", "secret", Algorithm::Sha256, "Contact: <sip:agent@10.0.0.5>;expires=120\r\n").await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(header_values(&ok, "Contact"), ["<sip:agent@10.0.0.5>;expires=120"]);
    let ok = phone.register("agent", "secret", Algorithm::Md5, "Contact: <sip:agent@10.0.0.6>\r\n").await;
    let mut contacts = header_values(&ok, "Contact");
    contacts.sort();
    assert_eq!(contacts.len(), 2, "{ok}");
    assert!(contacts[0].starts_with("<sip:agent@10.0.0.5>;expires=1"), "{ok}");
    assert!(contacts[1].starts_with("<sip:agent@10.0.0.6>;expires=3"), "{ok}");

    let gone = phone.register("agent", "secret", Algorithm::Md5, "Contact: *\r\nExpires: 0\r\n").await;
    assert!(gone.starts_with("SIP/2.0 200 OK\r\n") && header_values(&gone, "Contact").is_empty(), "{gone}");
}

#[tokio::test]
async fn register_refusals() {
    let (udp, _) = start(ratelimit::Limits::default()).await;
    let mut phone = Phone::new(udp).await;
    let wrong = phone.register("agent", "guess", Algorithm::Md5, "Contact: <sip:agent@10.0.0.5>\r\n").await;
    assert!(wrong.starts_with("SIP/2.0 403 Forbidden\r\n"), "{wrong}");
    let unknown = phone.register("nobody", "x", Algorithm::Md5, "Contact: <sip:nobody@10.0.0.5>\r\n").await;
    assert!(unknown.starts_with("SIP/2.0 404 Not Found\r\n"), "{unknown}");
    let brief = phone.register("agent", "secret", Algorithm::Md5, "Contact: <sip:agent@10.0.0.5>;expires=5\r\n").await;
    assert!(brief.starts_with("SIP/2.0 423 Interval Too Brief\r\n"), "{brief}");
    assert_eq!(header_values(&brief, "Min-Expires"), ["60"]);
    // agent's credentials do not register agent2's address-of-record.
    let first = phone.request("REGISTER", "agent2", "");
    let challenge = phone.send(&first).await;
    let authorization = authorization(&challenge, Algorithm::Md5, "agent", "secret", "REGISTER");
    let theft = phone.request("REGISTER", "agent2", &format!("Authorization: {authorization}\r\n"));
    assert!(phone.send(&theft).await.starts_with("SIP/2.0 403 Forbidden\r\n"));
    let garbage = phone.request("REGISTER", "agent", "Authorization: Digest nonsense\r\n");
    assert!(phone.send(&garbage).await.starts_with("SIP/2.0 400 Bad Authorization\r\n"));
}

#[tokio::test]
async fn repeated_failures_block_the_source_even_with_the_right_password() {
    let limits = ratelimit::Limits { max_failures: 3, ..ratelimit::Limits::default() };
    let (udp, _) = start(limits).await;
    let mut phone = Phone::new(udp).await;
    for _ in 0..3 {
        let wrong = phone.register("agent", "guess", Algorithm::Sha256, "").await;
        assert!(wrong.starts_with("SIP/2.0 403 "), "{wrong}");
    }
    let request = phone.request("REGISTER", "agent", "");
    let blocked = phone.send(&request).await;
    assert!(blocked.starts_with("SIP/2.0 403 Forbidden\r\n"), "blocked without a challenge: {blocked}");
    assert!(header_values(&blocked, "WWW-Authenticate").is_empty());
    // Another source (Linux answers on all of 127.0.0.0/8) is not affected.
    let mut other = Phone::on("127.0.0.2", udp).await;
    let ok = other.register("agent", "secret", Algorithm::Md5, "").await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
}

#[tokio::test]
async fn options_invite_and_other_methods() {
    let (udp, _) = start(ratelimit::Limits::default()).await;
    let mut phone = Phone::new(udp).await;
    let options = phone.request("OPTIONS", "agent", "");
    let answer = phone.send(&options).await;
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    assert_eq!(header_values(&answer, "Allow"), [ALLOW]);
    assert_eq!(header_values(&answer, "Accept"), ["application/sdp"]);
    assert!(answer.contains("\r\nSupported: \r\n"), "{answer}");
    // No number is configured here: every INVITE is for an unknown number.
    let invite = phone.request("INVITE", "agent", "Contact: <sip:caller@127.0.0.1>\r\n");
    assert!(phone.send(&invite).await.starts_with("SIP/2.0 404 "));
    let bye = phone.request("BYE", "agent", "");
    assert!(phone.send(&bye).await.starts_with("SIP/2.0 481 "));
    let message = phone.request("MESSAGE", "agent", "");
    assert!(phone.send(&message).await.starts_with("SIP/2.0 501 "));
}

/// A phone registers over TCP, with a Contact nobody could connect to; a call to its agent
/// reaches it over the connection it registered on.
#[tokio::test]
async fn register_over_tcp_and_be_called_through_the_connection() {
    let (udp, tcp) = start(ratelimit::Limits::default()).await;
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    let local = stream.local_addr().unwrap();
    let register = |extra: &str| {
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-t{}\r\nMax-Forwards: 70\r\n\
             From: <sip:agent@{DOMAIN}>;tag=t1\r\nTo: <sip:agent@{DOMAIN}>\r\nCall-ID: tcp-1\r\n\
             CSeq: {} REGISTER\r\nContact: <sip:agent@192.0.2.1:5999;transport=tcp>\r\n{extra}Content-Length: 0\r\n\r\n",
            extra.len(),
            extra.len() + 1,
        )
    };
    let read = async |stream: &mut TcpStream| {
        let mut buffer = vec![0u8; 8_192];
        let len = tokio::time::timeout(DEADLINE, stream.read(&mut buffer)).await.expect("deadline").unwrap();
        String::from_utf8(buffer[..len].to_vec()).unwrap()
    };
    stream.write_all(register("").as_bytes()).await.unwrap();
    let challenge = read(&mut stream).await;
    assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
    let authorization = authorization(&challenge, Algorithm::Sha256, "agent", "secret", "REGISTER");
    stream.write_all(register(&format!("Authorization: {authorization}\r\n")).as_bytes()).await.unwrap();
    let ok = read(&mut stream).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(header_values(&ok, "Contact"), ["<sip:agent@192.0.2.1:5999;transport=tcp>;expires=3600"]);

    let caller = Phone::new(udp).await;
    let from = caller.socket.local_addr().unwrap();
    let offer = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:agent@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-c1\r\nMax-Forwards: 70\r\n\
         From: <sip:caller@{DOMAIN}>;tag=c1\r\nTo: <sip:agent@{DOMAIN}>\r\nCall-ID: tcp-call\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{from}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    caller.socket.send_to(invite.as_bytes(), udp).await.unwrap();
    let forked = read(&mut stream).await;
    assert!(forked.starts_with("INVITE sip:agent@192.0.2.1:5999;transport=tcp SIP/2.0\r\n"), "{forked}");
    assert!(forked.contains(&format!("\r\nVia: SIP/2.0/TCP {tcp};branch=")), "{forked}");
    assert!(forked.contains(&format!("\r\nContact: <sip:loket@{tcp};transport=tcp>\r\n")), "{forked}");
}
