//! The SIP service: the edge that runs the pure cores on real sockets. UDP and TCP listeners
//! ([`crate::transport`]) hand accepted messages to one task through a bounded queue (full: 503
//! at once). That task owns the server transactions, the digest nonces and the failed-auth
//! limiter, so none of them needs a lock. It answers:
//! - REGISTER: the registrar with digest authentication. The parts that wait (the credentials in
//!   the CRM, the location store) run as their own tasks, at most `max_registrations_in_flight`
//!   at once (503 beyond), and report back to the service task, which sends the answer through the
//!   transaction;
//! - OPTIONS: 200 with what loket accepts (RFC 3261 §11.2);
//! - INVITE: a call to a configured number ([`calls`]): handed to the application (target `ivr`,
//!   [`application`]), answered by loket itself (target `answer`) or bridged to an agent's registered phones or a SIP URI; 404 for an unknown
//!   number, 503 with Retry-After beyond the call limits;
//! - requests with a To tag: within a call's dialog (ACK, BYE, re-INVITE, UPDATE, INFO), else 481;
//! - CANCEL: to the call of its INVITE, else 200 if that INVITE's transaction is alive, else 481;
//! - other methods: 501. Responses go to loket's client transactions (INVITE, CANCEL, BYE, ...).
//!
//! With a trunk in the settings, loket registers there if asked to (and removes the binding when
//! [`Sockets::serve_until`] is told to stop), and the application dials numbers and originates
//! calls through it; it originates calls to agents' registered phones, trunk or not.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rsipstack::sip::{Header, Method, Request, Uri};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc};

use crate::digest::{Algorithm, Credentials as Authorization, DigestAuth, StoredHa1, Verdict};
use crate::message::{Inbound, Limits, Reply};
use crate::ratelimit::{self, FailedAuth};
use crate::registrar::{self, LocationStore, Policy, Refusal, Register};
use crate::transaction::{Dispatch, Output, RequestKind, ServerTransactions, Timers, TransactionKey};
use crate::transport::{Protocol, Received, ReplyPath, TcpOptions, serve_tcp, serve_udp, serve_ws};

/// What OPTIONS advertises; the methods are those this service answers.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO";

pub mod application;
mod calls;

pub use application::{Application, CallCommand, CallEvent, CallIds, Destination};
pub use calls::{CallSettings, Number, Overload, Target};

/// Where agents' SIP credentials come from (the CRM in the binary).
pub trait CredentialStore: Send + Sync + 'static {
    type Error: std::fmt::Display + Send;
    /// The HA1 values of `username` in the service's realm; `None` for an unknown user.
    fn find(&self, username: &str) -> impl Future<Output = Result<Option<StoredHa1>, Self::Error>> + Send;
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The domain of the addresses-of-record, which is also the digest realm.
    pub domain: String,
    /// Offered in this order; see [`DigestAuth::new`].
    pub algorithms: Vec<Algorithm>,
    pub registrar: Policy,
    pub failed_auth: ratelimit::Limits,
    pub nonce_lifetime: Duration,
    pub limits: Limits,
    pub max_transactions: usize,
    /// Messages waiting for the service task.
    pub queue: usize,
    pub max_registrations_in_flight: usize,
    pub calls: CallSettings,
}

impl Settings {
    pub fn new(domain: impl Into<String>, registrar: Policy) -> Settings {
        Settings {
            domain: domain.into(),
            algorithms: Algorithm::OFFERED.to_vec(),
            registrar,
            failed_auth: ratelimit::Limits::default(),
            // Long enough for a slow phone to answer, short enough to bound replays.
            nonce_lifetime: Duration::from_secs(300),
            limits: Limits::default(),
            // At 1,000 transactions a second each living up to 64·T1 (see the table).
            max_transactions: 40_000,
            queue: 4_096,
            max_registrations_in_flight: 256,
            calls: CallSettings::default(),
        }
    }
}

/// The bound sockets; [`Sockets::serve`] runs the service on them.
pub struct Sockets {
    udp: UdpSocket,
    tcp: TcpListener,
    ws: Option<TcpListener>,
}

/// loket's own addresses, for its Via and Contact on each transport.
#[derive(Debug, Clone, Copy)]
struct Addresses {
    udp: SocketAddr,
    tcp: SocketAddr,
    ws: Option<SocketAddr>,
}

