use rsipstack::sip::SipMessage;

use super::*;

fn invite(extra: &str) -> Request {
    let text = format!(
        "INVITE sip:+3225550100@loket.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
         Max-Forwards: 70\r\nFrom: \"Caller, A\" <sip:caller@10.0.0.1>;tag=abc\r\nTo: <sip:+3225550100@loket.test>\r\n\
         Call-ID: c1@10.0.0.1\r\nCSeq: 5 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    match SipMessage::try_from(text.as_str()).unwrap() {
        SipMessage::Request(request) => request,
        SipMessage::Response(_) => unreachable!(),
    }
}

#[test]
fn a_bye_within_the_dialog_follows_the_route_set_to_the_remote_target() {
    let request = invite(
        "Contact: <sip:caller@10.0.0.1:5062;transport=udp>\r\n\
         Record-Route: <sip:p1.test;lr>, <sip:p2.test;lr>\r\nRecord-Route: <sip:p3.test;lr>\r\n",
    );
    let mut dialog = Dialog::as_uas(&request, "lk1").unwrap();
    assert_eq!((dialog.call_id.as_str(), dialog.remote_tag.as_str()), ("c1@10.0.0.1", "abc"));
    let bye = dialog.request("BYE", "SIP/2.0/UDP 192.0.2.1:5060", "z9hG4bKb1", &[], "");
    assert_eq!(
        bye,
        "BYE sip:caller@10.0.0.1:5062;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKb1;rport\r\n\
         Route: <sip:p1.test;lr>\r\nRoute: <sip:p2.test;lr>\r\nRoute: <sip:p3.test;lr>\r\nMax-Forwards: 70\r\n\
         From: <sip:+3225550100@loket.test>;tag=lk1\r\nTo: \"Caller, A\" <sip:caller@10.0.0.1>;tag=abc\r\n\
         Call-ID: c1@10.0.0.1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(
        dialog
            .request("INFO", "v", "b", &[("Content-Type", "x")], "hi")
            .contains("CSeq: 2 INFO\r\nContent-Type: x\r\nContent-Length: 2\r\n\r\nhi")
    );
    assert!(matches!(SipMessage::try_from(bye.as_str()), Ok(SipMessage::Request(_))));
}

/// RFC 3261 §12.2.2: requests within the dialog carry growing CSeq numbers.
#[test]
fn remote_cseq_must_not_go_back() {
    let mut dialog = Dialog::as_uas(&invite("Contact: sip:caller@10.0.0.1\r\n"), "lk1").unwrap();
    assert_eq!(dialog.remote_target, "sip:caller@10.0.0.1");
    assert_eq!(dialog.receive(4), Err(OutOfOrder::CSeqTooLow));
    assert_eq!(dialog.receive(5), Ok(()));
    assert_eq!(dialog.receive(9), Ok(()));
    assert_eq!(dialog.receive(6), Err(OutOfOrder::CSeqTooLow));
}

#[test]
fn no_dialog_without_contact() {
    assert_eq!(Dialog::as_uas(&invite(""), "lk1"), None);
    assert_eq!(tag_of("<sip:a@b;tag=no>"), None);
    assert_eq!(tag_of("<sip:a@b>;x=1;TAG=yes"), Some("yes"));
    assert_eq!(tag_of("sip:a@b;tag="), None);
}

fn response(text: &str) -> Response {
    match SipMessage::try_from(text).unwrap() {
        SipMessage::Response(response) => response,
        SipMessage::Request(_) => unreachable!(),
    }
}

