//! The raw header section: start line and unfolded header fields with canonical names, found
//! without interpreting any value. Both the checks and the stateless replies work from it.

use super::{HeaderName, Limits, MessageError};

pub(super) struct Head<'a> {
    pub start_line: &'a str,
    pub fields: Vec<Field<'a>>,
    /// Offset of the body: just past the empty line that ends the header section.
    pub body_offset: usize,
}

pub(super) struct Field<'a> {
    /// The long form in lower case (compact forms expanded, RFC 3261 §7.3.3).
    pub name: String,
    /// The value with folded lines joined by one space (RFC 3261 §7.3.1) and outer LWS trimmed.
    pub value: std::borrow::Cow<'a, str>,
}

/// Splits the header section of `bytes`; the body is whatever follows `body_offset`.
pub(super) fn scan<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Head<'a>, MessageError> {
    if bytes.iter().all(|&b| b == b'\r' || b == b'\n') {
        return Err(MessageError::Empty);
    }
    let end = end_of_header_section(bytes).ok_or(MessageError::Unterminated)?;
    let section = std::str::from_utf8(&bytes[..end]).map_err(|_| MessageError::NotUtf8)?;
    let mut lines = section.split("\r\n");
    let start_line = lines.next().unwrap_or_default();
    if start_line.is_empty() || has_bare_line_break(start_line) {
        return Err(MessageError::MalformedStartLine);
    }
    let mut fields: Vec<Field<'a>> = Vec::new();
    for line in lines {
        if has_bare_line_break(line) {
            return Err(MessageError::MalformedHeaderLine);
        }
        if line.starts_with([' ', '\t']) {
            let last = fields.last_mut().ok_or(MessageError::MalformedHeaderLine)?;
            let continued = line.trim_matches([' ', '\t']);
            if !continued.is_empty() {
                let value = last.value.to_mut();
                value.push(' ');
                value.push_str(continued);
            }
            continue;
        }
        if fields.len() == limits.max_headers {
            return Err(MessageError::TooManyHeaders);
        }
        let (name, value) = line.split_once(':').ok_or(MessageError::MalformedHeaderLine)?;
        // RFC 3261 §7.3.1: HCOLON allows SP and HTAB before the colon.
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(MessageError::MalformedHeaderLine);
        }
        fields.push(Field { name: long_name(name), value: value.trim_matches([' ', '\t']).into() });
    }
    Ok(Head { start_line, fields, body_offset: end + 4 })
}

impl<'a> Head<'a> {
    pub fn all<'h>(&'h self, name: HeaderName) -> impl Iterator<Item = &'h str> + 'h {
        let wanted = name.canonical();
        self.fields.iter().filter(move |field| field.name.eq_ignore_ascii_case(wanted)).map(|field| &*field.value)
    }

    /// The single value of a header that must appear at most once.
    pub fn single(&self, name: HeaderName) -> Result<Option<&str>, MessageError> {
        let mut values = self.all(name);
        let first = values.next();
        match values.next() {
            Some(_) => Err(MessageError::DuplicateHeader(name)),
            None => Ok(first),
        }
    }

    pub fn is_request(&self) -> bool {
        !self.start_line.starts_with("SIP/")
    }

    /// The announced body length. Several Content-Length fields are refused even when equal:
    /// the header is single-valued (RFC 3261 §20.14), and RFC 4475 §3.3.9 expects a 400.
    pub fn content_length(&self) -> Result<Option<usize>, MessageError> {
        let Some(value) = self.single(HeaderName::ContentLength)? else { return Ok(None) };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MessageError::MalformedContentLength);
        }
        value.parse().map(Some).map_err(|_| MessageError::MalformedContentLength)
    }
}

pub(super) fn end_of_header_section(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n")
}

/// RFC 3261 §25.1 `token`.
pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn has_bare_line_break(line: &str) -> bool {
    line.contains(['\r', '\n'])
}

/// RFC 3261 §7.3.3 and the IANA registry's compact forms.
fn long_name(name: &str) -> String {
    let long = match name.to_ascii_lowercase().as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        "o" => "event",
        "r" => "refer-to",
        "b" => "referred-by",
        "u" => "allow-events",
        "x" => "session-expires",
        "a" => "accept-contact",
        "j" => "reject-contact",
        "d" => "request-disposition",
        "y" => "identity",
        "n" => "identity-info",
        other => return other.to_owned(),
    };
    long.to_owned()
}
