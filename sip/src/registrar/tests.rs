use std::time::UNIX_EPOCH;

use super::*;
use crate::message::{Inbound, Limits, parse_datagram};
use crate::transport::Protocol;

const DOMAIN: &str = "loket.test";

fn register(to: &str, extra: &str, cseq: u32) -> Request {
    let text = format!(
        "REGISTER sip:loket.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:agent@loket.test>;tag=a1\r\nTo: {to}\r\nCall-ID: reg-1\r\n\
         CSeq: {cseq} REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    match parse_datagram(text.as_bytes(), &Limits::default()) {
        Ok(Inbound::Request(request)) => request,
        other => panic!("test REGISTER refused: {other:?}"),
    }
}

fn parse(extra: &str, cseq: u32) -> Result<Register, Refusal> {
    Register::parse(&register("<sip:agent@loket.test>", extra, cseq), DOMAIN, 3_600)
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn source() -> SocketAddr {
    "10.0.0.5:5062".parse().unwrap()
}

fn apply(request: &Register, current: Vec<Binding>, now: u64) -> Result<Vec<Binding>, Refusal> {
    request.apply(current, at(now), &Policy::default(), source(), Protocol::Udp)
}

fn contacts(bindings: &[Binding]) -> Vec<(&str, u64)> {
    bindings.iter().map(|binding| (binding.contact.as_str(), binding.remaining(at(1_000)))).collect()
}

#[test]
fn parses_the_aor_and_contacts_with_their_intervals() {
    let request = parse(
        "Contact: \"Desk, left\" <sip:agent@10.0.0.5:5062;transport=udp>;expires=120, <sip:agent@10.0.0.6>\r\n\
         Contact: sip:agent@10.0.0.7;expires=0\r\nExpires: 600\r\n",
        1,
    )
    .unwrap();
    assert_eq!(request.aor, "agent@loket.test");
    assert_eq!(request.user, "agent");
    assert_eq!((request.call_id.as_str(), request.cseq), ("reg-1", 1));
    assert_eq!(
        request.change,
        Change::Update(vec![
            ContactRequest { uri: "sip:agent@10.0.0.5:5062;transport=udp".into(), expires: 120 },
            ContactRequest { uri: "sip:agent@10.0.0.6".into(), expires: 600 },
            ContactRequest { uri: "sip:agent@10.0.0.7".into(), expires: 0 },
        ])
    );
    assert_eq!(parse("", 1).unwrap().change, Change::Query);
    let default = parse("Contact: <sip:agent@10.0.0.5>\r\n", 1).unwrap();
    assert_eq!(
        default.change,
        Change::Update(vec![ContactRequest { uri: "sip:agent@10.0.0.5".into(), expires: 3_600 }])
    );
}

#[test]
fn refuses_what_the_registrar_cannot_take() {
    let cases = [
        ("Contact: *\r\n", Refusal::BadRequest("Bad Wildcard Contact")),
        ("Contact: *\r\nExpires: 60\r\n", Refusal::BadRequest("Bad Wildcard Contact")),
        ("Contact: <sip:a@b>\r\nExpires: soon\r\n", Refusal::BadRequest("Bad Expires")),
        ("Contact: <sip:a@b>;expires=-1\r\n", Refusal::BadRequest("Bad Contact Expires")),
        ("Contact: <mailto:a@b>\r\n", Refusal::BadRequest("Bad Contact URI")),
    ];
    for (extra, refusal) in cases {
        assert_eq!(parse(extra, 1), Err(refusal), "{extra}");
    }
    let many = format!("Contact: {}\r\n", vec!["<sip:a@b>"; 33].join(", "));
    assert_eq!(parse(&many, 1), Err(Refusal::BadRequest("Too Many Contacts")));
    for to in ["<sip:agent@elsewhere.test>", "<sip:loket.test>"] {
        assert_eq!(Register::parse(&register(to, "", 1), DOMAIN, 3_600), Err(Refusal::NotFound), "{to}");
    }
    // The domain is case-insensitive; the user part is not folded.
    let upper = Register::parse(&register("<sip:Agent@LOKET.test>", "", 1), DOMAIN, 3_600).unwrap();
    assert_eq!(upper.aor, "Agent@loket.test");
}

#[test]
fn adds_refreshes_and_removes_contacts() {
    let first = parse("Contact: <sip:agent@10.0.0.5>;expires=300, <sip:agent@10.0.0.6>\r\n", 1).unwrap();
    let bindings = apply(&first, Vec::new(), 1_000).unwrap();
    assert_eq!(contacts(&bindings), [("sip:agent@10.0.0.5", 300), ("sip:agent@10.0.0.6", 3_600)]);
    assert_eq!(bindings[0].source, source());
    // A refresh later in the same Call-ID restarts the interval.
    let refresh = parse("Contact: <sip:agent@10.0.0.5>;expires=300\r\n", 2).unwrap();
    let bindings = apply(&refresh, bindings, 1_100).unwrap();
    let remaining: Vec<u64> = bindings.iter().map(|binding| binding.remaining(at(1_100))).collect();
    assert_eq!(remaining, [3_500, 300]);
    // Expires: 0 on one contact removes just that one.
    let remove = parse("Contact: <sip:agent@10.0.0.6>;expires=0\r\n", 3).unwrap();
    let bindings = apply(&remove, bindings, 1_200).unwrap();
    assert_eq!(bindings.iter().map(|b| b.contact.as_str()).collect::<Vec<_>>(), ["sip:agent@10.0.0.5"]);
    // A query lists without changing.
    assert_eq!(apply(&parse("", 4).unwrap(), bindings.clone(), 1_200).unwrap(), bindings);
    // `*` removes everything.
    let all = parse("Contact: *\r\nExpires: 0\r\n", 5).unwrap();
    assert_eq!(apply(&all, bindings, 1_200).unwrap(), Vec::new());
}

#[test]
fn expired_bindings_vanish_and_intervals_are_bounded() {
    let short = parse("Contact: <sip:agent@10.0.0.5>;expires=60\r\n", 1).unwrap();
    let bindings = apply(&short, Vec::new(), 1_000).unwrap();
    assert_eq!(apply(&parse("", 2).unwrap(), bindings.clone(), 1_059).unwrap().len(), 1);
    assert_eq!(apply(&parse("", 2).unwrap(), bindings, 1_060).unwrap(), Vec::new());
    let too_short = parse("Contact: <sip:agent@10.0.0.5>;expires=59\r\n", 3).unwrap();
    assert_eq!(apply(&too_short, Vec::new(), 1_000), Err(Refusal::IntervalTooBrief { min_expires: 60 }));
    let too_long = parse("Contact: <sip:agent@10.0.0.5>\r\nExpires: 86400\r\n", 4).unwrap();
    assert_eq!(contacts(&apply(&too_long, Vec::new(), 1_000).unwrap()), [("sip:agent@10.0.0.5", 3_600)]);
}

#[test]
fn a_late_request_of_the_same_call_id_fails() {
    let bindings = apply(&parse("Contact: <sip:agent@10.0.0.5>\r\n", 7).unwrap(), Vec::new(), 1_000).unwrap();
    for cseq in [6, 7] {
        let late = parse("Contact: <sip:agent@10.0.0.5>;expires=0\r\n", cseq).unwrap();
        assert_eq!(apply(&late, bindings.clone(), 1_001), Err(Refusal::OutOfOrder));
        let late_all = parse("Contact: *\r\nExpires: 0\r\n", cseq).unwrap();
        assert_eq!(apply(&late_all, bindings.clone(), 1_001), Err(Refusal::OutOfOrder));
    }
    // Another Call-ID (another phone, or the same one after a restart) may change it.
    let mut other = parse("Contact: <sip:agent@10.0.0.5>;expires=0\r\n", 1).unwrap();
    other.call_id = "reg-2".into();
    assert_eq!(apply(&other, bindings, 1_001), Ok(Vec::new()));
}

#[test]
fn the_number_of_contacts_is_bounded_keeping_the_longest_lived() {
    let policy = Policy { max_contacts: 2, ..Policy::default() };
    let mut bindings = Vec::new();
    for (cseq, (host, expires)) in [("10.0.0.1", 600), ("10.0.0.2", 300), ("10.0.0.3", 600)].into_iter().enumerate() {
        let request = parse(&format!("Contact: <sip:agent@{host}>;expires={expires}\r\n"), cseq as u32 + 1).unwrap();
        bindings = request.apply(bindings, at(1_000), &policy, source(), Protocol::Ws).unwrap();
    }
    assert_eq!(contacts(&bindings), [("sip:agent@10.0.0.3", 600), ("sip:agent@10.0.0.1", 600)]);
    assert!(bindings.iter().all(|binding| binding.transport == Protocol::Ws));
}

#[test]
fn the_200_lists_each_binding_with_its_remaining_seconds() {
    let request = parse("Contact: <sip:agent@10.0.0.5>;expires=300\r\n", 1).unwrap();
    let bindings = apply(&request, Vec::new(), 1_000).unwrap();
    assert_eq!(contact_headers(&bindings, at(1_100)), ["<sip:agent@10.0.0.5>;expires=200"]);
}