impl Sockets {
    /// Binds UDP and TCP; a port of 0 picks a free one (see [`Sockets::udp_addr`]).
    pub async fn bind(udp: SocketAddr, tcp: SocketAddr) -> io::Result<Sockets> {
        Ok(Sockets { udp: bind_udp(udp)?, tcp: TcpListener::bind(tcp).await?, ws: None })
    }

    /// Also serves SIP over WebSocket (RFC 7118) on `ws`.
    pub async fn with_ws(self, ws: SocketAddr) -> io::Result<Sockets> {
        Ok(Sockets { ws: Some(TcpListener::bind(ws).await?), ..self })
    }

    pub fn ws_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.ws.as_ref().map(TcpListener::local_addr).transpose()
    }

    pub fn udp_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    pub fn tcp_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves until a socket fails; the caller stops it by dropping the future. Without an
    /// `application`, calls to numbers with the target `ivr` are answered 503.
    pub async fn serve(
        self,
        settings: Settings,
        credentials: impl CredentialStore,
        locations: impl LocationStore,
        application: Option<Application>,
    ) -> io::Result<()> {
        self.serve_until(settings, credentials, locations, application, std::future::pending()).await
    }

    /// [`Sockets::serve`] until `shutdown` resolves too: then loket's registration at the trunk is
    /// removed, waiting at most [`UNREGISTER_TIMEOUT`] for the registrar, and it returns.
    pub async fn serve_until(
        self,
        settings: Settings,
        credentials: impl CredentialStore,
        locations: impl LocationStore,
        application: Option<Application>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let (inbound, queue) = mpsc::channel(settings.queue);
        // A phone registered over a connection is called through it: the connection must last
        // until the registration's refresh.
        let quiet_timeout =
            Duration::from_secs(settings.registrar.max_expires.into()) + TcpOptions::default().idle_timeout;
        let tcp = TcpOptions { limits: settings.limits, quiet_timeout, ..TcpOptions::default() };
        let never = std::future::pending::<()>;
        let addresses = Addresses { udp: self.udp.local_addr()?, tcp: self.tcp.local_addr()?, ws: self.ws_addr()? };
        // A second handle on the UDP socket, for the requests loket sends itself (calls).
        let udp = self.udp.into_std()?;
        let sender = Arc::new(UdpSocket::from_std(udp.try_clone()?)?);
        // Its `try_send_to` fails until the reactor has seen it writable once: without this,
        // loket's first request (a REGISTER, an INVITE) would wait for its retransmission.
        sender.writable().await?;
        let udp = UdpSocket::from_std(udp)?;
        // Without an application, no id is drawn elsewhere.
        let ids = application.as_ref().map_or_else(CallIds::default, |app| app.ids.clone());
        let (events, commands) = application.map(|app| (app.events, app.commands)).unzip();
        let service = Service::new(settings.clone(), credentials, locations, addresses, sender, events, ids);
        let ws = async {
            match self.ws {
                Some(listener) => serve_ws(listener, tcp, enqueue(inbound.clone()), never()).await,
                None => {
                    never().await;
                    Ok(())
                }
            }
        };
        tokio::select! {
            result = serve_udp(udp, settings.limits, enqueue(inbound.clone()), never()) => result,
            result = serve_tcp(self.tcp, tcp, enqueue(inbound.clone()), never()) => result,
            result = ws => result,
            () = service.run(queue, commands, shutdown) => Ok(()),
        }
    }
}

/// With nothing to time, the service's timer still wakes it this often.
const IDLE_WAKE_UP: Duration = Duration::from_secs(1);

/// How long a stopping service waits for the trunk's registrar to confirm that loket's binding
/// is gone; a registrar that does not answer lets the binding expire.
pub const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// Linux's default UDP receive buffer (208 KiB) holds about 150 ms of a 4,000 calls/s load; a
/// burst beyond it, or a moment without the CPU on a busy machine, drops datagrams, and a dropped
/// 100 Trying makes loket retransmit an INVITE (Kamailio probes its buffer up for the same
/// reason). 4 MiB is the usual `net.core.rmem_max`; the kernel caps what it grants at that.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, None)?;
    if let Err(error) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        // Not fatal: the default buffer works, with drops under bursts.
        tracing::warn!(%error, "the SIP UDP receive buffer could not be enlarged");
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// The transports' handler: queue the message, or answer 503 when the queue is full.
fn enqueue(inbound: mpsc::Sender<Received>) -> impl Fn(Received) -> Option<Vec<u8>> + Send + Sync + 'static {
    move |received| match inbound.try_send(received) {
        Ok(()) => None,
        Err(mpsc::error::TrySendError::Full(Received { message: Inbound::Request(request), .. }))
            if request.method != Method::Ack =>
        {
            Some(service_unavailable(&request).into_bytes())
        }
        Err(_) => None,
    }
}

