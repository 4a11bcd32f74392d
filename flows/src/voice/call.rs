//! One call from answer to hang-up: the IVR, then the case draft and the work item, then the
//! waiting caller's music, announcements and callback offer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loket_crm::clock::Clock;
use loket_ivr::{Action, End, Event, Outcome, Session, WaitAction, WaitEvent, Waiting};
use loket_media::edge::{Codec, RemoteParams};
use loket_routing::model::{Channel, NewWorkItem, QueueId, Skill, SkillRequirement, WorkItemId};
use loket_sip::call::LegId;
use loket_sip::sdp::{self, Answer, LocalMedia, Sdp, SdpError};
use loket_sip::service::CallCommand;
use tokio::sync::mpsc;

use super::Voice;
use super::case::{self, Draft};
use super::line::{Heard, Line, Signal};
use crate::work::WorkItems;

/// How often a waiting caller's place is looked up.
const PLACE_EVERY: Duration = Duration::from_secs(10);

/// A new call, as the SIP service announced it.
pub(super) struct Incoming {
    pub call: LegId,
    pub dialled: String,
    pub caller: String,
    pub offer: Option<String>,
}

impl<W: WorkItems> Voice<W> {
    pub(super) async fn handle(
        self: Arc<Self>,
        incoming: Incoming,
        commands: mpsc::UnboundedSender<CallCommand>,
        signals: mpsc::UnboundedReceiver<Signal>,
    ) {
        let Incoming { call, dialled, caller, offer } = incoming;
        let refuse = |status| {
            // The service has gone only when the process stops.
            let _ = commands.send(CallCommand::Refuse { call, status });
        };
        let Some(flow) = self.ivr.flow_for(&dialled) else {
            tracing::warn!(%dialled, "no IVR flow for this number");
            return refuse(404);
        };
        // An INVITE without an offer would need loket's offer in the 200 and the answer in the
        // ACK, which the service does not pass on yet; callers and trunks send offers.
        let Some(offer) = offer else { return refuse(488) };
        let media = match self.media.allocate() {
            Ok(media) => media,
            Err(error) => {
                tracing::warn!(%error, "no media session for a new call");
                return refuse(503);
            }
        };
        let address = media.sdp_address();
        let local = LocalMedia { address: address.ip(), port: address.port(), session_id: call.0 };
        let answer = match sdp::answer(&offer, &local, 1) {
            Ok(answer) => answer,
            Err(SdpError::NoCommonCodec) => return refuse(488),
            Err(SdpError::Malformed(_)) => return refuse(400),
        };
        let Some(remote) = remote_params(&offer, &answer) else { return refuse(488) };
        if media.set_remote(remote).await.is_err() {
            return refuse(500);
        }
        let _ = commands.send(CallCommand::Answer { call, sdp: answer.text });
        let mut line = Line::new(call, media, commands, signals);
        if let Some(outcome) = self.run_ivr(&mut line, flow).await {
            match &outcome.end {
                End::Queue { queue, skills, priority } => {
                    self.wait_in_queue(&mut line, &outcome, queue, skills, *priority, &caller).await;
                }
                End::Transfer { number } => {
                    // Transfers to a number need an outbound leg from the application (later work).
                    tracing::warn!(%number, "IVR transfers to a number are not supported yet; hanging up");
                }
                End::Hangup | End::CallerHungUp => {}
            }
        }
        line.hang_up();
        line.media.close().await;
    }

    /// The flow from its start to its outcome; `None` if the line went away without one.
    async fn run_ivr(&self, line: &mut Line, flow: Arc<loket_ivr::Flow>) -> Option<Outcome> {
        let arrived = loket_ivr::schedule::brussels(time::OffsetDateTime::now_utc());
        let (mut session, mut actions) = Session::start(flow, arrived);
        loop {
            for action in std::mem::take(&mut actions) {
                match action {
                    Action::Play { prompts, .. } => line.play(self.prompts.playlist(&prompts), false).await,
                    Action::StopPlayback => line.stop_playback().await,
                    Action::Finished(outcome) => return Some(*outcome),
                }
            }
            let event = match line.next(session.next_deadline()).await {
                Heard::Digit(digit) => Event::Digit(digit),
                Heard::PromptFinished => Event::PromptFinished,
                Heard::HungUp => Event::HangUp,
                Heard::Deadline => Event::DeadlineReached,
            };
            actions = session.handle(Instant::now(), event);
            if event == Event::HangUp && !session.is_finished() {
                return None;
            }
        }
    }

