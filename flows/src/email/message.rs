//! An inbound message as loket needs it, read with mail-parser from the raw bytes. Reading never
//! fails: a message mail-parser cannot make sense of still yields what could be read (at worst
//! the bytes as text), so that a citizen's malformed mail becomes a case rather than nothing.

use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

/// Subjects longer than this are cut: they are list lines, not letters.
const MAX_SUBJECT_CHARS: usize = 250;
/// The text kept on the timeline; the rest of a very long message is cut (it stays in the mailbox).
const MAX_TEXT_CHARS: usize = 200_000;
/// References beyond the last few are ancestors far up the thread; the nearest ones decide.
const MAX_REFERENCES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// `<id@host>`: the Message-ID, or one derived from the bytes when the message has none, so
    /// that the same message is recognised in every mailbox and after a change of UIDVALIDITY.
    pub key: String,
    /// In-Reply-To, then References from the nearest ancestor back, in `<id>` form.
    pub ancestors: Vec<String>,
    pub subject: String,
    pub from: Option<Sender>,
    /// The text body, or the HTML body converted to text (mail-parser drops `head`, `style` and
    /// `script`); the console shows it escaped, so no markup of the sender's ever renders.
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub headers: NoiseHeaders,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Sender {
    /// Lower-cased.
    pub address: String,
    pub display_name: Option<String>,
}

/// An address is personal data: `Debug` shows only its domain, so a stray `{:?}` logs nothing.
impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let domain = self.address.rsplit_once('@').map_or("?", |(_, domain)| domain);
        write!(f, "Sender(***@{domain})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The headers that say a message was sent by a machine (see `classify`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoiseHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: bool,
    pub auto_reply_header: bool,
    /// `Return-Path: <>`, the null sender of delivery reports (RFC 5321 §4.5.5).
    pub null_return_path: bool,
    /// The top-level type, lower-cased: `multipart/report` is a delivery or read report.
    pub content_type: Option<String>,
}

impl InboundMessage {
    pub fn parse(raw: &[u8]) -> InboundMessage {
        match MessageParser::default().parse(raw) {
            Some(message) => from_parsed(&message, raw),
            None => InboundMessage {
                key: derived_key(raw),
                ancestors: Vec::new(),
                subject: String::new(),
                from: None,
                text: cut(&String::from_utf8_lossy(raw), MAX_TEXT_CHARS),
                attachments: Vec::new(),
                headers: NoiseHeaders::default(),
            },
        }
    }
}

fn from_parsed(message: &Message<'_>, raw: &[u8]) -> InboundMessage {
    let key = message.message_id().map(str::trim).filter(|id| !id.is_empty()).map_or_else(|| derived_key(raw), angle);
    let mut ancestors: Vec<String> = texts(message.in_reply_to()).into_iter().map(angle).collect();
    let mut references: Vec<String> = texts(message.references()).into_iter().map(angle).collect();
    references.reverse();
    ancestors.extend(references);
    let mut seen = std::collections::HashSet::new();
    ancestors.retain(|id| seen.insert(id.clone()));
    ancestors.truncate(MAX_REFERENCES);
    let from = message.from().and_then(|from| from.first()).and_then(|addr| {
        let address = addr.address.as_deref()?.trim().to_lowercase();
        address.contains('@').then(|| Sender {
            address,
            display_name: addr.name.as_deref().map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned),
        })
    });
    let text: Vec<String> =
        (0..message.text_body_count()).filter_map(|index| message.body_text(index)).map(|t| t.into_owned()).collect();
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(index, part)| Attachment {
            file_name: file_name(part.attachment_name(), index),
            content_type: part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |ct| match ct.subtype() {
                    Some(subtype) => format!("{}/{subtype}", ct.ctype()),
                    None => ct.ctype().to_owned(),
                },
            ),
            bytes: part.contents().to_vec(),
        })
        .collect();
    let raw_header = |name: &str| message.header_raw(name).map(|value| value.trim().to_owned());
    let headers = NoiseHeaders {
        auto_submitted: raw_header("Auto-Submitted"),
        precedence: raw_header("Precedence"),
        list_id: message.header_raw("List-Id").is_some(),
        auto_reply_header: ["X-Autoreply", "X-Autorespond", "X-Autoreply-From"]
            .iter()
            .any(|name| message.header_raw(*name).is_some()),
        null_return_path: raw_header("Return-Path").is_some_and(|path| path.replace(' ', "") == "<>"),
        content_type: message
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_lowercase()),
    };
    InboundMessage {
        key,
        ancestors,
        subject: cut(message.subject().unwrap_or_default().trim(), MAX_SUBJECT_CHARS),
        from,
        text: cut(text.join("\n\n").trim(), MAX_TEXT_CHARS),
        attachments,
        headers,
    }
}

/// A header's one or several texts (Message-ID lists parse to either).
fn texts<'a>(value: &'a HeaderValue<'_>) -> Vec<&'a str> {
    match value {
        HeaderValue::Text(text) => vec![text.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|text| text.as_ref()).collect(),
        _ => Vec::new(),
    }
}

/// Message-IDs are compared in the `<…>` form the outbox stores them in.
fn angle(id: &str) -> String {
    format!("<{}>", id.trim().trim_start_matches('<').trim_end_matches('>'))
}

/// The same bytes give the same key, in whichever mailbox they arrive.
fn derived_key(raw: &[u8]) -> String {
    format!("<{}@no-message-id.loket.invalid>", hex::encode(Sha256::digest(raw)))
}