fn service_unavailable(request: &Request) -> Reply {
    Reply::to_request_with(request, 503, "Service Unavailable", &[("Retry-After", "5")], &[])
}

/// Where a transaction's responses go.
#[derive(Debug, Clone)]
struct Peer {
    path: ReplyPath,
    addr: SocketAddr,
}

/// A REGISTER's answer, from its task back to the service task.
struct Done {
    key: TransactionKey,
    reply: Reply,
    failed_auth_from: Option<IpAddr>,
}

struct Service<C, L> {
    settings: Settings,
    auth: DigestAuth,
    transactions: ServerTransactions<Peer>,
    failed_auth: FailedAuth,
    credentials: Arc<C>,
    locations: Arc<L>,
    in_flight: Arc<Semaphore>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    calls: calls::Calls,
}

impl<C: CredentialStore, L: LocationStore> Service<C, L> {
    /// `addresses` are the bound UDP and TCP addresses, for loket's Via and Contact; `ids` are
    /// shared with the application.
    fn new(
        settings: Settings,
        credentials: C,
        locations: L,
        addresses: Addresses,
        sender: Arc<UdpSocket>,
        application: Option<mpsc::UnboundedSender<CallEvent>>,
        ids: CallIds,
    ) -> Service<C, L> {
        // Per process: a restart invalidates outstanding nonces, and clients get one more 401.
        let auth =
            DigestAuth::new(settings.domain.clone(), rand::random(), settings.nonce_lifetime, &settings.algorithms);
        // Admitted calls must not be refused for want of transactions (see `transactions_for`).
        let max_transactions = settings.max_transactions.max(calls::transactions_for(&settings.calls));
        let transactions = ServerTransactions::new(Instant::now(), Timers::default(), max_transactions);
        // Unbounded, but holds at most `max_registrations_in_flight` answers: one per permit.
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let calls = calls::Calls::new(Instant::now(), settings.calls.clone(), addresses, sender, application, ids);
        Service {
            calls,
            auth,
            transactions,
            failed_auth: FailedAuth::new(settings.failed_auth),
            credentials: Arc::new(credentials),
            locations: Arc::new(locations),
            in_flight: Arc::new(Semaphore::new(settings.max_registrations_in_flight)),
            settings,
            done_tx,
            done_rx,
        }
    }

    async fn run(
        mut self,
        mut queue: mpsc::Receiver<Received>,
        mut commands: Option<mpsc::UnboundedReceiver<CallCommand>>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut purge = tokio::time::interval(Duration::from_secs(60));
        let mut shutdown = std::pin::pin!(shutdown);
        // Once asked to stop: until when the registrar's answer is awaited.
        let mut stopping: Option<Instant> = None;
        self.start_registration();
        // One timer for every deadline, moved only when the next deadline comes earlier or after
        // it fired: a fresh Tokio timer per message would update the timer wheel, and often wake
        // the driver, for every message. A wake-up before the real deadline finds nothing due.
        let sleep = tokio::time::sleep(IDLE_WAKE_UP);
        tokio::pin!(sleep);
        let mut armed = sleep.deadline();
        loop {
            let now = Instant::now();
            if stopping.is_some_and(|until| self.registration_over() || now >= until) {
                return;
            }
            let deadline =
                [self.transactions.next_deadline(), self.calls.next_deadline(), stopping].into_iter().flatten().min();
            let deadline = tokio::time::Instant::from_std(deadline.unwrap_or(now + IDLE_WAKE_UP));
            if deadline < armed || sleep.is_elapsed() {
                sleep.as_mut().reset(deadline);
                armed = deadline;
            }
            tokio::select! {
                () = &mut shutdown, if stopping.is_none() => {
                    stopping = Some(Instant::now() + UNREGISTER_TIMEOUT);
                    self.stop_registration();
                }
                received = queue.recv() => match received {
                    Some(received) => self.on_received(received),
                    None => return,
                },
                Some(done) = self.done_rx.recv() => self.on_done(done),
                Some(found) = self.calls.found_rx.recv() => self.on_found(found),
                Some(command) = next_command(&mut commands) => self.on_command(command),
                () = &mut sleep => {
                    let now = Instant::now();
                    let outputs = self.transactions.on_deadline(now);
                    self.send(outputs);
                    self.on_calls_deadline(now);
                }
                _ = purge.tick() => {
                    self.failed_auth.purge(Instant::now());
                    self.calls.purge_connections();
                }
            }
        }
    }

