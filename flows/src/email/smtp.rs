//! The optional SMTP listener (RFC 5321 subset) through which the municipality's MX delivers mail
//! straight to loket, instead of loket reading it from an IMAP mailbox. Its mail goes through
//! the same intake as IMAP mail (`Processor::process`, once per accepted mailbox recipient), and
//! its new cases reach the router through the intake's routing task.
//!
//! - A pure core: `LineSplitter` frames the bytes into CRLF lines of at most 1000 octets
//!   (RFC 5321 §4.5.3.1.6; a longer line is dropped as it arrives and answered 500), and `Session`
//!   is the state machine of one connection: lines in, replies and deliveries out.
//! - The tokio edge: `SmtpListener` accepts connections (at most `max_connections`; beyond, 421),
//!   gives each command `idle_timeout`, and stores each message before answering it.
//!
//! Offered: EHLO/HELO, MAIL (with `SIZE`, RFC 1870, refused early when over the limit; `BODY`,
//! RFC 6152), RCPT (only the `address` of a configured mailbox, case-insensitive), DATA, RSET,
//! NOOP, QUIT, VRFY (252), with enhanced status codes (RFC 2034) and PIPELINING (RFC 2920: replies
//! go out in order and no input is ever dropped between commands).
//!
//! A message is answered `250` only once its transaction committed for every recipient, so a
//! crash never loses a message the MX was told is delivered; a failure is `451 4.3.0`, which the
//! MX retries, and the retry is recognised by its Message-ID. A message over
//! `smtp_max_message_bytes` is read to its end, kept nowhere, and refused with `552 5.3.4`.
//!
//! The listener is meant for the MX on the municipality's internal network: it offers neither
//! STARTTLS nor AUTH, and accepts mail only for the configured mailboxes, so it relays nothing.
//! As the final delivery it adds `Return-Path` with the envelope's sender (RFC 5321 §4.4), by
//! which a bounce (`<>`) is recognised as machine mail. It adds no `Received` line: nothing is
//! stored as a mailbox, and a timestamp would make the retried bytes of a message without a
//! Message-ID look like a different message.
//!
//! Only CRLF ends a line: a bare LF or CR is data, so `<LF>.<LF>` never ends a message ("SMTP
//! smuggling"). Commands must be printable ASCII (no SMTPUTF8).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::config::IntakeConfig;
use super::intake::{AckTemplates, IntakeError, Outcome, Processor, Source};
use super::poller::IntakeEvent;

/// The longest line, CRLF included (RFC 5321 §4.5.3.1.6).
pub const MAX_LINE: usize = 1000;
/// Replies of 500 and above a client may collect before it is shown the door.
const MAX_ERRORS: usize = 20;
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The pure core
// ---------------------------------------------------------------------------------------------

/// A line of the client's, without its CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Complete(Vec<u8>),
    /// A line over `MAX_LINE` octets: its bytes were dropped as they came.
    TooLong,
}

/// Cuts a byte stream into CRLF lines, holding at most one line's worth of bytes.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buffer: Vec<u8>,
    /// Where the first unread byte of `buffer` is.
    start: usize,
    /// The current line is over the limit; its bytes are dropped until its CRLF.
    discarding: bool,
}

impl LineSplitter {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.drain(..self.start);
        self.start = 0;
        self.buffer.extend_from_slice(bytes);
    }

    pub fn next_line(&mut self) -> Option<Line> {
        let pending = &self.buffer[self.start..];
        if let Some(end) = pending.windows(2).position(|pair| pair == b"\r\n") {
            let line = pending[..end].to_vec();
            self.start += end + 2;
            let too_long = std::mem::take(&mut self.discarding) || end + 2 > MAX_LINE;
            return Some(if too_long { Line::TooLong } else { Line::Complete(line) });
        }
        // A final CR may be the first half of the CRLF; everything before it is the line's.
        let carried = usize::from(pending.last() == Some(&b'\r'));
        if pending.len() - carried + 2 > MAX_LINE {
            self.discarding = true;
            self.start = self.buffer.len() - carried;
        }
        None
    }
}

