//! RFC 4475's torture messages through the message entry point, as UDP datagrams and as a TCP
//! stream. The messages are in `tests/rfc4475/*.sip` (written by `tests/rfc4475/generate.py`);
//! the table below is the treatment RFC 4475 asks for at the entry point.

use loket_sip::message::{Frame, FramingError, Inbound, Limits, MessageError, frame, parse_datagram, parse_framed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Passed on as a request.
    Request,
    /// Passed on as a response.
    Response,
    /// Answered statelessly with this status.
    Reply(u16),
    /// Dropped without an answer.
    Drop,
}

use Expect::{Drop, Reply, Request, Response};

/// (test name, treatment, RFC 4475 section and the reason).
const CORPUS: &[(&str, Expect, &str)] = &[
    ("wsinv", Request, "3.1.1.1 valid: folding, LWS, compact forms"),
    ("intmeth", Reply(501), "3.1.1.2 valid syntax, unknown method: RFC 3261 §8.2.1"),
    ("esc01", Request, "3.1.1.3 valid escapes"),
    ("escnull", Request, "3.1.1.4 valid escaped NULs"),
    ("esc02", Reply(501), "3.1.1.5 valid, the method is not REGISTER but an unknown one"),
    ("lwsdisp", Request, "3.1.1.6 valid: no LWS before '<'"),
    ("longreq", Request, "3.1.1.7 valid: long values"),
    ("dblreq", Request, "3.1.1.8 valid: octets after the body are discarded"),
    ("semiuri", Request, "3.1.1.9 valid: ';' in the user part"),
    ("transports", Request, "3.1.1.10 valid: unknown transports in Via"),
    ("mpart01", Request, "3.1.1.11 valid: multipart body"),
    ("unreason", Response, "3.1.1.12 valid: unusual reason phrase"),
    ("noreason", Response, "3.1.1.13 valid: empty reason phrase"),
    ("badinv01", Reply(400), "3.1.2.1 empty list elements and parameters"),
    ("clerr", Reply(400), "3.1.2.2 Content-Length larger than the datagram's body"),
    ("ncl", Reply(400), "3.1.2.3 negative Content-Length"),
    ("scalar02", Reply(400), "3.1.2.4 CSeq beyond 2^31"),
    ("scalarlg", Drop, "3.1.2.5 a response with CSeq beyond 2^31 is discarded"),
    ("quotbal", Reply(400), "3.1.2.6 unterminated quoted string"),
    ("ltgtruri", Reply(400), "3.1.2.7 '<>' around the Request-URI"),
    ("lwsruri", Reply(400), "3.1.2.8 LWS in the Request-URI"),
    ("lwsstart", Reply(400), "3.1.2.9 several SP in the Request-Line"),
    ("trws", Reply(400), "3.1.2.10 SP after the version"),
    ("escruri", Reply(400), "3.1.2.11 headers in the Request-URI"),
    ("baddate", Request, "3.1.2.12 the RFC lets an element ignore a bad Date"),
    ("regbadct", Reply(400), "3.1.2.13 '?' in a Contact URI outside '<>'"),
    ("badaspec", Reply(400), "3.1.2.14 spaces inside '<>'"),
    ("baddn", Reply(400), "3.1.2.15 comma in an unquoted display name"),
    ("badvers", Reply(505), "3.1.2.16 unknown SIP version"),
    ("mismatch01", Reply(400), "3.1.2.17 CSeq method differs from the request's"),
    ("mismatch02", Reply(400), "3.1.2.18 unknown method and a CSeq mismatch (400 or 501)"),
    ("bigcode", Drop, "3.1.2.19 a response code beyond three digits"),
    ("badbranch", Reply(400), "3.2.1 bare magic cookie as branch; the RFC allows 400"),
    ("insuf", Reply(400), "3.3.1 To, From and Call-ID missing"),
    ("unkscm", Reply(416), "3.3.2 unknown Request-URI scheme"),
    ("novelsc", Reply(416), "3.3.3 unsupported Request-URI scheme"),
    ("unksm2", Request, "3.3.4 unknown schemes in header fields are fine"),
    ("bext01", Request, "3.3.5 the UAS answers 420 (RFC 3261 §8.2.2.3), not the entry point"),
    ("invut", Request, "3.3.6 the UAS answers 415 (RFC 3261 §8.2.3)"),
    ("regaut01", Request, "3.3.7 the registrar answers 401"),
    ("multi01", Reply(400), "3.3.8 several To, From, Call-ID and CSeq"),
    ("mcl01", Reply(400), "3.3.9 several Content-Length values"),
    ("bcast", Response, "3.3.10 valid syntax; routing must not answer to broadcast"),
    ("zeromf", Request, "3.3.11 valid; a proxy would answer 483"),
    ("cparam01", Request, "3.3.12 valid Contact parameters"),
    ("cparam02", Request, "3.3.13 valid Contact parameters"),
    ("regescrt", Request, "3.3.14 valid; the registrar decides about the escaped Route"),
    ("sdp01", Request, "3.3.15 the UAS answers 406"),
    ("inv2543", Request, "3.4.1 RFC 2543 syntax must be accepted"),
];

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/rfc4475/{name}.sip", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn treatment(verdict: &Result<Inbound, loket_sip::message::Rejection>) -> Expect {
    match verdict {
        Ok(Inbound::Request(_)) => Request,
        Ok(Inbound::Response(_)) => Response,
        Err(rejection) => rejection.reply.as_ref().map_or(Drop, |reply| Reply(reply.status())),
    }
}