/// A name fit to show and to put in a download header: no folders, no control characters.
fn file_name(name: Option<&str>, index: usize) -> String {
    let name = name.unwrap_or_default();
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    let clean = cut(clean.trim(), 200);
    if clean.is_empty() || clean == "." || clean == ".." { format!("attachment-{}", index + 1) } else { clean }
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// A contact's first and last name from a sender's display name: "Emma Claes", "Claes, Emma";
/// without a name, the part of the address before the `@` as the last name.
pub fn contact_names(sender: &Sender) -> (String, String) {
    let name = sender.display_name.as_deref().map(|name| name.trim_matches(['"', '\'', ' '])).unwrap_or_default();
    if let Some((last, first)) = name.split_once(',') {
        let (first, last) = (first.trim(), last.trim());
        if !first.is_empty() && !last.is_empty() {
            return (first.to_owned(), last.to_owned());
        }
    }
    match name.split_once(' ') {
        Some((first, last)) if !last.trim().is_empty() => (first.to_owned(), last.trim().to_owned()),
        _ if !name.is_empty() => (String::new(), name.to_owned()),
        _ => (String::new(), sender.address.split('@').next().unwrap_or_default().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_gives_its_fields() {
        let raw = b"From: \"Emma Claes\" <Emma.Claes@Example.be>\r\nTo: bevolking@gemeente.example\r\n\
            Subject: Attest van woonst\r\nMessage-ID: <abc@mail.example>\r\nIn-Reply-To: <p2@x>\r\n\
            References: <p0@x> <p1@x> <p2@x>\r\n\r\nGoeiedag,\r\nik heb een attest nodig.\r\n";
        let message = InboundMessage::parse(raw);
        assert_eq!(message.key, "<abc@mail.example>");
        assert_eq!(message.ancestors, ["<p2@x>", "<p1@x>", "<p0@x>"]);
        assert_eq!(message.subject, "Attest van woonst");
        let from = message.from.clone().unwrap();
        assert_eq!(from.address, "emma.claes@example.be");
        assert_eq!(format!("{from:?}"), "Sender(***@example.be)");
        assert_eq!(contact_names(&from), ("Emma".to_owned(), "Claes".to_owned()));
        assert!(message.text.starts_with("Goeiedag,"));
        assert_eq!(message.headers, NoiseHeaders { content_type: None, ..NoiseHeaders::default() });
    }

    #[test]
    fn html_becomes_text_without_its_scripts_and_attachments_are_kept() {
        let raw = concat!(
            "From: a@b.example\r\nSubject: =?UTF-8?Q?Fiscale_fiche_=E2=82=AC?=\r\nMessage-ID: <h@x>\r\n",
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n",
            "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n",
            "<html><head><style>p{color:red}</style></head><body><p>Zie <b>bijlage</b></p>",
            "<script>alert(1)</script></body></html>\r\n",
            "--b1\r\nContent-Type: application/pdf; name=\"../../etc/aanslag.pdf\"\r\n",
            "Content-Disposition: attachment; filename=\"../../etc/aanslag.pdf\"\r\n",
            "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
        );
        let message = InboundMessage::parse(raw.as_bytes());
        assert_eq!(message.subject, "Fiscale fiche €");
        assert!(message.text.contains("Zie bijlage"), "{:?}", message.text);
        assert!(!message.text.contains("alert") && !message.text.contains("color"), "{:?}", message.text);
        assert_eq!(message.attachments.len(), 1);
        let attachment = &message.attachments[0];
        assert_eq!(attachment.file_name, "aanslag.pdf");
        assert_eq!(attachment.content_type, "application/pdf");
        assert_eq!(attachment.bytes, b"%PDF-1.4\n");
    }

    #[test]
    fn malformed_mime_still_yields_what_can_be_read() {
        let raw = b"From: broken@example.be\r\nSubject: kapot\r\nContent-Type: multipart/mixed; boundary=\"nope\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\n--other\r\nnot base64 at all \xff\xfe\r\n";
        let message = InboundMessage::parse(raw);
        assert_eq!(message.subject, "kapot");
        assert_eq!(message.from.map(|from| from.address).as_deref(), Some("broken@example.be"));
        assert!(message.key.ends_with("@no-message-id.loket.invalid>"), "{}", message.key);
        assert_eq!(message.key, InboundMessage::parse(raw).key, "the same bytes, the same key");
        for garbage in [&b""[..], b"\x00\x01\x02", b"\r\n\r\n", b"Subject: only\r\n", b":::\r\n\r\nbody"] {
            let message = InboundMessage::parse(garbage);
            assert!(message.key.starts_with('<'));
        }
    }

    #[test]
    fn names_come_from_the_display_name() {
        let sender = |name: Option<&str>| Sender {
            address: "j.dupont@example.be".into(),
            display_name: name.map(str::to_owned),
        };
        assert_eq!(contact_names(&sender(Some("Dupont, Jean"))), ("Jean".into(), "Dupont".into()));
        assert_eq!(
            contact_names(&sender(Some("Marie-Claire Van den Broeck"))),
            ("Marie-Claire".into(), "Van den Broeck".into())
        );
        assert_eq!(contact_names(&sender(Some("Dupont"))), (String::new(), "Dupont".into()));
        assert_eq!(contact_names(&sender(None)), (String::new(), "j.dupont".into()));
    }
}
