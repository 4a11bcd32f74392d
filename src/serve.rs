//! `loket serve`: open the database, optionally seed the demo, and serve the console until
//! SIGINT or SIGTERM, letting requests in flight finish.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use loket_crm::clock::Clock;
use loket_crm::db::{Db, redact_password};
use loket_crm::mail::Mailer;
use loket_crm::records::documents::DiskStore;
use loket_crm::web::{AppState, WebConfig, router};

use loket_crm::desk::Desk;
use loket_crm::records::documents::DocumentStore;
use loket_flows::desk::RouterDesk;
use loket_flows::email::intake::Processor;
use loket_flows::email::poller::MailIntake;
use loket_flows::voice::{Prompts, Voice};
use loket_ivr::Ivr;
use loket_media::edge::MediaEngine;
use loket_routing::engine::{EngineOptions, Router};
use loket_routing::model::RouterSettings;
use loket_routing::store::QueueStore;
use loket_sip::digest::StoredHa1;
use loket_sip::registrar::redis::RedisStore;
use loket_sip::registrar::{MemoryStore, Policy};
use loket_sip::service::application::{self, ApplicationEnds};
use loket_sip::service::{CallSettings, CredentialStore, Overload, Settings, Sockets};

use crate::config::{Config, LocationStoreConfig};

const CREDENTIALS_FILE: &str = "demo-credentials.txt";
const SIP_CREDENTIALS_FILE: &str = "demo-sip-credentials.txt";

pub async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    // Checked before anything starts: a broken flow must not surface on a citizen's call.
    let ivr = config.ivr.load().map_err(|errors| anyhow::anyhow!("invalid IVR configuration:\n{errors}"))?;
    tracing::info!(flows = ivr.flows().len(), "IVR flows loaded");
    let prompts_dir = config.ivr.prompts_dir();
    let prompts = Prompts::load(&prompts_dir, &ivr)
        .with_context(|| format!("the IVR recordings in {} (ivr.prompts)", prompts_dir.display()))?;
    let media = MediaEngine::new(config.media.engine()).context("the [media] section")?;
    let mailboxes = config.mail.load().map_err(|error| anyhow::anyhow!("invalid mail configuration: {error}"))?;
    let register =
        config.register.open(current_year()).map_err(|error| anyhow::anyhow!("the national register: {error}"))?;
    let db = open_database(&config).await?;
    if demo {
        seed_demo(&db, &config).await.context("seeding the demo municipality")?;
    }
    if let Some(mailboxes) = &mailboxes {
        mailboxes.check_against(&db).await.context("the mailboxes' rules (mail.mailboxes)")?;
    }
    let redis = config
        .redis
        .url
        .as_deref()
        .map(redis::Client::open)
        .transpose()
        .context("redis.url is not a valid Redis URL")?;
    let mailer = match &config.smtp.host {
        Some(_) => Some(Mailer::new(&config.smtp.settings()).context("the [smtp] section")?),
        None => None,
    };
    let web_config = WebConfig {
        session_ttl: config.security.session_ttl(),
        lockout_threshold: config.security.lockout_threshold,
        lockout_duration: config.security.lockout_duration(),
        secure_cookies: config.http.secure_cookies,
        mail_domain: mailer.as_ref().map_or_else(|| "loket.invalid".to_owned(), |mailer| mailer.domain.clone()),
        max_upload_bytes: config.documents.max_upload_mb * 1024 * 1024,
        away_reasons: config.desk.away_reasons.clone(),
        dispositions: config.desk.dispositions.clone(),
        after_call_work: Duration::from_secs(config.desk.wrap_up_seconds),
        facebook: config.facebook.clone(),
    };
    let documents: Arc<dyn DocumentStore> = Arc::new(DiskStore::new(config.data.dir.join("documents")));
    let (ends, sip_application) = application::channels();
    let overload = Overload::default();
    let sip = start_sip(&config, &db, sip_application, overload.clone()).await?;
    let mail = mailboxes.map(|mailboxes| {
        let mail_domain = web_config.mail_domain.clone();
        Arc::new(Processor::new(db.clone(), Clock::System, documents.clone(), Arc::new(mailboxes), &mail_domain))
    });
    let (ivr, prompts) = (Arc::new(ivr), Arc::new(prompts));
    let state = AppState::new(db.clone(), Clock::System, web_config, redis, documents.clone());
    let shedding = tokio::spawn(crate::overload::watch(media.clone(), overload, state.metrics.telephony()));
    let work_requests = state.work_requests();
    let parts = WorkParts { db: db.clone(), ivr, prompts, media, register, ends, mail, documents, work_requests };
    let work = start_work(&config, parts).await?;
    state.set_desk(work.desk);
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%address, database = db.backend().name(), "loket is serving the console");
    println!("loket: console on http://{address}/");
    let purge = tokio::spawn(purge_expired_sessions(db.clone()));
    let sender = match mailer {
        Some(mailer) => Some(tokio::spawn(loket_crm::mail::run_outbox(db.clone(), mailer, Clock::System))),
        None => {
            tracing::warn!("no [smtp] host configured: mail waits in the outbox until one is");
            None
        }
    };
    // The peer's address reaches the handlers: the public forms limit submissions per address.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("serving HTTP")?;
    purge.abort();
    shedding.abort();
    sip.stop().await;
    for task in work.tasks {
        task.abort();
    }
    if let Some(mail) = work.mail {
        mail.stop().await;
    }
    if let Some(sender) = sender {
        sender.abort();
    }
    db.close().await;
    tracing::info!("loket stopped");
    Ok(())
}

pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let url = &config.database.url;
    let db = Db::connect(url).await.with_context(|| {
        format!(
            "the database at {} (database.url / DATABASE_URL) is not available; is the server running?",
            redact_password(url)
        )
    })?;
    db.migrate().await.context("applying the database migrations")?;
    Ok(db)
}

/// Seeds the demo, then prints every demo user's password: new ones are saved beside the
/// database (readable by the owner only), so a later start can print them again.
pub async fn seed_demo(db: &Db, config: &Config) -> anyhow::Result<()> {
    let clock = Clock::System;
    let report = loket_crm::demo::seed(db, clock.now(), current_year()).await?;
    let path = config.data.dir.join(CREDENTIALS_FILE);
    if !report.new_credentials.is_empty() {
        save_credentials(&path, &report.new_credentials)
            .with_context(|| format!("saving the demo passwords in {}", path.display()))?;
    }
    match std::fs::read_to_string(&path) {
        Ok(saved) => {
            println!("Demo users (user name, password), kept in {}:", path.display());
            for line in saved.lines() {
                println!("  {line}");
            }
        }
        Err(_) => println!("The demo users exist, but {} is gone; an admin can reset their passwords.", path.display()),
    }
    let realm = &config.sip.domain;
    let created = loket_crm::demo::seed_sip_credentials(db, realm, clock.now(), |username, password| {
        let ha1 = StoredHa1::from_password(username, realm, password);
        loket_crm::records::sip_credentials::Ha1 { md5: ha1.md5, sha256: ha1.sha256 }
    })
    .await?;
    // One file per realm: the passwords of another realm's digests would not work here.
    let path = config.data.dir.join(format!("{realm}-{SIP_CREDENTIALS_FILE}"));
    if !created.is_empty() {
        save_credentials(&path, &created)
            .with_context(|| format!("saving the demo SIP passwords in {}", path.display()))?;
    }
    if let Ok(saved) = std::fs::read_to_string(&path) {
        println!("Demo SIP phones of {realm} (user name, password), kept in {}:", path.display());
        for line in saved.lines() {
            println!("  {line}");
        }
    }
    Ok(())
}

