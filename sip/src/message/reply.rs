//! Responses as bytes: stateless answers to requests the entry point refuses, built from the raw
//! header section so that a request rsipstack cannot parse is still answered, and responses to
//! parsed requests (RFC 3261 §8.2.6).

use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};

use rsipstack::sip::{Header, Request};

use super::head::Head;
use super::{HeaderName, MessageError};

/// A serialized response, ready for the transport that delivered the request.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    status: u16,
    bytes: Vec<u8>,
}

impl Reply {
    /// A response to a parsed request without a body: the request's Via, From, To (with a tag
    /// added when it has none), Call-ID and CSeq (RFC 3261 §8.2.6.2). `reason` must not contain
    /// CR or LF.
    pub fn to_request(request: &Request, status: u16, reason: &str) -> Reply {
        Reply::to_request_with(request, status, reason, &[], &[])
    }

    /// [`Reply::to_request`] with further header fields (name, value) and a body. The To tag it
    /// adds depends only on the request's Call-ID and From, so every response in a dialog carries
    /// the same one. Names and values must not contain CR or LF.
    pub fn to_request_with(
        request: &Request,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut text = format!("SIP/2.0 {status} {reason}\r\n");
        for header in request.headers.iter() {
            if matches!(header, Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_)) {
                let _ = write!(text, "{header}\r\n");
            }
        }
        if let Some(Header::To(to)) = request.headers.iter().find(|header| matches!(header, Header::To(_))) {
            if has_tag(to.value()) {
                let _ = write!(text, "To: {}\r\n", to.value());
            } else {
                let _ = write!(text, "To: {};tag={}\r\n", to.value(), Reply::local_tag(request));
            }
        }
        for (name, value) in headers {
            let _ = write!(text, "{name}: {value}\r\n");
        }
        let _ = write!(text, "Content-Length: {}\r\n\r\n", body.len());
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(body);
        Reply { status, bytes }
    }

    /// The To tag [`Reply::to_request_with`] gives responses to a request without one; a dialog
    /// loket accepts has it as its local tag.
    pub fn local_tag(request: &Request) -> String {
        let mut call_identity = DefaultHasher::new();
        for header in request.headers.iter() {
            if matches!(header, Header::CallId(_) | Header::From(_)) {
                header.to_string().hash(&mut call_identity);
            }
        }
        format!("lk{:016x}", call_identity.finish())
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply").field("text", &String::from_utf8_lossy(&self.bytes)).finish()
    }
}

/// `None` for responses, for ACK (never answered, RFC 3261 §17.1.1.3) and for requests without a
/// Via, which leave no way back (§18.2.2).
pub(super) fn stateless(head: &Head<'_>, error: &MessageError) -> Option<Reply> {
    if !head.is_request() || head.start_line.starts_with("ACK ") {
        return None;
    }
    let mut vias = head.all(HeaderName::Via).peekable();
    vias.peek()?;
    let status = error.status();
    let mut text = format!("SIP/2.0 {status} {error}\r\n");
    // Writing to a String cannot fail; the results are ignored for that reason.
    for via in vias {
        let _ = write!(text, "Via: {via}\r\n");
    }
    if let Some(from) = head.all(HeaderName::From).next() {
        let _ = write!(text, "From: {from}\r\n");
    }
    if let Some(to) = head.all(HeaderName::To).next() {
        // §8.2.6.2: a response that is not 100 carries a To tag; hashing the request's identity
        // gives a retransmitted request the same tag without keeping state.
        if has_tag(to) {
            let _ = write!(text, "To: {to}\r\n");
        } else {
            let mut hasher = DefaultHasher::new();
            (head.all(HeaderName::CallId).next(), head.all(HeaderName::From).next()).hash(&mut hasher);
            let _ = write!(text, "To: {to};tag=lk{:016x}\r\n", hasher.finish());
        }
    }
    for name in [HeaderName::CallId, HeaderName::CSeq] {
        if let Some(value) = head.all(name).next() {
            let _ = write!(text, "{name}: {value}\r\n");
        }
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    Some(Reply { status, bytes: text.into_bytes() })
}

/// Whether a To value carries a `tag` parameter (after the URI, outside brackets and quotes).
fn has_tag(to: &str) -> bool {
    let params = match to.rfind('>') {
        Some(close) => &to[close..],
        None => to,
    };
    params.split(';').skip(1).any(|param| {
        param.split('=').next().is_some_and(|name| name.trim_matches([' ', '\t']).eq_ignore_ascii_case("tag"))
    })
}

/// The reason phrase loket writes for a status it sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