#[test]
fn corpus_is_complete() {
    let dir = format!("{}/tests/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok()?.strip_suffix(".sip").map(str::to_owned))
        .collect();
    on_disk.sort();
    let mut in_table: Vec<String> = CORPUS.iter().map(|(name, _, _)| (*name).to_owned()).collect();
    in_table.sort();
    assert_eq!(on_disk, in_table);
}

#[test]
fn every_message_as_a_datagram() {
    let limits = Limits::default();
    let mut wrong = Vec::new();
    for &(name, expected, why) in CORPUS {
        let verdict = parse_datagram(&load(name), &limits);
        let got = treatment(&verdict);
        if got != expected {
            wrong.push(format!("{name}: expected {expected:?} ({why}), got {got:?}: {verdict:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Over a stream the same messages are framed by Content-Length first. A Content-Length larger
/// than what was sent leaves the framer waiting (the connection's idle timeout ends it), and one
/// the framer cannot use ends the connection; everything else is treated as over UDP.
#[test]
fn every_message_on_a_stream() {
    let limits = Limits::default();
    let mut wrong = Vec::new();
    for &(name, expected, why) in CORPUS {
        let bytes = load(name);
        let got = match (name, frame(&bytes, &limits)) {
            ("clerr", Ok(Frame::Incomplete)) => continue,
            ("ncl", Err(FramingError::Head(MessageError::MalformedContentLength))) => continue,
            ("mcl01", Err(FramingError::Head(MessageError::DuplicateHeader(_)))) => continue,
            (_, Ok(Frame::Message { len })) => treatment(&parse_framed(&bytes[..len], &limits)),
            (_, other) => {
                wrong.push(format!("{name}: unexpected framing {other:?}"));
                continue;
            }
        };
        if got != expected {
            wrong.push(format!("{name}: expected {expected:?} ({why}), got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// RFC 4475 §3.1.1.8: on a stream the octets after the first message are the next message.
#[test]
fn dblreq_on_a_stream_is_two_requests() {
    let limits = Limits::default();
    let bytes = load("dblreq");
    let Ok(Frame::Message { len: first }) = frame(&bytes, &limits) else { panic!("first message not framed") };
    let Ok(Frame::Message { len: second }) = frame(&bytes[first..], &limits) else {
        panic!("second message not framed")
    };
    assert_eq!(first + second, bytes.len());
    for message in [&bytes[..first], &bytes[first..]] {
        assert!(matches!(parse_framed(message, &limits), Ok(Inbound::Request(_))));
    }
}

/// Prefixes of every message, and messages with one byte replaced by a character that matters to
/// the grammar, go through both entry points without a panic, and the framer never claims more
/// bytes than it was given. The strides keep this test fast unoptimised; the fuzz target
/// (`sip/fuzz`) covers the rest.
#[test]
fn truncated_and_corrupted_messages_are_refused_cleanly() {
    let limits = Limits::default();
    for &(name, _, _) in CORPUS {
        let bytes = load(name);
        let mut variants: Vec<Vec<u8>> = (0..bytes.len()).step_by(17).map(|cut| bytes[..cut].to_vec()).collect();
        for idx in (0..bytes.len()).step_by(53) {
            for replacement in [b'\r', b':', b' ', b'<', b'"', 0xff] {
                let mut corrupted = bytes.clone();
                corrupted[idx] = replacement;
                variants.push(corrupted);
            }
        }
        for variant in &variants {
            let _ = parse_datagram(variant, &limits);
            if let Ok(Frame::Message { len } | Frame::KeepAlive { len, .. }) = frame(variant, &limits) {
                assert!(len > 0 && len <= variant.len(), "{name}: framed {len} of {}", variant.len());
                let _ = parse_framed(&variant[..len], &limits);
            }
        }
    }
}

/// Real sockets: each message goes to a running listener, then an OPTIONS probe follows on the
/// same socket. The listener answers in order, so the replies before the probe's 200 are the
/// message's treatment, and the probe's 200 shows the listener is not stalled.
mod over_sockets {
    use std::net::SocketAddr;
    use std::time::Duration;

    use loket_sip::message::{Frame, Inbound, Limits, Reply, frame};
    use loket_sip::transport::{Received, TcpOptions, serve_tcp, serve_udp};
    use rsipstack::sip::Method;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream, UdpSocket};
    use tokio::sync::oneshot;
    use tokio::time::timeout;

    use super::{CORPUS, Expect, load};

    const DEADLINE: Duration = Duration::from_secs(10);

    /// Accepted requests get a 200, like a UAS that takes everything; responses get nothing.
    fn answer_requests(received: Received) -> Option<Vec<u8>> {
        match received.message {
            Inbound::Request(request) if request.method != Method::Ack => {
                Some(Reply::to_request(&request, 200, "OK").as_bytes().to_vec())
            }
            _ => None,
        }
    }

    fn probe(n: usize) -> Vec<u8> {
        format!(
            "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-probe-{n}\r\n\
             From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: probe-{n}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    /// (status, is the reply to probe `n`)
    fn status_of(reply: &[u8], n: usize) -> (u16, bool) {
        let text = String::from_utf8_lossy(reply);
        let status = text.get(8..11).and_then(|code| code.parse().ok()).unwrap_or(0);
        (status, text.contains(&format!("\r\nCall-ID: probe-{n}\r\n")))
    }

    fn expected_statuses(expected: Expect) -> Vec<u16> {
        match expected {
            Expect::Request => vec![200],
            Expect::Reply(status) => vec![status],
            Expect::Response | Expect::Drop => vec![],
        }
    }

    #[tokio::test]
    async fn every_message_over_udp() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let server: SocketAddr = socket.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = tokio::spawn(serve_udp(socket, Limits::default(), answer_requests, async {
            let _ = stopped.await;
        }));
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let mut wrong = Vec::new();
        let mut buffer = vec![0u8; 65_536];
        for (n, &(name, expected, _)) in CORPUS.iter().enumerate() {
            client.send_to(&load(name), server).await.expect("send");
            client.send_to(&probe(n), server).await.expect("send");
            let mut statuses = Vec::new();
            loop {
                let Ok(Ok((len, _))) = timeout(DEADLINE, client.recv_from(&mut buffer)).await else {
                    panic!("{name}: the listener did not answer the probe")
                };
                match status_of(&buffer[..len], n) {
                    (200, true) => break,
                    (status, _) => statuses.push(status),
                }
            }
            if statuses != expected_statuses(expected) {
                wrong.push(format!("{name}: expected {expected:?}, got {statuses:?}"));
            }
        }
        let _ = stop.send(());
        listener.await.expect("listener task").expect("listener");
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Reads framed responses until the probe's 200 or the server closes the connection.
    async fn read_until_probe(stream: &mut TcpStream, n: usize) -> (Vec<u16>, bool) {
        let (mut buffer, mut chunk, mut statuses) = (Vec::new(), vec![0u8; 16_384], Vec::new());
        loop {
            while let Ok(Frame::Message { len }) = frame(&buffer, &Limits::default()) {
                match status_of(&buffer[..len], n) {
                    (200, true) => return (statuses, true),
                    (status, _) => statuses.push(status),
                }
                buffer.drain(..len);
            }
            match timeout(DEADLINE, stream.read(&mut chunk)).await {
                Ok(Ok(0)) => return (statuses, false),
                Ok(Ok(len)) => buffer.extend_from_slice(&chunk[..len]),
                Ok(Err(error)) => panic!("read: {error}"),
                Err(_) => panic!("no answer within {DEADLINE:?}"),
            }
        }
    }

    #[tokio::test]
    async fn every_message_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(serve_tcp(listener, TcpOptions::default(), answer_requests, async {
            let _ = stopped.await;
        }));
        let mut wrong = Vec::new();
        for (n, &(name, expected, _)) in CORPUS.iter().enumerate() {
            let mut stream = TcpStream::connect(server).await.expect("connect");
            stream.write_all(&load(name)).await.expect("write");
            match name {
                // The announced body never comes: closing our side ends the connection unanswered.
                "clerr" => {
                    stream.shutdown().await.expect("shutdown");
                    let (statuses, probed) = read_until_probe(&mut stream, n).await;
                    if !statuses.is_empty() || probed {
                        wrong.push(format!("{name}: expected no answer, got {statuses:?}"));
                    }
                }
                // Unusable Content-Length: the listener closes the connection unanswered.
                "ncl" | "mcl01" => {
                    let (statuses, probed) = read_until_probe(&mut stream, n).await;
                    if !statuses.is_empty() || probed {
                        wrong.push(format!("{name}: expected the connection closed, got {statuses:?}"));
                    }
                }
                _ => {
                    stream.write_all(&probe(n)).await.expect("write");
                    let (statuses, probed) = read_until_probe(&mut stream, n).await;
                    let mut expected_statuses = expected_statuses(expected);
                    if name == "dblreq" {
                        // On a stream the second request of dblreq is a message of its own.
                        expected_statuses.push(200);
                    }
                    if !probed || statuses != expected_statuses {
                        wrong.push(format!("{name}: expected {expected_statuses:?}, got {statuses:?}"));
                    }
                }
            }
            // Whatever happened on that connection, a new one is served.
            let mut fresh = TcpStream::connect(server).await.expect("connect");
            fresh.write_all(&probe(n)).await.expect("write");
            assert!(read_until_probe(&mut fresh, n).await.1, "{name}: the listener stalled");
        }
        let _ = stop.send(());
        serving.await.expect("listener task").expect("listener");
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