/// What the channels need besides the router.
struct WorkParts {
    db: Db,
    ivr: Arc<Ivr>,
    prompts: Arc<Prompts>,
    media: MediaEngine,
    register: Arc<dyn loket_crm::register::NationalRegister>,
    documents: Arc<dyn DocumentStore>,
    ends: ApplicationEnds,
    /// The e-mail intake, when mailboxes are configured.
    mail: Option<Arc<Processor>>,
    /// Rung by the console when it asked for work (web forms, Facebook comments).
    work_requests: Arc<tokio::sync::Notify>,
}

/// The router's side of a running loket: the console's desk, the voice tasks and the mail intake.
struct Work {
    desk: Arc<dyn Desk>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    mail: Option<MailIntake>,
}

/// Starts the router on its store (Redis with `redis.url`, else in process), with the CRM's
/// queues; the voice flows, the mail intake and the console's work requests that hand it their
/// work; and the desk the console drives it with.
async fn start_work(config: &Config, parts: WorkParts) -> anyhow::Result<Work> {
    let settings = RouterSettings::default();
    match &config.redis.url {
        Some(url) => {
            let store = loket_routing::store::redis::RedisStore::connect(url, &config.redis.prefix, settings)
                .await
                .context("the routing store in Redis (redis.url)")?;
            spawn_work(config, parts, store).await
        }
        None => spawn_work(config, parts, loket_routing::store::memory::MemoryStore::new(settings)).await,
    }
}

async fn spawn_work<S: QueueStore>(config: &Config, parts: WorkParts, store: S) -> anyhow::Result<Work> {
    let (queues, targets) = loket_flows::work::configure_queues(&store, &parts.db).await?;
    let router = Arc::new(Router::start(Arc::new(store), EngineOptions::default()));
    let db = parts.db.clone();
    let voice = Arc::new(Voice::new(loket_flows::voice::Parts {
        db: parts.db,
        ivr: parts.ivr,
        prompts: parts.prompts,
        media: parts.media,
        register: parts.register,
        work: Arc::clone(&router),
        queue_services: queues.into_iter().map(|queue| (queue.code, queue.service_code)).collect(),
        handle_time: Duration::from_secs(config.ivr.handle_seconds),
        record_queues: config.media.record_queues.iter().cloned().collect(),
        recordings: config.data.dir.join("recordings"),
        documents: parts.documents,
    }));
    let mail = parts.mail.map(|processor| MailIntake::start(processor, Arc::clone(&router)).0);
    let requests = loket_flows::work::follow_requests(db, Clock::System, Arc::clone(&router), parts.work_requests);
    let (desk, mut tasks) = RouterDesk::start(router, Arc::clone(&voice), targets);
    tasks.push(tokio::spawn(voice.run(parts.ends)));
    tasks.push(tokio::spawn(requests));
    Ok(Work { desk: Arc::new(desk), tasks, mail })
}

