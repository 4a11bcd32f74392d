use super::*;

const OPTIONS: &str = "OPTIONS sip:desk@example.be SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-first\r\n\
Via: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK-second\r\n\
From: <sip:citizen@example.org>;tag=f1\r\n\
To: <sip:desk@example.be>\r\n\
Call-ID: c1@192.0.2.1\r\n\
CSeq: 7 OPTIONS\r\n\
Max-Forwards: 70\r\n";

fn with(extra_headers: &str, body: &str) -> Vec<u8> {
    format!("{OPTIONS}{extra_headers}\r\n{body}").into_bytes()
}

fn rejection(bytes: &[u8]) -> Rejection {
    match parse_datagram(bytes, &Limits::default()) {
        Ok(inbound) => panic!("accepted: {inbound:?}"),
        Err(rejection) => rejection,
    }
}

fn reply_text(bytes: &[u8]) -> String {
    let rejection = rejection(bytes);
    let reply = rejection.reply.unwrap_or_else(|| panic!("no reply for {:?}", rejection.error));
    String::from_utf8(reply.as_bytes().to_vec()).expect("replies are UTF-8")
}

#[test]
fn a_plain_request_is_accepted() {
    let Ok(Inbound::Request(request)) = parse_datagram(&with("Content-Length: 0\r\n", ""), &Limits::default()) else {
        panic!("not accepted")
    };
    assert_eq!(request.method, rsipstack::sip::Method::Options);
}

#[test]
fn compact_forms_count_as_their_long_names() {
    let rejection = rejection(&with("i: another-call-id\r\n", ""));
    assert_eq!(rejection.error, MessageError::DuplicateHeader(HeaderName::CallId));
    let compact = "OPTIONS sip:desk@example.be SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-c\r\n\
f: <sip:a@example.org>;tag=1\r\nt: <sip:desk@example.be>\r\ni: c2\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
    assert!(matches!(parse_datagram(compact.as_bytes(), &Limits::default()), Ok(Inbound::Request(_))));
}

/// RFC 3261 §18.3: over UDP, octets after Content-Length are discarded, and without
/// Content-Length the body is the rest of the datagram.
#[test]
fn datagram_body_follows_content_length_or_runs_to_the_end() {
    let Ok(Inbound::Request(truncated)) = parse_datagram(&with("Content-Length: 3\r\n", "abcdef"), &Limits::default())
    else {
        panic!("not accepted")
    };
    assert_eq!(truncated.body, b"abc");
    let Ok(Inbound::Request(whole)) = parse_datagram(&with("", "abcdef"), &Limits::default()) else {
        panic!("not accepted")
    };
    assert_eq!(whole.body, b"abcdef");
    assert_eq!(rejection(&with("Content-Length: 7\r\n", "abcdef")).error, MessageError::BodyShorterThanContentLength);
}

/// RFC 3261 §8.2.6.2: the 400 copies every Via in order, From, Call-ID and CSeq, and adds a To
/// tag, the same one for a retransmission.
#[test]
fn a_refused_request_gets_a_stateless_reply() {
    let bad = with("Content-Length: x\r\n", "");
    let text = reply_text(&bad);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "SIP/2.0 400 Malformed Content-Length");
    assert_eq!(lines[1], "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-first");
    assert_eq!(lines[2], "Via: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK-second");
    assert_eq!(lines[3], "From: <sip:citizen@example.org>;tag=f1");
    assert!(lines[4].starts_with("To: <sip:desk@example.be>;tag=lk"), "{}", lines[4]);
    assert_eq!(lines[5], "Call-ID: c1@192.0.2.1");
    assert_eq!(lines[6], "CSeq: 7 OPTIONS");
    assert_eq!(lines[7], "Content-Length: 0");
    assert!(text.ends_with("\r\n\r\n"));
    assert_eq!(reply_text(&bad), text);
}