    /// The case draft and the work item, then music and announcements until the caller hangs up
    /// or asks to be called back. (An agent taking the call is the agent console's part.)
    async fn wait_in_queue(
        &self,
        line: &mut Line,
        outcome: &Outcome,
        queue: &str,
        skills: &std::collections::BTreeMap<String, u8>,
        priority: i32,
        caller: &str,
    ) {
        let now = Clock::System.now();
        let contact = case::identify_caller(&self.db, self.register.as_ref(), outcome, caller, now).await;
        let draft =
            case::create_draft(&self.db, &self.queue_services, outcome, queue, priority, contact, caller, now).await;
        let draft = match draft {
            Ok(draft) => draft,
            Err(error) => {
                tracing::error!(call = line.call.0, %error, "the case of a call could not be created");
                return;
            }
        };
        let item = work_item(outcome, queue, skills, priority, draft.case_id);
        let item = match self.work.submit(item).await {
            Ok(item) => item,
            Err(error) => {
                tracing::error!(call = line.call.0, case = draft.case_id, %error, "the router refused a call");
                return;
            }
        };
        tracing::info!(call = line.call.0, case = draft.case_id, item = item.0, %queue, "a caller waits");
        self.keep_waiting(line, outcome, draft, item, caller).await;
    }

    async fn keep_waiting(&self, line: &mut Line, outcome: &Outcome, draft: Draft, item: WorkItemId, caller: &str) {
        let started = Instant::now();
        let Some(config) = self.ivr.waiting().cloned() else {
            // Without a `[waiting]` section: music, and nothing said.
            line.play(vec![self.prompts.music()], true).await;
            while line.next(None).await != Heard::HungUp {}
            return self.abandoned(draft, item, started).await;
        };
        let (mut waiting, mut actions) = Waiting::start(config, outcome.language, started);
        let mut place_at = started;
        loop {
            for action in std::mem::take(&mut actions) {
                match action {
                    WaitAction::Music => line.play(vec![self.prompts.music()], true).await,
                    WaitAction::Say(prompts) => line.play(self.prompts.playlist(&prompts), false).await,
                    WaitAction::CallbackRequested => {
                        if let Err(error) = case::callback_requested(&self.db, draft, caller, Clock::System.now()).await
                        {
                            tracing::warn!(case = draft.case_id, %error, "a callback request was not noted");
                        }
                        return;
                    }
                }
            }
            let deadline = [waiting.next_deadline(), Some(place_at)].into_iter().flatten().min();
            let now = match line.next(deadline).await {
                Heard::Digit(digit) => {
                    actions = waiting.handle(Instant::now(), WaitEvent::Digit(digit));
                    continue;
                }
                Heard::PromptFinished => {
                    actions = waiting.handle(Instant::now(), WaitEvent::PromptFinished);
                    continue;
                }
                Heard::HungUp => return self.abandoned(draft, item, started).await,
                Heard::Deadline => Instant::now(),
            };
            if now >= place_at {
                place_at = now + PLACE_EVERY;
                match self.work.place(item).await {
                    Ok(Some(position)) => {
                        let expected_wait = self.handle_time * position;
                        actions = waiting.handle(now, WaitEvent::Estimate { position, expected_wait });
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!(item = item.0, %error, "the router did not say the caller's place"),
                }
            }
            actions.extend(waiting.handle(now, WaitEvent::DeadlineReached));
        }
    }

    async fn abandoned(&self, draft: Draft, item: WorkItemId, started: Instant) {
        tracing::info!(case = draft.case_id, item = item.0, "a waiting caller hung up");
        if let Err(error) = self.work.abandon(item).await {
            tracing::warn!(item = item.0, %error, "the router did not take the abandoned call");
        }
        let waited = started.elapsed().as_secs();
        if let Err(error) = case::abandoned(&self.db, draft, waited, Clock::System.now()).await {
            tracing::warn!(case = draft.case_id, %error, "an abandoned call was not noted on its case");
        }
    }
}

/// A call's work item: the IVR's queue, skills, priority and language (never relaxed), its
/// attributes, and the case.
fn work_item(
    outcome: &Outcome,
    queue: &str,
    skills: &std::collections::BTreeMap<String, u8>,
    priority: i32,
    case_id: i64,
) -> NewWorkItem {
    let mut item = NewWorkItem::new(Channel::Voice, QueueId::new(queue));
    item.required_skills = skills
        .iter()
        .map(|(skill, level)| SkillRequirement { skill: Skill(skill.as_str().into()), min_level: *level })
        .collect();
    item.language = Some(Skill(outcome.language.code().into()));
    item.priority = priority;
    item.attributes = outcome.attributes.clone();
    item.case_id = Some(case_id);
    item
}

/// Where the caller's media goes, from their offer and loket's answer.
fn remote_params(offer: &str, answer: &Answer) -> Option<RemoteParams> {
    let offer = Sdp::parse(offer).ok()?;
    let audio = offer.media.iter().find(|media| media.kind == "audio" && media.port != 0)?;
    let address = audio.connection.or(offer.connection)?;
    Some(RemoteParams {
        rtp: SocketAddr::new(address, audio.port),
        rtcp: None,
        rtcp_mux: false,
        codec: match answer.codec {
            sdp::Codec::Pcmu => Codec::Pcmu,
            sdp::Codec::Pcma => Codec::Pcma,
        },
        telephone_event: answer.telephone_event,
        // A caller that cannot send telephone-events may still send tones in the audio.
        inband_dtmf: answer.telephone_event.is_none(),
    })
}
