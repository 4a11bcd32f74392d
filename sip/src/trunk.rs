//! A SIP trunk: the municipal PBX or a provider, through which loket calls numbers (an IVR's
//! transfer to a number) and at which it may register. [`Trunk`] is its configuration;
//! [`Registration`] is registration with it (RFC 3261 §10.2) as a pure state machine: time and
//! the registrar's answers in, REGISTERs to send and states to log out. The edge is
//! `service::calls`, which sends loket's requests to the trunk over UDP and answers its
//! challenges with [`crate::digest::Challenge`].

use std::fmt;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// The trunk's side of loket's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    /// `host` or `host:port`: the domain of the Request-URIs (`sip:NUMBER@host`), of loket's From
    /// and of its address-of-record, and where requests go without an outbound proxy. A name is
    /// looked up (A/AAAA, no SRV) for each call and each REGISTER; the port is 5060 if absent.
    pub host: String,
    pub username: String,
    pub password: Password,
    /// The user part of loket's From (the municipality's number), and of the Contact it
    /// registers, so that the trunk's calls to it reach the `[[sip.numbers]]` of that number.
    pub caller_id: String,
    /// `Some(seconds)`: loket registers at the trunk for that long, and renews in time.
    pub register: Option<u32>,
    /// `host:port` that every request goes to, with a preloaded `Route: <sip:host:port;lr>`.
    pub outbound_proxy: Option<String>,
    /// How long a call to a number may ring before loket cancels it.
    pub ring_timeout: Duration,
    /// The waits after failed registrations.
    pub retry: Backoff,
}

impl Trunk {
    /// Where loket's requests go: the outbound proxy, or the trunk itself.
    pub fn next_hop(&self) -> &str {
        self.outbound_proxy.as_deref().unwrap_or(&self.host)
    }

    /// The Route of every request through the outbound proxy.
    pub fn route(&self) -> Option<String> {
        self.outbound_proxy.as_ref().map(|proxy| format!("<sip:{proxy};lr>"))
    }
}

/// A password that stays out of logs: `Debug` shows none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    /// The password itself, for the digest only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// `host` or `host:port` (an IPv6 address in brackets): the host and the port, 5060 by default;
/// `None` for anything else (a scheme, a user part, parameters, spaces, a bad port).
pub fn host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (address, after) = rest.split_once(']')?;
            address.parse::<std::net::Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?.parse().ok()?),
            };
            (address, port)
        }
        None => {
            let (host, port) = match text.split_once(':') {
                Some((host, port)) => (host, Some(port.parse().ok()?)),
                None => (text, None),
            };
            let name = host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
            (name.then_some(host)?, port)
        }
    };
    (!host.is_empty() && port != Some(0)).then_some((host, port.unwrap_or(5060)))
}

/// Waits after failures: `first`, doubled after each further failure up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { first: Duration::from_secs(30), max: Duration::from_secs(600) }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (from 1).
    fn wait(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// What the edge tells the registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationEvent {
    Start,
    /// A 2xx; `granted` is the interval it gives loket's binding (its Contact's `expires`, else
    /// its Expires), `None` when it says none.
    Accepted {
        granted: Option<u32>,
    },
    /// A 401 or 407 that the edge can answer with credentials.
    Challenged {
        status: u16,
    },
    /// 423 Interval Too Brief, with the registrar's Min-Expires.
    IntervalTooBrief {
        min_expires: u32,
    },
    /// Any other final response.
    Refused {
        status: u16,
    },
    /// No final response: Timer F, a transport error, or the trunk's name not found.
    NoResponse,
    DeadlineReached,
    /// Shutting down: the binding is removed.
    Stop,
}

/// What the edge does and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationAction {
    /// Send a REGISTER for `expires` seconds (0 removes the binding); it carries credentials
    /// whenever the edge holds a challenge, the one just received or the last one (its nonce
    /// reused with the next count).
    Send {
        expires: u32,
    },
    Registered {
        expires: u32,
    },
    /// `status`: the refusal, `None` when nothing answered; the next attempt is in `retry_in`.
    Failed {
        status: Option<u16>,
        retry_in: Duration,
    },
    /// The binding is removed, or could not be: the registration is over.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// A REGISTER is out. `challenged`: this attempt already answered a challenge.
    Sending {
        expires: u32,
        challenged: bool,
    },
    Registered {
        refresh_at: Instant,
    },
    Waiting {
        retry_at: Instant,
    },
    /// The REGISTER with `Expires: 0` is out.
    Removing {
        challenged: bool,
    },
    Stopped,
}

