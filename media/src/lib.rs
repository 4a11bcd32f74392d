//! loket-media: the media engine. A sans-IO core, and `edge`, the UDP sessions around it.
//!
//! In the core, packets, samples and the current time go in; packets, samples, events and the
//! next deadline come out. No core module opens a socket, reads a clock, spawns a task or takes a
//! lock, so each is tested faster than real time. `edge` is the one module that does: it binds the
//! ports, runs one Tokio task per session and feeds the core.
//!
//! - `g711`: µ-law and A-law, bit-exact with the reference codec; PCMU↔PCMA transcoding by table
//!   into the caller's buffer.
//! - `rtp`: RTP packets (RFC 3550) parsed into a borrowed view and built into a caller's buffer;
//!   sequence and timestamp arithmetic with wrap-around; source validation (RFC 3550 A.1).
//! - `relay`: the rewriter that keeps one SSRC, sequence and timestamp line towards a leg while
//!   the source on the other side changes.
//! - `dtmf`: `Digit`; `dtmf::rfc4733` telephone-events (receiver de-duplicating by SSRC and
//!   timestamp, sender schedule); `dtmf::inband` Goertzel detection of tones in the audio, and
//!   their generation.
//! - `playback`: prompts encoded once at load (from 16-bit 8 kHz WAV), paced on a drift-free
//!   20 ms schedule; playlists, loops (music on hold) and barge-in.
//! - `mixer`: N participants each hearing a configured set of the others (listen, whisper, barge).
//! - `rtcp`: sender and receiver reports (RFC 3550 §6.4), parsed and built; reception statistics
//!   (loss, jitter, LSR/DLSR).
//! - `tone`: how strongly one frequency sounds in a stretch of audio (Goertzel), for the tests
//!   that check who hears whom.
//! - `latch`: symmetric RTP latching, with the rule that keeps a stream from being hijacked.
//! - `recording`: both directions of a leg onto one stereo timeline (channel 1 from the leg,
//!   channel 2 to it), placed by RTP timestamp and aligned on arrival, gaps filled with silence.
//! - `edge`: the port pool, `MediaEngine` and `Session` (remote from SDP, events, prompts, hold,
//!   digits sent, bridging with transcoding, RTCP, media timeout, recording to WAV).
//!
//! **Invariants.** Peer input never panics: a bad datagram is an error value, a bad event payload
//! is ignored. Hot paths (per packet, per frame) do not allocate: results go into caller-provided
//! buffers, and event queues are allocated once. Deadlines are computed from a start instant, never
//! from the previous wake-up.
//!
//! Errors: each fallible operation has its own small `thiserror` type (`rtp::ParseError`,
//! `rtp::BufferTooSmall`, `dtmf::rfc4733::PayloadTooShort`, `playback::PromptError`,
//! `rtcp::RtcpError`, `edge::EngineError`, `edge::SessionError`).

pub mod dtmf;
pub mod edge;
pub mod g711;
pub mod latch;
pub mod mixer;
pub mod playback;
pub mod recording;
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod tone;
