//! The IMAP edge: one task per polled mailbox that logs in, reads every message after the last
//! UID processed, and waits for more (IDLE when the server offers it, RFC 2177; a poll otherwise);
//! the SMTP listener when `smtp_listen` is set (see `smtp`); one task that hands new cases to the
//! router, woken by both. A mailbox that fails is retried with a doubling back-off and its state
//! (last success, last error, next attempt) is kept for the admin page.
//!
//! Messages are read with `BODY.PEEK[]` and never flagged, moved or deleted: the mailbox stays
//! the municipality's, and loket's own position is the UID stored in `mailbox_state`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Client;
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use futures_util::TryStreamExt;
use loket_crm::records::inbound_mail;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::config::{MailboxConfig, Security};
use super::intake::{AckTemplates, IntakeError, Outcome, Processor, Source};
use super::route::route_pending;
use super::smtp::{SmtpLimits, SmtpListener};
use crate::work::WorkItems;

/// Messages fetched per command: bounds the memory a large backlog takes.
const FETCH_CHUNK: usize = 50;

/// Something that happened to a mailbox; tests and the benchmark wait on these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeEvent {
    /// A message processed: read over IMAP (with its UID) or delivered over SMTP (without).
    Processed {
        mailbox: String,
        uid: Option<u32>,
        outcome: Outcome,
    },
    /// Every message present when the pass began is processed; `idle` says how it now waits.
    CaughtUp {
        mailbox: String,
        idle: bool,
    },
    Failed {
        mailbox: String,
        error: String,
        failures: i64,
        retry_in: Duration,
    },
    /// New cases handed to the router.
    Routed {
        count: usize,
    },
    RoutingFailed {
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("cannot connect to {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("the folder {0:?} has no UIDVALIDITY")]
    NoUidValidity(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

/// The running intake; dropping it without `stop` aborts the tasks.
pub struct MailIntake {
    tasks: Vec<JoinHandle<()>>,
    smtp: Option<SmtpListener>,
    shutdown: watch::Sender<bool>,
    events: broadcast::Sender<IntakeEvent>,
}

impl MailIntake {
    /// Starts one poller per polled mailbox, the SMTP listener when `smtp_listen` is set, and the
    /// routing task, and returns a receiver that sees every event from the first.
    ///
    /// A listener that cannot bind its address is logged as an error naming `intake.smtp_listen`,
    /// and the rest runs without it: the MX keeps the mail and retries, as it does while loket is
    /// down. `smtp_addr` says whether it listens.
    pub fn start<W: WorkItems>(
        processor: Arc<Processor>,
        work: Arc<W>,
    ) -> (MailIntake, broadcast::Receiver<IntakeEvent>) {
        let (events, first_receiver) = broadcast::channel(16 * 1024);
        let (shutdown, _) = watch::channel(false);
        let route_now = Arc::new(Notify::new());
        let mut tasks = vec![tokio::spawn(run_routing(
            processor.clone(),
            work,
            route_now.clone(),
            events.clone(),
            shutdown.subscribe(),
        ))];
        let smtp = processor.config().intake.smtp_listen.and_then(|address| {
            let limits = SmtpLimits::new(processor.config().intake.smtp_max_message_bytes);
            match SmtpListener::start(address, processor.clone(), limits, route_now.clone(), events.clone()) {
                Ok(listener) => {
                    tracing::info!(address = %listener.local_addr(), "listening for SMTP deliveries");
                    Some(listener)
                }
                Err(error) => {
                    tracing::error!(%address, %error, "cannot listen for SMTP (intake.smtp_listen); running without");
                    None
                }
            }
        });
        for mailbox in processor.config().mailboxes.iter().filter(|mailbox| mailbox.polled()) {
            let poller = Poller {
                processor: processor.clone(),
                mailbox: mailbox.clone(),
                events: events.clone(),
                route_now: route_now.clone(),
                shutdown: shutdown.subscribe(),
            };
            tasks.push(tokio::spawn(poller.run()));
        }
        (MailIntake { tasks, smtp, shutdown, events }, first_receiver)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<IntakeEvent> {
        self.events.subscribe()
    }

    /// Where the SMTP listener accepts deliveries; `None` when it is not configured or could not
    /// bind its address.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp.as_ref().map(SmtpListener::local_addr)
    }

    /// Lets each mailbox and SMTP connection finish the message it is on, log out or answer 421,
    /// and stop.
    pub async fn stop(mut self) {
        if let Some(smtp) = self.smtp.take() {
            smtp.stop().await;
        }
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for MailIntake {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The wait after the `failures`-th failure in a row: `min`, doubling, at most `max`.
pub fn backoff(min: Duration, max: Duration, failures: i64) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    min.saturating_mul(2u32.saturating_pow(doublings)).min(max)
}

struct Poller {
    processor: Arc<Processor>,
    mailbox: MailboxConfig,
    events: broadcast::Sender<IntakeEvent>,
    route_now: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
}

impl Poller {
    async fn run(mut self) {
        let name = self.mailbox.name.clone();
        let settings = &self.processor.config().intake;
        let (min_backoff, max_backoff) = (settings.min_backoff, settings.max_backoff);
        loop {
            let error = match self.session().await {
                Ok(()) => return,
                Err(error) => error,
            };
            let db = self.processor.db();
            let now = self.processor.clock().now();
            // The back-off follows the stored count, so a restart does not hammer a dead server.
            let previous = inbound_mail::failures(db, &name).await.unwrap_or(0);
            let retry_in = backoff(min_backoff, max_backoff, previous + 1);
            let message = error.to_string();
            let failures = match inbound_mail::record_failure(db, &name, &message, now.plus(retry_in), now).await {
                Ok(failures) => failures,
                Err(db_error) => {
                    tracing::warn!(mailbox = %name, error = %db_error, "recording a mailbox failure failed");
                    previous + 1
                }
            };
            tracing::warn!(mailbox = %name, %error, ?retry_in, "mailbox failed; retrying");
            let _ = self.events.send(IntakeEvent::Failed { mailbox: name.clone(), error: message, failures, retry_in });
            tokio::select! {
                () = tokio::time::sleep(retry_in) => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }

    /// One connection, until shutdown (`Ok`) or a failure.
    async fn session(&mut self) -> Result<(), MailboxError> {
        let timeout = self.processor.config().intake.timeout;
        let address = format!("{}:{}", self.mailbox.host, self.mailbox.port);
        let tcp = within(timeout, async {
            TcpStream::connect(&address)
                .await
                .map_err(|source| MailboxError::Connect { address: address.clone(), source })
        })
        .await?;
        match self.mailbox.security {
            Security::Plain => self.converse(tcp).await,
            Security::Tls => {
                let tls = within(timeout, tls_connect(&self.mailbox.host, tcp)).await?;
                self.converse(tls).await
            }
        }
    }

    async fn converse<T>(&mut self, stream: T) -> Result<(), MailboxError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug,
    {
        let processor = self.processor.clone();
        let settings = &processor.config().intake;
        let db = processor.db();
        let name = self.mailbox.name.clone();
        let mut client = Client::new(stream);
        // Client::new reads nothing; the server's greeting comes first (RFC 3501 §7.1).
        within(settings.timeout, async { client.read_response().await.map_err(async_imap::error::Error::from) })
            .await?;
        let mut session = within(settings.timeout, async {
            client.login(&self.mailbox.username, &self.mailbox.password).await.map_err(|(error, _)| error)
        })
        .await?;
        let idle = within(settings.timeout, session.capabilities()).await?.has_str("IDLE");
        let folder = within(settings.timeout, session.select(&self.mailbox.folder)).await?;
        let uid_validity =
            folder.uid_validity.ok_or_else(|| MailboxError::NoUidValidity(self.mailbox.folder.clone()))?;
        let mut last_uid = inbound_mail::resume_point(db, &name, uid_validity).await?;
        loop {
            let acks = AckTemplates::load(db, &settings.ack_template).await?;
            let search =
                within(settings.timeout, session.uid_search(format!("UID {}:*", last_uid.saturating_add(1)))).await?;
            // `n:*` names the last message even when its UID is below n (RFC 3501 §6.4.8).
            let new: BTreeSet<u32> = search.into_iter().filter(|uid| *uid > last_uid).collect();
            let new: Vec<u32> = new.into_iter().collect();
            let mut opened = false;
            for chunk in new.chunks(FETCH_CHUNK) {
                let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
                let fetched: Vec<(u32, Vec<u8>)> = within(settings.timeout, async {
                    let stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
                    let fetches: Vec<_> = stream.try_collect().await?;
                    Ok::<_, async_imap::error::Error>(
                        fetches
                            .iter()
                            .filter_map(|fetch| Some((fetch.uid?, fetch.body().unwrap_or_default().to_vec())))
                            .collect(),
                    )
                })
                .await?;
                let mut fetched = fetched;
                fetched.sort_by_key(|(uid, _)| *uid);
                for (uid, raw) in fetched {
                    if uid <= last_uid {
                        continue;
                    }
                    let source = Source::Imap { uid_validity, uid };
                    let outcome = processor.process(&self.mailbox, source, &raw, &acks).await?;
                    last_uid = uid;
                    opened |= matches!(outcome, Outcome::NewCase { .. });
                    let _ = self.events.send(IntakeEvent::Processed { mailbox: name.clone(), uid: Some(uid), outcome });
                }
                if opened {
                    self.route_now.notify_one();
                }
                if *self.shutdown.borrow() {
                    return logout(session).await;
                }
            }
            inbound_mail::record_success(db, &name, processor.clock().now()).await?;
            // A message that arrived while this pass ran was announced (EXISTS) in the response
            // to one of its commands, and the server will not announce it again in IDLE: look
            // again first.
            let mut announced = false;
            while let Ok(response) = session.unsolicited_responses.try_recv() {
                announced |= matches!(response, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_));
            }
            if announced {
                continue;
            }
            let _ = self.events.send(IntakeEvent::CaughtUp { mailbox: name.clone(), idle });
            if idle {
                let mut handle = session.idle();
                within(settings.timeout, handle.init()).await?;
                let stopped = {
                    let (wait, _interrupt) = handle.wait_with_timeout(settings.idle_renewal);
                    tokio::select! {
                        // New data, a timeout for renewal, or an interrupt: each means look again.
                        response = wait => {
                            let _: IdleResponse = response?;
                            false
                        }
                        _ = self.shutdown.changed() => true,
                    }
                };
                session = within(settings.timeout, handle.done()).await?;
                if stopped {
                    return logout(session).await;
                }
            } else {
                tokio::select! {
                    () = tokio::time::sleep(settings.poll_interval) => {}
                    _ = self.shutdown.changed() => return logout(session).await,
                }
            }
        }
    }
}

async fn logout<T>(mut session: async_imap::Session<T>) -> Result<(), MailboxError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug,
{
    // Leaving politely is a courtesy; the state is already saved.
    let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
    Ok(())
}

async fn within<T, E>(limit: Duration, work: impl Future<Output = Result<T, E>>) -> Result<T, MailboxError>
where
    MailboxError: From<E>,
{
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(MailboxError::from),
        Err(_) => Err(MailboxError::Timeout(limit)),
    }
}

async fn tls_connect(host: &str, tcp: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, MailboxError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| MailboxError::Tls(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = ServerName::try_from(host.to_owned()).map_err(|error| MailboxError::Tls(error.to_string()))?;
    TlsConnector::from(Arc::new(config))
        .connect(server, tcp)
        .await
        .map_err(|error| MailboxError::Tls(error.to_string()))
}

/// Hands new cases to the router when a poller opened some, at start (cases a stopped process
/// left unrouted), and again after a failure.
async fn run_routing<W: WorkItems>(
    processor: Arc<Processor>,
    work: Arc<W>,
    route_now: Arc<Notify>,
    events: broadcast::Sender<IntakeEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = &processor.config().intake;
    let mut failures = 0;
    loop {
        let clock = processor.clock().clone();
        match route_pending(processor.db(), processor.config(), work.as_ref(), || clock.now()).await {
            Ok(count) => {
                failures = 0;
                if count > 0 {
                    let _ = events.send(IntakeEvent::Routed { count });
                }
            }
            Err(error) => {
                failures += 1;
                // The error names a case id, never a person.
                tracing::warn!(%error, "routing new e-mail cases failed; retrying");
                let _ = events.send(IntakeEvent::RoutingFailed { error: error.to_string() });
            }
        }
        let retry = (failures > 0).then(|| backoff(settings.min_backoff, settings.max_backoff, failures));
        tokio::select! {
            () = route_now.notified() => {}
            () = sleep_or_forever(retry) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_ceiling() {
        let (min, max) = (Duration::from_secs(5), Duration::from_secs(60));
        let waits: Vec<u64> = (1..=6).map(|failures| backoff(min, max, failures).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(min, max, 0), min);
        assert_eq!(backoff(min, max, i64::MAX), max);
    }
}