/// A reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply { code, lines: vec![text.into()] }
    }

    /// The message is stored for every recipient.
    pub fn stored() -> Reply {
        Reply::new(250, "2.0.0 message accepted")
    }

    /// Storing the message failed; the sending MTA keeps it and tries again.
    pub fn not_stored() -> Reply {
        Reply::new(451, "4.3.0 message not stored; try again later")
    }

    /// No command within the idle timeout.
    pub fn idle(host: &str) -> Reply {
        Reply::new(421, format!("4.4.2 {host} idle too long; closing the connection"))
    }

    /// The connection has lasted its maximum.
    pub fn too_long(host: &str) -> Reply {
        Reply::new(421, format!("4.4.2 {host} connection open too long; closing it, connect again"))
    }

    /// Every connection slot is taken.
    pub fn busy(host: &str) -> Reply {
        Reply::new(421, format!("4.3.2 {host} has too many connections; try again later"))
    }

    pub fn shutting_down(host: &str) -> Reply {
        Reply::new(421, format!("4.3.2 {host} is shutting down; try again later"))
    }

    /// The reply as it goes on the wire (RFC 5321 §4.2: `code-text` lines, then `code text`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let last = self.lines.len().saturating_sub(1);
        let mut bytes = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            bytes.extend_from_slice(format!("{}{separator}{line}\r\n", self.code).as_bytes());
        }
        bytes
    }
}

/// What the edge does after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// A data line, taken in.
    Nothing,
    Reply(Reply),
    /// Send the reply, then close the connection.
    Close(Reply),
    /// A complete message to store; the edge answers with `Reply::stored` or `Reply::not_stored`.
    Deliver(Delivery),
}

/// A message to store, with its envelope.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The names of the mailboxes it was accepted for, each once, in the order given.
    pub mailboxes: Vec<String>,
    /// `Return-Path` with the envelope's sender, then the message as sent, dot-stuffing undone.
    pub message: Vec<u8>,
}

/// What a session accepts: taken from the intake's configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The name this server greets with.
    pub host: String,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    /// Each configured mailbox's address (lower-cased) and name.
    pub recipients: Vec<(String, String)>,
}

impl Rules {
    pub fn new(host: &str, config: &IntakeConfig, limits: &SmtpLimits) -> Rules {
        Rules {
            host: host.to_owned(),
            max_message_bytes: limits.max_message_bytes,
            max_recipients: limits.max_recipients,
            recipients: config
                .mailboxes
                .iter()
                .map(|mailbox| (mailbox.address.trim().to_lowercase(), mailbox.name.clone()))
                .collect(),
        }
    }

    fn mailbox_of(&self, address: &str) -> Option<&str> {
        self.recipients.iter().find(|(known, _)| known.eq_ignore_ascii_case(address)).map(|(_, name)| name.as_str())
    }

    /// The limit as the 552 reply states it.
    fn limit_text(&self) -> String {
        match self.max_message_bytes {
            bytes if bytes >= MIB && bytes % MIB == 0 => format!("{} MB", bytes / MIB),
            bytes => format!("{bytes} bytes"),
        }
    }

    fn too_large(&self) -> Reply {
        Reply::new(552, format!("5.3.4 message size exceeds fixed maximum message size ({})", self.limit_text()))
    }
}

/// One SMTP connection's state.
#[derive(Debug)]
pub struct Session {
    rules: Arc<Rules>,
    greeted: bool,
    transaction: Option<Transaction>,
    data: Option<Data>,
    errors: usize,
}

#[derive(Debug)]
struct Transaction {
    reverse_path: String,
    mailboxes: Vec<String>,
}

#[derive(Debug)]
struct Data {
    message: Vec<u8>,
    /// The message's size so far, counted even once it is no longer kept.
    size: usize,
    line_too_long: bool,
}

impl Session {
    pub fn new(rules: Arc<Rules>) -> Session {
        Session { rules, greeted: false, transaction: None, data: None, errors: 0 }
    }

    pub fn greeting(&self) -> Reply {
        Reply::new(220, format!("{} ESMTP loket", self.rules.host))
    }

    pub fn input(&mut self, line: Line) -> Action {
        if self.data.is_some() {
            return self.data_line(line);
        }
        let action = match line {
            Line::TooLong => Action::Reply(Reply::new(500, "5.5.2 line too long (at most 1000 octets with CRLF)")),
            Line::Complete(bytes) => self.command(&bytes),
        };
        match action {
            Action::Reply(reply) if reply.code >= 500 => {
                self.errors += 1;
                if self.errors > MAX_ERRORS {
                    return Action::Close(Reply::new(421, format!("4.7.0 {} too many errors", self.rules.host)));
                }
                Action::Reply(reply)
            }
            other => other,
        }
    }

