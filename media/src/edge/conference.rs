//! Calls of more than two: the coaching mixer (`crate::mixer`) on a 20 ms clock.
//!
//! A session in a conference no longer relays packets to a peer: its task decodes each audio
//! packet it receives and hands the samples to the conference, behind a mutex held for one copy.
//! The conference's own task, every 20 ms, takes one frame per participant, mixes for each the
//! participants they hear, and sends the µ-law result to each participant's leg on that leg's own
//! outgoing line, as a prompt is sent (a playing prompt, such as music on hold, goes first).
//!
//! Each participant has a queue of up to `QUEUED` frames: arrival jitter below 60 ms costs
//! nothing; beyond it the oldest frame goes, so that the delay cannot grow. A participant whose
//! queue is empty is silent for that period, never repeated.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::session::{Command, Origin, Payload};
use super::{Codec, Leg, Session, SessionError};
use crate::g711::encode_ulaw;
use crate::mixer::{Coaching, CoachingRoles, Mixer, ParticipantId};
use crate::playback::FRAME_LEN;
use crate::rtp::{HEADER_LEN, RtpHeader, RtpPacket};

/// Frames waiting per participant, at most: 60 ms.
const QUEUED: usize = 3;
/// The mixing period: one G.711 frame.
const PERIOD: Duration = Duration::from_millis(20);

/// A mixed call. Dropping it stops the mixing; `close` also waits for its task.
#[derive(Debug)]
pub struct Conference {
    shared: Arc<Shared>,
    /// Dropping it stops the task.
    _stop: mpsc::Sender<()>,
    task: JoinHandle<()>,
}

/// What the conference's task and its participants' tasks share.
#[derive(Debug)]
pub(super) struct Shared {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    mixer: Mixer,
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    id: ParticipantId,
    leg: Weak<Leg>,
    frames: VecDeque<[i16; FRAME_LEN]>,
    /// Samples of a frame still being filled (packets need not carry 20 ms each).
    partial: [i16; FRAME_LEN],
    filled: usize,
    /// The line of what the conference sends to this participant.
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent between statements; a panic loses at most one frame.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Audio that `participant` sent, decoded.
    pub(super) fn push(&self, participant: ParticipantId, mut samples: &[i16]) {
        let mut state = self.lock();
        let Some(member) = state.members.iter_mut().find(|member| member.id == participant) else { return };
        while !samples.is_empty() {
            let take = (FRAME_LEN - member.filled).min(samples.len());
            member.partial[member.filled..member.filled + take].copy_from_slice(&samples[..take]);
            member.filled += take;
            samples = &samples[take..];
            if member.filled == FRAME_LEN {
                if member.frames.len() == QUEUED {
                    member.frames.pop_front();
                }
                member.frames.push_back(member.partial);
                member.filled = 0;
            }
        }
    }
}

impl Conference {
    /// A conference with nobody in it yet. Must be called within a Tokio runtime.
    pub fn start() -> Conference {
        let shared = Arc::new(Shared { state: Mutex::new(State { mixer: Mixer::new(), members: Vec::new() }) });
        let (stop, stopped) = mpsc::channel(1);
        let task = tokio::spawn(run(Arc::clone(&shared), stopped));
        Conference { shared, _stop: stop, task }
    }

    /// Takes `session` into the conference, hearing nobody until `set_coaching` says
    /// otherwise. The session must not be bridged: unbridge it first.
    pub async fn join(&self, session: &Session) -> Result<ParticipantId, SessionError> {
        let id = {
            let mut state = self.shared.lock();
            let id = state.mixer.join().ok_or(SessionError::ConferenceFull)?;
            state.members.push(Member {
                id,
                leg: Arc::downgrade(&session.leg),
                frames: VecDeque::with_capacity(QUEUED),
                partial: [0; FRAME_LEN],
                filled: 0,
                ssrc: rand::random(),
                sequence: rand::random(),
                timestamp: rand::random(),
            });
            id
        };
        let joined = session.command(Command::Conference(Some((Arc::clone(&self.shared), id)))).await;
        if joined.is_err() {
            self.forget(id);
        }
        joined.map(|()| id)
    }

    /// Takes `session`, the participant `id`, out of the conference; the others stop hearing it.
    pub async fn leave(&self, session: &Session, id: ParticipantId) {
        // A session that has ended is out already.
        let _ = session.command(Command::Conference(None)).await;
        self.forget(id);
    }

    /// Who hears whom in a coached call; takes effect from the next period, without a gap.
    pub fn set_coaching(&self, roles: CoachingRoles, mode: Coaching) {
        self.shared.lock().mixer.set_coaching(roles, mode);
    }

    /// Stops the mixing and waits for its task. Participants still in it hear nothing more from
    /// it; take them out with `leave` first to relay them again.
    pub async fn close(self) {
        let Conference { _stop, task, .. } = self;
        drop(_stop);
        // A panic in the task has been reported already.
        let _ = task.await;
    }

    fn forget(&self, id: ParticipantId) {
        let mut state = self.shared.lock();
        state.mixer.leave(id);
        state.members.retain(|member| member.id != id);
    }
}

async fn run(shared: Arc<Shared>, mut stop: mpsc::Receiver<()>) {
    let mut ticks = tokio::time::interval(PERIOD);
    // Periods missed by a late wake-up are skipped, not sent in a burst: the grid stays put.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = ticks.tick() => mix(&shared, Instant::now()),
        }
    }
}

/// One period: a frame in from each participant, and out to each what they hear.
fn mix(shared: &Shared, now: Instant) {
    let mut state = shared.lock();
    let State { mixer, members } = &mut *state;
    for member in members.iter_mut() {
        if let Some(frame) = member.frames.pop_front() {
            mixer.put_frame(member.id, &frame);
        }
    }
    let mut mixed = [0i16; FRAME_LEN];
    let mut ulaw = [0u8; FRAME_LEN];
    let mut datagram = [0u8; HEADER_LEN + FRAME_LEN];
    for member in members.iter_mut() {
        let Some(leg) = member.leg.upgrade() else { continue };
        mixer.mix_for(member.id, &mut mixed);
        let Some(length) = encode_ulaw(&mixed, &mut ulaw) else { continue };
        let header = RtpHeader {
            marker: false,
            payload_type: Codec::Pcmu.payload_type(),
            sequence: member.sequence,
            timestamp: member.timestamp,
            ssrc: member.ssrc,
        };
        member.sequence = member.sequence.wrapping_add(1);
        member.timestamp = member.timestamp.wrapping_add(FRAME_LEN as u32);
        // A frame's packet fits the buffer and parses back.
        let Ok(written) = header.write(&ulaw[..length], &mut datagram) else { continue };
        let Ok(packet) = RtpPacket::parse(&datagram[..written]) else { continue };
        leg.send(now, &packet, Payload::Audio(Codec::Pcmu), Origin::Peer);
    }
    mixer.next_period();
}
