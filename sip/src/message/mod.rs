//! The message entry point: bytes from a transport in, a parsed and validated message out, or a
//! [`Rejection`] that says why and whether to answer.
//!
//! The checks happen on the raw header section before rsipstack's parser sees the bytes, for two
//! reasons: rsipstack's parser is lenient (it ignores a bad Content-Length, unknown methods fail it
//! outright, and a line that is not UTF-8 silently ends the header section), and a request it cannot
//! parse must still be answered with a 400 that copies Via, From, To, Call-ID and CSeq
//! (RFC 3261 §8.2.6.2), which the raw header section provides.
//!
//! A UDP datagram is one message ([`parse_datagram`]), and so is a WebSocket message (RFC 7118).
//! On TCP and TLS streams, [`frame`] finds the message boundary by Content-Length and
//! [`parse_framed`] takes the bytes it delimited.

mod check;
mod framing;
mod head;
mod reply;

use rsipstack::sip::{Request, Response, SipMessage};
use thiserror::Error;

pub use framing::{Frame, FramingError, frame};
pub use reply::{Reply, reason_phrase};

use head::Head;

/// Bounds on what one message may cost; peers cannot make the entry point allocate more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Start line, headers and body together.
    pub max_message_bytes: usize,
    /// Header fields after unfolding; RFC 3261 sets no limit, so this is loket's.
    pub max_headers: usize,
}

impl Default for Limits {
    /// 64 KiB is the largest UDP datagram; real INVITEs are 1–4 KiB and carry 10–30 header fields.
    fn default() -> Self {
        Limits { max_message_bytes: 65_535, max_headers: 128 }
    }
}

/// A message that passed the entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Request(Request),
    Response(Response),
}

/// A message the entry point refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub error: MessageError,
    /// The stateless answer for a request that can be answered; `None` means drop it silently
    /// (responses, ACKs and requests without a usable Via: RFC 3261 §8.2, §17.2.3, §18.3).
    pub reply: Option<Reply>,
}

/// Why a message was refused. The status code a request gets is [`MessageError::status`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    #[error("Message Too Large")]
    TooLarge,
    #[error("Empty Message")]
    Empty,
    #[error("Unterminated Header Section")]
    Unterminated,
    #[error("Too Many Header Fields")]
    TooManyHeaders,
    #[error("Header Section Not UTF-8")]
    NotUtf8,
    #[error("Malformed Header Line")]
    MalformedHeaderLine,
    #[error("Malformed Start Line")]
    MalformedStartLine,
    #[error("Malformed Request-URI")]
    MalformedRequestUri,
    #[error("Headers In Request-URI")]
    RequestUriHeaders,
    #[error("Unsupported URI Scheme")]
    UnsupportedUriScheme,
    #[error("Version Not Supported")]
    UnsupportedVersion,
    #[error("Malformed Status Code")]
    MalformedStatusCode,
    #[error("Malformed Content-Length")]
    MalformedContentLength,
    #[error("Content-Length Exceeds Body")]
    BodyShorterThanContentLength,
    #[error("Missing Content-Length")]
    MissingContentLength,
    #[error("Missing {0} Header")]
    MissingHeader(HeaderName),
    #[error("Duplicate {0} Header")]
    DuplicateHeader(HeaderName),
    #[error("Malformed {0} Header")]
    MalformedHeader(HeaderName),
    #[error("CSeq Method Does Not Match")]
    CSeqMethodMismatch,
    #[error("Missing Transaction Identifier")]
    EmptyBranch,
    #[error("Not Implemented")]
    UnknownMethod,
    /// rsipstack's parser refused what the checks here let through.
    #[error("Bad Request")]
    Unparsable,
}

impl MessageError {
    /// The status code of the stateless answer to a request refused for this reason.
    pub fn status(&self) -> u16 {
        match self {
            // RFC 3261 §21.5.7 (513), §21.4.14 (416), §21.5.6 (505), §8.2.1 (501).
            MessageError::TooLarge => 513,
            MessageError::UnsupportedUriScheme => 416,
            MessageError::UnsupportedVersion => 505,
            MessageError::UnknownMethod => 501,
            _ => 400,
        }
    }
}

/// The header fields the entry point checks, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    Contact,
}

impl std::fmt::Display for HeaderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.canonical())
    }
}

impl HeaderName {
    fn canonical(self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::Contact => "Contact",
        }
    }
}

/// One UDP datagram. Octets after the body that Content-Length announces are discarded; a body
/// shorter than announced is an error; no Content-Length means the body runs to the end of the
/// datagram (RFC 3261 §18.3).
pub fn parse_datagram(bytes: &[u8], limits: &Limits) -> Result<Inbound, Rejection> {
    if bytes.len() > limits.max_message_bytes {
        // A datagram is at most 64 KiB, so reading its head to answer 513 (RFC 3261 §21.5.7)
        // stays bounded.
        let reply = head::scan(bytes, limits).ok().and_then(|head| reply::stateless(&head, &MessageError::TooLarge));
        return Err(Rejection { error: MessageError::TooLarge, reply });
    }
    let head = head::scan(bytes, limits).map_err(|error| Rejection { error, reply: None })?;
    let available = bytes.len() - head.body_offset;
    let body_len = match head.content_length() {
        Ok(Some(announced)) if announced > available => Err(MessageError::BodyShorterThanContentLength),
        Ok(Some(announced)) => Ok(announced),
        Ok(None) => Ok(available),
        Err(error) => Err(error),
    };
    match body_len {
        Ok(body_len) => finish(&bytes[..head.body_offset + body_len], &head),
        Err(error) => Err(refuse(&head, error)),
    }
}

/// One message delimited by [`frame`] on a stream transport: `bytes` is exactly the message.
pub fn parse_framed(bytes: &[u8], limits: &Limits) -> Result<Inbound, Rejection> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Rejection { error: MessageError::TooLarge, reply: None });
    }
    let head = head::scan(bytes, limits).map_err(|error| Rejection { error, reply: None })?;
    match head.content_length() {
        Ok(Some(announced)) if head.body_offset + announced == bytes.len() => finish(bytes, &head),
        Ok(Some(_)) => Err(refuse(&head, MessageError::BodyShorterThanContentLength)),
        // RFC 3261 §18.3: Content-Length is mandatory on stream transports.
        Ok(None) => Err(refuse(&head, MessageError::MissingContentLength)),
        Err(error) => Err(refuse(&head, error)),
    }
}

/// `message` is the header section and exactly the body. The body is set here rather than by
/// rsipstack's parser, which takes a missing Content-Length for zero.
fn finish(message: &[u8], head: &Head<'_>) -> Result<Inbound, Rejection> {
    check::message(head).map_err(|error| refuse(head, error))?;
    let body = message[head.body_offset..].to_vec();
    match SipMessage::try_from(message) {
        Ok(SipMessage::Request(request)) => Ok(Inbound::Request(Request { body, ..request })),
        Ok(SipMessage::Response(response)) => Ok(Inbound::Response(Response { body, ..response })),
        Err(_) => Err(refuse(head, MessageError::Unparsable)),
    }
}

fn refuse(head: &Head<'_>, error: MessageError) -> Rejection {
    let reply = reply::stateless(head, &error);
    Rejection { error, reply }
}

#[cfg(test)]
mod tests;
