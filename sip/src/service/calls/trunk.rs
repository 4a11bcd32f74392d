//! The trunk's side of the service: the application's calls to numbers through it, for a caller
//! ([`CallCommand::DialNumber`](crate::service::CallCommand::DialNumber)) or of its own
//! ([`Destination::Number`](crate::service::Destination::Number)), the answer to its
//! challenges, and loket's registration at it ([`Registration`] decides, this sends). Requests go
//! over UDP to the trunk, or to its outbound proxy with a Route naming it; its host name is looked
//! up for each call and each REGISTER.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use rsipstack::sip::{Header, Response};

use super::{Event, Found, Originating, Origination, Placement, SessionDescription, media_of, new_branch};
use crate::call::LegId;
use crate::dialog::Head;
use crate::digest::Challenge;
use crate::registrar::{LocationStore, contact_request, split_list, uri_of};
use crate::service::application::CallEvent;
use crate::service::{CredentialStore, Peer, Service};
use crate::transaction::{ClientKey, Kind, Transport};
use crate::transport::ReplyPath;
use crate::trunk::{Registration, RegistrationAction, RegistrationEvent, Trunk};

/// loket's registration at the trunk: the pure core and what its REGISTERs share.
pub(in crate::service) struct Registrar {
    core: Registration,
    call_id: String,
    tag: String,
    cseq: u32,
    /// The latest Send's number; a lookup finished for an older one is dropped.
    attempt: u64,
    /// The interval of the REGISTER being sent.
    expires: u32,
    /// The URI loket registers, `sip:CALLER_ID@ADDRESS`.
    contact: String,
    /// Its transaction, once sent.
    pending: Option<ClientKey>,
    /// The registrar's latest challenge, the header its answer goes in, and how often its nonce
    /// was used: renewals reuse it, so that most need no second round.
    challenge: Option<(&'static str, Challenge, u32)>,
}

impl Registrar {
    /// `None` unless the trunk's settings ask for a registration.
    pub(super) fn new(trunk: &Trunk, udp: SocketAddr) -> Option<Registrar> {
        let expires = trunk.register?;
        Some(Registrar {
            contact: format!("sip:{}@{udp}", trunk.caller_id),
            core: Registration::new(expires, trunk.retry),
            call_id: format!("{:016x}{:016x}@loket", rand::random::<u64>(), rand::random::<u64>()),
            tag: format!("lk{:016x}", rand::random::<u64>()),
            cseq: 0,
            attempt: 0,
            expires,
            pending: None,
            challenge: None,
        })
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.core.next_deadline()
    }
}

/// The header a challenge's answer goes in: Authorization for a 401, Proxy-Authorization for a
/// 407 (RFC 3261 §22.2, §22.3).
fn challenge_of(response: &Response) -> Option<(&'static str, Challenge)> {
    let proxy = response.status_code.code() == 407;
    // RFC 8760 §2.4: the first challenge the client can answer, in the server's order.
    let challenge = response.headers.iter().find_map(|header| match header {
        Header::WwwAuthenticate(value) if !proxy => Challenge::parse(value.value()).ok(),
        Header::ProxyAuthenticate(value) if proxy => Challenge::parse(value.value()).ok(),
        _ => None,
    })?;
    Some((if proxy { "Proxy-Authorization" } else { "Authorization" }, challenge))
}

fn cnonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Looks up `host_port`'s first address of the family of loket's socket (`ipv4`).
async fn resolve(host_port: String, ipv4: bool) -> io::Result<SocketAddr> {
    let (host, port) = crate::trunk::host_port(&host_port)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not host:port"))?;
    let mut addresses = tokio::net::lookup_host((host, port)).await?;
    addresses
        .find(|address| address.is_ipv4() == ipv4)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address of the family of loket's socket"))
}

/// A number as loket dials it: `+` and digits only, since it becomes a URI's user part as is.
fn is_dialable(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty() && digits.len() <= 32 && digits.bytes().all(|b| b.is_ascii_digit())
}

impl<C: CredentialStore, L: LocationStore> Service<C, L> {
    /// Looks up the trunk's next hop for the callee of the application's call `id`, or, when
    /// `originated`, for its new call `id`; [`Self::on_found`] dials.
    pub(super) fn dial_number(&mut self, id: LegId, number: String, offer: String, originated: bool) {
        let failed = |status| CallEvent::CalleeFailed { call: id, status };
        let Some(trunk) = &self.calls.settings.trunk else {
            // The number may be a citizen's (a callback), so it stays out of the log.
            tracing::warn!("a number cannot be dialled without a trunk ([sip.trunk])");
            self.calls.report(failed(503));
            return;
        };
        if !is_dialable(&number) {
            tracing::warn!("only + and digits can be dialled");
            self.calls.report(failed(484));
            return;
        }
        let next_hop = trunk.next_hop().to_owned();
        if originated {
            if !self.may_originate(id) {
                return;
            }
            self.calls.originating.insert(id, Originating::LookingUp(offer));
        } else if !self.may_dial(id, offer) {
            return;
        }
        let (found, ipv4) = (self.calls.found_tx.clone(), self.calls.local.udp.is_ipv4());
        tokio::spawn(async move {
            let addr = resolve(next_hop, ipv4).await;
            // The service task only goes away with the whole service.
            let _ = found.send(Found::Trunk { leg: id, number, addr, originated });
        });
    }

