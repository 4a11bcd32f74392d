//! loket's configuration: a TOML file (every key documented in `deploy/loket.example.toml`),
//! embedded defaults for every key, and environment overrides.
//!
//! Overrides: `LOKET_<SECTION>_<KEY>` (e.g. `LOKET_HTTP_LISTEN`, `LOKET_SECURITY_LOCKOUT_THRESHOLD`)
//! and the conventional `DATABASE_URL` and `REDIS_URL`. An override of an unknown key in a known
//! section is an error that names the variable; variables of unknown sections belong to others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub security: SecurityConfig,
    pub log: LogConfig,
    pub data: DataConfig,
    pub smtp: SmtpConfig,
    pub documents: DocumentsConfig,
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub ivr: IvrConfig,
    pub desk: DeskConfig,
    pub mail: MailConfig,
    pub register: RegisterConfig,
    /// The Facebook Page whose comments become cases; absent, there is no webhook. Its values are
    /// checked as they are read (`loket_crm::facebook::FacebookConfig`).
    pub facebook: Option<loket_crm::facebook::FacebookConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub secure_cookies: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    #[serde(deserialize_with = "database_url")]
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Unset: the in-process queue store. Set: Redis, checked by `/readyz`.
    #[serde(deserialize_with = "redis_url")]
    pub url: Option<String>,
    /// What every key of this loket starts with, so that several (a municipality's test and
    /// production, or two municipalities) can share one Redis.
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig { url: None, prefix: "loket".to_owned() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    pub session_minutes: u64,
    pub lockout_threshold: u32,
    pub lockout_minutes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `loket=debug,sqlx=warn`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Unset: mail waits in the outbox (and is shown as pending on its case) until one is set.
    pub host: Option<String>,
    pub port: u16,
    pub security: SmtpSecurityConfig,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurityConfig {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IvrConfig {
    /// The IVR flows, prompts and opening hours (see `ivr/demo.toml`); unset, the demo's.
    pub flows: Option<PathBuf>,
    /// The recordings, `<language>/<prompt>.wav` and `music/hold.wav`; unset, `ivr/prompts` of
    /// the source tree loket was built from.
    pub prompts: Option<PathBuf>,
    /// Seconds an agent spends per caller ahead, for the expected wait that callers hear.
    pub handle_seconds: u64,
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig { flows: None, prompts: None, handle_seconds: 180 }
    }
}

impl IvrConfig {
    pub fn prompts_dir(&self) -> PathBuf {
        self.prompts.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("ivr/prompts"))
    }

    /// Reads and validates the flows; the error lists every problem with its file, flow and node.
    pub fn load(&self) -> Result<loket_ivr::Ivr, String> {
        let (name, text) = match &self.flows {
            None => ("ivr/demo.toml (built in)".to_owned(), loket_ivr::DEMO.to_owned()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| format!("{} (ivr.flows): {error}", path.display()))?;
                (path.display().to_string(), text)
            }
        };
        loket_ivr::Ivr::parse(&name, &text)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// The national register gateway (`POST {url}/persons/lookup`, see `crm::register`); when
    /// set, it is the register.
    pub url: Option<String>,
    /// Its bearer token.
    pub token: Option<String>,
    pub timeout_seconds: u64,
    /// Without a gateway: a file of people (format: `crm/register.toml`); unset, the demo's.
    pub file: Option<PathBuf>,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig { url: None, token: None, timeout_seconds: 5, file: None }
    }
}

impl RegisterConfig {
    /// The register the IVR identifies callers in; the error names the key.
    pub fn open(&self, current_year: u16) -> Result<std::sync::Arc<dyn loket_crm::register::NationalRegister>, String> {
        use loket_crm::register::{HttpRegister, LocalRegister};
        if let Some(url) = &self.url {
            let timeout = Duration::from_secs(self.timeout_seconds);
            let register = HttpRegister::new(url, self.token.clone(), timeout)
                .map_err(|error| format!("register.url {url}: {error}"))?;
            return Ok(std::sync::Arc::new(register));
        }
        let register = match &self.file {
            None => LocalRegister::demo(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| format!("{} (register.file): {error}", path.display()))?;
                LocalRegister::parse(&path.display().to_string(), &text, current_year)?
            }
        };
        Ok(std::sync::Arc::new(register))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The mailboxes the e-mail intake reads and their rules (format: `flows/mailboxes.demo.toml`);
    /// unset, no mail is read.
    pub mailboxes: Option<PathBuf>,
}

