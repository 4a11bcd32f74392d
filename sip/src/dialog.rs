//! Dialog state (RFC 3261 §12) and the requests sent within a dialog, as text. Pure: it reads the
//! request that created the dialog and writes requests; sockets and transactions are the edge's.
//!
//! Loose routing (RFC 3261 §16.12) is assumed of every proxy in a route set: the Request-URI is
//! the remote target and the route set goes into Route headers. Strict routers (RFC 2543) are not
//! supported.

use std::fmt::Write as _;

use rsipstack::sip::{Header, Request, Response};

use crate::registrar::{split_list, uri_of};

#[cfg(test)]
mod tests;

/// One side of a dialog, as loket keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// From of loket's requests: the local URI with the local tag.
    local: String,
    /// To of loket's requests: the remote URI with the remote tag.
    remote: String,
    /// The Request-URI of loket's requests: the peer's Contact (§12.1.1).
    remote_target: String,
    route_set: Vec<String>,
    local_cseq: u32,
    remote_cseq: u32,
}

/// Why a request within a dialog is refused (RFC 3261 §12.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfOrder {
    /// A CSeq lower than one already seen: 500.
    CSeqTooLow,
}

impl Dialog {
    /// The dialog an INVITE creates at loket as UAS, with `local_tag` as the To tag of its
    /// responses; `None` without a From tag, Call-ID, CSeq or Contact (RFC 3261 §8.1.1.8 makes
    /// Contact mandatory in an INVITE, and a dialog without a remote target cannot be used).
    pub fn as_uas(invite: &Request, local_tag: &str) -> Option<Dialog> {
        let mut dialog = Dialog {
            call_id: String::new(),
            local_tag: local_tag.to_owned(),
            remote_tag: String::new(),
            local: String::new(),
            remote: String::new(),
            remote_target: String::new(),
            route_set: Vec::new(),
            // §12.1.1: the UAS's local sequence starts empty; any start value works.
            local_cseq: 0,
            remote_cseq: 0,
        };
        for header in invite.headers.iter() {
            match header {
                Header::CallId(value) => dialog.call_id = value.value().trim().to_owned(),
                Header::From(value) => {
                    dialog.remote = value.value().trim().to_owned();
                    dialog.remote_tag = tag_of(&dialog.remote)?.to_owned();
                }
                Header::To(value) => dialog.local = format!("{};tag={local_tag}", value.value().trim()),
                Header::CSeq(value) => dialog.remote_cseq = value.value().split_whitespace().next()?.parse().ok()?,
                Header::Contact(value) => {
                    dialog.remote_target = uri_of(split_list(value.value()).first()?).to_owned();
                }
                // §12.1.1: the route set is the Record-Route values in order.
                Header::RecordRoute(value) => {
                    dialog.route_set.extend(split_list(value.value()).into_iter().map(|route| route.trim().to_owned()));
                }
                _ => {}
            }
        }
        let complete = !dialog.call_id.is_empty() && !dialog.local.is_empty() && !dialog.remote_target.is_empty();
        complete.then_some(dialog)
    }

    /// Checks and records the CSeq of a request received within the dialog (§12.2.2). ACK and
    /// CANCEL repeat an earlier CSeq and are not checked.
    pub fn receive(&mut self, cseq: u32) -> Result<(), OutOfOrder> {
        if cseq < self.remote_cseq {
            return Err(OutOfOrder::CSeqTooLow);
        }
        self.remote_cseq = cseq;
        Ok(())
    }

    /// The dialog of an INVITE loket sends to `target` (a URI), from `from` (a name-addr without
    /// tag) with `local_tag`. The remote side is filled in by [`Dialog::establish`].
    pub fn as_uac(call_id: &str, from: &str, local_tag: &str, target: &str) -> Dialog {
        Dialog {
            call_id: call_id.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: String::new(),
            local: format!("{from};tag={local_tag}"),
            remote: format!("<{target}>"),
            remote_target: target.to_owned(),
            route_set: Vec::new(),
            local_cseq: 0,
            remote_cseq: 0,
        }
    }

    /// A preloaded route (RFC 3261 §8.1.2): the outbound proxy, `<sip:proxy;lr>`, in a Route of
    /// every request. Kept once the dialog is set up if the 2xx has no Record-Route: loket's
    /// requests still go to that proxy, which then finds itself named (RFC 3261 §16.4).
    pub fn with_route(mut self, route: String) -> Dialog {
        self.route_set = vec![route];
        self
    }