    fn on_received(&mut self, received: Received) {
        let Received { message, source, protocol, reply } = received;
        let transport = protocol.reliability();
        let request = match message {
            Inbound::Request(request) => request,
            Inbound::Response(response) => return self.on_response(response),
        };
        let Some(key) = TransactionKey::of(&request) else { return };
        let now = Instant::now();
        let peer = Peer { path: reply, addr: source };
        match self.transactions.on_request(now, key.clone(), RequestKind::of(&request.method), transport, peer.clone())
        {
            Dispatch::Handled(outputs) => self.send(outputs),
            Dispatch::Overloaded => {
                peer.path.try_send(service_unavailable(&request).as_bytes(), peer.addr);
            }
            // A CANCEL is matched to its INVITE's transaction whatever its To (RFC 3261 §9.2).
            Dispatch::ToTransactionUser if request.method != Method::Cancel && has_to_tag(&request) => {
                self.on_in_dialog(request, key)
            }
            Dispatch::ToTransactionUser => match request.method {
                Method::Ack => {}
                Method::Register => {
                    self.calls.remember_connection(protocol, source, &peer.path);
                    self.on_register(request, key, source, protocol)
                }
                Method::Options => {
                    let headers = [("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "")];
                    self.respond(&key, Reply::to_request_with(&request, 200, "OK", &headers, &[]));
                }
                Method::Invite => self.on_invite(request, key, peer, protocol),
                Method::Cancel if self.calls.is_cancellable(&key.cancelled_invite()) => self.on_cancel(request, key),
                Method::Cancel if self.transactions.contains(&key.cancelled_invite()) => {
                    self.respond(&key, Reply::to_request(&request, 200, "OK"));
                }
                Method::Cancel | Method::Bye => {
                    self.respond(&key, Reply::to_request(&request, 481, "Call/Transaction Does Not Exist"));
                }
                _ => self.respond(&key, Reply::to_request(&request, 501, "Not Implemented")),
            },
        }
    }

    fn on_register(&mut self, request: Request, key: TransactionKey, source: SocketAddr, protocol: Protocol) {
        if self.failed_auth.is_blocked(source.ip(), Instant::now()) {
            self.respond(&key, Reply::to_request(&request, 403, "Forbidden"));
            return;
        }
        let authorization = request.headers.iter().find_map(|header| match header {
            Header::Authorization(value) => Some(value.value()),
            _ => None,
        });
        let Some(authorization) = authorization else {
            let reply = challenge(&self.auth, &request, false);
            self.respond(&key, reply);
            return;
        };
        let authorization = match Authorization::parse(authorization) {
            Ok(authorization) => authorization,
            Err(_) => {
                self.respond(&key, Reply::to_request(&request, 400, "Bad Authorization"));
                return;
            }
        };
        let register = match Register::parse(&request, &self.settings.domain, self.settings.registrar.default_expires) {
            Ok(register) => register,
            Err(refusal) => {
                self.respond(&key, refused(&request, refusal));
                return;
            }
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            self.respond(&key, service_unavailable(&request));
            return;
        };
        let task = Registration {
            auth: self.auth.clone(),
            policy: self.settings.registrar,
            credentials: self.credentials.clone(),
            locations: self.locations.clone(),
            request,
            authorization,
            register,
            source,
            protocol,
        };
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let (reply, failed_auth) = task.run().await;
            let failed_auth_from = failed_auth.then_some(source.ip());
            // The service task only goes away with the whole service.
            let _ = done.send(Done { key, reply, failed_auth_from });
            drop(permit);
        });
    }

    fn on_done(&mut self, done: Done) {
        if let Some(source) = done.failed_auth_from {
            self.failed_auth.record_failure(source, Instant::now());
        }
        self.respond(&done.key, done.reply);
    }

    fn respond(&mut self, key: &TransactionKey, reply: Reply) {
        let status = reply.status();
        let outputs = self.transactions.respond(Instant::now(), key, status, reply.into_bytes().into());
        self.send(outputs);
    }