impl MailConfig {
    /// Reads and checks the mailboxes file; `None` when none is configured.
    pub fn load(&self) -> Result<Option<loket_flows::email::config::IntakeConfig>, String> {
        let Some(path) = &self.mailboxes else { return Ok(None) };
        let text =
            std::fs::read_to_string(path).map_err(|error| format!("{} (mail.mailboxes): {error}", path.display()))?;
        loket_flows::email::config::IntakeConfig::parse(&path.display().to_string(), &text)
            .map(Some)
            .map_err(|error| error.to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskConfig {
    /// Why an agent may be away; each needs an `away-<reason>` text in the console's locales.
    pub away_reasons: Vec<String>,
    /// How an agent closes a piece of work; each needs a `disposition-<code>` text.
    pub dispositions: Vec<String>,
    /// Seconds of wrap-up after a call before the router offers the agent work again.
    pub wrap_up_seconds: u64,
}

impl Default for DeskConfig {
    fn default() -> Self {
        let web = loket_crm::web::WebConfig::default();
        DeskConfig {
            away_reasons: web.away_reasons,
            dispositions: web.dispositions,
            wrap_up_seconds: web.after_call_work.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// The address RTP sockets bind to.
    pub bind: std::net::IpAddr,
    /// The address in SDP when `bind` is 0.0.0.0 or behind a 1:1 NAT.
    pub advertise: Option<std::net::IpAddr>,
    /// RTP takes the even ports of the range, RTCP the odd one above each.
    pub port_min: u16,
    pub port_max: u16,
    /// A call whose media stopped for this long is hung up.
    pub timeout_seconds: u64,
    /// The queues whose calls are recorded once an agent takes them (caller and agent, one
    /// channel each); the WAV file is attached to the call's case.
    pub record_queues: Vec<String>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind: std::net::IpAddr::from([127, 0, 0, 1]),
            advertise: None,
            port_min: 30_000,
            port_max: 31_999,
            timeout_seconds: 30,
            record_queues: Vec::new(),
        }
    }
}

impl MediaConfig {
    pub fn engine(&self) -> loket_media::edge::MediaConfig {
        loket_media::edge::MediaConfig {
            bind: self.bind,
            advertise: self.advertise,
            port_min: self.port_min,
            port_max: self.port_max,
            media_timeout: Duration::from_secs(self.timeout_seconds),
            ..loket_media::edge::MediaConfig::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    /// The largest document an agent may attach to a case, in MiB.
    pub max_upload_mb: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// A port of 0 picks a free one; the bound addresses are printed at start-up.
    pub udp_listen: SocketAddr,
    pub tcp_listen: SocketAddr,
    /// SIP over WebSocket (RFC 7118), for browser phones; absent, none is served. Browsers on an
    /// https page need `wss:`, which a reverse proxy in front of this address provides.
    pub ws_listen: Option<SocketAddr>,
    /// The domain of agents' addresses (`agent@domain`), which is also the digest realm.
    pub domain: String,
    /// Digest algorithms offered to phones, in order of preference, separated by spaces.
    #[serde(deserialize_with = "digest_algorithms")]
    pub digest_algorithms: String,
    /// Registration intervals, in seconds: shorter ones are refused (423), longer ones shortened.
    pub min_expires: u32,
    pub max_expires: u32,
    pub location_store: LocationStoreConfig,
    /// Where loket says it receives a call's media (the SDP answer's address and port).
    pub media_address: std::net::IpAddr,
    pub media_port: u16,
    /// Call legs alive at once and new calls per second; beyond either, 503 with Retry-After.
    pub max_calls: usize,
    pub max_calls_per_second: u32,
    /// Dialled numbers and where their calls go; any other number is refused with 404.
    pub numbers: Vec<SipNumberConfig>,
    /// `[sip.trunk]`: where loket dials numbers (an IVR's transfer) and may register; absent,
    /// numbers cannot be dialled.
    pub trunk: Option<SipTrunkConfig>,
}

/// The municipal PBX or a provider; every value is checked as it is read.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipTrunkConfig {
    /// `host` or `host:port`: the domain of the numbers dialled (`sip:NUMBER@host`).
    #[serde(deserialize_with = "trunk_host")]
    pub host: String,
    #[serde(default)]
    pub transport: TrunkTransportConfig,
    #[serde(deserialize_with = "not_empty")]
    pub username: String,
    #[serde(deserialize_with = "not_empty")]
    pub password: String,
    /// Register at the trunk, for `register_expires` seconds at a time.
    #[serde(default)]
    pub register: bool,
    #[serde(default = "default_register_expires", deserialize_with = "register_expires")]
    pub register_expires: u32,
    /// `host:port` that every request goes to first, named in a Route.
    #[serde(default, deserialize_with = "outbound_proxy")]
    pub outbound_proxy: Option<String>,
    /// The municipality's number, in loket's From (`+` and digits).
    #[serde(deserialize_with = "caller_id")]
    pub caller_id: String,
    /// Seconds a dialled number may ring before loket gives up.
    #[serde(default = "default_ring_seconds", deserialize_with = "ring_seconds")]
    pub ring_seconds: u64,
}

/// The password stays out of `Debug`, so out of any log of the configuration.
impl std::fmt::Debug for SipTrunkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipTrunkConfig")
            .field("host", &self.host)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &"***")
            .field("register", &self.register)
            .field("register_expires", &self.register_expires)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("caller_id", &self.caller_id)
            .field("ring_seconds", &self.ring_seconds)
            .finish()
    }
}

/// Only UDP towards trunks, for now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrunkTransportConfig {
    #[default]
    Udp,
}