    fn command(&mut self, bytes: &[u8]) -> Action {
        let Some(text) =
            std::str::from_utf8(bytes).ok().filter(|text| text.bytes().all(|byte| matches!(byte, b' '..=b'~')))
        else {
            return Action::Reply(Reply::new(500, "5.5.2 syntax error: a command is printable ASCII"));
        };
        let (verb, argument) = text.split_once(' ').unwrap_or((text, ""));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.hello(argument, true),
            "HELO" => self.hello(argument, false),
            "MAIL" => self.mail(argument),
            "RCPT" => self.rcpt(argument),
            "DATA" => self.start_data(argument),
            "RSET" => {
                self.transaction = None;
                Reply::new(250, "2.0.0 OK")
            }
            "NOOP" => Reply::new(250, "2.0.0 OK"),
            "QUIT" => return Action::Close(Reply::new(221, format!("2.0.0 {} closing connection", self.rules.host))),
            "VRFY" => Reply::new(252, "2.5.0 cannot verify the user, but will accept the message for a mailbox here"),
            "EXPN" | "HELP" | "TURN" | "ETRN" | "ATRN" | "BDAT" | "AUTH" | "STARTTLS" | "SEND" | "SOML" | "SAML" => {
                Reply::new(502, "5.5.1 command not implemented")
            }
            _ => Reply::new(500, "5.5.2 command not recognized"),
        };
        Action::Reply(reply)
    }

    fn hello(&mut self, argument: &str, extended: bool) -> Reply {
        if argument.trim().is_empty() {
            return Reply::new(501, "5.5.4 a domain or address literal is needed");
        }
        // A new EHLO or HELO ends any transaction, like RSET (RFC 5321 §4.1.4).
        self.transaction = None;
        self.greeted = true;
        let host = &self.rules.host;
        if !extended {
            return Reply::new(250, host.clone());
        }
        Reply {
            code: 250,
            lines: vec![
                host.clone(),
                format!("SIZE {}", self.rules.max_message_bytes),
                "8BITMIME".to_owned(),
                "ENHANCEDSTATUSCODES".to_owned(),
                "PIPELINING".to_owned(),
            ],
        }
    }

    fn mail(&mut self, argument: &str) -> Reply {
        if !self.greeted {
            return Reply::new(503, "5.5.1 send EHLO or HELO first");
        }
        if self.transaction.is_some() {
            return Reply::new(503, "5.5.1 nested MAIL command");
        }
        let Some((path, parameters)) = strip_keyword(argument, "FROM:").and_then(split_path) else {
            return Reply::new(501, "5.5.4 syntax: MAIL FROM:<address>");
        };
        let Some(reverse_path) = mailbox(path, true) else {
            return Reply::new(501, "5.1.7 bad sender address syntax");
        };
        for parameter in parameters.split_ascii_whitespace() {
            let (keyword, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match keyword.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(size) if usize::try_from(size).is_ok_and(|size| size <= self.rules.max_message_bytes) => {}
                    Ok(_) => return self.rules.too_large(),
                    // All digits, only too many of them: larger than any limit.
                    Err(_) if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) => {
                        return self.rules.too_large();
                    }
                    Err(_) => return Reply::new(501, "5.5.4 SIZE takes a number of octets"),
                },
                "BODY" if value.eq_ignore_ascii_case("7BIT") || value.eq_ignore_ascii_case("8BITMIME") => {}
                "BODY" => return Reply::new(501, "5.5.4 BODY is 7BIT or 8BITMIME"),
                _ => return Reply::new(555, "5.5.4 parameter not recognized"),
            }
        }
        self.transaction = Some(Transaction { reverse_path, mailboxes: Vec::new() });
        Reply::new(250, "2.1.0 sender OK")
    }

    fn rcpt(&mut self, argument: &str) -> Reply {
        let rules = Arc::clone(&self.rules);
        let Some(transaction) = self.transaction.as_mut() else {
            return Reply::new(503, "5.5.1 need MAIL first");
        };
        let Some((path, parameters)) = strip_keyword(argument, "TO:").and_then(split_path) else {
            return Reply::new(501, "5.5.4 syntax: RCPT TO:<address>");
        };
        if !parameters.trim().is_empty() {
            return Reply::new(555, "5.5.4 parameter not recognized");
        }
        let Some(address) = mailbox(path, false) else {
            return Reply::new(501, "5.1.3 bad recipient address syntax");
        };
        let Some(name) = rules.mailbox_of(&address) else {
            return Reply::new(550, "5.1.1 no such mailbox here");
        };
        if !transaction.mailboxes.iter().any(|known| known == name) {
            if transaction.mailboxes.len() >= rules.max_recipients {
                return Reply::new(452, "4.5.3 too many recipients");
            }
            transaction.mailboxes.push(name.to_owned());
        }
        Reply::new(250, "2.1.5 recipient OK")
    }

    fn start_data(&mut self, argument: &str) -> Reply {
        if !argument.trim().is_empty() {
            return Reply::new(501, "5.5.4 DATA takes no argument");
        }
        let Some(transaction) = &self.transaction else {
            return Reply::new(503, "5.5.1 need MAIL and RCPT first");
        };
        if transaction.mailboxes.is_empty() {
            return Reply::new(554, "5.5.1 no valid recipients");
        }
        // The final delivery records the envelope's sender (RFC 5321 §4.4).
        let message = format!("Return-Path: <{}>\r\n", transaction.reverse_path).into_bytes();
        self.data = Some(Data { message, size: 0, line_too_long: false });
        Reply::new(354, "end data with <CR><LF>.<CR><LF>")
    }

    fn data_line(&mut self, line: Line) -> Action {
        let max = self.rules.max_message_bytes;
        let Some(data) = self.data.as_mut() else { return Action::Nothing };
        let bytes = match line {
            Line::TooLong => {
                data.line_too_long = true;
                return Action::Nothing;
            }
            Line::Complete(bytes) if bytes == b"." => return self.end_of_data(),
            Line::Complete(bytes) => bytes,
        };
        // A leading dot was doubled by the client (RFC 5321 §4.5.2).
        let text = bytes.strip_prefix(b".").unwrap_or(&bytes);
        data.size = data.size.saturating_add(text.len() + 2);
        if data.size > max {
            data.message = Vec::new();
        } else if !data.line_too_long {
            data.message.extend_from_slice(text);
            data.message.extend_from_slice(b"\r\n");
        }
        Action::Nothing
    }

    fn end_of_data(&mut self) -> Action {
        let (Some(data), Some(transaction)) = (self.data.take(), self.transaction.take()) else {
            return Action::Nothing;
        };
        if data.size > self.rules.max_message_bytes {
            return Action::Reply(self.rules.too_large());
        }
        if data.line_too_long {
            return Action::Reply(Reply::new(500, "5.5.2 line too long (at most 1000 octets with CRLF)"));
        }
        Action::Deliver(Delivery { mailboxes: transaction.mailboxes, message: data.message })
    }
}

