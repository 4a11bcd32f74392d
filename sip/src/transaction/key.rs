//! Matching requests to server transactions (RFC 3261 §17.2.3).

use rsipstack::sip::{Header, Method, Request};

use crate::dialog::tag_of;

/// Identifies a server transaction. An ACK gets the key of the INVITE it acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// RFC 3261 peers: the top Via's branch (with the `z9hG4bK` cookie) and sent-by, and the method.
    Branch { branch: String, sent_by: String, method: String },
    /// RFC 2543 peers (no cookie): Call-ID, CSeq number, From tag and the whole top Via (§17.2.3).
    /// The To tag is left out so that the ACK of a final response finds its INVITE.
    Legacy { call_id: String, cseq: String, from_tag: String, top_via: String, method: String },
}

/// What kind of request arrived, for the transaction table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Invite,
    Ack,
    Other,
}

impl RequestKind {
    pub fn of(method: &Method) -> RequestKind {
        match method {
            Method::Invite => RequestKind::Invite,
            Method::Ack => RequestKind::Ack,
            _ => RequestKind::Other,
        }
    }
}

impl TransactionKey {
    /// `None` only for a request without Via or CSeq, which the entry point refuses.
    pub fn of(request: &Request) -> Option<TransactionKey> {
        let method = match request.method {
            Method::Ack => Method::Invite.to_string(),
            ref other => other.to_string(),
        };
        let top_via = request.headers.iter().find_map(|header| match header {
            Header::Via(via) => via.value().split(',').next().map(str::trim),
            _ => None,
        })?;
        let (sent, params) = top_via.split_once(';').unwrap_or((top_via, ""));
        let branch = params.split(';').find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim().eq_ignore_ascii_case("branch").then(|| value.trim())
        });
        if let Some(branch) = branch.filter(|branch| branch.starts_with("z9hG4bK")) {
            let sent_by = sent.rsplit_once('/')?.1.split_whitespace().nth(1)?.to_ascii_lowercase();
            return Some(TransactionKey::Branch { branch: branch.to_owned(), sent_by, method });
        }
        let mut call_id = None;
        let mut cseq = None;
        let mut from_tag = None;
        for header in request.headers.iter() {
            match header {
                Header::CallId(value) => call_id = Some(value.value().to_owned()),
                Header::CSeq(value) => cseq = value.value().split_whitespace().next().map(str::to_owned),
                Header::From(value) => from_tag = Some(tag_of(value.value()).unwrap_or_default().to_owned()),
                _ => {}
            }
        }
        Some(TransactionKey::Legacy {
            call_id: call_id?,
            cseq: cseq?,
            from_tag: from_tag.unwrap_or_default(),
            top_via: top_via.to_owned(),
            method,
        })
    }

    /// The key of the INVITE transaction a CANCEL with this key targets (RFC 3261 §9.2).
    pub fn cancelled_invite(&self) -> TransactionKey {
        let mut key = self.clone();
        match &mut key {
            TransactionKey::Branch { method, .. } | TransactionKey::Legacy { method, .. } => {
                *method = Method::Invite.to_string();
            }
        }
        key
    }
}