impl SipTrunkConfig {
    pub fn trunk(&self) -> loket_sip::trunk::Trunk {
        loket_sip::trunk::Trunk {
            host: self.host.clone(),
            username: self.username.clone(),
            password: loket_sip::trunk::Password::new(self.password.clone()),
            caller_id: self.caller_id.clone(),
            register: self.register.then_some(self.register_expires),
            outbound_proxy: self.outbound_proxy.clone(),
            ring_timeout: Duration::from_secs(self.ring_seconds),
            retry: loket_sip::trunk::Backoff::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipNumberConfig {
    /// The user part of the Request-URI, as dialled (`+3225550100`).
    pub number: String,
    /// `ivr`, `answer`, `agent:USER` or a `sip:` URI.
    #[serde(deserialize_with = "sip_target")]
    pub target: String,
    /// For `answer`: seconds of ringing before loket answers, and after which it hangs up (0: never).
    #[serde(default)]
    pub ring_seconds: u64,
    #[serde(default)]
    pub hangup_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationStoreConfig {
    /// In this process: one node only.
    Memory,
    /// In the Redis of `redis.url`, so that every node finds every agent's phone.
    Redis,
}

impl SipConfig {
    /// The algorithms of `digest_algorithms`, which the deserializer has checked.
    pub fn algorithms(&self) -> Vec<loket_sip::digest::Algorithm> {
        self.digest_algorithms.split_whitespace().filter_map(loket_sip::digest::Algorithm::from_name).collect()
    }

    /// The numbers as the SIP service takes them; the deserializer has checked the targets.
    pub fn numbers(&self) -> Vec<loket_sip::service::Number> {
        self.numbers
            .iter()
            .filter_map(|number| {
                Some(loket_sip::service::Number {
                    number: number.number.clone(),
                    target: loket_sip::service::Target::parse(&number.target)?,
                    ring: Duration::from_secs(number.ring_seconds),
                    hangup_after: (number.hangup_seconds > 0).then(|| Duration::from_secs(number.hangup_seconds)),
                })
            })
            .collect()
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        let listen = SocketAddr::from(([127, 0, 0, 1], 5060));
        SipConfig {
            udp_listen: listen,
            tcp_listen: listen,
            ws_listen: None,
            domain: "loket.invalid".to_owned(),
            digest_algorithms: "SHA-256 MD5".to_owned(),
            min_expires: 60,
            max_expires: 3_600,
            location_store: LocationStoreConfig::Memory,
            media_address: std::net::IpAddr::from([127, 0, 0, 1]),
            media_port: 40_000,
            max_calls: 10_000,
            max_calls_per_second: 1_000,
            // The demo municipality's number: its IVR flow.
            numbers: vec![SipNumberConfig {
                number: "+3225550100".to_owned(),
                target: "ivr".to_owned(),
                ring_seconds: 0,
                hangup_seconds: 0,
            }],
            trunk: None,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: 25,
            security: SmtpSecurityConfig::None,
            username: None,
            password: None,
            from: "Loket <loket@example.invalid>".to_owned(),
        }
    }
}

impl SmtpConfig {
    pub fn settings(&self) -> loket_crm::mail::SmtpSettings {
        loket_crm::mail::SmtpSettings {
            host: self.host.clone().unwrap_or_default(),
            port: self.port,
            security: match self.security {
                SmtpSecurityConfig::None => loket_crm::mail::SmtpSecurity::None,
                SmtpSecurityConfig::Starttls => loket_crm::mail::SmtpSecurity::StartTls,
                SmtpSecurityConfig::Tls => loket_crm::mail::SmtpSecurity::Tls,
            },
            username: self.username.clone(),
            password: self.password.clone(),
            from: self.from.clone(),
        }
    }
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig { max_upload_mb: 20 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Where the SQLite database, the demo credentials and (later) documents and recordings live.
    pub dir: PathBuf,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), secure_cookies: false }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: "sqlite://data/loket.db?mode=rwc".to_owned() }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig { session_minutes: 12 * 60, lockout_threshold: 5, lockout_minutes: 15 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Human, level: "info".to_owned() }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig { dir: PathBuf::from("data") }
    }
}

impl SecurityConfig {
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_minutes * 60)
    }

    pub fn lockout_duration(&self) -> Duration {
        Duration::from_secs(self.lockout_minutes * 60)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}:{line}:{column}: {key}{message}")]
    Invalid { file: String, line: usize, column: usize, key: String, message: String },
    #[error("{file}: {key}{message}")]
    InvalidNoPosition { file: String, key: String, message: String },
    #[error("environment variable {variable}: {message}")]
    Environment { variable: String, message: String },
}

