//! A hashed timing wheel: inserting and expiring are O(1) per timer, whatever the number of
//! timers, and it is owned by one task, so no lock (rsipstack 0.6 kept every transaction timer in
//! one mutex-guarded BTreeMap; see `sip/NOTES.md`).
//!
//! Time is split into ticks of `resolution` from `origin`; a timer sits in slot `tick % slots`.
//! A timer more than one revolution ahead stays in its slot until its own tick comes round.
//! Timers fire at most one tick late, never early.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TimerWheel<T> {
    origin: Instant,
    resolution: Duration,
    slots: Vec<Vec<(Instant, T)>>,
    /// Every tick before this one has been expired.
    current_tick: u64,
    len: usize,
}

impl<T> TimerWheel<T> {
    /// `n_slots` × `resolution` is one revolution; timers beyond it cost a revisit per revolution.
    pub fn new(origin: Instant, resolution: Duration, n_slots: usize) -> TimerWheel<T> {
        assert!(!resolution.is_zero() && n_slots > 0, "a wheel needs a resolution and slots");
        TimerWheel { origin, resolution, slots: (0..n_slots).map(|_| Vec::new()).collect(), current_tick: 0, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn insert(&mut self, at: Instant, item: T) {
        let tick = self.tick_of(at).max(self.current_tick);
        let n_slots = self.slots.len() as u64;
        self.slots[(tick % n_slots) as usize].push((at, item));
        self.len += 1;
    }

    /// Moves every timer due at `now` into `expired`, in no particular order.
    pub fn expire(&mut self, now: Instant, expired: &mut Vec<T>) {
        let target = self.tick_of(now);
        if target < self.current_tick || self.len == 0 {
            self.current_tick = self.current_tick.max(target);
            return;
        }
        let n_slots = self.slots.len() as u64;
        // Visiting every slot once is enough however far `now` jumped ahead.
        let n_visits = (target - self.current_tick + 1).min(n_slots);
        for tick in self.current_tick..self.current_tick + n_visits {
            let slot = &mut self.slots[(tick % n_slots) as usize];
            let mut idx = 0;
            while idx < slot.len() {
                if slot[idx].0 <= now {
                    expired.push(slot.swap_remove(idx).1);
                    self.len -= 1;
                } else {
                    idx += 1;
                }
            }
        }
        // The current tick is visited again next time: a timer later in it is not yet due.
        self.current_tick = target;
    }

    /// When to call [`TimerWheel::expire`] next: the end of the current tick while timers are
    /// pending. The wheel does not search for its earliest timer; a wake-up per tick is cheap.
    pub fn next_deadline(&self) -> Option<Instant> {
        (self.len > 0).then(|| self.start_of(self.current_tick + 1))
    }

    fn tick_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        // Ticks fit in u64 for any realistic resolution: 1 ms ticks last 584 million years.
        (since.as_nanos() / self.resolution.as_nanos()) as u64
    }

    fn start_of(&self, tick: u64) -> Instant {
        let nanos = u128::from(tick) * self.resolution.as_nanos();
        // u64 nanoseconds last 584 years; saturating keeps a wheel that old merely late.
        self.origin + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}