    /// The Request-URI of loket's requests.
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    /// Completes a dialog loket started with the 2xx that confirms it (§12.1.2): the remote tag
    /// and To, the remote target from Contact, and the route set from Record-Route in reverse
    /// (a preloaded one stays without). Only the first 2xx counts; later ones (retransmissions)
    /// change nothing.
    pub fn establish(&mut self, response: &Response) {
        if !self.remote_tag.is_empty() {
            return;
        }
        let mut routes = Vec::new();
        for header in response.headers.iter() {
            match header {
                Header::To(value) => {
                    if let Some(tag) = tag_of(value.value()) {
                        self.remote_tag = tag.to_owned();
                        self.remote = value.value().trim().to_owned();
                    }
                }
                Header::Contact(value) => {
                    if let Some(contact) = split_list(value.value()).first() {
                        self.remote_target = uri_of(contact).to_owned();
                    }
                }
                Header::RecordRoute(value) => {
                    routes.extend(split_list(value.value()).into_iter().map(|route| route.trim().to_owned()));
                }
                _ => {}
            }
        }
        if !routes.is_empty() {
            routes.reverse();
            self.route_set = routes;
        }
    }

    /// The CSeq number of loket's latest request in the dialog.
    pub fn local_cseq(&self) -> u32 {
        self.local_cseq
    }

    /// A new request within the dialog (§12.2.1.1), with the next local CSeq. `via` is the Via
    /// value without branch (`SIP/2.0/UDP host:port`); `extra` are further header lines.
    pub fn request(&mut self, method: &str, via: &str, branch: &str, extra: &[(&str, &str)], body: &str) -> String {
        self.local_cseq += 1;
        let via = format!("{via};branch={branch};rport");
        let head =
            Head { uri: &self.remote_target, via: &via, routes: &self.route_set, from: &self.local, to: &self.remote };
        head.write(method, &self.call_id, self.local_cseq, extra, body)
    }

    /// The ACK of a 2xx to loket's INVITE or re-INVITE with CSeq `cseq` (§13.2.2.4): a request of
    /// its own, with a new branch, sent without a transaction. `extra`: the INVITE's credentials,
    /// which the ACK repeats (§22.1).
    pub fn ack(&self, via: &str, branch: &str, cseq: u32, extra: &[(&str, &str)]) -> String {
        let via = format!("{via};branch={branch};rport");
        let head =
            Head { uri: &self.remote_target, via: &via, routes: &self.route_set, from: &self.local, to: &self.remote };
        head.write("ACK", &self.call_id, cseq, extra, "")
    }

    /// What CANCEL and the ACK of a non-2xx must repeat of the INVITE just written by
    /// [`Dialog::request`] with this `via` and `branch`.
    pub fn invitation(&self, via: &str, branch: &str) -> Invitation {
        Invitation {
            uri: self.remote_target.clone(),
            via: format!("{via};branch={branch};rport"),
            routes: self.route_set.clone(),
            from: self.local.clone(),
            to: self.remote.clone(),
            call_id: self.call_id.clone(),
            cseq: self.local_cseq,
        }
    }
}

/// The initial INVITE of an outbound leg, as CANCEL (§9.1) and the ACK of a non-2xx final
/// response (§17.1.1.3) repeat it: same Request-URI, Via, Route, From, Call-ID and CSeq number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    uri: String,
    via: String,
    routes: Vec<String>,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
}

impl Invitation {
    pub fn cancel(&self) -> String {
        let head = Head { uri: &self.uri, via: &self.via, routes: &self.routes, from: &self.from, to: &self.to };
        head.write("CANCEL", &self.call_id, self.cseq, &[], "")
    }

    /// `to` is the To of the response being acknowledged, with its tag.
    pub fn ack(&self, to: &str) -> String {
        let head = Head { uri: &self.uri, via: &self.via, routes: &self.routes, from: &self.from, to };
        head.write("ACK", &self.call_id, self.cseq, &[], "")
    }
}

/// The parts of a request's head that differ between the requests loket writes (a REGISTER,
/// outside any dialog, too).
pub(crate) struct Head<'a> {
    pub uri: &'a str,
    /// With its branch.
    pub via: &'a str,
    pub routes: &'a [String],
    pub from: &'a str,
    pub to: &'a str,
}

impl Head<'_> {
    pub(crate) fn write(&self, method: &str, call_id: &str, cseq: u32, extra: &[(&str, &str)], body: &str) -> String {
        let mut text = format!("{method} {} SIP/2.0\r\nVia: {}\r\n", self.uri, self.via);
        for route in self.routes {
            let _ = write!(text, "Route: {route}\r\n");
        }
        let _ = write!(
            text,
            "Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n",
            self.from, self.to
        );
        for (name, value) in extra {
            let _ = write!(text, "{name}: {value}\r\n");
        }
        let _ = write!(text, "Content-Length: {}\r\n\r\n{body}", body.len());
        text
    }
}

/// The `tag` parameter of a From or To value (after the URI, outside angle brackets).
pub fn tag_of(name_addr: &str) -> Option<&str> {
    let params = name_addr.rsplit_once('>').map_or(name_addr, |(_, params)| params);
    params.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("tag").then(|| value.trim()).filter(|tag| !tag.is_empty())
    })
}
