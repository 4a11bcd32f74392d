//! The web console and its JSON API: axum handlers, one module per resource, each with its
//! `routes()` next to its handlers, merged in `router`.
//!
//! Errors: handlers return `Result<_, WebError>`; a `WebError` is what the user sees (403, 404,
//! a form error) or, for database and template failures, a logged 500 with nothing leaked.
//! Permissions: every handler that needs a login takes a `CurrentUser` and calls
//! `require(Permission::…)` first, so the rule sits beside the query it protects.

mod accounts;
mod admin_mailboxes;
mod admin_templates;
mod admin_users;
mod assets;
mod audit_view;
mod board;
mod cases;
mod contacts;
mod dial;
mod error;
mod facebook;
mod forms;
mod health;
mod help;
mod home;
mod language;
mod login;
mod metrics;
mod router;
mod search;
mod session;
mod templates;
mod workspace;

use std::sync::Arc;
use std::time::Duration;

pub use error::WebError;
pub use metrics::{Metrics, TelephonyMetrics};
pub use router::router;
pub use session::{CurrentUser, SESSION_COOKIE};

use crate::clock::Clock;
use crate::db::Db;
use crate::desk::Desk;
use crate::facebook::FacebookConfig;
use crate::records::documents::DocumentStore;
use loket_routing::model::AgentId;
use workspace::Accepted;

/// The console's settings, taken from the `[http]` and `[security]` sections of the config.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub session_ttl: Duration,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    /// Sets `Secure` on the session cookie; on when loket is served over HTTPS.
    pub secure_cookies: bool,
    /// The right-hand side of the Message-IDs of outgoing mail (the sender's domain).
    pub mail_domain: String,
    /// The largest document an upload may carry.
    pub max_upload_bytes: usize,
    /// Why an agent may be away (each a `away-<reason>` message in the console's locales).
    pub away_reasons: Vec<String>,
    /// How an agent closes a piece of work (each a `disposition-<code>` message).
    pub dispositions: Vec<String>,
    /// The wrap-up time after a call, after which the router offers work again.
    pub after_call_work: Duration,
    /// The Facebook Page whose comments become cases; without one, its webhook answers 404.
    pub facebook: Option<FacebookConfig>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_ttl: Duration::from_secs(12 * 3600),
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            secure_cookies: false,
            mail_domain: "loket.invalid".to_owned(),
            max_upload_bytes: 20 * 1024 * 1024,
            away_reasons: ["break", "lunch", "meeting", "training", "back_office"].map(String::from).to_vec(),
            dispositions: ["answered", "case_created", "callback_needed", "forwarded", "wrong_service"]
                .map(String::from)
                .to_vec(),
            after_call_work: Duration::from_secs(60),
            facebook: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub db: Db,
    pub clock: Clock,
    pub config: WebConfig,
    pub metrics: Metrics,
    /// Checked by `/readyz` when a Redis queue store is configured.
    pub redis: Option<redis::Client>,
    pub documents: Arc<dyn DocumentStore>,
    /// The router and the calls, once the binary has started them; the workspace answers 503
    /// without.
    desk: std::sync::OnceLock<Arc<dyn Desk>>,
    /// Per agent, the item accepted last: the one their wrap-up is about once its work ended
    /// (the router forgets a finished item).
    last_accepted: std::sync::Mutex<std::collections::HashMap<AgentId, Accepted>>,
    /// Agents who asked a supervisor for help, and the exchange so far (`help`).
    help: std::sync::Mutex<std::collections::HashMap<AgentId, help::HelpThread>>,
    /// Rung after a commit that asked the router for work (`records::work_requests`).
    work_requested: Arc<tokio::sync::Notify>,
    templates: templates::Templates,
}

impl AppState {
    pub fn new(
        db: Db,
        clock: Clock,
        config: WebConfig,
        redis: Option<redis::Client>,
        documents: Arc<dyn DocumentStore>,
    ) -> AppState {
        AppState(Arc::new(AppInner {
            db,
            clock,
            config,
            metrics: Metrics::default(),
            redis,
            documents,
            desk: std::sync::OnceLock::new(),
            last_accepted: std::sync::Mutex::default(),
            help: std::sync::Mutex::default(),
            work_requested: Arc::default(),
            templates: templates::Templates::new(),
        }))
    }

    /// Gives the console the agent's desk; once, at start.
    pub fn set_desk(&self, desk: Arc<dyn Desk>) {
        if self.0.desk.set(desk).is_err() {
            tracing::warn!("the desk was set twice; the first one stays");
        }
    }

    /// What the binary's router waits on to take new work requests at once.
    pub fn work_requests(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.0.work_requested)
    }

    pub(crate) fn work_requested(&self) {
        self.0.work_requested.notify_one();
    }

    fn accepted(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<AgentId, Accepted>> {
        // A map of ids is consistent after every insert and remove.
        self.0.last_accepted.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn last_accepted(&self, agent: AgentId) -> Option<Accepted> {
        self.accepted().get(&agent).cloned()
    }

    pub(crate) fn set_last_accepted(&self, agent: AgentId, accepted: Accepted) {
        self.accepted().insert(agent, accepted);
    }

    pub(crate) fn clear_last_accepted(&self, agent: AgentId) {
        self.accepted().remove(&agent);
    }

    fn help_threads(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<AgentId, help::HelpThread>> {
        // Whole threads are inserted and removed, messages pushed: consistent between statements.
        self.0.help.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The agent's open request for help, if they wait for it.
    pub(crate) fn help_asked(&self, agent: AgentId) -> Option<help::HelpThread> {
        self.help_threads().get(&agent).cloned()
    }

    /// Raises the help flag of `agent`, or adds to it when it is up already.
    pub(crate) fn ask_help(&self, agent: AgentId, thread: help::HelpThread) -> help::HelpThread {
        let mut threads = self.help_threads();
        let open = threads.entry(agent).or_insert_with(|| help::HelpThread { messages: Vec::new(), ..thread.clone() });
        open.messages.extend(thread.messages);
        open.clone()
    }

    /// Adds a message to the agent's open request; `None` when there is none.
    pub(crate) fn add_help_message(&self, agent: AgentId, message: help::HelpMessage) -> Option<help::HelpThread> {
        let mut threads = self.help_threads();
        let open = threads.get_mut(&agent)?;
        open.messages.push(message);
        Some(open.clone())
    }

    /// Lowers the help flag of `agent`; the request it was, if any.
    pub(crate) fn lower_help(&self, agent: AgentId) -> Option<help::HelpThread> {
        self.help_threads().remove(&agent)
    }

    pub fn desk(&self) -> Result<&Arc<dyn Desk>, WebError> {
        self.0.desk.get().ok_or_else(|| WebError::Unavailable("no router is running".to_owned()))
    }

    /// The calendar year now, for case numbers.
    pub fn year(&self) -> i32 {
        self.clock.now().year()
    }
}

impl std::ops::Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}
