//! Syntax and mandatory-header checks on the raw header section (RFC 3261 §7.1, §7.2, §8.2,
//! §16.3, §20, §25), the ones RFC 4475's invalid messages probe.

use rsipstack::sip::Method;

use super::head::{Head, is_token_byte};
use super::{HeaderName, MessageError};

pub(super) fn message(head: &Head<'_>) -> Result<(), MessageError> {
    let method = if head.is_request() { Some(request_line(head.start_line)?) } else { status_line(head.start_line)? };
    let via = head.all(HeaderName::Via).collect::<Vec<_>>();
    if via.is_empty() {
        return Err(MessageError::MissingHeader(HeaderName::Via));
    }
    for (idx, value) in via.iter().enumerate() {
        check_via(value, idx == 0 && method.is_some())?;
    }
    for name in [HeaderName::From, HeaderName::To] {
        let value = head.single(name)?.ok_or(MessageError::MissingHeader(name))?;
        name_addr_or_addr_spec(value).ok_or(MessageError::MalformedHeader(name))?;
    }
    let call_id = head.single(HeaderName::CallId)?.ok_or(MessageError::MissingHeader(HeaderName::CallId))?;
    if call_id.is_empty() || call_id.contains([' ', '\t']) {
        return Err(MessageError::MalformedHeader(HeaderName::CallId));
    }
    let cseq = head.single(HeaderName::CSeq)?.ok_or(MessageError::MissingHeader(HeaderName::CSeq))?;
    let cseq_method = check_cseq(cseq)?;
    if let Some(value) = head.single(HeaderName::MaxForwards)? {
        // RFC 3261 §20.22: 0 to 255. A missing Max-Forwards is tolerated for RFC 2543 peers
        // (RFC 4475 §3.4.1); the proxy's 483 decision (§16.3) is not the entry point's.
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.parse::<u8>().is_err() {
            return Err(MessageError::MalformedHeader(HeaderName::MaxForwards));
        }
    }
    for value in head.all(HeaderName::Contact) {
        check_contact(value).ok_or(MessageError::MalformedHeader(HeaderName::Contact))?;
    }
    if let Some(method) = method {
        // RFC 3261 §8.1.1.5 requires the CSeq method to match the request's; RFC 4475 §3.1.2.17
        // expects a 400 when it does not.
        if cseq_method != method {
            return Err(MessageError::CSeqMethodMismatch);
        }
        // RFC 3261 §25.1 spells methods as case-sensitive octets (`INVITEm = %x49.4E.56.49.54.45`);
        // rsipstack's parser ignores case, so "invite" is checked here to be an unknown method.
        if method.parse::<Method>().map_or(true, |known| known.to_string() != method) {
            return Err(MessageError::UnknownMethod);
        }
    }
    Ok(())
}

/// `Method SP Request-URI SP SIP-Version` with exactly one SP between elements (RFC 3261 §7.1,
/// RFC 4475 §3.1.2.8–3.1.2.10). Returns the method.
fn request_line(line: &str) -> Result<&str, MessageError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MessageError::MalformedStartLine);
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(MessageError::MalformedStartLine);
    }
    check_version(version)?;
    request_uri(uri)?;
    Ok(method)
}

/// `SIP-Version SP Status-Code SP Reason-Phrase`; the reason phrase may be empty and the SP before
/// it absent (RFC 4475 §3.1.1.13). Responses are never answered, so `None` (no method).
fn status_line(line: &str) -> Result<Option<&'static str>, MessageError> {
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(MessageError::MalformedStartLine);
    };
    check_version(version)?;
    // RFC 3261 §7.2: three digits, the first from 1 to 6.
    let valid_code =
        code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) && matches!(code.as_bytes()[0], b'1'..=b'6');
    if !valid_code {
        return Err(MessageError::MalformedStatusCode);
    }
    Ok(None)
}

/// RFC 3261 §7.1: "SIP/2.0", case-insensitive; any other well-formed version gets 505.
fn check_version(version: &str) -> Result<(), MessageError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = version.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("SIP/"))
        && version[4..].split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty() && !minor.is_empty() && (major.bytes().chain(minor.bytes())).all(|b| b.is_ascii_digit())
        });
    Err(if well_formed { MessageError::UnsupportedVersion } else { MessageError::MalformedStartLine })
}

