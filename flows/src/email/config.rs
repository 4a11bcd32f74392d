//! The mailboxes loket polls and the rules that turn their mail into cases and work items, read
//! from TOML (`flows/mailboxes.demo.toml` is the demo's: eight mailboxes).
//!
//! ```toml
//! [intake]
//! ack_template = "email_ack"      # the e-mail template of the acknowledgement
//! smtp_listen = "0.0.0.0:25"      # optional: an SMTP listener the MX delivers to (see `smtp`)
//! smtp_max_message_bytes = 26214400   # the largest message it accepts (25 MiB, the default)
//!
//! [[mailboxes]]
//! name = "paspoort"               # the key of its state; never reuse one for another mailbox
//! address = "paspoort@gemeente.example"   # also the recipient the SMTP listener accepts for it
//! host = "imap.gemeente.example"  # optional with `smtp_listen`: without it, mail comes by SMTP only
//! port = 993
//! security = "tls"                # or "plain" (a server on the same host, tests)
//! username = "paspoort"
//! password = "…"
//! service = "population"
//! case_type = "passport"
//! queue = "population-{language}-l1"   # `{language}` is the message's language
//! skills = ["population"]
//! language = "nl"                 # optional: detected from the text when absent
//! ```
//!
//! `smtp_listen` is an IP address and port; unset, there is no listener and mail is only read
//! over IMAP. A mailbox may be both polled and delivered to: the Message-ID makes one case.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use loket_crm::db::Db;
use loket_crm::i18n::Language;
use loket_crm::records::directory;
use serde::Deserialize;

/// All of the e-mail intake's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeConfig {
    #[serde(default)]
    pub intake: IntakeSettings,
    #[serde(default)]
    pub mailboxes: Vec<MailboxConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeSettings {
    /// The code of the e-mail template (in NL, FR and EN) that acknowledges a new case.
    pub ack_template: String,
    /// The language of a message whose mailbox says none and whose text says nothing clear.
    pub default_language: Language,
    /// How often a mailbox whose server does not offer IDLE is polled.
    #[serde(with = "seconds")]
    pub poll_interval: Duration,
    /// How long one IDLE lasts before it is renewed (RFC 2177 §3: servers may drop a client idle
    /// for 30 minutes).
    #[serde(with = "seconds")]
    pub idle_renewal: Duration,
    /// The first wait after a mailbox failed; each further failure doubles it, up to `max_backoff`.
    #[serde(with = "seconds")]
    pub min_backoff: Duration,
    #[serde(with = "seconds")]
    pub max_backoff: Duration,
    /// How long connecting and each IMAP command may take.
    #[serde(with = "seconds")]
    pub timeout: Duration,
    /// Larger attachments are not kept; the case says so, and so does the answer to the citizen.
    pub max_attachment_bytes: usize,
    /// Where the SMTP listener accepts the MX's deliveries; `None`: no listener.
    pub smtp_listen: Option<SocketAddr>,
    /// The largest message the SMTP listener accepts (announced as `SIZE`, RFC 1870).
    pub smtp_max_message_bytes: usize,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            ack_template: "email_ack".to_owned(),
            default_language: Language::Nl,
            poll_interval: Duration::from_secs(60),
            idle_renewal: Duration::from_secs(25 * 60),
            min_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(60),
            max_attachment_bytes: 20 * 1024 * 1024,
            smtp_listen: None,
            smtp_max_message_bytes: 25 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    pub name: String,
    /// The mailbox's own address: mail from it (or any other configured mailbox) is a loop, and
    /// mail to it is what the SMTP listener accepts for this mailbox.
    pub address: String,
    /// The IMAP server; empty (absent from the file): the mailbox is not polled and its mail
    /// comes only through the SMTP listener.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default = "inbox")]
    pub folder: String,
    pub service: String,
    pub case_type: String,
    /// The queue of its cases and work items; `{language}` becomes the message's language.
    pub queue: String,
    #[serde(default)]
    pub skills: Vec<String>,
    pub language: Option<Language>,
}

