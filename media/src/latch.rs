//! Symmetric RTP latching (RFC 4961's symmetric RTP, as NAT traversal uses it): where to send a
//! leg's media, learned from where its media comes from.
//!
//! A caller behind NAT puts its private address in SDP; its packets arrive from the NAT's public
//! one, which is where ours must go. So the first valid packet latches the leg to its source.
//! Afterwards another address takes over only after `LatchConfig::packets` packets in a row with
//! none from the current source in between, and only while the learning window is open or once the
//! current source has been silent for `LatchConfig::silence`. A NAT that rebinds mid-call (the
//! old mapping is gone, so it is silent) is followed; a stray or injected stream while the caller
//! still talks never wins.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The latching rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatchConfig {
    /// After the first packet, how long a new address may take over without the current one
    /// having gone silent: phones and SBCs sometimes start from one port and settle on another.
    pub window: Duration,
    /// Packets in a row a new address must send to take over.
    pub packets: u8,
    /// After the window, how long the current source must have been silent for a new one to take
    /// over.
    pub silence: Duration,
}

impl Default for LatchConfig {
    fn default() -> Self {
        LatchConfig { window: Duration::from_secs(3), packets: 3, silence: Duration::from_secs(1) }
    }
}

/// What to do with a packet, given its source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// From the current source: use it.
    Accept,
    /// From a new source that has now taken over: use it, and send to it from now on.
    Latched(SocketAddr),
    /// From another address that has not (yet) taken over: drop it.
    Ignore,
}

/// The latching state of one leg.
#[derive(Debug, Clone)]
pub struct Latch {
    config: LatchConfig,
    /// The address from SDP.
    signalled: Option<SocketAddr>,
    /// Where to send: the signalled address until a packet has come, then the latched source.
    target: Option<SocketAddr>,
    /// When the current source was latched first and last heard, once packets have come.
    learned: Option<Learned>,
    candidate: Option<(SocketAddr, u8)>,
}

#[derive(Debug, Clone, Copy)]
struct Learned {
    since: Instant,
    last_heard: Instant,
}

impl Latch {
    pub fn new(config: LatchConfig) -> Self {
        Latch { config, signalled: None, target: None, learned: None, candidate: None }
    }

    /// The address from SDP: where to send until the first packet arrives. A new one (a
    /// re-INVITE moved the media) starts learning over.
    pub fn set_signalled(&mut self, address: SocketAddr) {
        if self.signalled != Some(address) {
            *self = Latch { signalled: Some(address), target: Some(address), ..Latch::new(self.config) };
        }
    }

    /// Where media for this leg goes now.
    pub fn target(&self) -> Option<SocketAddr> {
        self.target
    }

    /// Judges a valid packet from `source` received at `now`.
    pub fn on_packet(&mut self, now: Instant, source: SocketAddr) -> LatchVerdict {
        let Some(learned) = &mut self.learned else {
            self.learned = Some(Learned { since: now, last_heard: now });
            let changed = self.target != Some(source);
            self.target = Some(source);
            return if changed { LatchVerdict::Latched(source) } else { LatchVerdict::Accept };
        };
        if self.target == Some(source) {
            learned.last_heard = now;
            self.candidate = None;
            return LatchVerdict::Accept;
        }
        let count = match self.candidate {
            Some((address, count)) if address == source => count.saturating_add(1),
            _ => 1,
        };
        self.candidate = Some((source, count));
        let window_open = now.saturating_duration_since(learned.since) < self.config.window;
        let current_silent = now.saturating_duration_since(learned.last_heard) >= self.config.silence;
        if count >= self.config.packets && (window_open || current_silent) {
            learned.last_heard = now;
            self.target = Some(source);
            self.candidate = None;
            return LatchVerdict::Latched(source);
        }
        LatchVerdict::Ignore
    }
}