/// loket serves `sip`, `sips` and `tel` targets; other schemes get 416 (RFC 3261 §8.2.2.1).
fn request_uri(uri: &str) -> Result<(), MessageError> {
    let (scheme, rest) = uri.split_once(':').ok_or(MessageError::MalformedRequestUri)?;
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok || rest.is_empty() || uri.contains(['<', '>', '"', '\t']) {
        return Err(MessageError::MalformedRequestUri);
    }
    if !["sip", "sips", "tel"].iter().any(|known| scheme.eq_ignore_ascii_case(known)) {
        return Err(MessageError::UnsupportedUriScheme);
    }
    // RFC 3261 §19.1.1, table 1: header components are not allowed in a Request-URI. A `?` in
    // the user part is allowed unescaped (§25.1 `user-unreserved`), so only look after the `@`.
    let host_part = rest.rfind('@').map_or(rest, |at| &rest[at..]);
    if host_part.contains('?') {
        return Err(MessageError::RequestUriHeaders);
    }
    Ok(())
}

/// `1*DIGIT LWS Method` with the number below 2^31 (RFC 3261 §8.1.1.5, §20.16). Returns the method.
fn check_cseq(value: &str) -> Result<&str, MessageError> {
    let malformed = MessageError::MalformedHeader(HeaderName::CSeq);
    let mut parts = value.split([' ', '\t']).filter(|part| !part.is_empty());
    let (Some(number), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed);
    };
    let number_ok = number.bytes().all(|b| b.is_ascii_digit()) && number.parse::<u32>().is_ok_and(|n| n < 1 << 31);
    if !number_ok || !method.bytes().all(is_token_byte) {
        return Err(malformed);
    }
    Ok(method)
}

/// A comma-separated list of `sent-protocol LWS sent-by *( SEMI via-params )`, LWS allowed around
/// the slashes and the semicolons (RFC 3261 §20.42, §25.1). On the top Via of a request, a branch
/// that is only the RFC 3261 magic cookie is refused (RFC 4475 §3.2.1 allows a 400).
fn check_via(value: &str, is_top_of_request: bool) -> Result<(), MessageError> {
    let malformed = MessageError::MalformedHeader(HeaderName::Via);
    for (idx, via_parm) in split_outside_quotes(value, b',').enumerate() {
        let (sent, params) = match via_parm.split_once(';') {
            Some((sent, params)) => (sent, Some(params)),
            None => (via_parm, None),
        };
        let mut protocol = sent.splitn(3, '/');
        let (Some(name), Some(version), Some(transport_and_host)) = (protocol.next(), protocol.next(), protocol.next())
        else {
            return Err(malformed);
        };
        let transport_and_host = transport_and_host.trim_start_matches([' ', '\t']);
        let mut words = transport_and_host.split([' ', '\t']).filter(|word| !word.is_empty());
        let (Some(transport), Some(sent_by), None) = (words.next(), words.next(), words.next()) else {
            return Err(malformed);
        };
        let protocol_ok = name.trim().eq_ignore_ascii_case("SIP")
            && is_token(version.trim())
            && is_token(transport)
            && sent_by.bytes().all(|b| is_token_byte(b) || b":[]".contains(&b));
        if !protocol_ok {
            return Err(malformed);
        }
        for param in params.map(|params| split_outside_quotes(params, b';').collect::<Vec<_>>()).unwrap_or_default() {
            let (name, value) = generic_param(param).ok_or(malformed.clone())?;
            let bare_cookie = value.is_some_and(|value| value == "z9hG4bK");
            if is_top_of_request && idx == 0 && name.eq_ignore_ascii_case("branch") && bare_cookie {
                return Err(MessageError::EmptyBranch);
            }
        }
    }
    Ok(())
}

/// Contact is `*` or a list of name-addr / addr-spec with parameters (RFC 3261 §20.10).
fn check_contact(value: &str) -> Option<()> {
    if value == "*" {
        return Some(());
    }
    split_outside_quotes(value, b',').try_for_each(name_addr_or_addr_spec)
}

