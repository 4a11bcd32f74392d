//! The coaching mixer: N participants, each hearing a configured set of the others.
//!
//! Every 20 ms the edge puts in each participant's decoded frame (or nothing, when their packet
//! is missing: they are then silent for that frame, never repeated) and takes out, for each
//! participant, the sum of the frames of those they hear, saturated to 16 bits. Who hears whom is
//! a bit set per listener, so a mode change (listen → whisper → barge) is a few bit operations
//! between two frames: there is no frame without audio around a switch.
//!
//! Nobody hears themselves, whatever the configuration says: an echo of one's own voice 40 ms
//! late is worse than useless.

use crate::playback::FRAME_LEN;

/// At most this many participants per mixer (the bits of a `u64`). A coached call has three.
pub const MAX_PARTICIPANTS: usize = 64;

/// A participant's place in one mixer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParticipantId(u8);

/// Who hears whom in a coached call (the supervisor coaching the agent who serves the citizen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coaching {
    /// The supervisor hears the agent and the citizen; nobody hears the supervisor.
    Listen,
    /// As `Listen`, and the agent hears the supervisor; the citizen still does not.
    Whisper,
    /// Everyone hears everyone.
    Barge,
}

/// The three roles of a coached call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoachingRoles {
    pub citizen: ParticipantId,
    pub agent: ParticipantId,
    pub supervisor: ParticipantId,
}

/// The mixer for one call.
#[derive(Debug, Clone)]
pub struct Mixer {
    /// The frame each participant put in for the current period.
    frames: Vec<[i16; FRAME_LEN]>,
    /// Who put in a frame this period.
    spoke: u64,
    /// Who is in the call.
    present: u64,
    /// For each listener, the set of participants they hear.
    hears: Vec<u64>,
}

impl Default for Mixer {
    fn default() -> Self {
        Mixer::new()
    }
}

impl Mixer {
    /// An empty mixer. Its buffers grow as participants join, never while mixing.
    pub fn new() -> Self {
        Mixer { frames: Vec::new(), spoke: 0, present: 0, hears: Vec::new() }
    }

    /// Adds a participant who hears nobody yet; `None` when the mixer is full.
    pub fn join(&mut self) -> Option<ParticipantId> {
        let slot = (!self.present).trailing_zeros() as usize;
        if slot >= MAX_PARTICIPANTS {
            return None;
        }
        if slot == self.frames.len() {
            self.frames.push([0; FRAME_LEN]);
            self.hears.push(0);
        }
        self.present |= 1 << slot;
        self.hears[slot] = 0;
        // The slot fits in u8: it is below MAX_PARTICIPANTS.
        Some(ParticipantId(slot as u8))
    }

    /// Removes a participant: nobody hears them any more, and their slot can be reused.
    pub fn leave(&mut self, participant: ParticipantId) {
        let bit = Self::bit(participant);
        self.present &= !bit;
        self.spoke &= !bit;
        for heard in &mut self.hears {
            *heard &= !bit;
        }
    }

    /// Sets whether `listener` hears `speaker`.
    pub fn set_hears(&mut self, listener: ParticipantId, speaker: ParticipantId, hears: bool) {
        if !self.is_present(listener) || !self.is_present(speaker) {
            return;
        }
        let heard = &mut self.hears[usize::from(listener.0)];
        if hears {
            *heard |= Self::bit(speaker);
        } else {
            *heard &= !Self::bit(speaker);
        }
    }

    /// Configures a coached call for `mode`; takes effect from the next `mix_for`.
    pub fn set_coaching(&mut self, roles: CoachingRoles, mode: Coaching) {
        let CoachingRoles { citizen, agent, supervisor } = roles;
        self.set_hears(citizen, agent, true);
        self.set_hears(agent, citizen, true);
        self.set_hears(supervisor, citizen, true);
        self.set_hears(supervisor, agent, true);
        self.set_hears(agent, supervisor, mode != Coaching::Listen);
        self.set_hears(citizen, supervisor, mode == Coaching::Barge);
    }

    /// Puts in a participant's frame for the current period.
    pub fn put_frame(&mut self, speaker: ParticipantId, frame: &[i16; FRAME_LEN]) {
        if self.is_present(speaker) {
            self.frames[usize::from(speaker.0)] = *frame;
            self.spoke |= Self::bit(speaker);
        }
    }

    /// Writes what `listener` hears in the current period into `out`.
    pub fn mix_for(&self, listener: ParticipantId, out: &mut [i16; FRAME_LEN]) {
        let mut sum = [0i32; FRAME_LEN];
        if self.is_present(listener) {
            let mut speakers = self.hears[usize::from(listener.0)] & self.spoke & !Self::bit(listener);
            while speakers != 0 {
                let speaker = speakers.trailing_zeros() as usize;
                speakers &= speakers - 1;
                for (total, &sample) in sum.iter_mut().zip(&self.frames[speaker]) {
                    *total += i32::from(sample);
                }
            }
        }
        for (sample, total) in out.iter_mut().zip(sum) {
            // Saturate: clipping a rare peak beats the wrap-around crack of an overflow.
            *sample = total.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
    }

    /// Ends the period: the next one starts with nobody having spoken.
    pub fn next_period(&mut self) {
        self.spoke = 0;
    }

    fn is_present(&self, participant: ParticipantId) -> bool {
        self.present & Self::bit(participant) != 0
    }

    fn bit(participant: ParticipantId) -> u64 {
        1 << participant.0
    }
}
