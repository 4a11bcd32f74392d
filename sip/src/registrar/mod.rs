//! The registrar (RFC 3261 §10.3) as a pure core: [`Register::parse`] reads a REGISTER, and
//! [`Register::apply`] turns an address-of-record's current bindings into the new ones, or a
//! [`Refusal`]. The time is an input. Authentication happens before (see [`crate::digest`] and
//! [`crate::service`]); storage happens around `apply`, in a [`LocationStore`], which runs it
//! against the bindings it holds and writes the result atomically.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use rsipstack::sip::{Header, Request, Uri};

use crate::transport::Protocol;

pub mod location;
pub mod redis;

pub use location::{LocationStore, MemoryStore, StoreError};

#[cfg(test)]
mod tests;

/// One contact registered for an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI, as the phone sent it; bindings are matched on this text.
    pub contact: String,
    pub expires_at: SystemTime,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER came from, which is how a phone behind NAT is reached (RFC 3581's
    /// reasoning applied to registrations).
    pub source: SocketAddr,
    pub transport: Protocol,
}

impl Binding {
    /// Whole seconds left, as the 200 reports them; never negative.
    pub fn remaining(&self, now: SystemTime) -> u64 {
        self.expires_at.duration_since(now).unwrap_or_default().as_secs()
    }
}

/// The registrar's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Shorter requested intervals (but not 0) are refused with 423 (RFC 3261 §10.3 step 7).
    pub min_expires: u32,
    /// Longer requested intervals are shortened to this.
    pub max_expires: u32,
    /// When neither the contact nor the request says (RFC 3261 §10.2.1.1 leaves it to the registrar).
    pub default_expires: u32,
    /// Beyond this, the bindings that expire soonest give way to new ones: a phone that changed
    /// address without unregistering must still be able to register.
    pub max_contacts: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { min_expires: 60, max_expires: 3_600, default_expires: 3_600, max_contacts: 10 }
    }
}

/// Why a REGISTER is refused; the status and the header fields of the answer follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadRequest(&'static str),
    /// 404: the address-of-record is not in loket's domain or has no user.
    NotFound,
    /// 403: the authenticated user may not register this address-of-record.
    Forbidden,
    /// 423 with Min-Expires.
    IntervalTooBrief {
        min_expires: u32,
    },
    /// RFC 3261 §10.3 step 7: a request of the same Call-ID with a CSeq that is not higher than
    /// the binding's arrived late and must fail.
    OutOfOrder,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::NotFound => 404,
            Refusal::Forbidden => 403,
            Refusal::IntervalTooBrief { .. } => 423,
            Refusal::OutOfOrder => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadRequest(reason) => reason,
            Refusal::NotFound => "Not Found",
            Refusal::Forbidden => "Forbidden",
            Refusal::IntervalTooBrief { .. } => "Interval Too Brief",
            Refusal::OutOfOrder => "Out Of Order",
        }
    }
}

/// What a REGISTER asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// No Contact: list the current bindings.
    Query,
    /// `Contact: *` with `Expires: 0`: remove every binding.
    RemoveAll,
    /// Add, refresh (expires > 0) or remove (expires = 0) these contacts.
    Update(Vec<ContactRequest>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequest {
    pub uri: String,
    /// Seconds as asked (the contact's parameter, else the Expires header, else the default);
    /// [`Register::apply`] checks it against the policy.
    pub expires: u32,
}

/// A parsed REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// `user@domain`, the key of the bindings.
    pub aor: String,
    /// The To URI's user part: whose bindings these are.
    pub user: String,
    pub change: Change,
    pub call_id: String,
    pub cseq: u32,
}

/// Contact header fields accepted in one REGISTER; the policy's `max_contacts` bounds what is kept.
const MAX_CONTACTS_PER_REQUEST: usize = 32;

impl Register {
    /// Reads a REGISTER for `domain`. The entry point has checked that To, Call-ID and CSeq are
    /// present and well formed; what is checked here is the registrar's part.
    pub fn parse(request: &Request, domain: &str, default_expires: u32) -> Result<Register, Refusal> {
        let mut to = None;
        let mut call_id = None;
        let mut cseq = None;
        let mut expires = None;
        let mut contacts = Vec::new();
        for header in request.headers.iter() {
            match header {
                Header::To(value) => to = Some(value.value()),
                Header::CallId(value) => call_id = Some(value.value().trim().to_owned()),
                Header::CSeq(value) => cseq = value.value().split_whitespace().next().and_then(|n| n.parse().ok()),
                Header::Expires(value) => {
                    expires = Some(value.value().trim().parse::<u32>().map_err(|_| bad("Bad Expires"))?);
                }
                Header::Contact(value) => {
                    for contact in split_list(value.value()) {
                        if contacts.len() == MAX_CONTACTS_PER_REQUEST {
                            return Err(bad("Too Many Contacts"));
                        }
                        contacts.push(contact);
                    }
                }
                _ => {}
            }
        }
        let to_uri = uri_of(to.ok_or(bad("Missing To"))?);
        let to_uri = Uri::try_from(to_uri).map_err(|_| bad("Bad To URI"))?;
        let user = to_uri.auth.map(|auth| auth.user).filter(|user| !user.is_empty()).ok_or(Refusal::NotFound)?;
        if !to_uri.host_with_port.host.to_string().eq_ignore_ascii_case(domain) {
            return Err(Refusal::NotFound);
        }
        let change = if contacts.is_empty() {
            Change::Query
        } else if contacts.iter().any(|contact| contact.trim() == "*") {
            // RFC 3261 §10.3 step 6: `*` only alone and only with Expires: 0.
            if contacts.len() != 1 || expires != Some(0) {
                return Err(bad("Bad Wildcard Contact"));
            }
            Change::RemoveAll
        } else {
            let requests = contacts
                .iter()
                .map(|contact| contact_request(contact, expires.unwrap_or(default_expires)))
                .collect::<Result<Vec<_>, _>>()?;
            Change::Update(requests)
        };
        Ok(Register {
            aor: format!("{user}@{}", domain.to_ascii_lowercase()),
            user,
            change,
            call_id: call_id.ok_or(bad("Missing Call-ID"))?,
            cseq: cseq.ok_or(bad("Bad CSeq"))?,
        })
    }