/// The file named by `--config`, else `loket.toml` when it exists, else the embedded defaults;
/// then the environment.
pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    let default_path = Path::new("loket.toml");
    let config = match path {
        Some(path) => parse_file(path)?,
        None if default_path.exists() => parse_file(default_path)?,
        None => Config::default(),
    };
    apply_env(config, env)
}

pub fn parse_file(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
    parse(&text, &file)
}

/// Parses a whole file; an error names the file, the key and the line.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let key = if path == "." || path.is_empty() { String::new() } else { format!("key `{path}`: ") };
        let inner = error.into_inner();
        let message = inner.message().to_owned();
        match inner.span() {
            Some(span) => {
                let (line, column) = line_and_column(text, span.start);
                ConfigError::Invalid { file: file.to_owned(), line, column, key, message }
            }
            None => ConfigError::InvalidNoPosition { file: file.to_owned(), key, message },
        }
    })
}

const SECTIONS: [&str; 15] = [
    "http",
    "database",
    "redis",
    "security",
    "log",
    "data",
    "smtp",
    "documents",
    "sip",
    "media",
    "ivr",
    "desk",
    "mail",
    "register",
    "facebook",
];

fn apply_env(config: Config, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    let mut overrides: Vec<(String, String, String, String)> = Vec::new();
    let mut prefixed = Vec::new();
    for (variable, value) in env {
        match variable.as_str() {
            "DATABASE_URL" => overrides.push((variable.clone(), "database".into(), "url".into(), value)),
            "REDIS_URL" => overrides.push((variable.clone(), "redis".into(), "url".into(), value)),
            _ => {
                let Some(rest) = variable.strip_prefix("LOKET_") else { continue };
                let lower = rest.to_ascii_lowercase();
                let Some((section, key)) = lower.split_once('_') else { continue };
                if SECTIONS.contains(&section) {
                    prefixed.push((variable.clone(), section.to_owned(), key.to_owned(), value));
                }
            }
        }
    }
    // LOKET_… variables are the specific ones: they win over DATABASE_URL and REDIS_URL.
    overrides.extend(prefixed);
    if overrides.is_empty() {
        return Ok(config);
    }
    let mut table = toml::Table::try_from(&config)
        .map_err(|error| ConfigError::Environment { variable: "(all)".into(), message: error.to_string() })?;
    for (variable, section, key, value) in &overrides {
        // The optional [facebook] section may come from the environment alone: its secrets belong there.
        if section == "facebook" && !table.contains_key(section) {
            table.insert(section.clone(), toml::Value::Table(toml::Table::new()));
        }
        let Some(toml::Value::Table(section_table)) = table.get_mut(section) else { continue };
        // `[sip.trunk]`'s keys, its password above all: LOKET_SIP_TRUNK_PASSWORD.
        let (section_table, section, key) = match key.strip_prefix("trunk_") {
            Some(trunk_key) if section == "sip" => match section_table.get_mut("trunk") {
                Some(toml::Value::Table(trunk)) => (trunk, "sip.trunk", trunk_key),
                _ => {
                    return Err(ConfigError::Environment {
                        variable: variable.clone(),
                        message: format!("there is no [sip.trunk] section to set `{trunk_key}` in"),
                    });
                }
            },
            _ => (section_table, section.as_str(), key.as_str()),
        };
        // Optional keys are absent from the serialised defaults but may be set.
        let optional = matches!(
            (section, key),
            ("redis", "url")
                | ("smtp", "host" | "username" | "password")
                | ("media", "advertise")
                | ("sip", "ws_listen")
                | ("ivr", "flows" | "prompts")
                | ("mail", "mailboxes")
                | ("register", "url" | "token" | "file")
                | ("sip.trunk", "outbound_proxy" | "register")
                | (
                    "facebook",
                    "page_id"
                        | "app_secret"
                        | "verify_token"
                        | "page_access_token"
                        | "graph_base_url"
                        | "graph_version"
                        | "service"
                        | "case_type"
                        | "language"
                )
        );
        let known = section_table.contains_key(key) || optional;
        if !known {
            return Err(ConfigError::Environment {
                variable: variable.clone(),
                message: format!("the [{section}] section has no key `{key}`"),
            });
        }
        let typed = match section_table.get(key) {
            Some(toml::Value::Integer(_)) => {
                value.trim().parse::<i64>().map(toml::Value::Integer).map_err(|_| "expected a whole number")
            }
            Some(toml::Value::Boolean(_)) => {
                value.trim().parse::<bool>().map(toml::Value::Boolean).map_err(|_| "expected true or false")
            }
            // Unset optional keys (redis.url) and text keys take the text as it is.
            _ => Ok(toml::Value::String(value.clone())),
        }
        .map_err(|message| ConfigError::Environment { variable: variable.clone(), message: message.to_owned() })?;
        section_table.insert(key.to_owned(), typed);
    }
    let variables: Vec<&str> = overrides.iter().map(|(variable, ..)| variable.as_str()).collect();
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
        let path = error.path().to_string();
        ConfigError::Environment {
            variable: variables.join(", "),
            message: format!("key `{path}`: {}", error.into_inner().message()),
        }
    })
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |newline| before.len() - newline - 1) + 1;
    (line, column)
}