/// The rest of `argument` after `keyword` (any case), with the spaces some clients put after it.
fn strip_keyword<'a>(argument: &'a str, keyword: &str) -> Option<&'a str> {
    let head = argument.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| argument[keyword.len()..].trim_start())
}

/// `<path> parameters` into the path's inside and the parameters. A quoted local part may hold `>`.
fn split_path(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('<')?;
    let (mut quoted, mut escaped) = (false, false);
    for (index, char) in inner.char_indices() {
        match char {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let rest = &inner[index + 1..];
                return (rest.is_empty() || rest.starts_with(' ')).then_some((&inner[..index], rest));
            }
            _ => {}
        }
    }
    None
}

/// The mailbox of a path, lower-cased, without a source route (RFC 5321 §4.1.2, C.): `None` when
/// it is not `local@domain`, or the path is over 256 octets with its angle brackets (§4.5.3.1.3).
/// `<>` is the null sender.
fn mailbox(path: &str, null_allowed: bool) -> Option<String> {
    if path.is_empty() {
        return null_allowed.then(String::new);
    }
    if path.len() > 254 {
        return None;
    }
    let path = if path.starts_with('@') { path.split_once(':')?.1 } else { path };
    let (local, domain) = path.rsplit_once('@')?;
    let plausible = !local.is_empty() && !domain.is_empty() && !domain.contains(['<', '>', ' ', '"']);
    plausible.then(|| path.to_lowercase())
}

// ---------------------------------------------------------------------------------------------
// The tokio edge
// ---------------------------------------------------------------------------------------------

/// The listener's limits. `SmtpLimits::new` takes the configured message size and the defaults.
#[derive(Debug, Clone)]
pub struct SmtpLimits {
    pub max_message_bytes: usize,
    /// RFC 5321 §4.5.3.1.8: at least 100 must be accepted.
    pub max_recipients: usize,
    /// Connections served at once; more are answered 421 and closed. Each holds at most one
    /// message of `max_message_bytes` in memory, which bounds what the listener can take.
    pub max_connections: usize,
    /// How long a client may take to send a command or a line of its message (RFC 5321
    /// §4.5.3.2.7 asks for at least 5 minutes).
    pub idle_timeout: Duration,
    /// How long one connection may last in all, so that a client trickling a line now and then
    /// cannot hold a slot for ever; it may connect again.
    pub max_session: Duration,
}

