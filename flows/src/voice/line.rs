//! One caller's line as the call's task sees it: the media session it hears and speaks through,
//! the signals about the call (from the SIP service and the console), and the commands that go
//! back to the SIP service.

use std::time::Instant;

use loket_crm::desk::{Coaching, ConsultStep, TransferTarget};
use loket_media::edge::{PlayOptions, Session, SessionEvent};
use loket_media::playback::Prompt;
use loket_routing::model::AgentId;
use loket_sip::call::LegId;
use loket_sip::service::CallCommand;
use tokio::sync::mpsc;

/// How long a hung-up callee may take to be gone: its BYE answered, or given up on.
const CALLEE_GONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// What reaches a call's task after it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Signal {
    /// A digit by SIP INFO.
    Digit(char),
    /// The caller's side ended.
    Ended,
    /// The console: the agent accepted the call.
    Connect {
        agent: AgentId,
        username: String,
    },
    /// The console: the agent hangs up.
    HangUp,
    /// The console: the agent puts the caller on hold (`true`) or takes them off it.
    Hold(bool),
    /// The console: the agent sends the caller to a queue or another agent.
    Transfer(TransferTarget),
    /// The console: a digit of the agent's keypad, for the other party.
    SendDigit(char),
    /// The console: a step of the agent's consultative transfer.
    Consult(ConsultStep),
    /// The party the agent consults answered with this SDP.
    ConsultAnswered(String),
    /// The party the agent consults did not answer, or hung up.
    ConsultGone,
    /// The console: the colleague `agent`, consulted, answers (`true`), declines or leaves.
    ColleagueAnswer {
        agent: AgentId,
        answer: bool,
    },
    /// The board: a supervisor coaches the call in this mode, or leaves it (`None`).
    Coach {
        supervisor: AgentId,
        mode: Option<Coaching>,
    },
    CalleeRinging,
    CalleeAnswered(String),
    CalleeFailed(u16),
    CalleeHungUp,
}

/// What happened on the line while the call's task waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Heard {
    Digit(char),
    PromptFinished,
    /// The caller hung up, or the media stopped and loket hung up.
    HungUp,
    Deadline,
    /// Anything else the SIP service or the console said.
    Other(Signal),
}

pub(super) struct Line {
    pub call: LegId,
    pub media: Session,
    commands: mpsc::UnboundedSender<CallCommand>,
    signals: mpsc::UnboundedReceiver<Signal>,
    /// The SIP side is over: no more commands.
    ended: bool,
}

impl Line {
    pub fn new(
        call: LegId,
        media: Session,
        commands: mpsc::UnboundedSender<CallCommand>,
        signals: mpsc::UnboundedReceiver<Signal>,
    ) -> Line {
        Line { call, media, commands, signals, ended: false }
    }

    /// Plays `prompts`, replacing what plays; a session that is gone shows up as a hang-up on
    /// the next wait.
    pub async fn play(&self, prompts: Vec<Prompt>, looping: bool) {
        let options = PlayOptions { looping, barge_in: false };
        if let Err(error) = self.media.play(prompts, options).await {
            tracing::debug!(call = self.call.0, %error, "a prompt could not be played");
        }
    }

    pub async fn stop_playback(&self) {
        // As above: a closed session is noticed by the next wait.
        let _ = self.media.stop_playback().await;
    }

    /// Sends a command about this call; the service has gone only when the process stops.
    pub fn command(&self, command: CallCommand) {
        if !self.ended {
            let _ = self.commands.send(command);
        }
    }

    /// Hangs up unless the caller already has.
    pub fn hang_up(&mut self) {
        self.command(CallCommand::HangUp { call: self.call });
        self.ended = true;
    }

    /// The service says the call is over (a call loket placed that failed): nothing more to
    /// send about it.
    pub fn ended_by_service(&mut self) {
        self.ended = true;
    }

    /// Sends a keypad digit to this line's party; anything but `0`–`9`, `*` and `#` is ignored.
    pub async fn send_digit(&self, digit: char) {
        let Some(digit) = loket_media::dtmf::Digit::from_char(digit) else { return };
        if let Err(error) = self.media.send_digit(digit).await {
            tracing::debug!(call = self.call.0, %error, "a digit could not be sent");
        }
    }

    /// Waits until the callee dialled for this call is gone (it was hung up), the caller hangs
    /// up, or a few seconds have passed; what else arrives meanwhile is dropped.
    pub async fn callee_gone(&mut self) {
        let deadline = Instant::now() + CALLEE_GONE_WITHIN;
        loop {
            match self.next(Some(deadline)).await {
                Heard::Other(Signal::CalleeHungUp | Signal::CalleeFailed(_)) | Heard::HungUp | Heard::Deadline => {
                    return;
                }
                _ => {}
            }
        }
    }

    /// Waits for the next thing that matters to the call, or `deadline`.
    pub async fn next(&mut self, deadline: Option<Instant>) -> Heard {
        if self.ended {
            return Heard::HungUp;
        }
        loop {
            tokio::select! {
                event = self.media.next_event() => match event {
                    Some(SessionEvent::Digit { digit, .. }) => return Heard::Digit(digit.as_char()),
                    Some(SessionEvent::PlaybackFinished) => return Heard::PromptFinished,
                    Some(SessionEvent::MediaTimeout) | None => {
                        tracing::info!(call = self.call.0, "no media from the caller: hanging up");
                        self.hang_up();
                        return Heard::HungUp;
                    }
                    Some(SessionEvent::Latched(_) | SessionEvent::PlaybackStopped) => {}
                },
                signal = self.signals.recv() => match signal {
                    Some(Signal::Digit(digit)) => return Heard::Digit(digit),
                    Some(Signal::Ended) | None => {
                        self.ended = true;
                        return Heard::HungUp;
                    }
                    Some(other) => return Heard::Other(other),
                },
                () = sleep_until(deadline) => return Heard::Deadline,
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