/// `( name-addr / addr-spec ) *( SEMI generic-param )` (RFC 3261 §20.10, §20.20, §20.39).
/// An addr-spec outside angle brackets may not contain `?`, `,` or `;` (§20.10): its `;` starts
/// the header's parameters.
fn name_addr_or_addr_spec(value: &str) -> Option<()> {
    let value = value.trim_matches([' ', '\t']);
    let params = match find_outside_quotes(value, b'<') {
        Some(open) => {
            display_name(&value[..open])?;
            let close = open + value[open..].find('>')?;
            let uri = &value[open + 1..close];
            if !is_addr_spec(uri) {
                return None;
            }
            let rest = value[close + 1..].trim_start_matches([' ', '\t']);
            if rest.is_empty() { None } else { Some(rest.strip_prefix(';')?) }
        }
        None => {
            let (uri, params) = match value.split_once(';') {
                Some((uri, params)) => (uri.trim_end_matches([' ', '\t']), Some(params)),
                None => (value, None),
            };
            if !is_addr_spec(uri) || uri.contains('?') {
                return None;
            }
            params
        }
    };
    for param in params.map(|params| split_outside_quotes(params, b';').collect::<Vec<_>>()).unwrap_or_default() {
        generic_param(param)?;
    }
    Some(())
}

/// `[ token *(LWS token) / quoted-string ] LWS` before `<` (RFC 3261 §25.1).
fn display_name(text: &str) -> Option<()> {
    let text = text.trim_matches([' ', '\t']);
    if let Some(quoted) = text.strip_prefix('"') {
        let len = quoted_string_len(quoted)?;
        return quoted[len..].trim_matches([' ', '\t']).is_empty().then_some(());
    }
    text.split([' ', '\t']).filter(|word| !word.is_empty()).all(is_token).then_some(())
}

/// An absolute URI with no LWS, brackets or quotes (RFC 3261 §25.1 `addr-spec`; RFC 4475
/// §3.1.2.14 refuses spaces inside the brackets).
fn is_addr_spec(uri: &str) -> bool {
    uri.split_once(':').is_some_and(|(scheme, rest)| !scheme.is_empty() && is_token(scheme) && !rest.is_empty())
        && !uri.contains([' ', '\t', '<', '>', '"'])
}

/// `token [ EQUAL ( token / host / quoted-string ) ]` with LWS allowed around `=`. Returns the
/// name and the value.
fn generic_param(param: &str) -> Option<(&str, Option<&str>)> {
    let (name, value) = match param.split_once('=') {
        Some((name, value)) => (name.trim_matches([' ', '\t']), Some(value.trim_matches([' ', '\t']))),
        None => (param.trim_matches([' ', '\t']), None),
    };
    if !is_token(name) {
        return None;
    }
    match value {
        None => Some((name, None)),
        Some(value) => {
            let value_ok = match value.strip_prefix('"') {
                Some(quoted) => quoted_string_len(quoted).is_some_and(|len| len == quoted.len()),
                None => !value.is_empty() && value.bytes().all(|b| is_token_byte(b) || b":[]".contains(&b)),
            };
            value_ok.then_some((name, Some(value)))
        }
    }
}

/// Given the text after an opening `"`, the length up to and including the closing `"`,
/// honouring `\` escapes (RFC 3261 §25.1 `quoted-pair`).
fn quoted_string_len(after_open: &str) -> Option<usize> {
    let bytes = after_open.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'\\' => idx += 2,
            b'"' => return Some(idx + 1),
            _ => idx += 1,
        }
    }
    None
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_byte)
}

fn find_outside_quotes(text: &str, wanted: u8) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (idx, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            _ if b == wanted && !in_quotes => return Some(idx),
            _ => {}
        }
    }
    None
}

/// Splits on `separator` outside quoted strings and angle brackets.
fn split_outside_quotes(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut in_quotes, mut escaped, mut in_angle) = (false, false, false);
    let mut start = 0;
    for (idx, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            _ if b == separator && !in_quotes && !in_angle => {
                parts.push(&text[start..idx]);
                start = idx + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter()
}