    /// The bindings after this request, from the unexpired `current` ones. `source` and
    /// `transport` are where the request came from.
    pub fn apply(
        &self,
        mut current: Vec<Binding>,
        now: SystemTime,
        policy: &Policy,
        source: SocketAddr,
        transport: Protocol,
    ) -> Result<Vec<Binding>, Refusal> {
        current.retain(|binding| binding.expires_at > now);
        let in_order = |binding: &Binding| binding.call_id != self.call_id || self.cseq > binding.cseq;
        match &self.change {
            Change::Query => Ok(current),
            Change::RemoveAll => {
                if current.iter().all(in_order) {
                    Ok(Vec::new())
                } else {
                    Err(Refusal::OutOfOrder)
                }
            }
            Change::Update(requests) => {
                for request in requests {
                    if request.expires != 0 && request.expires < policy.min_expires {
                        return Err(Refusal::IntervalTooBrief { min_expires: policy.min_expires });
                    }
                }
                for request in requests {
                    let existing = current.iter().position(|binding| binding.contact == request.uri);
                    if let Some(index) = existing {
                        if !in_order(&current[index]) {
                            return Err(Refusal::OutOfOrder);
                        }
                        current.remove(index);
                    }
                    if request.expires > 0 {
                        let seconds = request.expires.min(policy.max_expires);
                        current.push(Binding {
                            contact: request.uri.clone(),
                            expires_at: now + Duration::from_secs(u64::from(seconds)),
                            call_id: self.call_id.clone(),
                            cseq: self.cseq,
                            source,
                            transport,
                        });
                    }
                }
                if current.len() > policy.max_contacts {
                    // Keep the ones that live longest; ties keep the newest (pushed last).
                    current.reverse();
                    current.sort_by_key(|binding| std::cmp::Reverse(binding.expires_at));
                    current.truncate(policy.max_contacts);
                }
                Ok(current)
            }
        }
    }
}

fn bad(reason: &'static str) -> Refusal {
    Refusal::BadRequest(reason)
}

/// One Contact value: its URI (checked to be SIP) and its interval.
pub(crate) fn contact_request(contact: &str, default_expires: u32) -> Result<ContactRequest, Refusal> {
    let contact = contact.trim();
    let (uri, params) = match contact.find('<') {
        Some(open) => {
            let close = contact[open..].find('>').ok_or(bad("Bad Contact"))? + open;
            (&contact[open + 1..close], &contact[close + 1..])
        }
        // RFC 3261 §20: without brackets, parameters after the URI belong to the header field.
        None => contact.split_once(';').unwrap_or((contact, "")),
    };
    let uri = uri.trim();
    let scheme_ok = uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:"))
        || uri.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    if !scheme_ok || Uri::try_from(uri).is_err() {
        return Err(bad("Bad Contact URI"));
    }
    let mut expires = default_expires;
    for param in params.split(';') {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("expires")
        {
            expires = value.trim().parse().map_err(|_| bad("Bad Contact Expires"))?;
        }
    }
    Ok(ContactRequest { uri: uri.to_owned(), expires })
}

/// The URI of a name-addr or addr-spec header value (To, Contact).
pub(crate) fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// Splits a header value at the commas that separate its elements, not those inside quotes or
/// angle brackets (a display name or a URI may hold one).
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut bracketed, mut escaped, mut start) = (false, false, false, 0);
    for (index, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => bracketed = true,
            '>' if !quoted => bracketed = false,
            ',' if !quoted && !bracketed => {
                parts.push(&value[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.retain(|part| !part.trim().is_empty());
    parts
}

/// The Contact header values of a 200: every binding with the seconds it has left.
pub fn contact_headers(bindings: &[Binding], now: SystemTime) -> Vec<String> {
    bindings.iter().map(|binding| format!("<{}>;expires={}", binding.contact, binding.remaining(now))).collect()
}