fn database_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let url = String::deserialize(deserializer)?;
    if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(url)
    } else {
        Err(serde::de::Error::custom("expected sqlite://… or postgres://…"))
    }
}

fn digest_algorithms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    let names: Vec<&str> = text.split_whitespace().collect();
    let known = names.iter().all(|name| loket_sip::digest::Algorithm::from_name(name).is_some());
    let unique =
        names.iter().enumerate().all(|(i, name)| !names[..i].iter().any(|other| other.eq_ignore_ascii_case(name)));
    if names.is_empty() || !known || !unique {
        return Err(serde::de::Error::custom("expected \"SHA-256 MD5\", \"MD5 SHA-256\", \"SHA-256\" or \"MD5\""));
    }
    Ok(text)
}

fn sip_target<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    match loket_sip::service::Target::parse(&text) {
        Some(_) => Ok(text),
        None => Err(serde::de::Error::custom("expected \"ivr\", \"answer\", \"agent:USER\" or a sip: URI")),
    }
}

fn trunk_host<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    match loket_sip::trunk::host_port(&text) {
        Some(_) => Ok(text),
        None => {
            Err(serde::de::Error::custom("expected a host or host:port, as \"pbx.example.be\" or \"192.0.2.10:5060\""))
        }
    }
}

fn outbound_proxy<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    trunk_host(deserializer).map(Some)
}

fn not_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() { Err(serde::de::Error::custom("must not be empty")) } else { Ok(text) }
}

fn caller_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    let digits = text.strip_prefix('+').unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(serde::de::Error::custom("expected a number of + and digits, as \"+3225550100\""));
    }
    Ok(text)
}

fn default_register_expires() -> u32 {
    600
}

fn register_expires<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let seconds = u32::deserialize(deserializer)?;
    if !(60..=86_400).contains(&seconds) {
        return Err(serde::de::Error::custom("expected 60 to 86400 seconds"));
    }
    Ok(seconds)
}

fn default_ring_seconds() -> u64 {
    60
}

