//! The message entry point on arbitrary bytes, as a UDP datagram and as a TCP stream. Besides
//! "never panics", it checks the framer always makes progress and every stateless reply is a
//! complete status line and header section.
//! Run: `cargo +nightly fuzz run message` in `sip/` (seed with `sip/tests/rfc4475/*.sip`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loket_sip::message::{Frame, Limits, Rejection, frame, parse_datagram, parse_framed};

/// Small limits as well as the defaults, so that inputs reach the size and header-count refusals.
const SMALL: Limits = Limits { max_message_bytes: 1_024, max_headers: 16 };

fuzz_target!(|data: &[u8]| {
    for limits in [Limits::default(), SMALL] {
        check(data, &limits);
    }
});

fn check(data: &[u8], limits: &Limits) {
    if let Err(rejection) = parse_datagram(data, limits) {
        check_reply(&rejection);
    }
    let mut rest = data;
    loop {
        match frame(rest, limits) {
            Ok(Frame::Message { len }) => {
                assert!(len > 0 && len <= rest.len(), "framed {len} of {}", rest.len());
                if let Err(rejection) = parse_framed(&rest[..len], limits) {
                    check_reply(&rejection);
                }
                rest = &rest[len..];
            }
            Ok(Frame::KeepAlive { len, .. }) => {
                assert!(len > 0 && len <= rest.len());
                rest = &rest[len..];
            }
            Ok(Frame::Incomplete) | Err(_) => break,
        }
    }
}

fn check_reply(rejection: &Rejection) {
    let Some(reply) = &rejection.reply else { return };
    let text = std::str::from_utf8(reply.as_bytes()).expect("replies are UTF-8");
    assert!(text.starts_with(&format!("SIP/2.0 {} ", reply.status())), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    assert_eq!(text.matches("\r\n\r\n").count(), 1, "{text}");
}