/// RFC 3261 §12.1.2 and §9.1: loket's own INVITE, its CANCEL, the dialog the 2xx confirms (route
/// set reversed), the ACK and a BYE within it.
#[test]
fn an_outbound_dialog_from_invite_to_bye() {
    let mut dialog = Dialog::as_uac("out-1", "<sip:caller@loket.test>", "lko", "sip:agent@10.0.0.7:5062");
    let invite = dialog.request(
        "INVITE",
        "SIP/2.0/UDP 192.0.2.1:5060",
        "z9hG4bKi",
        &[("Contact", "<sip:loket@192.0.2.1>")],
        "v=0\r\n",
    );
    assert!(invite.starts_with("INVITE sip:agent@10.0.0.7:5062 SIP/2.0\r\n"), "{invite}");
    assert!(invite.contains("From: <sip:caller@loket.test>;tag=lko\r\nTo: <sip:agent@10.0.0.7:5062>\r\n"), "{invite}");
    let invitation = dialog.invitation("SIP/2.0/UDP 192.0.2.1:5060", "z9hG4bKi");
    assert_eq!(
        invitation.cancel(),
        "CANCEL sip:agent@10.0.0.7:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKi;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@loket.test>;tag=lko\r\nTo: <sip:agent@10.0.0.7:5062>\r\n\
         Call-ID: out-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(
        invitation
            .ack("<sip:agent@10.0.0.7:5062>;tag=busy")
            .contains("To: <sip:agent@10.0.0.7:5062>;tag=busy\r\nCall-ID: out-1\r\nCSeq: 1 ACK\r\n")
    );
    let ok = response(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKi\r\nFrom: <sip:caller@loket.test>;tag=lko\r\n\
         To: <sip:agent@10.0.0.7:5062>;tag=ag1\r\nCall-ID: out-1\r\nCSeq: 1 INVITE\r\n\
         Record-Route: <sip:p1.test;lr>, <sip:p2.test;lr>\r\nContact: <sip:agent@10.0.0.7:5064>\r\nContent-Length: 0\r\n\r\n",
    );
    dialog.establish(&ok);
    assert_eq!(dialog.remote_tag, "ag1");
    let ack = dialog.ack("SIP/2.0/UDP 192.0.2.1:5060", "z9hG4bKa", 1, &[]);
    assert!(ack.starts_with("ACK sip:agent@10.0.0.7:5064 SIP/2.0\r\n"), "{ack}");
    assert!(ack.contains("Route: <sip:p2.test;lr>\r\nRoute: <sip:p1.test;lr>\r\n"), "{ack}");
    assert!(ack.contains("To: <sip:agent@10.0.0.7:5062>;tag=ag1\r\nCall-ID: out-1\r\nCSeq: 1 ACK\r\n"), "{ack}");
    let bye = dialog.request("BYE", "SIP/2.0/UDP 192.0.2.1:5060", "z9hG4bKb", &[], "");
    assert!(bye.contains("CSeq: 2 BYE\r\n"), "{bye}");
    // A retransmitted 2xx changes nothing.
    dialog.establish(&response(&(ok_text_with_other_tag())));
    assert_eq!(dialog.remote_tag, "ag1");
}

fn ok_text_with_other_tag() -> String {
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKi\r\nFrom: <sip:caller@loket.test>;tag=lko\r\n\
     To: <sip:agent@10.0.0.7:5062>;tag=other\r\nCall-ID: out-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        .to_owned()
}

/// Through an outbound proxy (RFC 3261 §8.1.2): its Route in the INVITE, the CANCEL and the ACK
/// of a refusal; after a challenge the INVITE goes again with the next CSeq and the same Call-ID
/// and tags; the 2xx's ACK repeats the credentials, and without Record-Route the proxy's Route
/// stays for the requests within the dialog.
#[test]
fn a_dialog_through_an_outbound_proxy_with_a_challenge() {
    let via = "SIP/2.0/UDP 192.0.2.1:5060";
    let mut dialog = Dialog::as_uac("out-2", "<sip:+3225550100@pbx.test>", "lko", "sip:+3250123456@pbx.test")
        .with_route("<sip:192.0.2.9:5060;lr>".to_owned());
    let invite = dialog.request("INVITE", via, "z9hG4bK1", &[], "");
    assert!(invite.starts_with("INVITE sip:+3250123456@pbx.test SIP/2.0\r\n"), "{invite}");
    assert!(invite.contains(";rport\r\nRoute: <sip:192.0.2.9:5060;lr>\r\nMax-Forwards: 70\r\n"), "{invite}");
    let first = dialog.invitation(via, "z9hG4bK1");
    assert!(first.cancel().contains("Route: <sip:192.0.2.9:5060;lr>\r\n"), "{}", first.cancel());
    let ack = first.ack("<sip:+3250123456@pbx.test>;tag=p1");
    assert!(ack.contains("Route: <sip:192.0.2.9:5060;lr>\r\n") && ack.contains("CSeq: 1 ACK\r\n"), "{ack}");

    let credentials = [("Proxy-Authorization", "Digest username=\"loket\"")];
    let again = dialog.request("INVITE", via, "z9hG4bK2", &credentials, "");
    assert!(again.contains("Call-ID: out-2\r\nCSeq: 2 INVITE\r\nProxy-Authorization: Digest"), "{again}");
    assert!(again.contains("From: <sip:+3225550100@pbx.test>;tag=lko\r\nTo: <sip:+3250123456@pbx.test>\r\n"));
    assert!(dialog.invitation(via, "z9hG4bK2").cancel().contains("Call-ID: out-2\r\nCSeq: 2 CANCEL\r\n"));

    dialog.establish(&response(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK2\r\nFrom: <sip:+3225550100@pbx.test>;tag=lko\r\n\
         To: <sip:+3250123456@pbx.test>;tag=p1\r\nCall-ID: out-2\r\nCSeq: 2 INVITE\r\n\
         Contact: <sip:gw@192.0.2.20>\r\nContent-Length: 0\r\n\r\n",
    ));
    let ack = dialog.ack(via, "z9hG4bK3", 2, &credentials);
    assert!(ack.starts_with("ACK sip:gw@192.0.2.20 SIP/2.0\r\n"), "{ack}");
    assert!(ack.contains("Route: <sip:192.0.2.9:5060;lr>\r\n"), "{ack}");
    assert!(ack.contains("CSeq: 2 ACK\r\nProxy-Authorization: Digest username=\"loket\"\r\n"), "{ack}");
    assert!(dialog.request("BYE", via, "z9hG4bK4", &[], "").contains("Route: <sip:192.0.2.9:5060;lr>\r\n"));
}