#[test]
fn a_reply_to_a_parsed_request_copies_its_identity() {
    let Ok(Inbound::Request(request)) = parse_datagram(&with("Content-Length: 0\r\n", ""), &Limits::default()) else {
        panic!("not accepted")
    };
    let reply = Reply::to_request(&request, 200, "OK");
    let text = String::from_utf8(reply.as_bytes().to_vec()).expect("UTF-8");
    assert!(text.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-first\r\n"), "{text}");
    assert!(text.contains("\r\nTo: <sip:desk@example.be>;tag=lk"), "{text}");
    assert_eq!(reply, Reply::to_request(&request, 200, "OK"));
    let Ok(Inbound::Response(response)) = parse_datagram(reply.as_bytes(), &Limits::default()) else {
        panic!("the reply is not a valid response: {text}")
    };
    assert_eq!(response.status_code.code(), 200);
}

#[test]
fn an_existing_to_tag_is_kept() {
    let request = String::from_utf8(with("Content-Length: x\r\n", "")).expect("ASCII");
    let text = reply_text(request.replacen("<sip:desk@example.be>", "<sip:desk@example.be>;tag=t9", 1).as_bytes());
    assert!(text.contains("\r\nTo: <sip:desk@example.be>;tag=t9\r\n"), "{text}");
}

/// RFC 3261 §17.1.1.3: an ACK is never answered.
#[test]
fn a_bad_ack_is_dropped() {
    let ack = "ACK sip:desk@example.be SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-a\r\n\
From: <sip:a@example.org>;tag=1\r\nTo: <sip:desk@example.be>;tag=2\r\nCall-ID: c3\r\nCSeq: 1 INVITE\r\n\r\n";
    let rejection = rejection(ack.as_bytes());
    assert_eq!(rejection.error, MessageError::CSeqMethodMismatch);
    assert_eq!(rejection.reply, None);
}

#[test]
fn a_request_without_via_is_dropped() {
    let bytes = String::from_utf8(with("", "")).expect("ASCII").replace("Via: ", "X-Via: ");
    let rejection = rejection(bytes.as_bytes());
    assert_eq!(rejection.error, MessageError::MissingHeader(HeaderName::Via));
    assert_eq!(rejection.reply, None);
}

#[test]
fn limits_bound_size_and_header_count() {
    let limits = Limits { max_message_bytes: 600, max_headers: 12 };
    let too_large = with("", &"x".repeat(600));
    let Err(rejection) = parse_datagram(&too_large, &limits) else { panic!("accepted") };
    assert_eq!(rejection.error, MessageError::TooLarge);
    assert_eq!(rejection.reply.map(|reply| reply.status()), Some(513));
    let many = with(&"X-Filler: 1\r\n".repeat(6), "");
    let Err(rejection) = parse_datagram(&many, &limits) else { panic!("accepted") };
    assert_eq!(rejection.error, MessageError::TooManyHeaders);
}

#[test]
fn header_section_must_be_utf8_and_terminated() {
    let mut bytes = with("X-Bad: \u{0}\r\n", "");
    let at = bytes.iter().position(|&b| b == 0).expect("marker");
    bytes[at] = 0xff;
    assert_eq!(rejection(&bytes).error, MessageError::NotUtf8);
    assert_eq!(rejection(OPTIONS.as_bytes()).error, MessageError::Unterminated);
    assert_eq!(rejection(b"\r\n\r\n").error, MessageError::Empty);
}

#[test]
fn a_response_missing_mandatory_headers_is_dropped() {
    let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-r\r\nCSeq: 1 INVITE\r\n\r\n";
    let rejection = rejection(response.as_bytes());
    assert_eq!(rejection.error, MessageError::MissingHeader(HeaderName::From));
    assert_eq!(rejection.reply, None);
}

/// RFC 3261 §25.1: method names are case-sensitive, so "invite" is an unknown method (501).
#[test]
fn method_names_are_case_sensitive() {
    let bytes = String::from_utf8(with("", "")).expect("ASCII").replace("OPTIONS", "options");
    let rejection = rejection(bytes.as_bytes());
    assert_eq!(rejection.error, MessageError::UnknownMethod);
    assert_eq!(rejection.reply.map(|reply| reply.status()), Some(501));
}

#[test]
fn max_forwards_must_fit_its_range() {
    let bytes = String::from_utf8(with("", "")).expect("ASCII").replace("Max-Forwards: 70", "Max-Forwards: 256");
    assert_eq!(rejection(bytes.as_bytes()).error, MessageError::MalformedHeader(HeaderName::MaxForwards));
}

mod framing {
    use super::*;

    fn framed(extra_headers: &str, body: &str) -> Vec<u8> {
        with(extra_headers, body)
    }

    #[test]
    fn a_message_is_complete_when_its_body_is() {
        let bytes = framed("Content-Length: 4\r\n", "abcd");
        let limits = Limits::default();
        for cut in 0..bytes.len() {
            assert_eq!(frame(&bytes[..cut], &limits), Ok(Frame::Incomplete), "cut at {cut}");
        }
        assert_eq!(frame(&bytes, &limits), Ok(Frame::Message { len: bytes.len() }));
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        assert_eq!(frame(&two, &limits), Ok(Frame::Message { len: bytes.len() }));
        assert!(matches!(parse_framed(&bytes, &limits), Ok(Inbound::Request(request)) if request.body == b"abcd"));
    }

    /// RFC 5626 §3.5.1 ping, and RFC 3261 §7.5's CRLF before a start line.
    #[test]
    fn keep_alives_are_recognised() {
        let limits = Limits::default();
        assert_eq!(frame(b"\r\n\r\nOPTIONS", &limits), Ok(Frame::KeepAlive { len: 4, ping: true }));
        assert_eq!(frame(b"\r\nOPTIONS", &limits), Ok(Frame::KeepAlive { len: 2, ping: false }));
        assert_eq!(frame(b"\r\n\r", &limits), Ok(Frame::Incomplete));
    }

    #[test]
    fn content_length_is_mandatory_on_a_stream() {
        assert_eq!(frame(&framed("", ""), &Limits::default()), Err(FramingError::MissingContentLength));
    }

    #[test]
    fn an_endless_header_section_or_a_huge_body_is_refused() {
        let limits = Limits { max_message_bytes: 1_000, max_headers: 64 };
        let endless = format!("{OPTIONS}{}", "X-Filler: 1\r\n".repeat(100));
        assert_eq!(frame(endless.as_bytes(), &limits), Err(FramingError::TooLarge { limit: 1_000 }));
        let huge = framed("Content-Length: 5000\r\n", "");
        assert_eq!(frame(&huge, &limits), Err(FramingError::TooLarge { limit: 1_000 }));
    }
}
