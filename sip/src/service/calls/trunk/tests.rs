//! The trunk edge's readings of the trunk's responses.

use rsipstack::sip::SipMessage;

use super::*;

fn response(head: &str) -> Response {
    let text = format!(
        "{head}\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:loket@pbx.test>;tag=a\r\n\
         To: <sip:loket@pbx.test>;tag=b\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
    );
    match SipMessage::try_from(text.as_str()).unwrap() {
        SipMessage::Response(response) => response,
        SipMessage::Request(_) => unreachable!(),
    }
}

const CONTACT: &str = "sip:+3225550100@192.0.2.1:5060";

#[test]
fn the_interval_granted_is_that_of_lokets_binding() {
    let ours = response(&format!(
        "SIP/2.0 200 OK\r\nContact: <sip:desk@192.0.2.7>;expires=3600, <{CONTACT}>;expires=120\r\nExpires: 900"
    ));
    assert_eq!(granted(&ours, CONTACT, 600), 120);
    let header_only = response("SIP/2.0 200 OK\r\nContact: <sip:desk@192.0.2.7>;expires=3600\r\nExpires: 900");
    assert_eq!(granted(&header_only, CONTACT, 600), 900);
    assert_eq!(granted(&response("SIP/2.0 200 OK"), CONTACT, 600), 600);
    let broken = response(&format!("SIP/2.0 200 OK\r\nContact: <{CONTACT}>;expires=soon"));
    assert_eq!(granted(&broken, CONTACT, 600), 600);
    assert_eq!(min_expires(&response("SIP/2.0 423 Interval Too Brief\r\nMin-Expires: 1800")), Some(1800));
}

/// RFC 3261 §22.2/§22.3 and RFC 8760 §2.4: the header that matches the status, the first
/// challenge loket can answer.
#[test]
fn challenges_are_read_from_the_header_of_their_status() {
    let proxy = response(
        "SIP/2.0 407 Proxy Authentication Required\r\n\
         Proxy-Authenticate: Digest realm=\"p\", nonce=\"1\", algorithm=SHA-512-256\r\n\
         Proxy-Authenticate: Digest realm=\"p\", nonce=\"2\", algorithm=SHA-256, qop=\"auth\"\r\n\
         WWW-Authenticate: Digest realm=\"w\", nonce=\"3\"",
    );
    let (header, challenge) = challenge_of(&proxy).unwrap();
    assert_eq!((header, challenge.nonce.as_str()), ("Proxy-Authorization", "2"));
    let www = response("SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"w\", nonce=\"3\"");
    assert_eq!(
        challenge_of(&www).map(|(header, challenge)| (header, challenge.realm)),
        Some(("Authorization", "w".into()))
    );
    let wrong_header = response("SIP/2.0 401 Unauthorized\r\nProxy-Authenticate: Digest realm=\"p\", nonce=\"1\"");
    assert_eq!(challenge_of(&wrong_header), None);
    let unanswerable =
        response("SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"w\", qop=\"auth-int\", nonce=\"1\"");
    assert_eq!(challenge_of(&unanswerable), None);
}

#[test]
fn only_plain_numbers_are_dialled() {
    for good in ["+3250123456", "050123456", "112"] {
        assert!(is_dialable(good), "{good}");
    }
    for bad in ["", "+", "+32 50", "050;user=phone", "a@b", "1234567890123456789012345678901234"] {
        assert!(!is_dialable(bad), "{bad}");
    }
}