/// The SIP service's task, and how to stop it.
struct SipService {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl SipService {
    /// Lets the service remove its registration at the trunk (it bounds its own wait), then
    /// ends it.
    async fn stop(self) {
        let SipService { mut task, stop } = self;
        let _ = stop.send(());
        let bound = loket_sip::service::UNREGISTER_TIMEOUT + Duration::from_secs(1);
        if tokio::time::timeout(bound, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Binds the SIP sockets, prints where, and serves them in a task of their own.
async fn start_sip(
    config: &Config,
    db: &Db,
    application: loket_sip::service::Application,
    overload: Overload,
) -> anyhow::Result<SipService> {
    let sip = &config.sip;
    anyhow::ensure!(
        0 < sip.min_expires && sip.min_expires <= sip.max_expires,
        "sip.min_expires must be at least 1 and at most sip.max_expires"
    );
    let mut sockets = Sockets::bind(sip.udp_listen, sip.tcp_listen).await.with_context(|| {
        format!("cannot listen on {} (sip.udp_listen) and {} (sip.tcp_listen)", sip.udp_listen, sip.tcp_listen)
    })?;
    if let Some(ws) = sip.ws_listen {
        sockets = sockets.with_ws(ws).await.with_context(|| format!("cannot listen on {ws} (sip.ws_listen)"))?;
    }
    let (udp, tcp) = (sockets.udp_addr()?, sockets.tcp_addr()?);
    tracing::info!(%udp, %tcp, domain = %sip.domain, "loket is serving SIP");
    match sockets.ws_addr()? {
        Some(ws) => println!("loket: sip on udp {udp} tcp {tcp} ws {ws}"),
        None => println!("loket: sip on udp {udp} tcp {tcp}"),
    }
    let policy = Policy {
        min_expires: sip.min_expires,
        max_expires: sip.max_expires,
        default_expires: sip.max_expires,
        ..Policy::default()
    };
    let calls = CallSettings {
        numbers: sip.numbers(),
        media: std::net::SocketAddr::new(sip.media_address, sip.media_port),
        max_calls: sip.max_calls,
        max_calls_per_second: sip.max_calls_per_second,
        overload,
        trunk: sip.trunk.as_ref().map(crate::config::SipTrunkConfig::trunk),
        ..CallSettings::default()
    };
    if let Some(trunk) = &calls.trunk {
        let (host, username, register) = (&trunk.host, &trunk.username, trunk.register.is_some());
        tracing::info!(%host, %username, register, "numbers are dialled through the SIP trunk");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        // A dropped sender stops the service too.
        let _ = stopped.await;
    };
    let settings = Settings { algorithms: sip.algorithms(), calls, ..Settings::new(sip.domain.clone(), policy) };
    let credentials = CrmCredentials { db: db.clone(), realm: sip.domain.clone() };
    let service: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match sip.location_store {
        LocationStoreConfig::Memory => {
            let store = MemoryStore::new();
            let sweeper = store.clone();
            Box::pin(async move {
                tokio::select! {
                    result = sockets.serve_until(settings, credentials, store, Some(application), shutdown) => result,
                    () = purge_expired_bindings(sweeper) => Ok(()),
                }
            })
        }
        LocationStoreConfig::Redis => {
            let url = config.redis.url.as_deref().context("sip.location_store = \"redis\" needs redis.url")?;
            // Redis expires the bindings itself.
            let store = RedisStore::connect(url, &config.redis.prefix).await.context("the SIP location store")?;
            Box::pin(sockets.serve_until(settings, credentials, store, Some(application), shutdown))
        }
    };
    let task = tokio::spawn(async move {
        if let Err(error) = service.await {
            tracing::error!(%error, "the SIP service stopped");
        }
    });
    Ok(SipService { task, stop })
}

/// The in-process store drops an agent's expired bindings when the agent registers again; this
/// sweeps those of agents who never do.
async fn purge_expired_bindings(store: MemoryStore) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        store.purge_expired(std::time::SystemTime::now());
    }
}

/// Agents' SIP credentials, from the CRM.
struct CrmCredentials {
    db: Db,
    realm: String,
}

impl CredentialStore for CrmCredentials {
    type Error = anyhow::Error;

    async fn find(&self, username: &str) -> anyhow::Result<Option<StoredHa1>> {
        let found = loket_crm::records::sip_credentials::find(&self.db, username, &self.realm).await?;
        Ok(found.map(|ha1| StoredHa1 { md5: ha1.md5, sha256: ha1.sha256 }))
    }
}

fn save_credentials(path: &Path, credentials: &[(String, String)]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    for (username, password) in credentials {
        writeln!(file, "{username:<12} {password}")?;
    }
    Ok(())
}

async fn purge_expired_sessions(db: Db) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        match loket_crm::records::sessions::purge_expired(&db, Clock::System.now()).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired sessions purged"),
            Err(error) => tracing::warn!(%error, "purging expired sessions failed"),
        }
    }
}

pub(crate) fn current_year() -> u16 {
    let seconds = Clock::System.now().0 / 1000;
    time::OffsetDateTime::from_unix_timestamp(seconds).map_or(2026, |now| u16::try_from(now.year()).unwrap_or(2026))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