impl SmtpLimits {
    pub fn new(max_message_bytes: usize) -> SmtpLimits {
        SmtpLimits {
            max_message_bytes,
            max_recipients: 100,
            max_connections: 16,
            idle_timeout: Duration::from_secs(5 * 60),
            max_session: Duration::from_secs(30 * 60),
        }
    }
}

/// A running SMTP listener; dropping it without `stop` aborts it and its connections.
pub struct SmtpListener {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SmtpListener {
    /// Listens on `address`. Each message accepted is processed for every mailbox it is addressed
    /// to, reported as `IntakeEvent::Processed` without a UID; `route_now` is notified when it
    /// opened a case, for the routing task that hands new cases to the router.
    pub fn start(
        address: SocketAddr,
        processor: Arc<Processor>,
        limits: SmtpLimits,
        route_now: Arc<Notify>,
        events: broadcast::Sender<IntakeEvent>,
    ) -> io::Result<SmtpListener> {
        // Bound here rather than in the task, so that the caller learns at once that it failed.
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let local_addr = listener.local_addr()?;
        let rules = Arc::new(Rules::new(processor.mail_domain(), processor.config(), &limits));
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let context = Arc::new(Context { processor, rules, limits, route_now, events });
        let task = tokio::spawn(accept(listener, context, shutdown_receiver));
        Ok(SmtpListener { local_addr, shutdown, task: Some(task) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting; each open connection finishes storing the message it is on, is answered
    /// 421 instead of its next command, and closes.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SmtpListener {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// What every connection shares.
struct Context {
    processor: Arc<Processor>,
    rules: Arc<Rules>,
    limits: SmtpLimits,
    route_now: Arc<Notify>,
    events: broadcast::Sender<IntakeEvent>,
}

async fn accept(listener: TcpListener, context: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(context.limits.max_connections));
    // Aborted with this task when the listener is dropped.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        connections.spawn(serve(stream, Arc::clone(&context), shutdown.clone(), slot));
                    }
                    // Best effort and without waiting: a busy server must not queue the refusals.
                    Err(_) => {
                        let _ = stream.try_write(&Reply::busy(&context.rules.host).to_bytes());
                    }
                },
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accepting an SMTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = finished {
                    tracing::error!(%error, "an SMTP connection's task failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn serve(
    mut stream: TcpStream,
    context: Arc<Context>,
    shutdown: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) {
    let result = converse(&mut stream, &context, shutdown).await;
    // The slot is free before the client sees the connection close, so it may connect again.
    drop(slot);
    drop(stream);
    if let Err(error) = result {
        tracing::debug!(%error, "an SMTP connection ended with an error");
    }
}

async fn converse(stream: &mut TcpStream, context: &Context, mut shutdown: watch::Receiver<bool>) -> io::Result<()> {
    let idle = context.limits.idle_timeout;
    let host = &context.rules.host;
    let mut session = Session::new(Arc::clone(&context.rules));
    send(stream, &session.greeting(), idle).await?;
    let mut lines = LineSplitter::default();
    let mut chunk = vec![0; 16 * 1024];
    let ends = Instant::now() + context.limits.max_session;
    let mut deadline = Instant::now() + idle;
    loop {
        // Every line already read is answered before reading more: pipelined commands are
        // answered in order, and nothing after a command is lost.
        while let Some(line) = lines.next_line() {
            match session.input(line) {
                Action::Nothing => {}
                Action::Reply(reply) => send(stream, &reply, idle).await?,
                Action::Close(reply) => return send(stream, &reply, idle).await,
                Action::Deliver(delivery) => send(stream, &context.deliver(delivery).await, idle).await?,
            }
            deadline = Instant::now() + idle;
        }
        let read = tokio::select! {
            read = tokio::time::timeout_at(deadline.min(ends), stream.read(&mut chunk)) => read,
            _ = shutdown.changed() => return send(stream, &Reply::shutting_down(host), idle).await,
        };
        match read {
            Err(_) if deadline < ends => return send(stream, &Reply::idle(host), idle).await,
            Err(_) => return send(stream, &Reply::too_long(host), idle).await,
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(count)) => lines.push(&chunk[..count]),
            Ok(Err(error)) => return Err(error),
        }
    }
}

/// Writes a reply; a client that does not read it within `limit` is given up.
async fn send(stream: &mut TcpStream, reply: &Reply, limit: Duration) -> io::Result<()> {
    match tokio::time::timeout(limit, stream.write_all(&reply.to_bytes())).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the SMTP client does not read its replies")),
    }
}

impl Context {
    async fn deliver(&self, delivery: Delivery) -> Reply {
        match self.store(delivery).await {
            Ok(()) => Reply::stored(),
            Err(error) => {
                // The error names no person; the MX keeps the message and retries.
                tracing::warn!(%error, "storing a message delivered over SMTP failed");
                Reply::not_stored()
            }
        }
    }