/// The longest interval a registrar's Min-Expires can make loket ask for: a day.
const MAX_EXPIRES: u32 = 86_400;

/// Registration with the trunk: renewed at half the interval granted, retried with back-off,
/// removed at shutdown. A challenge is answered once per attempt: a second one means the
/// credentials are wrong.
#[derive(Debug, Clone)]
pub struct Registration {
    expires: u32,
    backoff: Backoff,
    failures: u32,
    state: State,
}

impl Registration {
    /// `expires`: the interval loket asks for.
    pub fn new(expires: u32, backoff: Backoff) -> Registration {
        Registration { expires, backoff, failures: 0, state: State::Idle }
    }

    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Registered { refresh_at: at } | State::Waiting { retry_at: at } => Some(at),
            State::Idle | State::Sending { .. } | State::Removing { .. } | State::Stopped => None,
        }
    }

    pub fn handle(&mut self, now: Instant, event: RegistrationEvent) -> Vec<RegistrationAction> {
        use RegistrationAction as Action;
        use RegistrationEvent as Event;
        let (next, actions) = match (self.state, event) {
            (State::Stopped, _) => return Vec::new(),
            (State::Registered { .. } | State::Sending { .. }, Event::Stop) => {
                (State::Removing { challenged: false }, vec![Action::Send { expires: 0 }])
            }
            (_, Event::Stop) => (State::Stopped, vec![Action::Stopped]),
            (State::Removing { challenged: false }, Event::Challenged { .. }) => {
                (State::Removing { challenged: true }, vec![Action::Send { expires: 0 }])
            }
            (State::Removing { .. }, Event::DeadlineReached) => return Vec::new(),
            (State::Removing { .. }, _) => (State::Stopped, vec![Action::Stopped]),
            (State::Idle, Event::Start) => self.attempt(),
            (State::Registered { refresh_at: at } | State::Waiting { retry_at: at }, Event::DeadlineReached)
                if now >= at =>
            {
                self.attempt()
            }
            (State::Sending { expires, .. }, Event::Accepted { granted }) => match granted.unwrap_or(expires) {
                0 => self.failed(now, Some(200)),
                granted => {
                    self.failures = 0;
                    let refresh_at = now + Duration::from_secs(u64::from(granted)) / 2;
                    (State::Registered { refresh_at }, vec![Action::Registered { expires: granted }])
                }
            },
            (State::Sending { expires, challenged: false }, Event::Challenged { .. }) => {
                (State::Sending { expires, challenged: true }, vec![Action::Send { expires }])
            }
            // RFC 3261 §10.2.8: a registrar that wants a longer interval gets it from now on.
            (State::Sending { expires, challenged }, Event::IntervalTooBrief { min_expires })
                if min_expires > expires && min_expires <= MAX_EXPIRES =>
            {
                self.expires = min_expires;
                (State::Sending { expires: min_expires, challenged }, vec![Action::Send { expires: min_expires }])
            }
            (State::Sending { .. }, Event::Challenged { status } | Event::Refused { status }) => {
                self.failed(now, Some(status))
            }
            (State::Sending { .. }, Event::IntervalTooBrief { .. }) => self.failed(now, Some(423)),
            (State::Sending { .. }, Event::NoResponse) => self.failed(now, None),
            // Late answers, early deadlines, a second start.
            _ => return Vec::new(),
        };
        self.state = next;
        actions
    }

    fn attempt(&self) -> (State, Vec<RegistrationAction>) {
        let expires = self.expires;
        (State::Sending { expires, challenged: false }, vec![RegistrationAction::Send { expires }])
    }

    fn failed(&mut self, now: Instant, status: Option<u16>) -> (State, Vec<RegistrationAction>) {
        self.failures = self.failures.saturating_add(1);
        let retry_in = self.backoff.wait(self.failures);
        (State::Waiting { retry_at: now + retry_in }, vec![RegistrationAction::Failed { status, retry_in }])
    }
}
