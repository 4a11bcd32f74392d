//! Which messages a machine sent: they never open a case and never get an acknowledgement, or two
//! auto-responders would answer each other for ever (RFC 3834 §2, §5).

use super::message::InboundMessage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// `Auto-Submitted` other than `no` (RFC 3834 §5).
    AutoSubmitted,
    /// `Precedence: bulk | list | junk`, or a mailing list (`List-Id`, RFC 2919).
    Bulk,
    /// A delivery report: null sender, `multipart/report` (RFC 6522) or from MAILER-DAEMON.
    Bounce,
    /// An out-of-office reply that carries none of the standard headers, known by its markers.
    OutOfOffice,
    /// Mail from one of loket's own mailboxes: answering it would loop.
    OwnMailbox,
}

impl Noise {
    pub fn as_str(self) -> &'static str {
        match self {
            Noise::AutoSubmitted => "auto_submitted",
            Noise::Bulk => "bulk",
            Noise::Bounce => "bounce",
            Noise::OutOfOffice => "out_of_office",
            Noise::OwnMailbox => "own_mailbox",
        }
    }
}

/// Subject openings of auto-replies from mail programs that send no `Auto-Submitted`, in the
/// languages Belgian citizens' programs speak; compared lower-cased.
const OUT_OF_OFFICE_SUBJECTS: [&str; 10] = [
    "out of office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "automatisch antwoord",
    "afwezigheidsmelding",
    "afwezig:",
    "réponse automatique",
    "absent du bureau",
    "abwesenheitsnotiz",
];

/// `None`: a person wrote this. `own_addresses` are lower-cased.
pub fn noise(message: &InboundMessage, own_addresses: &[String]) -> Option<Noise> {
    let headers = &message.headers;
    if let Some(value) = &headers.auto_submitted {
        let keyword = value.split(';').next().unwrap_or_default().trim();
        if !keyword.eq_ignore_ascii_case("no") {
            return Some(Noise::AutoSubmitted);
        }
    }
    let sender = message.from.as_ref().map(|from| from.address.as_str());
    let local_part = sender.and_then(|address| address.split('@').next()).unwrap_or_default();
    if headers.null_return_path
        || headers.content_type.as_deref() == Some("multipart/report")
        || local_part.eq_ignore_ascii_case("mailer-daemon")
        || local_part.eq_ignore_ascii_case("postmaster")
    {
        return Some(Noise::Bounce);
    }
    let bulk_precedence = headers.precedence.as_deref().is_some_and(|precedence| {
        ["bulk", "list", "junk"].iter().any(|kind| precedence.trim().eq_ignore_ascii_case(kind))
    });
    if bulk_precedence || headers.list_id {
        return Some(Noise::Bulk);
    }
    let subject = message.subject.to_lowercase();
    if headers.auto_reply_header || OUT_OF_OFFICE_SUBJECTS.iter().any(|marker| subject.starts_with(marker)) {
        return Some(Noise::OutOfOffice);
    }
    if sender.is_some_and(|sender| own_addresses.iter().any(|own| own == sender)) {
        return Some(Noise::OwnMailbox);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One table: each message's extra headers and subject, and what it is.
    #[test]
    fn machines_are_told_from_people() {
        let own = vec!["bevolking@gemeente.example".to_owned()];
        let cases: &[(&str, &str, &str, Option<Noise>)] = &[
            ("citizen@example.be", "", "Attest", None),
            ("citizen@example.be", "Auto-Submitted: no\r\n", "Attest", None),
            ("citizen@example.be", "Auto-Submitted: auto-replied\r\n", "Re: Attest", Some(Noise::AutoSubmitted)),
            (
                "citizen@example.be",
                "Auto-Submitted: auto-generated; owner-email=x\r\n",
                "x",
                Some(Noise::AutoSubmitted),
            ),
            ("citizen@example.be", "Precedence: bulk\r\n", "Nieuwsbrief", Some(Noise::Bulk)),
            ("citizen@example.be", "Precedence: LIST\r\n", "x", Some(Noise::Bulk)),
            ("citizen@example.be", "Precedence: junk\r\n", "x", Some(Noise::Bulk)),
            ("citizen@example.be", "List-Id: <news.example.be>\r\n", "x", Some(Noise::Bulk)),
            ("citizen@example.be", "Return-Path: <>\r\n", "Undelivered", Some(Noise::Bounce)),
            ("MAILER-DAEMON@mx.example.be", "", "Undelivered Mail", Some(Noise::Bounce)),
            ("postmaster@mx.example.be", "", "Delivery failure", Some(Noise::Bounce)),
            (
                "citizen@example.be",
                "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n",
                "x",
                Some(Noise::Bounce),
            ),
            ("citizen@example.be", "X-Autoreply: yes\r\n", "Re: uw dossier", Some(Noise::OutOfOffice)),
            ("citizen@example.be", "", "Automatisch antwoord: uw dossier", Some(Noise::OutOfOffice)),
            ("citizen@example.be", "", "Réponse automatique : absent", Some(Noise::OutOfOffice)),
            ("citizen@example.be", "", "Out of Office: Re: [2026-000001]", Some(Noise::OutOfOffice)),
            ("Bevolking@Gemeente.example", "", "Uw dossier", Some(Noise::OwnMailbox)),
            // A citizen who writes about their own absence is a person.
            ("citizen@example.be", "", "Afwezigheid op de afspraak", None),
        ];
        for (from, extra, subject, expected) in cases {
            let raw = format!("From: {from}\r\n{extra}Subject: {subject}\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n");
            let message = InboundMessage::parse(raw.as_bytes());
            assert_eq!(noise(&message, &own), *expected, "{extra:?} {subject:?}");
        }
    }
}