fn ring_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let seconds = u64::deserialize(deserializer)?;
    if !(1..=600).contains(&seconds) {
        return Err(serde::de::Error::custom("expected 1 to 600 seconds"));
    }
    Ok(seconds)
}

fn redis_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let url = Option::<String>::deserialize(deserializer)?;
    match url {
        Some(url) if !(url.starts_with("redis://") || url.starts_with("rediss://")) => {
            Err(serde::de::Error::custom("expected redis://… or rediss://…"))
        }
        url => Ok(url.filter(|url| !url.is_empty())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_example_file_is_valid_and_matches_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/loket.example.toml");
        let example = parse_file(Path::new(path)).unwrap();
        let defaults = Config::default();
        assert_eq!(
            toml::to_string(&example).unwrap(),
            toml::to_string(&defaults).unwrap(),
            "the example documents the defaults"
        );
    }

    #[test]
    fn the_sip_websocket_listener_is_optional() {
        assert_eq!(Config::default().sip.ws_listen, None);
        let config = apply_env(Config::default(), env(&[("LOKET_SIP_WS_LISTEN", "[::1]:5066")])).unwrap();
        assert_eq!(config.sip.ws_listen, Some("[::1]:5066".parse().unwrap()));
        let error = parse("[sip]\nws_listen = \"localhost\"\n", "x.toml").unwrap_err().to_string();
        assert!(error.starts_with("x.toml:2:13: key `sip.ws_listen`"), "{error}");
    }

    #[test]
    fn sip_digest_algorithms_are_checked() {
        let config = apply_env(Config::default(), env(&[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")])).unwrap();
        assert_eq!(config.sip.algorithms(), [loket_sip::digest::Algorithm::Md5]);
        assert_eq!(Config::default().sip.algorithms(), loket_sip::digest::Algorithm::OFFERED);
        for bad in ["", "SHA-1", "MD5 md5", "MD5-sess"] {
            let text = format!("[sip]\ndigest_algorithms = \"{bad}\"\n");
            let error = parse(&text, "x.toml").unwrap_err().to_string();
            assert!(error.contains("key `sip.digest_algorithms`"), "{bad}: {error}");
        }
    }

    #[test]
    fn sip_numbers_are_checked() {
        let numbers = Config::default().sip.numbers();
        assert_eq!(numbers.len(), 1);
        assert_eq!(
            (numbers[0].number.as_str(), &numbers[0].target),
            ("+3225550100", &loket_sip::service::Target::Application)
        );
        let text = "[[sip.numbers]]\nnumber = \"1\"\ntarget = \"agent:agent\"\nring_seconds = 2\nhangup_seconds = 3\n";
        let config = parse(text, "x.toml").unwrap();
        let number = &config.sip.numbers()[0];
        assert_eq!(number.target, loket_sip::service::Target::Agent("agent".into()));
        assert_eq!((number.ring, number.hangup_after), (Duration::from_secs(2), Some(Duration::from_secs(3))));
        let error = parse("[[sip.numbers]]\nnumber = \"1\"\ntarget = \"voicemail\"\n", "x.toml").unwrap_err();
        assert!(error.to_string().contains("key `sip.numbers[0].target`"), "{error}");
    }

    const TRUNK: &str = "[sip.trunk]\nhost = \"pbx.example.be\"\nusername = \"loket\"\npassword = \"s3cret\"\ncaller_id = \"+3225550100\"\n";

    #[test]
    fn the_sip_trunk_is_optional_and_checked() {
        assert!(Config::default().sip.trunk.is_none());
        let config = parse(TRUNK, "x.toml").unwrap();
        let trunk = config.sip.trunk.expect("the trunk").trunk();
        assert_eq!(
            (trunk.host.as_str(), trunk.username.as_str(), trunk.password.expose()),
            ("pbx.example.be", "loket", "s3cret")
        );
        assert_eq!((trunk.register, trunk.outbound_proxy, trunk.ring_timeout), (None, None, Duration::from_secs(60)));
        let text = format!("{TRUNK}register = true\noutbound_proxy = \"192.0.2.9:5060\"\ntransport = \"udp\"\n");
        let trunk = parse(&text, "x.toml").unwrap().sip.trunk.expect("the trunk").trunk();
        assert_eq!((trunk.register, trunk.outbound_proxy.as_deref()), (Some(600), Some("192.0.2.9:5060")));
        for (line, key) in [
            ("host = \"sip:pbx.example.be\"", "host"),
            ("caller_id = \"02 555 01 00\"", "caller_id"),
            ("password = \"\"", "password"),
            ("register_expires = 10", "register_expires"),
            ("outbound_proxy = \"proxy:0\"", "outbound_proxy"),
            ("transport = \"tcp\"", "transport"),
            ("ring_seconds = 0", "ring_seconds"),
        ] {
            let name = line.split(' ').next().unwrap();
            let text = TRUNK.lines().filter(|kept| !kept.starts_with(name)).collect::<Vec<_>>().join("\n");
            let error = parse(&format!("{text}\n{line}\n"), "x.toml").unwrap_err().to_string();
            assert!(error.contains(&format!("key `sip.trunk.{key}`")), "{line}: {error}");
        }
        let error = parse(&TRUNK.replace("caller_id = \"+3225550100\"\n", ""), "x.toml").unwrap_err();
        assert!(error.to_string().contains("missing field `caller_id`"), "{error}");
    }

    #[test]
    fn the_sip_trunk_password_stays_out_of_debug() {
        let config = parse(TRUNK, "x.toml").unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("pbx.example.be") && !shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn a_misspelt_key_is_named_with_its_line() {
        let text = "[http]\nlisten = \"127.0.0.1:9000\"\n\n[security]\nlockout_treshold = 3\n";
        let error = parse(text, "loket.toml").unwrap_err().to_string();
        assert!(
            error.starts_with("loket.toml:5:1: key `security.lockout_treshold`: unknown field `lockout_treshold`"),
            "{error}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_and_line() {
        let error = parse("[security]\nlockout_threshold = \"five\"\n", "x.toml").unwrap_err().to_string();
        assert!(error.starts_with("x.toml:2:21: key `security.lockout_threshold`: invalid type"), "{error}");
        let error = parse("[http]\nlisten = \"localhost\"\n", "x.toml").unwrap_err().to_string();
        assert!(error.starts_with("x.toml:2:10: key `http.listen`"), "{error}");
        let error = parse("[database]\nurl = \"mysql://db\"\n", "x.toml").unwrap_err().to_string();
        assert!(error.contains("key `database.url`: expected sqlite://… or postgres://…"), "{error}");
        let error = parse("[log]\nformat = \"xml\"\n", "x.toml").unwrap_err().to_string();
        assert!(error.contains("x.toml:2:10: key `log.format`: unknown variant `xml`"), "{error}");
    }

    #[test]
    fn an_unknown_section_and_bad_syntax_are_reported() {
        let error = parse("[htp]\nlisten = 1\n", "x.toml").unwrap_err().to_string();
        assert!(error.starts_with("x.toml:1:") && error.contains("unknown field `htp`"), "{error}");
        let error = parse("[http\n", "x.toml").unwrap_err().to_string();
        assert!(error.starts_with("x.toml:1:"), "{error}");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let config = parse("[security]\nlockout_threshold = 3\n", "x.toml").unwrap();
        let config = apply_env(
            config,
            env(&[
                ("LOKET_SECURITY_LOCKOUT_THRESHOLD", "7"),
                ("LOKET_HTTP_LISTEN", "0.0.0.0:80"),
                ("DATABASE_URL", "postgres://db/loket"),
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                ("LOKET_TEST_POSTGRES_URL", "belongs to the tests"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(config.security.lockout_threshold, 7);
        assert_eq!(config.http.listen, "0.0.0.0:80".parse().unwrap());
        assert_eq!(config.database.url, "postgres://db/loket");
        assert_eq!(config.redis.url.as_deref(), Some("redis://127.0.0.1:6379"));
    }

    #[test]
    fn the_facebook_section_is_optional_and_checked() {
        assert!(Config::default().facebook.is_none());
        let section = "[facebook]\npage_id = \"1000000000001\"\napp_secret = \"s\"\nverify_token = \"v\"\npage_access_token = \"t\"\n";
        let facebook = parse(section, "x.toml").unwrap().facebook.expect("the section");
        assert_eq!((facebook.service.as_str(), facebook.graph_version.as_str()), ("population", "v21.0"));
        let error = parse(&format!("{section}graph_base_url = \"graph.facebook.com\"\n"), "x.toml").unwrap_err();
        assert!(
            error.to_string().starts_with("x.toml:6:18: key `facebook.graph_base_url`: expected an http"),
            "{error}"
        );
        let error = parse(&section.replace("page_access_token = \"t\"\n", ""), "x.toml").unwrap_err();
        assert!(error.to_string().contains("missing field `page_access_token`"), "{error}");
        let error = parse(&format!("{section}language = \"de\"\n"), "x.toml").unwrap_err().to_string();
        assert!(error.starts_with("x.toml:6:12: key `facebook.language`"), "{error}");
    }

    #[test]
    fn the_facebook_secrets_can_come_from_the_environment() {
        let section = "[facebook]\npage_id = \"1000000000001\"\napp_secret = \"s\"\nverify_token = \"v\"\npage_access_token = \"t\"\n";
        let config = parse(section, "x.toml").unwrap();
        let config =
            apply_env(config, env(&[("LOKET_FACEBOOK_APP_SECRET", "from-env"), ("LOKET_FACEBOOK_LANGUAGE", "fr")]))
                .unwrap();
        let facebook = config.facebook.expect("the section");
        assert_eq!(
            (facebook.app_secret.as_str(), facebook.language),
            ("from-env", Some(loket_crm::i18n::Language::Fr))
        );
        let only_env = env(&[
            ("LOKET_FACEBOOK_PAGE_ID", "1000000000001"),
            ("LOKET_FACEBOOK_APP_SECRET", "s"),
            ("LOKET_FACEBOOK_VERIFY_TOKEN", "v"),
            ("LOKET_FACEBOOK_PAGE_ACCESS_TOKEN", "t"),
        ]);
        assert!(apply_env(Config::default(), only_env).unwrap().facebook.is_some());
        let error = apply_env(Config::default(), env(&[("LOKET_FACEBOOK_APP_SECRET", "s")])).unwrap_err().to_string();
        assert!(error.contains("LOKET_FACEBOOK_APP_SECRET") && error.contains("missing field"), "{error}");
        let error = apply_env(Config::default(), env(&[("LOKET_FACEBOOK_PAGE_TOKEN", "t")])).unwrap_err().to_string();
        assert_eq!(
            error,
            "environment variable LOKET_FACEBOOK_PAGE_TOKEN: the [facebook] section has no key `page_token`"
        );
    }

    #[test]
    fn the_trunk_password_can_come_from_the_environment() {
        let config = parse(TRUNK, "x.toml").unwrap();
        let config = apply_env(config, env(&[("LOKET_SIP_TRUNK_PASSWORD", "from-env")])).unwrap();
        assert_eq!(config.sip.trunk.expect("the trunk").trunk().password.expose(), "from-env");
        let error = apply_env(Config::default(), env(&[("LOKET_SIP_TRUNK_PASSWORD", "p")])).unwrap_err().to_string();
        assert_eq!(
            error,
            "environment variable LOKET_SIP_TRUNK_PASSWORD: there is no [sip.trunk] section to set `password` in"
        );
        let config = parse(TRUNK, "x.toml").unwrap();
        let error = apply_env(config, env(&[("LOKET_SIP_TRUNK_PASWORD", "p")])).unwrap_err().to_string();
        assert_eq!(error, "environment variable LOKET_SIP_TRUNK_PASWORD: the [sip.trunk] section has no key `pasword`");
    }

    #[test]
    fn loket_variables_win_over_the_conventional_ones() {
        let config = apply_env(
            Config::default(),
            env(&[("LOKET_DATABASE_URL", "sqlite://a.db"), ("DATABASE_URL", "postgres://b/c")]),
        )
        .unwrap();
        assert_eq!(config.database.url, "sqlite://a.db");
    }

    #[test]
    fn a_bad_override_names_the_variable() {
        let error = apply_env(Config::default(), env(&[("LOKET_HTTP_LISTN", "x")])).unwrap_err().to_string();
        assert_eq!(error, "environment variable LOKET_HTTP_LISTN: the [http] section has no key `listn`");
        let error =
            apply_env(Config::default(), env(&[("LOKET_SECURITY_LOCKOUT_MINUTES", "soon")])).unwrap_err().to_string();
        assert_eq!(error, "environment variable LOKET_SECURITY_LOCKOUT_MINUTES: expected a whole number");
        let error = apply_env(Config::default(), env(&[("LOKET_HTTP_LISTEN", "nowhere")])).unwrap_err().to_string();
        assert!(error.starts_with("environment variable LOKET_HTTP_LISTEN: key `http.listen`"), "{error}");
    }
}
