//! The coaching mixer: who hears whom in each mode, saturation, and switching between frames.

use loket_media::mixer::{Coaching, CoachingRoles, MAX_PARTICIPANTS, Mixer, ParticipantId};
use loket_media::playback::FRAME_LEN;

struct Call {
    mixer: Mixer,
    roles: CoachingRoles,
}

// Each speaker's frame is a constant level, so a mix is recognisable by its value:
// citizen 1, agent 10, supervisor 100.
const CITIZEN: i16 = 1;
const AGENT: i16 = 10;
const SUPERVISOR: i16 = 100;

impl Call {
    fn new(mode: Coaching) -> Self {
        let mut mixer = Mixer::new();
        let roles = CoachingRoles {
            citizen: mixer.join().unwrap(),
            agent: mixer.join().unwrap(),
            supervisor: mixer.join().unwrap(),
        };
        mixer.set_coaching(roles, mode);
        Call { mixer, roles }
    }

    /// One period where everyone speaks; returns what (citizen, agent, supervisor) hear.
    fn period(&mut self) -> (i16, i16, i16) {
        let CoachingRoles { citizen, agent, supervisor } = self.roles;
        self.mixer.put_frame(citizen, &[CITIZEN; FRAME_LEN]);
        self.mixer.put_frame(agent, &[AGENT; FRAME_LEN]);
        self.mixer.put_frame(supervisor, &[SUPERVISOR; FRAME_LEN]);
        let heard = (self.hears(citizen), self.hears(agent), self.hears(supervisor));
        self.mixer.next_period();
        heard
    }

    fn hears(&self, listener: ParticipantId) -> i16 {
        let mut out = [i16::MIN; FRAME_LEN];
        self.mixer.mix_for(listener, &mut out);
        assert!(out.iter().all(|&sample| sample == out[0]));
        out[0]
    }
}

#[test]
fn listen_whisper_and_barge() {
    // (citizen hears, agent hears, supervisor hears)
    assert_eq!(Call::new(Coaching::Listen).period(), (AGENT, CITIZEN, CITIZEN + AGENT));
    assert_eq!(Call::new(Coaching::Whisper).period(), (AGENT, CITIZEN + SUPERVISOR, CITIZEN + AGENT));
    assert_eq!(Call::new(Coaching::Barge).period(), (AGENT + SUPERVISOR, CITIZEN + SUPERVISOR, CITIZEN + AGENT));
}

#[test]
fn modes_switch_between_two_frames_without_a_gap() {
    let mut call = Call::new(Coaching::Listen);
    let mut heard = vec![call.period()];
    for mode in [Coaching::Whisper, Coaching::Barge, Coaching::Whisper, Coaching::Listen] {
        call.mixer.set_coaching(call.roles, mode);
        heard.push(call.period());
    }
    let expected = [
        (AGENT, CITIZEN, CITIZEN + AGENT),
        (AGENT, CITIZEN + SUPERVISOR, CITIZEN + AGENT),
        (AGENT + SUPERVISOR, CITIZEN + SUPERVISOR, CITIZEN + AGENT),
        (AGENT, CITIZEN + SUPERVISOR, CITIZEN + AGENT),
        (AGENT, CITIZEN, CITIZEN + AGENT),
    ];
    assert_eq!(heard, expected);
}

#[test]
fn a_missing_frame_is_silence_not_a_repeat() {
    let mut call = Call::new(Coaching::Barge);
    call.period();
    let CoachingRoles { citizen, agent, .. } = call.roles;
    // Only the citizen's packet arrived in this period.
    call.mixer.put_frame(citizen, &[CITIZEN; FRAME_LEN]);
    assert_eq!(call.hears(agent), CITIZEN);
    assert_eq!(call.hears(citizen), 0);
}

#[test]
fn sums_saturate() {
    let mut mixer = Mixer::new();
    let (a, b, c) = (mixer.join().unwrap(), mixer.join().unwrap(), mixer.join().unwrap());
    mixer.set_hears(c, a, true);
    mixer.set_hears(c, b, true);
    let ramp: Vec<i16> = (0..FRAME_LEN).map(|index| (index as i32 * 400 - 32000) as i16).collect();
    mixer.put_frame(a, &ramp.clone().try_into().unwrap());
    mixer.put_frame(b, &ramp.try_into().unwrap());
    let mut out = [0i16; FRAME_LEN];
    mixer.mix_for(c, &mut out);
    for (index, &sample) in out.iter().enumerate() {
        let exact = 2 * (index as i32 * 400 - 32000);
        assert_eq!(i32::from(sample), exact.clamp(-32768, 32767));
    }
}

#[test]
fn nobody_hears_themselves_or_those_who_left() {
    let mut mixer = Mixer::new();
    let (a, b) = (mixer.join().unwrap(), mixer.join().unwrap());
    mixer.set_hears(a, a, true);
    mixer.set_hears(a, b, true);
    mixer.put_frame(a, &[5; FRAME_LEN]);
    mixer.put_frame(b, &[7; FRAME_LEN]);
    let mut out = [0i16; FRAME_LEN];
    mixer.mix_for(a, &mut out);
    assert_eq!(out[0], 7);
    mixer.leave(b);
    mixer.mix_for(a, &mut out);
    assert_eq!(out[0], 0);
    // The slot is reused by the next to join, who starts hearing nobody and heard by nobody.
    let c = mixer.join().unwrap();
    assert_eq!(c, b);
    mixer.put_frame(c, &[9; FRAME_LEN]);
    mixer.mix_for(a, &mut out);
    assert_eq!(out[0], 0);
    mixer.mix_for(c, &mut out);
    assert_eq!(out[0], 0);
}

#[test]
fn the_mixer_holds_64_participants() {
    let mut mixer = Mixer::new();
    let all: Vec<ParticipantId> = (0..MAX_PARTICIPANTS).map(|_| mixer.join().unwrap()).collect();
    assert_eq!(mixer.join(), None);
    // A conference of 64 where the first hears everyone at level 1.
    for &speaker in &all {
        mixer.set_hears(all[0], speaker, true);
        mixer.put_frame(speaker, &[1; FRAME_LEN]);
    }
    let mut out = [0i16; FRAME_LEN];
    mixer.mix_for(all[0], &mut out);
    assert_eq!(out[0], 63);
}