    /// The message into every mailbox it was accepted for, each in its own committed transaction.
    /// When one fails, the MX retries them all: those already stored are then duplicates.
    async fn store(&self, delivery: Delivery) -> Result<(), IntakeError> {
        let config = self.processor.config();
        let acks = AckTemplates::load(self.processor.db(), &config.intake.ack_template).await?;
        // The rules come from this configuration: every accepted name is one of its mailboxes.
        for mailbox in delivery.mailboxes.iter().filter_map(|name| config.mailbox(name)) {
            let outcome = self.processor.process(mailbox, Source::Smtp, &delivery.message, &acks).await?;
            if matches!(outcome, Outcome::NewCase { .. }) {
                self.route_now.notify_one();
            }
            let _ = self.events.send(IntakeEvent::Processed { mailbox: mailbox.name.clone(), uid: None, outcome });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Arc<Rules> {
        Arc::new(Rules {
            host: "loket.example".to_owned(),
            max_message_bytes: 100,
            max_recipients: 2,
            recipients: vec![
                ("bevolking@gemeente.example".to_owned(), "bevolking".to_owned()),
                ("paspoort@gemeente.example".to_owned(), "paspoort".to_owned()),
                ("fiscaal@gemeente.example".to_owned(), "fiscaal".to_owned()),
            ],
        })
    }

    fn line(text: &str) -> Line {
        Line::Complete(text.as_bytes().to_vec())
    }

    /// The code of the reply to `text`.
    fn code(session: &mut Session, text: &str) -> u16 {
        match session.input(line(text)) {
            Action::Reply(reply) | Action::Close(reply) => reply.code,
            other => panic!("{text:?} got no reply: {other:?}"),
        }
    }

    fn reply(session: &mut Session, text: &str) -> Reply {
        match session.input(line(text)) {
            Action::Reply(reply) | Action::Close(reply) => reply,
            other => panic!("{text:?} got no reply: {other:?}"),
        }
    }

    fn ready() -> Session {
        let mut session = Session::new(rules());
        assert_eq!(code(&mut session, "EHLO mx.gemeente.example"), 250);
        session
    }

    /// Sends the lines of a message after an accepted DATA; returns the action of the final dot.
    fn message(session: &mut Session, lines: &[&str]) -> Action {
        for text in lines {
            assert_eq!(session.input(line(text)), Action::Nothing, "{text:?} is data");
        }
        session.input(line("."))
    }

    #[test]
    fn a_whole_conversation() {
        let mut session = Session::new(rules());
        assert_eq!(session.greeting().to_bytes(), b"220 loket.example ESMTP loket\r\n");
        let ehlo = reply(&mut session, "ehlo mx.gemeente.example");
        assert_eq!(
            String::from_utf8(ehlo.to_bytes()).unwrap(),
            "250-loket.example\r\n250-SIZE 100\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 PIPELINING\r\n"
        );
        assert_eq!(code(&mut session, "MAIL FROM:<Jan@Example.be> SIZE=40 BODY=8BITMIME"), 250);
        assert_eq!(code(&mut session, "RCPT TO:<Bevolking@Gemeente.Example>"), 250, "any case");
        assert_eq!(code(&mut session, "RCPT TO: <paspoort@gemeente.example>"), 250, "a space after the colon");
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 250, "twice is once");
        assert_eq!(code(&mut session, "DATA"), 354);
        let action = message(&mut session, &["Subject: hi", "", "..leading dot"]);
        let Action::Deliver(delivery) = action else { panic!("{action:?}") };
        assert_eq!(delivery.mailboxes, ["bevolking", "paspoort"]);
        assert_eq!(delivery.message, b"Return-Path: <jan@example.be>\r\nSubject: hi\r\n\r\n.leading dot\r\n");
        assert_eq!(Reply::stored().code, 250);
        assert_eq!(Reply::not_stored().to_bytes(), b"451 4.3.0 message not stored; try again later\r\n");
        // The transaction is over: a new one starts with MAIL.
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 503);
        assert_eq!(code(&mut session, "MAIL FROM:<>"), 250, "the null sender of a bounce");
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 250);
        assert_eq!(code(&mut session, "DATA"), 354);
        let Action::Deliver(bounce) = message(&mut session, &["x"]) else { panic!() };
        assert!(bounce.message.starts_with(b"Return-Path: <>\r\n"));
        assert_eq!(
            session.input(line("QUIT")),
            Action::Close(Reply::new(221, "2.0.0 loket.example closing connection"))
        );
    }

