//! Message boundaries on stream transports (TCP, TLS): a pure function over the bytes received
//! so far, so the connection task only buffers and the rules stay testable.

use thiserror::Error;

use super::head::{end_of_header_section, scan};
use super::{Limits, MessageError};

/// What the front of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet to know.
    Incomplete,
    /// `len` bytes of CRLF before a start line: RFC 3261 §7.5 says to ignore them. `ping` marks the
    /// RFC 5626 §3.5.1 double-CRLF keep-alive, which the connection answers with one CRLF.
    KeepAlive { len: usize, ping: bool },
    /// A whole message of `len` bytes, for [`super::parse_framed`].
    Message { len: usize },
}

/// The stream cannot be resynchronised after these: the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("message exceeds {limit} bytes")]
    TooLarge { limit: usize },
    /// RFC 3261 §18.3 makes Content-Length mandatory on stream transports.
    #[error("no Content-Length on a stream transport")]
    MissingContentLength,
    #[error("header section unusable for framing: {0}")]
    Head(MessageError),
}

pub fn frame(buffer: &[u8], limits: &Limits) -> Result<Frame, FramingError> {
    const PING: &[u8] = b"\r\n\r\n";
    if buffer.starts_with(PING) {
        return Ok(Frame::KeepAlive { len: PING.len(), ping: true });
    }
    if PING.starts_with(buffer) {
        return Ok(Frame::Incomplete);
    }
    if buffer.starts_with(b"\r\n") {
        return Ok(Frame::KeepAlive { len: 2, ping: false });
    }
    let searched = &buffer[..buffer.len().min(limits.max_message_bytes)];
    let Some(end) = end_of_header_section(searched) else {
        return if buffer.len() >= limits.max_message_bytes {
            Err(FramingError::TooLarge { limit: limits.max_message_bytes })
        } else {
            Ok(Frame::Incomplete)
        };
    };
    let head = scan(&buffer[..end + 4], limits).map_err(FramingError::Head)?;
    let body_len = head.content_length().map_err(FramingError::Head)?.ok_or(FramingError::MissingContentLength)?;
    let len = head.body_offset.saturating_add(body_len);
    if len > limits.max_message_bytes {
        return Err(FramingError::TooLarge { limit: limits.max_message_bytes });
    }
    Ok(if buffer.len() < len { Frame::Incomplete } else { Frame::Message { len } })
}