    /// The trunk's next hop is known: the call to `number` leaves for it.
    pub(super) fn on_trunk_found(
        &mut self,
        leg: LegId,
        number: String,
        addr: io::Result<SocketAddr>,
        originated: bool,
    ) {
        let Some(trunk) = self.calls.settings.trunk.as_ref() else { return };
        let offer = if originated {
            // Hung up while its trunk was looked up: it is not placed.
            let Some(Originating::LookingUp(offer)) = self.calls.originating.remove(&leg) else { return };
            Some(offer)
        } else {
            None
        };
        let addr = match addr {
            Ok(addr) => addr,
            Err(error) => {
                tracing::warn!(next_hop = trunk.next_hop(), %error, "the trunk cannot be reached");
                self.calls.report(CallEvent::CalleeFailed { call: leg, status: 503 });
                return;
            }
        };
        let placement = Placement {
            from: format!("<sip:{}@{}>", trunk.caller_id, trunk.host),
            route: trunk.route(),
            trunk: true,
            timers: crate::call::Timers { answer_guard: trunk.ring_timeout, ..crate::call::Timers::default() },
        };
        let target = format!("sip:{number}@{}", trunk.host);
        let now = Instant::now();
        let callee = self.calls.over_udp(target, addr);
        let Some(offer) = offer else { return self.place(now, leg, vec![callee], placement) };
        // One leg under the application's id, with no caller to bridge: it reports itself.
        let call = self.calls.outbound(leg, callee, &placement);
        call.application = true;
        call.origination = Some(Origination::Dialling);
        call.media = media_of(&offer);
        self.feed_call(now, leg, Event::Dial { offer: Some(SessionDescription(offer)) });
    }

    /// Keeps the answer to the trunk's 401 or 407 to leg `id`'s INVITE; `false` when the leg is
    /// not the trunk's or the challenge cannot be answered, so that it counts as a refusal.
    pub(super) fn answer_challenge(&mut self, id: LegId, response: &Response) -> bool {
        let Some(trunk) = self.calls.settings.trunk.as_ref() else { return false };
        let Some(call) = self.calls.calls.get_mut(&id).filter(|call| call.trunk) else { return false };
        let Some((header, challenge)) = challenge_of(response) else {
            tracing::warn!(status = response.status_code.code(), "the trunk's challenge cannot be answered");
            return false;
        };
        let uri = call.dialog.remote_target();
        let value = challenge.answer(&trunk.username, trunk.password.expose(), "INVITE", uri, &cnonce(), 1);
        call.credentials = Some((header, value));
        true
    }

    /// Starts the registration at the trunk, if there is one to make.
    pub(in crate::service) fn start_registration(&mut self) {
        self.feed_registration(Instant::now(), RegistrationEvent::Start);
    }

    /// Removes the registration at the trunk; [`Self::registration_over`] says when it is done.
    pub(in crate::service) fn stop_registration(&mut self) {
        self.feed_registration(Instant::now(), RegistrationEvent::Stop);
    }

    pub(in crate::service) fn registration_over(&self) -> bool {
        self.calls.registrar.as_ref().is_none_or(|registrar| registrar.core.is_stopped())
    }

    pub(super) fn is_registering(&self, key: &ClientKey) -> bool {
        self.calls.registrar.as_ref().is_some_and(|registrar| registrar.pending.as_ref() == Some(key))
    }

    pub(super) fn feed_registration(&mut self, now: Instant, event: RegistrationEvent) {
        let (Some(registrar), Some(trunk)) = (self.calls.registrar.as_mut(), self.calls.settings.trunk.as_ref()) else {
            return;
        };
        for action in registrar.core.handle(now, event) {
            let (host, username) = (&trunk.host, &trunk.username);
            match action {
                RegistrationAction::Send { expires } => {
                    registrar.attempt += 1;
                    registrar.expires = expires;
                    registrar.pending = None;
                    let (found, attempt) = (self.calls.found_tx.clone(), registrar.attempt);
                    let (next_hop, ipv4) = (trunk.next_hop().to_owned(), self.calls.local.udp.is_ipv4());
                    tokio::spawn(async move {
                        let addr = resolve(next_hop, ipv4).await;
                        // The service task only goes away with the whole service.
                        let _ = found.send(Found::Registrar { attempt, addr });
                    });
                }
                RegistrationAction::Registered { expires } => {
                    tracing::info!(%host, %username, expires, "registered at the trunk");
                }
                RegistrationAction::Failed { status, retry_in } => {
                    tracing::warn!(%host, %username, ?status, ?retry_in, "the registration at the trunk failed");
                }
                RegistrationAction::Stopped => tracing::info!(%host, %username, "the registration at the trunk ended"),
            }
        }
    }