    #[test]
    fn helo_and_the_simple_commands() {
        let mut session = Session::new(rules());
        assert_eq!(reply(&mut session, "HELO mx").to_bytes(), b"250 loket.example\r\n");
        assert_eq!(code(&mut session, "NOOP"), 250);
        assert_eq!(code(&mut session, "VRFY bevolking"), 252);
        for command in ["EXPN list", "HELP", "STARTTLS", "AUTH PLAIN AAAA", "BDAT 10 LAST"] {
            assert_eq!(code(&mut session, command), 502, "{command}");
        }
        assert_eq!(code(&mut session, "FOO bar"), 500);
        assert_eq!(code(&mut session, "EHLO"), 501, "EHLO needs a domain");
        assert_eq!(code(&mut session, "HELO "), 501);
    }

    #[test]
    fn commands_out_of_order_are_503() {
        let mut session = Session::new(rules());
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>"), 503, "MAIL before EHLO");
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 503);
        assert_eq!(code(&mut session, "DATA"), 503);
        assert_eq!(code(&mut session, "EHLO mx"), 250);
        assert_eq!(code(&mut session, "DATA"), 503, "DATA before MAIL");
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>"), 250);
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>"), 503, "nested MAIL");
        assert_eq!(code(&mut session, "DATA"), 554, "no valid recipient");
        assert_eq!(code(&mut session, "RSET"), 250);
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 503, "RSET ended the transaction");
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>"), 250);
        assert_eq!(code(&mut session, "EHLO mx"), 250);
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 503, "EHLO ended it too");
    }

    #[test]
    fn recipients_are_the_mailboxes_only() {
        let mut session = ready();
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>"), 250);
        assert_eq!(
            reply(&mut session, "RCPT TO:<someone@gemeente.example>"),
            Reply::new(550, "5.1.1 no such mailbox here")
        );
        assert_eq!(code(&mut session, "RCPT TO:<Postmaster>"), 501, "no domain: not an address here");
        assert_eq!(code(&mut session, "RCPT TO:<@relay.example:bevolking@gemeente.example>"), 250, "source route");
        assert_eq!(code(&mut session, "RCPT TO:<paspoort@gemeente.example>"), 250);
        assert_eq!(
            reply(&mut session, "RCPT TO:<fiscaal@gemeente.example>"),
            Reply::new(452, "4.5.3 too many recipients"),
            "at most max_recipients"
        );
        assert_eq!(code(&mut session, "RCPT TO:<paspoort@gemeente.example> NOTIFY=NEVER"), 555);
        assert_eq!(code(&mut session, "RCPT TO:bevolking@gemeente.example"), 501, "no angle brackets");
        assert_eq!(code(&mut session, "RCPT TO:<>"), 501);
    }

    #[test]
    fn mail_from_checks_its_path_and_parameters() {
        let mut session = ready();
        assert_eq!(code(&mut session, "MAIL FROM:a@b.be"), 501);
        assert_eq!(code(&mut session, "MAIL TO:<a@b.be>"), 501);
        assert_eq!(code(&mut session, "MAIL FROM:<no-at-sign>"), 501);
        assert_eq!(code(&mut session, &format!("MAIL FROM:<{}@b.be>", "a".repeat(300))), 501, "over 256 octets");
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be> SIZE=lots"), 501);
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be> BODY=BINARYMIME"), 501);
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be> SMTPUTF8"), 555);
        assert_eq!(code(&mut session, "MAIL FROM:<\"odd>name\"@b.be> SIZE=100"), 250, "a quoted local part");
    }

    #[test]
    fn a_size_over_the_limit_is_refused_early() {
        let mut session = ready();
        let too_large = Reply::new(552, "5.3.4 message size exceeds fixed maximum message size (100 bytes)");
        assert_eq!(reply(&mut session, "MAIL FROM:<a@b.be> SIZE=101"), too_large);
        assert_eq!(reply(&mut session, "MAIL FROM:<a@b.be> SIZE=99999999999999999999999"), too_large);
        let rules = Rules { max_message_bytes: 25 * MIB, ..(*rules()).clone() };
        assert_eq!(rules.too_large().lines, ["5.3.4 message size exceeds fixed maximum message size (25 MB)"]);
    }

    #[test]
    fn a_message_over_the_limit_is_read_to_its_end_and_refused() {
        let mut session = ready();
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>"), 250);
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 250);
        assert_eq!(code(&mut session, "DATA"), 354);
        let long = "x".repeat(60);
        let action = message(&mut session, &[&long, &long, "QUIT"]);
        assert_eq!(
            action,
            Action::Reply(Reply::new(552, "5.3.4 message size exceeds fixed maximum message size (100 bytes)"))
        );
        assert_eq!(code(&mut session, "NOOP"), 250, "the session goes on");
        // Exactly at the limit is accepted: 98 octets and CRLF.
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>"), 250);
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 250);
        assert_eq!(code(&mut session, "DATA"), 354);
        assert!(matches!(message(&mut session, &[&"y".repeat(98)]), Action::Deliver(_)));
    }

    #[test]
    fn long_lines_are_500() {
        let mut session = ready();
        assert_eq!(
            session.input(Line::TooLong),
            Action::Reply(Reply::new(500, "5.5.2 line too long (at most 1000 octets with CRLF)"))
        );
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>"), 250);
        assert_eq!(code(&mut session, "RCPT TO:<bevolking@gemeente.example>"), 250);
        assert_eq!(code(&mut session, "DATA"), 354);
        assert_eq!(session.input(Line::TooLong), Action::Nothing, "read on to the end");
        assert_eq!(
            message(&mut session, &["more"]),
            Action::Reply(Reply::new(500, "5.5.2 line too long (at most 1000 octets with CRLF)"))
        );
    }

    #[test]
    fn control_characters_and_8bit_commands_are_500() {
        let mut session = ready();
        assert_eq!(code(&mut session, "MAIL FROM:<a@b.be>\nX-Injected: yes"), 500);
        assert_eq!(
            session.input(Line::Complete(b"NOOP \xff".to_vec())),
            Action::Reply(Reply::new(500, "5.5.2 syntax error: a command is printable ASCII"))
        );
    }

    #[test]
    fn too_many_errors_close_the_connection() {
        let mut session = ready();
        for _ in 0..MAX_ERRORS {
            assert_eq!(code(&mut session, "BOGUS"), 500);
        }
        assert_eq!(session.input(line("BOGUS")), Action::Close(Reply::new(421, "4.7.0 loket.example too many errors")));
    }

    #[test]
    fn the_edge_replies() {
        assert_eq!(Reply::idle("h").to_bytes(), b"421 4.4.2 h idle too long; closing the connection\r\n");
        assert_eq!(Reply::busy("h").code, 421);
        assert_eq!(Reply::shutting_down("h").code, 421);
    }

    fn split(chunks: &[&[u8]]) -> Vec<Line> {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk);
            while let Some(line) = splitter.next_line() {
                lines.push(line);
            }
        }
        lines
    }

    #[test]
    fn lines_end_only_at_crlf_whatever_the_chunks() {
        let expected = vec![line("EHLO a"), line("x\ny\rz"), line(""), line(".")];
        let bytes = b"EHLO a\r\nx\ny\rz\r\n\r\n.\r\n";
        assert_eq!(split(&[bytes]), expected);
        for cut in 1..bytes.len() {
            assert_eq!(split(&[&bytes[..cut], &bytes[cut..]]), expected, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(split(&bytewise), expected);
    }

    #[test]
    fn a_line_over_1000_octets_is_dropped_as_it_comes() {
        let fits = "a".repeat(998);
        assert_eq!(split(&[format!("{fits}\r\n").as_bytes()]), [line(&fits)], "998 and CRLF fit");
        let over = format!("{fits}a\r\nNOOP\r\n");
        assert_eq!(split(&[over.as_bytes()]), [Line::TooLong, line("NOOP")]);
        // Ten megabytes without a CRLF never take more than a line's worth of memory.
        let mut splitter = LineSplitter::default();
        let chunk = vec![b'z'; 64 * 1024];
        for _ in 0..160 {
            splitter.push(&chunk);
            assert_eq!(splitter.next_line(), None);
            assert!(splitter.buffer.len() - splitter.start <= MAX_LINE);
        }
        splitter.push(b"\r");
        assert_eq!(splitter.next_line(), None);
        splitter.push(b"\nQUIT\r\n");
        assert_eq!(splitter.next_line(), Some(Line::TooLong));
        assert_eq!(splitter.next_line(), Some(line("QUIT")));
    }
}