/// The password stays out of logs and panics.
impl fmt::Debug for MailboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxConfig")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("folder", &self.folder)
            .field("service", &self.service)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// IMAP over TLS (port 993), certificates checked against the system's roots.
    #[default]
    Tls,
    /// Plain IMAP, for a server on the same host or in tests.
    Plain,
}

fn inbox() -> String {
    "INBOX".to_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Toml { file: String, source: toml::de::Error },
    #[error("{file}: mailbox {mailbox:?}: {problem}")]
    Mailbox { file: String, mailbox: String, problem: String },
    #[error("{file}: {key}: {problem}")]
    Setting { file: String, key: &'static str, problem: String },
    #[error("mailbox {mailbox:?}: {problem}")]
    Rules { mailbox: String, problem: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl IntakeConfig {
    /// Parses and checks a configuration; `file` names it in errors (TOML errors carry the line).
    pub fn parse(file: &str, text: &str) -> Result<IntakeConfig, ConfigError> {
        let config: IntakeConfig =
            toml::from_str(text).map_err(|source| ConfigError::Toml { file: file.to_owned(), source })?;
        if config.intake.smtp_max_message_bytes == 0 {
            return Err(ConfigError::Setting {
                file: file.to_owned(),
                key: "intake.smtp_max_message_bytes",
                problem: "must be at least 1".to_owned(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for mailbox in &config.mailboxes {
            let problem = |problem: &str| ConfigError::Mailbox {
                file: file.to_owned(),
                mailbox: mailbox.name.clone(),
                problem: problem.to_owned(),
            };
            if mailbox.name.trim().is_empty() {
                return Err(problem("the name is empty"));
            }
            if !seen.insert(mailbox.name.as_str()) {
                return Err(problem("two mailboxes have this name"));
            }
            if !mailbox.address.contains('@') {
                return Err(problem("address is not an e-mail address"));
            }
            if mailbox.queue.replace("{language}", "").contains(['{', '}']) {
                return Err(problem("queue knows only the placeholder {language}"));
            }
            if mailbox.polled() && mailbox.port == 0 {
                return Err(problem("port is missing (the IMAP server's)"));
            }
            if !mailbox.polled() && config.intake.smtp_listen.is_none() {
                return Err(problem("has no host and intake.smtp_listen is not set: nothing would read its mail"));
            }
        }
        Ok(config)
    }

    /// Every mailbox's own address, lower-cased: mail from one of them is a loop.
    pub fn own_addresses(&self) -> Vec<String> {
        self.mailboxes.iter().map(|mailbox| mailbox.address.trim().to_lowercase()).collect()
    }

    /// Checks the rules against the municipality's services and queues, before any mail is
    /// read: a queue that does not exist would stop its mailbox at the first message.
    pub async fn check_against(&self, db: &Db) -> Result<(), ConfigError> {
        let services = directory::services(db).await?;
        let queues = directory::queues(db).await?;
        for mailbox in &self.mailboxes {
            let problem = |problem: String| ConfigError::Rules { mailbox: mailbox.name.clone(), problem };
            if !services.iter().any(|service| service.code == mailbox.service) {
                return Err(problem(format!("unknown service {:?}", mailbox.service)));
            }
            let languages = match mailbox.language {
                Some(language) => vec![language],
                None => Language::ALL.to_vec(),
            };
            for language in languages {
                let queue = mailbox.queue_for(language);
                if !queues.iter().any(|known| known.code == queue) {
                    return Err(problem(format!("unknown queue {queue:?}")));
                }
            }
        }
        Ok(())
    }

    pub fn mailbox(&self, name: &str) -> Option<&MailboxConfig> {
        self.mailboxes.iter().find(|mailbox| mailbox.name == name)
    }
}

impl MailboxConfig {
    /// Whether loket reads this mailbox over IMAP (else only the SMTP listener delivers to it).
    pub fn polled(&self) -> bool {
        !self.host.is_empty()
    }

    /// The queue of a message in `language`.
    pub fn queue_for(&self, language: Language) -> String {
        self.queue.replace("{language}", language.code())
    }
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        f64::deserialize(deserializer).and_then(|seconds| {
            Duration::try_from_secs_f64(seconds).map_err(|_| serde::de::Error::custom("a number of seconds ≥ 0"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../mailboxes.demo.toml");

    #[test]
    fn the_demo_has_eight_mailboxes_with_rules() {
        let config = IntakeConfig::parse("mailboxes.demo.toml", DEMO).unwrap();
        assert_eq!(config.mailboxes.len(), 8);
        assert_eq!(config.intake.ack_template, "email_ack");
        let passport = config.mailbox("paspoort").unwrap();
        assert_eq!(passport.language, None, "the passport mailbox detects the language");
        assert_eq!(passport.queue_for(Language::Fr), "population-fr-l1");
        assert!(!format!("{passport:?}").contains(&passport.password), "no password in Debug");
    }

    #[test]
    fn mistakes_are_named_with_the_file_and_line() {
        let error = IntakeConfig::parse("m.toml", "[[mailboxes]]\nname = \"a\"\nport = \"x\"\n").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("m.toml: ") && text.contains("line 3"), "{text}");
        let twice = format!("{}\n{}", mailbox("a"), mailbox("a"));
        let error = IntakeConfig::parse("m.toml", &twice).unwrap_err();
        assert_eq!(error.to_string(), "m.toml: mailbox \"a\": two mailboxes have this name");
        let error = IntakeConfig::parse("m.toml", &mailbox("b").replace("{language}", "{lang}")).unwrap_err();
        assert!(error.to_string().contains("placeholder"), "{error}");
    }

    #[test]
    fn the_smtp_listener_is_optional_and_its_keys_are_checked() {
        let config = IntakeConfig::parse("m.toml", &mailbox("a")).unwrap();
        assert_eq!(config.intake.smtp_listen, None, "no listener unless asked for");
        assert_eq!(config.intake.smtp_max_message_bytes, 25 * 1024 * 1024);
        let text =
            format!("[intake]\nsmtp_listen = \"127.0.0.1:2525\"\nsmtp_max_message_bytes = 1000\n{}", mailbox("a"));
        let config = IntakeConfig::parse("m.toml", &text).unwrap();
        assert_eq!(config.intake.smtp_listen, Some("127.0.0.1:2525".parse().unwrap()));
        assert_eq!(config.intake.smtp_max_message_bytes, 1000);

        let error = IntakeConfig::parse("m.toml", "[intake]\nsmtp_listen = \"mx:25\"\n").unwrap_err().to_string();
        assert!(error.starts_with("m.toml: ") && error.contains("smtp_listen") && error.contains("line 2"), "{error}");
        let error = IntakeConfig::parse("m.toml", "[intake]\nsmtp_max_message_bytes = 0\n").unwrap_err();
        assert_eq!(error.to_string(), "m.toml: intake.smtp_max_message_bytes: must be at least 1");
    }

    #[test]
    fn a_mailbox_without_host_is_delivered_to_over_smtp_only() {
        let smtp_only = "[[mailboxes]]\nname = \"a\"\naddress = \"a@x.example\"\nservice = \"s\"\ncase_type = \"t\"\nqueue = \"q\"\n";
        let error = IntakeConfig::parse("m.toml", smtp_only).unwrap_err();
        assert!(error.to_string().contains("intake.smtp_listen is not set"), "{error}");
        let config =
            IntakeConfig::parse("m.toml", &format!("[intake]\nsmtp_listen = \"[::1]:25\"\n{smtp_only}")).unwrap();
        let only = config.mailbox("a").unwrap();
        assert!(!only.polled());
        assert!(IntakeConfig::parse("m.toml", &mailbox("b")).unwrap().mailbox("b").unwrap().polled());
    }

    fn mailbox(name: &str) -> String {
        format!(
            "[[mailboxes]]\nname = \"{name}\"\naddress = \"{name}@x.example\"\nhost = \"h\"\nport = 1\n\
             username = \"u\"\npassword = \"p\"\nservice = \"s\"\ncase_type = \"t\"\nqueue = \"q-{{language}}\"\n"
        )
    }
}
