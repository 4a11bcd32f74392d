//! One call from answer to hang-up: the IVR, then the case draft and the work item, then the
//! waiting caller's music, announcements and callback offer; or the IVR's transfer to a number,
//! dialled through the SIP trunk with a second media session that loket bridges to the caller's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loket_be::PhoneNumber;
use loket_crm::desk::{CallState, TransferTarget};
use loket_ivr::{Action, End, Event, Outcome, Session as IvrSession, WaitAction, WaitEvent, Waiting};
use loket_media::edge::{Codec, RemoteParams, Session, WebRtcLeg};
use loket_routing::core::Input;
use loket_routing::model::{AgentId, Channel, NewWorkItem, QueueId, Skill, SkillRequirement, WorkItemId};
use loket_sip::call::LegId;
use loket_sip::sdp::{self, Direction, LocalMedia, SdpError};
use loket_sip::service::CallCommand;
use tokio::sync::mpsc;

use super::case::{self, Draft};
use super::coach;
use super::consult::{ColleagueSide, Consult, Held, Party, Stepped};
use super::line::{Heard, Line, Signal};
use super::outbound::Callback;
use super::{Voice, lock};
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
        let Some(flow) = self.parts.ivr.flow_for(&dialled) else {
            tracing::warn!(%dialled, "no IVR flow for this number");
            return refuse(404);
        };
        // An INVITE without an offer would need loket's offer in the 200 and the answer in the
        // ACK, which the service does not pass on yet; callers and trunks send offers.
        let Some(offer) = offer else { return refuse(488) };
        let media = match self.parts.media.allocate() {
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
        let Ok(remote) = sdp::remote(&offer) else { return refuse(488) };
        if media.set_remote(remote_params(&remote)).await.is_err() {
            return refuse(500);
        }
        let _ = commands.send(CallCommand::Answer { call, sdp: answer.text });
        let mut line = Line::new(call, media, commands, signals);
        if let Some(outcome) = self.run_ivr(&mut line, flow).await {
            match &outcome.end {
                End::Queue { queue, skills, priority } => {
                    self.wait_in_queue(&mut line, &outcome, queue, skills, *priority, &caller).await;
                }
                // The transfer took place in the IVR (`Action::Transfer`).
                End::Transfer { .. } | End::Hangup | End::CallerHungUp => {}
            }
        }
        line.hang_up();
        line.media.close().await;
    }

    /// The flow from its start to its outcome; `None` if the line went away without one.
    async fn run_ivr(&self, line: &mut Line, flow: Arc<loket_ivr::Flow>) -> Option<Outcome> {
        let arrived = loket_ivr::schedule::brussels(time::OffsetDateTime::now_utc());
        let (mut session, mut actions) = IvrSession::start(flow, arrived);
        loop {
            let mut transferred = None;
            for action in std::mem::take(&mut actions) {
                match action {
                    Action::Play { prompts, .. } => line.play(self.parts.prompts.playlist(&prompts), false).await,
                    Action::StopPlayback => line.stop_playback().await,
                    Action::Transfer { number } => transferred = Some(self.transfer_to_number(line, &number).await),
                    Action::Finished(outcome) => return Some(*outcome),
                }
            }
            let event = match transferred {
                Some(event) => event,
                None => match line.next(session.next_deadline()).await {
                    Heard::Digit(digit) => Event::Digit(digit),
                    Heard::PromptFinished => Event::PromptFinished,
                    Heard::HungUp => Event::HangUp,
                    Heard::Deadline => Event::DeadlineReached,
                    // Nothing else concerns a caller in the IVR (no agent has the call yet).
                    Heard::Other(_) => continue,
                },
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
        let now = self.now();
        let contact = case::identify_caller(&self.parts.db, self.parts.register.as_ref(), outcome, caller, now).await;
        let draft = case::create_draft(
            &self.parts.db,
            &self.parts.queue_services,
            outcome,
            queue,
            priority,
            contact,
            caller,
            now,
        )
        .await;
        // A caller whose case could not be written still reaches an agent, who makes the case.
        let draft = match draft {
            Ok(draft) => Some(draft),
            Err(error) => {
                tracing::error!(call = line.call.0, %error, "the case of a call could not be created; the caller waits without one");
                None
            }
        };
        let case_id = draft.map(|draft| draft.case_id);
        let item = work_item(outcome, queue, skills, priority, case_id);
        let item = match self.parts.work.submit(item).await {
            Ok(item) => item,
            Err(error) => {
                tracing::error!(call = line.call.0, case = ?case_id, %error, "the router refused a call");
                return;
            }
        };
        tracing::info!(call = line.call.0, case = ?case_id, item = item.0, %queue, "a caller waits");
        self.keep_waiting(line, outcome, draft, item, caller).await;
    }

    async fn keep_waiting(
        &self,
        line: &mut Line,
        outcome: &Outcome,
        draft: Option<Draft>,
        item: WorkItemId,
        caller: &str,
    ) {
        lock(&self.items).insert(item, line.call);
        self.wait_for_agent(line, outcome, draft, item, caller).await;
        lock(&self.items).remove(&item);
        lock(&self.states).remove(&item);
    }

    /// Music, announcements and the callback offer until an agent's phone answers (then the
    /// call is theirs), the caller hangs up, or asks to be called back.
    async fn wait_for_agent(
        &self,
        line: &mut Line,
        outcome: &Outcome,
        draft: Option<Draft>,
        item: WorkItemId,
        caller: &str,
    ) {
        let started = Instant::now();
        let mut config = self.parts.ivr.waiting().cloned();
        let callback_number = PhoneNumber::parse(caller).ok();
        if draft.is_none() || callback_number.is_none() {
            // A callback is noted on the case and calls the caller's number: without both, none
            // is offered.
            config.iter_mut().for_each(|config| config.offer = None);
        }
        let (mut waiting, mut actions) = match config {
            Some(config) => {
                let (waiting, actions) = Waiting::start(config, outcome.language, started);
                (Some(waiting), actions)
            }
            // Without a `[waiting]` section: music, and nothing said.
            None => (None, vec![WaitAction::Music]),
        };
        let mut place_at = started;
        let mut ringing: Option<(AgentId, Session)> = None;
        // Where the caller waits: the IVR's queue, or where an agent transferred them.
        let Some(mut queue) = queue_of(outcome).map(str::to_owned) else { return };
        loop {
            for action in std::mem::take(&mut actions) {
                match action {
                    WaitAction::Music => line.play(vec![self.parts.prompts.music()], true).await,
                    WaitAction::Say(prompts) => line.play(self.parts.prompts.playlist(&prompts), false).await,
                    WaitAction::CallbackRequested => {
                        let (Some(draft), Some(number)) = (draft, callback_number) else { return };
                        let noted = case::callback_requested(&self.parts.db, draft, caller, self.now()).await;
                        if let Err(error) = noted {
                            tracing::warn!(case = draft.case_id, %error, "a callback request was not noted");
                        }
                        // The item keeps its place; the agent who accepts it calls back.
                        self.keep_callback(item, Callback { number, draft, queue: queue.clone() }).await;
                        return;
                    }
                }
            }
            let deadline =
                [waiting.as_ref().and_then(Waiting::next_deadline), Some(place_at)].into_iter().flatten().min();
            let heard = line.next(deadline).await;
            let now = Instant::now();
            let mut talked = None;
            match heard {
                Heard::Digit(digit) => {
                    actions = waiting.as_mut().map(|w| w.handle(now, WaitEvent::Digit(digit))).unwrap_or_default();
                }
                Heard::PromptFinished => {
                    actions = waiting.as_mut().map(|w| w.handle(now, WaitEvent::PromptFinished)).unwrap_or_default();
                }
                Heard::HungUp => {
                    return match ringing.take() {
                        Some((agent, agent_media)) => {
                            line.command(CallCommand::HangUpCallee { call: line.call });
                            agent_media.close().await;
                            self.finished(item, agent).await;
                        }
                        None => self.abandoned(draft, item, started).await,
                    };
                }
                Heard::Deadline if now >= place_at => {
                    place_at = now + PLACE_EVERY;
                    if let Some(waiting) = waiting.as_mut() {
                        match self.parts.work.place(item).await {
                            Ok(Some(position)) => {
                                let expected_wait = self.parts.handle_time * position;
                                actions = waiting.handle(now, WaitEvent::Estimate { position, expected_wait });
                            }
                            Ok(None) => {}
                            Err(error) => tracing::warn!(item = item.0, %error, "the router did not say the place"),
                        }
                    }
                }
                Heard::Deadline => {
                    actions = waiting.as_mut().map(|w| w.handle(now, WaitEvent::DeadlineReached)).unwrap_or_default();
                }
                Heard::Other(Signal::Connect { agent, username }) if ringing.is_none() => {
                    if let Some(softphone) = self.softphone_of(agent) {
                        talked =
                            Some(self.talk(line, item, agent, &queue, AgentLeg::Softphone(softphone), draft).await);
                    } else {
                        match self.ring_agent(line, &username).await {
                            Some(agent_media) => {
                                ringing = Some((agent, agent_media));
                                self.set_state(item, agent, CallState::Ringing);
                            }
                            None => self.not_answered(item, agent, &queue).await,
                        }
                    }
                }
                Heard::Other(Signal::CalleeAnswered(sdp)) => {
                    if let Some((agent, agent_media)) = ringing.take() {
                        let answered = match far_end(line.call, &sdp) {
                            Some(remote) => agent_media.set_remote(remote).await.is_ok(),
                            None => false,
                        };
                        let leg = AgentLeg::Phone { media: agent_media, answered };
                        talked = Some(self.talk(line, item, agent, &queue, leg, draft).await);
                    }
                }
                Heard::Other(Signal::CalleeFailed(status)) => {
                    if let Some((agent, agent_media)) = ringing.take() {
                        tracing::info!(item = item.0, status, "the agent's phone did not answer");
                        agent_media.close().await;
                        self.not_answered(item, agent, &queue).await;
                    }
                }
                Heard::Other(Signal::HangUp) => {
                    if let Some((agent, agent_media)) = ringing.take() {
                        line.command(CallCommand::HangUpCallee { call: line.call });
                        line.hang_up();
                        agent_media.close().await;
                        return self.finished(item, agent).await;
                    }
                }
                Heard::Other(_) => {}
            }
            loop {
                match talked {
                    // A colleague the agent consulted took the call over.
                    Some(Talked::Handed { agent, leg }) => {
                        talked = Some(self.talk(line, item, agent, &queue, leg, draft).await);
                    }
                    Some(Talked::Ended) => return,
                    Some(Talked::Transferred(to)) => {
                        queue = to.as_str().to_owned();
                        actions = vec![WaitAction::Music];
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    /// A second media session for the agent, and the agent's phones rung with its offer.
    async fn ring_agent(&self, line: &Line, username: &str) -> Option<Session> {
        self.dial_callee(line, |call, offer| CallCommand::DialAgent { call, agent: username.to_owned(), offer })
    }

    /// A second media session for a callee, and `command` (given the call and that session's
    /// offer) to dial it.
    fn dial_callee(&self, line: &Line, command: impl FnOnce(LegId, String) -> CallCommand) -> Option<Session> {
        let media = match self.parts.media.allocate() {
            Ok(media) => media,
            Err(error) => {
                tracing::warn!(%error, "no media session for a callee");
                return None;
            }
        };
        let address = media.sdp_address();
        let local = LocalMedia { address: address.ip(), port: address.port(), session_id: line.call.0 + (1 << 32) };
        line.command(command(line.call, sdp::offer(&local, 1, Direction::SendRecv)));
        Some(media)
    }

    /// The IVR's transfer to `number`: dialled through the trunk while the caller hears music,
    /// then the caller and the callee talk through loket's two media sessions until either hangs
    /// up, which ends the other. What the flow learns: answered, failed (no trunk, a refusal,
    /// nobody answering: the flow goes on), or the caller gone.
    async fn transfer_to_number(&self, line: &mut Line, number: &str) -> Event {
        line.play(vec![self.parts.prompts.music()], true).await;
        match self.reach_number(line, number).await {
            Reached::Answered(media) => {
                self.stay_with_number(line, media).await;
                Event::TransferAnswered
            }
            Reached::Failed => {
                line.stop_playback().await;
                Event::TransferFailed
            }
            Reached::CallerGone => Event::HangUp,
        }
    }

    /// Dials `number` through the trunk for the caller of `line`, while the caller hears what
    /// plays, and bridges the two when it answers.
    async fn reach_number(&self, line: &mut Line, number: &str) -> Reached {
        let Some(media) =
            self.dial_callee(line, |call, offer| CallCommand::DialNumber { call, number: number.to_owned(), offer })
        else {
            return Reached::Failed;
        };
        let answered = loop {
            match line.next(None).await {
                Heard::Other(Signal::CalleeAnswered(sdp)) => break Some(sdp),
                Heard::Other(Signal::CalleeFailed(status)) => {
                    // The number may be a citizen's: it stays out of the log.
                    tracing::info!(call = line.call.0, status, "a transfer to a number failed");
                    break None;
                }
                Heard::HungUp => {
                    line.command(CallCommand::HangUpCallee { call: line.call });
                    media.close().await;
                    return Reached::CallerGone;
                }
                _ => {}
            }
        };
        if let Some(sdp) = answered
            && self.bridge_callee(line, &media, &sdp).await
        {
            return Reached::Answered(media);
        }
        media.close().await;
        Reached::Failed
    }

    /// The caller and the number talk until either hangs up, which ends the other.
    async fn stay_with_number(&self, line: &mut Line, media: Session) {
        tracing::info!(call = line.call.0, "a caller was transferred to a number");
        let (caller, callee) = (line.media.stats(), media.stats());
        loop {
            match line.next(None).await {
                Heard::HungUp => {
                    line.command(CallCommand::HangUpCallee { call: line.call });
                    break;
                }
                Heard::Other(Signal::CalleeHungUp) => break,
                _ => {}
            }
        }
        let (caller_after, callee_after) = (line.media.stats(), media.stats());
        tracing::info!(
            call = line.call.0,
            from_caller = caller_after.received_packets.saturating_sub(caller.received_packets),
            to_caller = caller_after.sent_packets.saturating_sub(caller.sent_packets),
            from_callee = callee_after.received_packets.saturating_sub(callee.received_packets),
            to_callee = callee_after.sent_packets.saturating_sub(callee.sent_packets),
            "a transferred call ended"
        );
        media.close().await;
    }

    /// The agent's blind transfer to `number`: the agent's item stays theirs while the number
    /// rings, so that a number that does not answer sends the caller back to the queue rather
    /// than away; once it answers the agent wraps up.
    async fn transfer_out(
        &self,
        line: &mut Line,
        item: WorkItemId,
        agent: AgentId,
        queue: &str,
        number: &PhoneNumber,
        draft: Option<Draft>,
    ) -> Talked {
        self.set_state(item, agent, CallState::Ringing);
        line.play(vec![self.parts.prompts.music()], true).await;
        match self.reach_number(line, number.e164()).await {
            Reached::Answered(media) => {
                self.finished(item, agent).await;
                if let Some(draft) = draft
                    && let Err(error) = case::transferred_to_number(&self.parts.db, draft, number, self.now()).await
                {
                    tracing::warn!(case = draft.case_id, %error, "a transfer to a number was not noted");
                }
                self.stay_with_number(line, media).await;
                Talked::Ended
            }
            Reached::CallerGone => {
                self.finished(item, agent).await;
                Talked::Ended
            }
            Reached::Failed => {
                self.not_answered(item, agent, queue).await;
                Talked::Transferred(QueueId::new(queue))
            }
        }
    }

    /// Sets the callee's answer as `media`'s far end and bridges it to the caller's session;
    /// `false` (and the callee hung up) when either fails.
    async fn bridge_callee(&self, line: &Line, media: &Session, answer: &str) -> bool {
        let Some(remote) = far_end(line.call, answer) else {
            line.command(CallCommand::HangUpCallee { call: line.call });
            return false;
        };
        line.stop_playback().await;
        let bridged = media.set_remote(remote).await.is_ok() && line.media.bridge(media).await.is_ok();
        if !bridged {
            line.command(CallCommand::HangUpCallee { call: line.call });
        }
        bridged
    }

    /// The agent's phone (or the number the agent transferred to) did not answer: the item goes
    /// back to its queue, where the caller still waits, and the router offers it again.
    pub(super) async fn not_answered(&self, item: WorkItemId, agent: AgentId, queue: &str) {
        self.set_state(item, agent, CallState::NotAnswered);
        let input = Input::ItemTransferred { agent, item, to: QueueId::new(queue) };
        if let Err(error) = self.parts.work.execute(input).await {
            tracing::warn!(item = item.0, %error, "a call the agent did not answer could not go back to its queue");
        }
    }

    /// Caller and agent talk through loket's two media sessions until either hangs up, or the
    /// agent transfers the caller. The call is recorded when its `queue` is, and the recording
    /// joins the case of `draft` (a call without a case is not recorded).
    async fn talk(
        &self,
        line: &mut Line,
        item: WorkItemId,
        agent: AgentId,
        queue: &str,
        mut agent_leg: AgentLeg,
        draft: Option<Draft>,
    ) -> Talked {
        line.stop_playback().await;
        let bridged = agent_leg.answered() && line.media.bridge(agent_leg.media()).await.is_ok();
        if !bridged {
            let softphone = matches!(agent_leg, AgentLeg::Softphone(_));
            agent_leg.hang_up(line);
            self.release(agent_leg, line).await;
            if softphone {
                // The browser went between the accept and the bridge: the caller waits on.
                self.not_answered(item, agent, queue).await;
                return Talked::Transferred(QueueId::new(queue));
            }
            line.hang_up();
            self.finished(item, agent).await;
            return Talked::Ended;
        }
        let since = self.now().0;
        self.set_state(item, agent, CallState::Connected { since });
        let recording = match draft {
            Some(draft) if self.parts.record_queues.contains(queue) => self.start_recording(line, item, draft).await,
            _ => None,
        };
        let mut transferred = None;
        let mut coached = None;
        let mut consult = None;
        let mut completed = None;
        loop {
            let heard = tokio::select! {
                heard = line.next(None) => heard,
                () = agent_leg.gone() => Heard::Other(Signal::CalleeHungUp),
                supervisor = coach::gone(&coached) => Heard::Other(Signal::Coach { supervisor, mode: None }),
                consulted = Consult::next(&mut consult) => Heard::Other(consulted),
            };
            // Whatever ends the call or takes the agent away ends a consultation first.
            let ends = matches!(
                heard,
                Heard::HungUp | Heard::Other(Signal::HangUp | Signal::Transfer(_) | Signal::CalleeHungUp)
            );
            if ends && consult.is_some() {
                let held = Held { item, agent, media: agent_leg.media(), since };
                self.back_to_caller(line, held, &mut consult, true).await;
            }
            match heard {
                Heard::Other(Signal::Consult(step)) if coached.is_none() => {
                    let held = Held { item, agent, media: agent_leg.media(), since };
                    match self.consult_step(line, held, &mut consult, step).await {
                        Stepped::Going => {}
                        Stepped::Completed(consulted) => {
                            completed = Some(consulted);
                            agent_leg.hang_up(line);
                            break;
                        }
                    }
                }
                Heard::Other(Signal::ConsultAnswered(sdp)) => {
                    let held = Held { item, agent, media: agent_leg.media(), since };
                    self.consult_answered(line, held, &mut consult, &sdp).await;
                }
                Heard::Other(Signal::ColleagueAnswer { agent: colleague, answer }) => {
                    let held = Held { item, agent, media: agent_leg.media(), since };
                    self.colleague_answered(line, held, &mut consult, colleague, answer).await;
                }
                Heard::Other(Signal::ConsultGone) => {
                    let held = Held { item, agent, media: agent_leg.media(), since };
                    self.back_to_caller(line, held, &mut consult, false).await;
                }
                Heard::Other(Signal::SendDigit(digit)) if consult.is_some() => {
                    if let Some(consulted) = &consult {
                        consulted.send_digit(digit).await;
                    }
                }
                // The caller stays on hold while the agent consults.
                Heard::Other(Signal::Hold(_) | Signal::Coach { .. }) if consult.is_some() => {}
                Heard::Other(Signal::Coach { supervisor, mode }) => {
                    let media = agent_leg.media();
                    coached = self.apply_coaching(line, item, agent, media, coached.take(), supervisor, mode).await;
                }
                Heard::Other(Signal::Transfer(to)) => {
                    transferred = Some(to);
                    agent_leg.hang_up(line);
                    // Off hold, so that the caller hears the music of the queue again.
                    let _ = line.media.resume().await;
                    break;
                }
                Heard::Other(Signal::SendDigit(digit)) => line.send_digit(digit).await,
                Heard::Other(Signal::Hold(on)) => {
                    let done =
                        if on { line.media.hold(self.parts.prompts.music()).await } else { line.media.resume().await };
                    let state = if on { CallState::Held { since } } else { CallState::Connected { since } };
                    if done.is_ok() {
                        self.set_state(item, agent, state);
                    }
                }
                Heard::HungUp => {
                    agent_leg.hang_up(line);
                    break;
                }
                Heard::Other(Signal::CalleeHungUp) => match &agent_leg {
                    AgentLeg::Phone { .. } | AgentLeg::Line(_) => {
                        line.hang_up();
                        break;
                    }
                    // The browser went: a reloaded page has connected a new softphone, or the
                    // caller goes back to the queue rather than being cut off.
                    AgentLeg::Softphone(old) => {
                        let new = self.softphone_of(agent).filter(|new| !Arc::ptr_eq(old, new));
                        if let Some(coached) = coached.take() {
                            self.end_coaching(line, item, agent, old.session(), coached, false).await;
                        }
                        match new {
                            Some(new) if line.media.bridge(new.session()).await.is_ok() => {
                                tracing::info!(item = item.0, "the call moved to the agent's new softphone");
                                agent_leg = AgentLeg::Softphone(new);
                            }
                            _ => {
                                tracing::info!(item = item.0, "the agent's softphone went; the caller waits again");
                                transferred = Some(TransferTarget::Queue(QueueId::new(queue)));
                                let _ = line.media.resume().await;
                                break;
                            }
                        }
                    }
                },
                Heard::Other(Signal::HangUp) => {
                    agent_leg.hang_up(line);
                    line.hang_up();
                    break;
                }
                _ => {}
            }
        }
        if let Some(coached) = coached.take() {
            self.end_coaching(line, item, agent, agent_leg.media(), coached, false).await;
        }
        if let Some(draft) = recording {
            self.keep_recording(line, draft).await;
        }
        let phone = matches!(agent_leg, AgentLeg::Phone { .. });
        self.release(agent_leg, line).await;
        match completed.map(Consult::into_party) {
            Some(Party::Number { line: other, number }) => {
                self.finished(item, agent).await;
                if let Some(draft) = draft
                    && let Err(error) = case::transferred_to_number(&self.parts.db, draft, &number, self.now()).await
                {
                    tracing::warn!(case = draft.case_id, %error, "a transfer to a number was not noted");
                }
                self.stay_with_consulted(line, other).await;
                return Talked::Ended;
            }
            Some(Party::Colleague { agent: colleague, side }) => {
                let leg = match side {
                    ColleagueSide::Softphone { softphone, .. } => AgentLeg::Softphone(softphone),
                    ColleagueSide::Phone(phone) => AgentLeg::Line(phone),
                };
                return self.hand_over(line, item, agent, queue, colleague, leg).await;
            }
            None => {}
        }
        match transferred {
            Some(TransferTarget::Number(number)) => {
                if phone {
                    // The service dials one callee per call: the agent's phone goes first.
                    line.callee_gone().await;
                }
                self.transfer_out(line, item, agent, queue, &number, draft).await
            }
            Some(to) => {
                self.set_state(item, agent, CallState::Ended);
                Talked::Transferred(self.transferred(item, agent, queue, to).await)
            }
            None => {
                self.finished(item, agent).await;
                Talked::Ended
            }
        }
    }

    /// The agent completed a consultation with `colleague`: the call becomes theirs, in the
    /// router too, and the agent wraps up. Should the router refuse, the caller waits in the
    /// queue again.
    async fn hand_over(
        &self,
        line: &Line,
        item: WorkItemId,
        agent: AgentId,
        queue: &str,
        colleague: AgentId,
        leg: AgentLeg,
    ) -> Talked {
        self.set_state(item, agent, CallState::Ended);
        let queue = QueueId::new(queue);
        let steps = [
            Input::ItemTransferred { agent, item, to: queue.clone() },
            Input::ItemReassigned { item, to: colleague },
            Input::OfferAccepted { agent: colleague, item },
        ];
        let mut refused = None;
        for step in steps {
            if let Err(error) = self.parts.work.execute(step).await {
                refused = Some(error);
                break;
            }
        }
        self.colleague_released(colleague).await;
        let _ = line.media.resume().await;
        match refused {
            None => Talked::Handed { agent: colleague, leg },
            Some(error) => {
                tracing::warn!(item = item.0, %error, "the router did not hand a call to the consulted colleague");
                let mut leg = leg;
                leg.hang_up(line);
                self.release(leg, line).await;
                Talked::Transferred(queue)
            }
        }
    }

    /// The router takes a blind transfer: the agent goes to wrap-up and the caller waits in the
    /// target queue, or in the call's queue with the item offered to the target agent. The queue
    /// the caller now waits in.
    async fn transferred(&self, item: WorkItemId, agent: AgentId, queue: &str, to: TransferTarget) -> QueueId {
        let (input, waits_in, target) = match to {
            TransferTarget::Queue(to) => (Input::ItemTransferred { agent, item, to: to.clone() }, to, None),
            TransferTarget::TakenBack(to) => (Input::ItemMoved { item, to: to.clone() }, to, None),
            TransferTarget::Agent(target) => {
                let to = QueueId::new(queue);
                (Input::ItemTransferred { agent, item, to: to.clone() }, to, Some(target))
            }
            // Taken care of by the call, which dials the number.
            TransferTarget::Number(_) => return QueueId::new(queue),
        };
        if let Err(error) = self.parts.work.execute(input).await {
            tracing::warn!(item = item.0, %error, "the router did not take a transfer");
        }
        if let Some(target) = target
            && let Err(error) = self.parts.work.execute(Input::ItemReassigned { item, to: target }).await
        {
            tracing::info!(item = item.0, %error, "the agent cannot take a transfer; the caller waits in the queue");
        }
        waits_in
    }

    /// Records the caller's leg: what they say, and what they hear (the agent, or the music).
    async fn start_recording(&self, line: &Line, item: WorkItemId, draft: Draft) -> Option<Draft> {
        let path = self.parts.recordings.join(format!("item-{}.wav", item.0));
        let started = match std::fs::create_dir_all(&self.parts.recordings) {
            Ok(()) => line.media.start_recording(path).await.map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match started {
            Ok(()) => Some(draft),
            Err(error) => {
                tracing::warn!(case = draft.case_id, %error, "a call of a recorded queue could not be recorded");
                None
            }
        }
    }

    /// The finished recording joins the case's documents; the working file goes.
    async fn keep_recording(&self, line: &Line, draft: Draft) {
        let summary = match line.media.stop_recording().await {
            Ok(Some(summary)) => summary,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(case = draft.case_id, %error, "a call's recording failed");
                return;
            }
        };
        if let Err(error) =
            case::attach_recording(&self.parts.db, self.parts.documents.as_ref(), draft, &summary.path, self.now())
                .await
        {
            tracing::warn!(case = draft.case_id, %error, "a call's recording could not join its case");
        }
        if let Err(error) = std::fs::remove_file(&summary.path) {
            tracing::warn!(path = %summary.path.display(), %error, "a call's recording was not removed after joining its case");
        }
    }

    /// Lets go of the agent's side's media: a phone's session closes (and the call of loket's
    /// own to it is forgotten), a softphone is unbridged.
    async fn release(&self, leg: AgentLeg, line: &Line) {
        match leg {
            AgentLeg::Phone { media, .. } => media.close().await,
            AgentLeg::Softphone(softphone) => {
                let _ = line.media.unbridge(softphone.session()).await;
            }
            AgentLeg::Line(phone) => self.let_go(phone).await,
        }
    }

    /// The call of an agent's item is over: the router moves the agent to wrap-up.
    pub(super) async fn finished(&self, item: WorkItemId, agent: AgentId) {
        self.set_state(item, agent, CallState::Ended);
        if let Err(error) = self.parts.work.execute(Input::WorkCompleted { agent, item }).await {
            tracing::warn!(item = item.0, %error, "the router did not take the end of a call");
        }
    }

    async fn abandoned(&self, draft: Option<Draft>, item: WorkItemId, started: Instant) {
        tracing::info!(case = ?draft.map(|draft| draft.case_id), item = item.0, "a waiting caller hung up");
        if let Err(error) = self.parts.work.execute(Input::CallerAbandoned { item }).await {
            tracing::warn!(item = item.0, %error, "the router did not take the abandoned call");
        }
        let waited = started.elapsed().as_secs();
        let Some(draft) = draft else { return };
        if let Err(error) = case::abandoned(&self.parts.db, draft, waited, self.now()).await {
            tracing::warn!(case = draft.case_id, %error, "an abandoned call was not noted on its case");
        }
    }
}

/// The agent's side of a call.
enum AgentLeg {
    /// A phone loket rang for the caller's call; `answered`: its answer gave the session a usable
    /// far end.
    Phone { media: Session, answered: bool },
    /// The agent's browser softphone, which outlives the call.
    Softphone(Arc<WebRtcLeg>),
    /// A phone loket rang with a call of its own, answered: a consulted colleague's, who took the
    /// call over.
    Line(Line),
}

impl AgentLeg {
    fn media(&self) -> &Session {
        match self {
            AgentLeg::Phone { media, .. } => media,
            AgentLeg::Softphone(leg) => leg.session(),
            AgentLeg::Line(phone) => &phone.media,
        }
    }

    fn answered(&self) -> bool {
        match self {
            AgentLeg::Phone { answered, .. } => *answered,
            AgentLeg::Softphone(leg) => !leg.is_ended(),
            AgentLeg::Line(_) => true,
        }
    }

    /// Resolves when the browser of a softphone goes, or a phone of loket's own call hangs up; a
    /// rung phone's hang-up is a SIP signal of the caller's call.
    async fn gone(&mut self) {
        match self {
            AgentLeg::Phone { .. } => std::future::pending().await,
            AgentLeg::Softphone(leg) => leg.ended().await,
            AgentLeg::Line(phone) => while phone.next(None).await != Heard::HungUp {},
        }
    }

    /// Ends the agent's side of the call: a phone is hung up; a softphone stays connected.
    fn hang_up(&mut self, line: &Line) {
        match self {
            AgentLeg::Phone { .. } => line.command(CallCommand::HangUpCallee { call: line.call }),
            AgentLeg::Softphone(_) => {}
            AgentLeg::Line(phone) => phone.hang_up(),
        }
    }
}

/// How a dial for a caller ended.
enum Reached {
    /// Bridged to the caller through this session.
    Answered(Session),
    /// Refused, not answered, or not placed; the caller is still there.
    Failed,
    CallerGone,
}

/// How a conversation ended.
enum Talked {
    Ended,
    /// The agent completed a consultation with this colleague, who now has the call.
    Handed {
        agent: AgentId,
        leg: AgentLeg,
    },
    /// The agent sent the caller back to wait in this queue.
    Transferred(QueueId),
}

fn queue_of(outcome: &Outcome) -> Option<&str> {
    match &outcome.end {
        End::Queue { queue, .. } => Some(queue),
        _ => None,
    }
}

/// A call's work item: the IVR's queue, skills, priority and language (never relaxed), its
/// attributes, and the case.
fn work_item(
    outcome: &Outcome,
    queue: &str,
    skills: &std::collections::BTreeMap<String, u8>,
    priority: i32,
    case_id: Option<i64>,
) -> NewWorkItem {
    let mut item = NewWorkItem::new(Channel::Voice, QueueId::new(queue));
    item.required_skills = skills
        .iter()
        .map(|(skill, level)| SkillRequirement { skill: Skill(skill.as_str().into()), min_level: *level })
        .collect();
    item.language = Some(Skill(outcome.language.code().into()));
    item.priority = priority;
    item.attributes = outcome.attributes.clone();
    item.case_id = case_id;
    item
}

/// The far end an SDP answer names, for a media session; `None` (and a warning) when it is
/// unusable.
pub(super) fn far_end(call: LegId, answer: &str) -> Option<RemoteParams> {
    match sdp::remote(answer) {
        Ok(remote) => Some(remote_params(&remote)),
        Err(error) => {
            tracing::warn!(call = call.0, %error, "an answer with unusable SDP");
            None
        }
    }
}

/// The media session's view of the far end.
fn remote_params(remote: &sdp::Remote) -> RemoteParams {
    RemoteParams {
        rtp: remote.rtp,
        rtcp: None,
        rtcp_mux: false,
        codec: match remote.codec {
            sdp::Codec::Pcmu => Codec::Pcmu,
            sdp::Codec::Pcma => Codec::Pcma,
        },
        telephone_event: remote.telephone_event,
        // A phone that cannot send telephone-events may still send tones in the audio.
        inband_dtmf: remote.telephone_event.is_none(),
    }
}