    /// The next hop for the REGISTER of `attempt` is known: it leaves.
    pub(super) fn on_registrar_found(&mut self, attempt: u64, addr: io::Result<SocketAddr>) {
        if self.calls.registrar.as_ref().is_none_or(|registrar| registrar.attempt != attempt) {
            return;
        }
        match addr {
            Ok(addr) => self.send_register(Instant::now(), addr),
            Err(error) => {
                tracing::warn!(%error, "the trunk's registrar cannot be reached");
                self.feed_registration(Instant::now(), RegistrationEvent::NoResponse);
            }
        }
    }

    fn send_register(&mut self, now: Instant, addr: SocketAddr) {
        let (udp, socket) = (self.calls.local.udp, self.calls.socket.clone());
        let (Some(registrar), Some(trunk)) = (self.calls.registrar.as_mut(), self.calls.settings.trunk.as_ref()) else {
            return;
        };
        registrar.cseq += 1;
        let branch = new_branch();
        let uri = format!("sip:{}", trunk.host);
        let aor = format!("<sip:{}@{}>", trunk.username, trunk.host);
        let (via, from) = (format!("SIP/2.0/UDP {udp};branch={branch};rport"), format!("{aor};tag={}", registrar.tag));
        let routes: Vec<String> = trunk.route().into_iter().collect();
        let contact = format!("<{}>", registrar.contact);
        let expires = registrar.expires.to_string();
        let mut headers = vec![("Contact", contact), ("Expires", expires)];
        if let Some((header, challenge, uses)) = registrar.challenge.as_mut() {
            *uses += 1;
            let answer = challenge.answer(&trunk.username, trunk.password.expose(), "REGISTER", &uri, &cnonce(), *uses);
            headers.push((*header, answer));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let head = Head { uri: &uri, via: &via, routes: &routes, from: &from, to: &aor };
        let request = head.write("REGISTER", &registrar.call_id, registrar.cseq, &headers, "");
        let key = ClientKey { branch, method: "REGISTER".to_owned() };
        let peer = Peer { path: ReplyPath::Datagram(socket), addr };
        let started = self.calls.client.start(
            now,
            key.clone(),
            Kind::NonInvite,
            Transport::Unreliable,
            peer,
            request.into_bytes().into(),
        );
        match started {
            Some(outputs) => {
                registrar.pending = Some(key);
                self.client_outputs(now, outputs, None);
            }
            None => {
                tracing::warn!("no room for the REGISTER's client transaction");
                self.feed_registration(now, RegistrationEvent::NoResponse);
            }
        }
    }

    /// A response to the REGISTER in flight.
    pub(super) fn on_register_response(&mut self, now: Instant, response: &Response) {
        let status = response.status_code.code();
        let Some(registrar) = self.calls.registrar.as_mut() else { return };
        let event = match status {
            100..=199 => return,
            200..=299 => {
                RegistrationEvent::Accepted { granted: Some(granted(response, &registrar.contact, registrar.expires)) }
            }
            401 | 407 => match challenge_of(response) {
                Some((header, challenge)) => {
                    registrar.challenge = Some((header, challenge, 0));
                    RegistrationEvent::Challenged { status }
                }
                None => RegistrationEvent::Refused { status },
            },
            423 => match min_expires(response) {
                Some(min_expires) => RegistrationEvent::IntervalTooBrief { min_expires },
                None => RegistrationEvent::Refused { status },
            },
            _ => RegistrationEvent::Refused { status },
        };
        self.feed_registration(now, event);
    }
}

/// The interval a 2xx to a REGISTER grants loket's `contact` (RFC 3261 §10.2.4): its `expires`
/// among the bindings listed, else the Expires header, else what was `asked`.
fn granted(response: &Response, contact: &str, asked: u32) -> u32 {
    let expires_header = response.headers.iter().find_map(|header| match header {
        Header::Expires(value) => value.value().trim().parse().ok(),
        _ => None,
    });
    let default = expires_header.unwrap_or(asked);
    let mut listed = response.headers.iter().filter_map(|header| match header {
        Header::Contact(value) => Some(value.value()),
        _ => None,
    });
    listed
        .find_map(|value| {
            split_list(value)
                .into_iter()
                .filter(|listed| uri_of(listed).eq_ignore_ascii_case(contact))
                .find_map(|listed| contact_request(listed, default).ok())
        })
        .map_or(default, |binding| binding.expires)
}

fn min_expires(response: &Response) -> Option<u32> {
    response.headers.iter().find_map(|header| match header {
        Header::MinExpires(value) => value.value().trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