    fn send(&mut self, outputs: Vec<Output<Peer>>) {
        for output in outputs {
            if let Output::Send { to, bytes } = output {
                send_to(&to, &bytes);
            }
        }
    }
}

/// The part of a REGISTER that waits for the credentials and the location store.
struct Registration<C, L> {
    auth: DigestAuth,
    policy: Policy,
    credentials: Arc<C>,
    locations: Arc<L>,
    request: Request,
    authorization: Authorization,
    register: Register,
    source: SocketAddr,
    protocol: Protocol,
}

impl<C: CredentialStore, L: LocationStore> Registration<C, L> {
    /// The answer, and whether it counts as a failed authentication.
    async fn run(self) -> (Reply, bool) {
        let request = &self.request;
        let username = &self.authorization.username;
        let stored = match self.credentials.find(username).await {
            Ok(Some(stored)) => stored,
            // Counted like a wrong password, so that guessing user names is limited too.
            Ok(None) => return (refused(request, Refusal::NotFound), true),
            Err(error) => {
                tracing::warn!(%error, "SIP credentials are unavailable");
                return (Reply::to_request(request, 500, "Server Internal Error"), false);
            }
        };
        let uri = &self.authorization.uri;
        let uri_matches =
            *uri == request.uri.to_string() || Uri::try_from(uri.as_str()).is_ok_and(|uri| uri == request.uri);
        let now = SystemTime::now();
        match self.auth.verify(now, "REGISTER", &self.authorization, &stored, uri_matches) {
            Verdict::Valid => {}
            Verdict::Stale => return (challenge(&self.auth, request, true), false),
            Verdict::Refused(reason) => {
                tracing::info!(%username, source = %self.source, %reason, "SIP authentication failed");
                return (Reply::to_request(request, 403, "Forbidden"), true);
            }
        }
        // RFC 3261 §10.3 step 6: an authenticated user registers only its own address-of-record.
        if self.register.user != *username {
            return (refused(request, Refusal::Forbidden), false);
        }
        let apply = |current| self.register.apply(current, now, &self.policy, self.source, self.protocol);
        match self.locations.update(&self.register.aor, now, &apply).await {
            Ok(Ok(bindings)) => {
                let contacts = registrar::contact_headers(&bindings, now);
                let headers: Vec<(&str, &str)> = contacts.iter().map(|contact| ("Contact", contact.as_str())).collect();
                (Reply::to_request_with(request, 200, "OK", &headers, &[]), false)
            }
            Ok(Err(refusal)) => (refused(request, refusal), false),
            Err(error) => {
                tracing::warn!(%error, "the location store failed");
                (Reply::to_request(request, 500, "Server Internal Error"), false)
            }
        }
    }
}

fn challenge(auth: &DigestAuth, request: &Request, stale: bool) -> Reply {
    let challenges = auth.challenges(SystemTime::now(), stale);
    let headers: Vec<(&str, &str)> =
        challenges.iter().map(|challenge| ("WWW-Authenticate", challenge.as_str())).collect();
    Reply::to_request_with(request, 401, "Unauthorized", &headers, &[])
}

fn refused(request: &Request, refusal: Refusal) -> Reply {
    match refusal {
        Refusal::IntervalTooBrief { min_expires } => {
            let min_expires = min_expires.to_string();
            Reply::to_request_with(request, 423, refusal.reason(), &[("Min-Expires", &min_expires)], &[])
        }
        _ => Reply::to_request(request, refusal.status(), refusal.reason()),
    }
}

/// UDP: a lost datagram, recovered by retransmission; TCP: a peer that stopped reading. Either
/// way the transactions end by their own timers.
fn send_to(peer: &Peer, bytes: &[u8]) {
    if !peer.path.try_send(bytes, peer.addr) {
        tracing::debug!(to = %peer.addr, "a SIP message could not be sent");
    }
}

/// Whether the request belongs to a dialog (RFC 3261 §12.2: a To tag).
fn has_to_tag(request: &Request) -> bool {
    request.headers.iter().any(|header| matches!(header, Header::To(to) if crate::dialog::tag_of(to.value()).is_some()))
}

/// The application's next command; never, without an application or once it has gone.
async fn next_command(commands: &mut Option<mpsc::UnboundedReceiver<CallCommand>>) -> Option<CallCommand> {
    match commands {
        Some(receiver) => match receiver.recv().await {
            Some(command) => Some(command),
            None => {
                *commands = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
