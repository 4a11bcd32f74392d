//! The demo flow driven as a caller would, on a simulated clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loket_ivr::{Action, DEMO, End, Event, Flow, Input, Ivr, Language, Outcome, Session};
use time::PrimitiveDateTime;
use time::macros::datetime;

/// A Monday morning: every service is open.
const OPEN: PrimitiveDateTime = datetime!(2026-11-30 10:00);

fn demo() -> Arc<Flow> {
    let ivr = Ivr::parse("demo.toml", DEMO).unwrap_or_else(|errors| panic!("{errors:?}"));
    ivr.flow_for("+3225550100").expect("the demo number has a flow")
}

/// A caller and the session, with the time that passes between events.
struct Call {
    session: Session,
    now: Instant,
    /// Every prompt played, as `id@language`.
    heard: Vec<String>,
    outcome: Option<Outcome>,
}

impl Call {
    fn new(arrived: PrimitiveDateTime) -> Call {
        let now = Instant::now();
        let (session, actions) = Session::start(demo(), arrived);
        let mut call = Call { session, now, heard: Vec::new(), outcome: None };
        call.apply(actions);
        call
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Play { prompts, .. } => {
                    self.heard.extend(prompts.iter().map(|p| format!("{}@{}", p.id, p.language.code())))
                }
                Action::StopPlayback => {}
                Action::Transfer { number } => panic!("the demo transfers nowhere, yet {number}"),
                Action::Finished(outcome) => {
                    assert!(self.outcome.is_none(), "finished twice");
                    self.outcome = Some(*outcome);
                }
            }
        }
    }

    fn event(&mut self, event: Event) {
        let actions = self.session.handle(self.now, event);
        self.apply(actions);
    }

    /// The prompt plays to its end.
    fn listen(&mut self) {
        self.now += Duration::from_secs(4);
        self.event(Event::PromptFinished);
    }

    /// The prompt plays to its end and the caller types.
    fn press(&mut self, keys: &str) {
        self.listen();
        for key in keys.chars() {
            self.now += Duration::from_millis(300);
            self.event(Event::Digit(key));
        }
    }

    /// The prompt plays to its end and the caller says nothing until the deadline.
    fn stay_silent(&mut self) {
        self.listen();
        let deadline = self.session.next_deadline().expect("waiting for input");
        self.now = deadline;
        self.event(Event::DeadlineReached);
    }

    fn outcome(&self) -> &Outcome {
        self.outcome.as_ref().expect("the IVR is over")
    }

    fn inputs(&self) -> Vec<(String, Input)> {
        self.outcome().path.iter().map(|step| (step.node.to_string(), step.input)).collect()
    }
}

fn queue(outcome: &Outcome) -> (&str, Vec<(&str, u8)>) {
    match &outcome.end {
        End::Queue { queue, skills, .. } => {
            (queue.as_str(), skills.iter().map(|(skill, level)| (skill.as_str(), *level)).collect())
        }
        other => panic!("not queued: {other:?}"),
    }
}

#[test]
fn dutch_passport_with_a_valid_national_number_waits_in_the_population_queue() {
    let mut call = Call::new(OPEN);
    call.listen(); // welcome in three languages
    call.press("1"); // Nederlands
    call.press("1"); // bevolking
    call.press("2"); // paspoort
    call.press("78021412342");
    assert!(call.outcome.is_none(), "the deflection message plays first");
    call.listen();
    let outcome = call.outcome();
    assert_eq!(queue(outcome), ("population-nl-l1", vec![("population", 1)]));
    assert_eq!(outcome.language, Language::Nl);
    assert_eq!(outcome.attributes.get("request_type").map(String::as_str), Some("passport"));
    assert_eq!(outcome.national_number.as_ref().map(|n| n.digits()), Some("78021412342".to_owned()));
    assert!(!format!("{outcome:?}").contains("78021412342"), "the number never prints whole");
    assert!(outcome.attributes.values().all(|value| !value.contains("7802141")), "nor sits in the attributes");
    assert_eq!(
        call.heard,
        [
            "welcome@nl",
            "welcome@fr",
            "welcome@en",
            "choose-language@nl",
            "choose-language@fr",
            "choose-language@en",
            "choose-service@nl",
            "choose-population@nl",
            "identify@nl",
            "deflection@nl",
        ]
    );
    assert!(call.inputs().contains(&("identify".to_owned(), Input::Identified)));
    assert!(call.inputs().contains(&("population-request".to_owned(), Input::Choice('2'))));
}

#[test]
fn french_and_english_callers_hear_their_language_and_reach_their_queues() {
    for (key, language, service_key, queue_name, skill, prompt) in [
        ("2", Language::Fr, "2", "civil_status-fr-l1", "civil_status", "choose-civil-status@fr"),
        ("3", Language::En, "3", "social_affairs-en-l1", "social_affairs", "choose-social-affairs@en"),
    ] {
        let mut call = Call::new(OPEN);
        call.listen();
        call.press(key);
        call.press(service_key);
        call.press("1");
        call.press("#"); // no national number
        call.listen();
        let outcome = call.outcome();
        assert_eq!(outcome.language, language);
        assert_eq!(queue(outcome), (queue_name, vec![(skill, 1)]));
        assert!(call.heard.contains(&prompt.to_owned()), "{:?}", call.heard);
        assert!(call.heard.contains(&format!("deflection@{}", language.code())));
        assert_eq!(outcome.national_number, None);
        assert!(call.inputs().contains(&("identify".to_owned(), Input::Skipped)));
    }
}

#[test]
fn two_invalid_numbers_continue_unidentified() {
    let mut call = Call::new(OPEN);
    call.listen();
    call.press("1");
    call.press("4"); // taxes: no request-type menu
    call.press("78021412343"); // wrong check digits
    call.press("1234#"); // too short
    call.listen();
    let outcome = call.outcome();
    assert_eq!(queue(outcome), ("taxes-nl-l1", vec![("taxes", 1)]));
    assert_eq!(outcome.national_number, None);
    assert_eq!(outcome.attributes.get("request_type").map(String::as_str), Some("business_taxes"));
    let identify: Vec<Input> =
        outcome.path.iter().filter(|step| &*step.node == "identify").map(|step| step.input).collect();
    assert_eq!(identify, [Input::Invalid, Input::Invalid, Input::GaveUp]);
    assert_eq!(call.heard.iter().filter(|p| p.starts_with("invalid-number")).count(), 1, "said once, before the retry");
}

/// The prompt asks for the number "followed by hash": that `#` ends the entry and goes no
/// further, neither into the deflection message (which it would cut short) nor into the retry
/// of a wrong number (which it would skip).
#[test]
fn the_hash_after_a_full_number_belongs_to_the_number() {
    let mut call = Call::new(OPEN);
    call.listen();
    call.press("1");
    call.press("1");
    call.press("2");
    call.press("78021412342#");
    assert!(call.outcome.is_none(), "the deflection message still plays");
    call.listen();
    assert_eq!(call.outcome().national_number.as_ref().map(|n| n.digits()), Some("78021412342".to_owned()));

    let mut call = Call::new(OPEN);
    call.listen();
    call.press("1");
    call.press("4");
    call.press("12345678901#");
    call.press("12345678901#");
    call.listen();
    let identify: Vec<Input> =
        call.outcome().path.iter().filter(|step| &*step.node == "identify").map(|step| step.input).collect();
    assert_eq!(identify, [Input::Invalid, Input::Invalid, Input::GaveUp], "both attempts count");

    // Later, a `#` is the caller's own: here, skipping the retry.
    let mut call = Call::new(OPEN);
    call.listen();
    call.press("1");
    call.press("4");
    call.press("12345678901");
    call.now += Duration::from_secs(10);
    call.press("#");
    call.listen();
    let identify: Vec<Input> =
        call.outcome().path.iter().filter(|step| &*step.node == "identify").map(|step| step.input).collect();
    assert_eq!(identify, [Input::Invalid, Input::Skipped]);
}

#[test]
fn silence_at_every_menu_still_reaches_a_queue() {
    let mut call = Call::new(OPEN);
    call.listen();
    for _ in 0..3 {
        call.stay_silent(); // language: first try and two retries
    }
    for _ in 0..3 {
        call.stay_silent(); // service
    }
    for _ in 0..3 {
        call.stay_silent(); // population request type
    }
    for _ in 0..2 {
        call.stay_silent(); // identification: one retry
    }
    call.listen();
    let outcome = call.outcome();
    assert_eq!(queue(outcome), ("population-nl-l1", vec![("population", 1)]), "the defaults");
    assert_eq!(call.heard.iter().filter(|p| p.starts_with("no-input")).count(), 2 + 2 + 2 + 1);
    assert!(call.inputs().contains(&("language".to_owned(), Input::GaveUp)));
}

#[test]
fn timeouts_start_when_the_prompt_ends_and_digits_restart_them() {
    let mut call = Call::new(OPEN);
    call.listen();
    assert_eq!(call.session.next_deadline(), None, "no timeout while the menu is read");
    call.listen();
    assert_eq!(call.session.next_deadline(), Some(call.now + Duration::from_secs(5)));
    // A deadline event before the deadline changes nothing.
    call.now += Duration::from_secs(4);
    call.event(Event::DeadlineReached);
    assert!(call.heard.iter().all(|p| !p.starts_with("no-input")));
    call.event(Event::Digit('1'));
    call.press("1");
    call.press("2");
    call.listen(); // the identification prompt ends
    call.now += Duration::from_secs(1);
    call.event(Event::Digit('7'));
    assert_eq!(call.session.next_deadline(), Some(call.now + Duration::from_secs(3)), "inter-digit timeout");
    // The caller stops after one digit: the entry ends and is refused as too short.
    call.now += Duration::from_secs(3);
    call.event(Event::DeadlineReached);
    assert_eq!(call.heard.last().map(String::as_str), Some("identify@nl"), "asked again");
    assert_eq!(call.heard.iter().rev().nth(1).map(String::as_str), Some("invalid-number@nl"));
}

#[test]
fn a_digit_during_a_menu_prompt_stops_it_and_counts() {
    let (mut session, _) = Session::start(demo(), OPEN);
    let now = Instant::now();
    session.handle(now, Event::PromptFinished); // welcome
    let actions = session.handle(now, Event::Digit('2'));
    assert_eq!(actions[0], Action::StopPlayback);
    match &actions[1] {
        Action::Play { prompts, barge_in: true } => {
            assert_eq!((&*prompts[0].id, prompts[0].language), ("choose-service", Language::Fr))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn closed_hours_play_the_closed_message_and_hang_up() {
    // Christmas, then a Wednesday afternoon (population closes at 12:30 on Wednesdays).
    for arrived in [datetime!(2026-12-25 10:00), datetime!(2026-12-02 14:00)] {
        let mut call = Call::new(arrived);
        call.listen();
        call.press("1");
        call.press("1");
        assert_eq!(call.heard.last().map(String::as_str), Some("closed@nl"));
        assert!(call.outcome.is_none(), "the message plays to its end");
        call.event(Event::Digit('1'));
        assert!(call.outcome.is_none(), "no barge-in on the closing message");
        call.listen();
        assert_eq!(call.outcome().end, End::Hangup);
        assert!(call.inputs().contains(&("population-hours".to_owned(), Input::Closed)));
    }
}

#[test]
fn a_caller_hanging_up_ends_the_session_with_the_path_so_far() {
    let mut call = Call::new(OPEN);
    call.listen();
    call.press("2");
    call.event(Event::HangUp);
    let outcome = call.outcome();
    assert_eq!(outcome.end, End::CallerHungUp);
    assert_eq!(outcome.language, Language::Fr);
    assert!(call.inputs().contains(&("language".to_owned(), Input::Choice('2'))));
    assert!(call.session.is_finished());
    assert!(call.session.handle(call.now, Event::Digit('1')).is_empty(), "nothing after the end");
    assert!(call.session.handle(call.now, Event::HangUp).is_empty());
}

#[test]
fn a_wrong_menu_key_is_refused_and_asked_again() {
    let mut call = Call::new(OPEN);
    call.listen();
    call.press("9");
    assert_eq!(
        call.heard[call.heard.len() - 4..],
        ["invalid-choice@nl", "choose-language@nl", "choose-language@fr", "choose-language@en"]
    );
    call.press("1");
    assert_eq!(call.heard.last().map(String::as_str), Some("choose-service@nl"));
}

#[test]
fn dialled_numbers_are_matched_in_any_written_form() {
    let ivr = Ivr::parse("demo.toml", DEMO).unwrap();
    assert!(ivr.flow_for("02 555 01 00").is_some());
    assert!(ivr.flow_for("0032 2 555 01 00").is_some());
    assert!(ivr.flow_for("+3225550199").is_none());
    assert!(ivr.flow_for("not a number").is_none());
    assert_eq!(ivr.flows().len(), 1);
    assert_eq!(ivr.flows()[0].name(), "main");
}

#[test]
fn every_prompt_has_its_three_texts() {
    let ivr = Ivr::parse("demo.toml", DEMO).unwrap();
    let texts: Vec<_> = ivr.prompt_texts().collect();
    assert!(texts.len() >= 3 * 12);
    assert!(texts.contains(&("closed", Language::Fr, "Nos services sont fermés en ce moment. Rappelez-nous pendant les heures d'ouverture ou consultez notre site web.")));
}

const TRANSFER: &str = r#"
version = 1
[prompts]
hello = { nl = "Hallo", fr = "Bonjour", en = "Hello" }
sorry = { nl = "Sorry", fr = "Désolé", en = "Sorry" }
[[flows]]
name = "after-hours"
numbers = ["+3225550111"]
language = "fr"
start = "hello"
[flows.nodes]
hello = { type = "play", prompts = ["hello"], next = "on-call", barge_in = false }
on-call = { type = "transfer", number = "0470 12 34 56", failed = "sorry" }
sorry = { type = "hangup", prompts = ["sorry"] }
"#;

/// The flow's transfer: the number in E.164 after the greeting, and what the IVR learns of it.
fn transferring() -> Session {
    let ivr = Ivr::parse("after-hours.toml", TRANSFER).unwrap_or_else(|errors| panic!("{errors:?}"));
    let (mut session, actions) = Session::start(ivr.flow_for("+3225550111").unwrap(), OPEN);
    assert!(matches!(&actions[..], [Action::Play { prompts, barge_in: false }] if prompts[0].language == Language::Fr));
    let now = Instant::now();
    assert!(session.handle(now, Event::Digit('1')).is_empty(), "no barge-in on this prompt");
    let actions = session.handle(now, Event::PromptFinished);
    assert_eq!(actions, [Action::Transfer { number: "+32470123456".to_owned() }]);
    assert!(session.handle(now, Event::Digit('5')).is_empty(), "keys mean nothing while the number rings");
    session
}

#[test]
fn an_answered_transfer_ends_the_ivr() {
    let mut session = transferring();
    match &session.handle(Instant::now(), Event::TransferAnswered)[..] {
        [Action::Finished(outcome)] => assert_eq!(outcome.end, End::Transfer { number: "+32470123456".to_owned() }),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_transfer_goes_on_where_the_flow_says() {
    let mut session = transferring();
    let actions = session.handle(Instant::now(), Event::TransferFailed);
    assert!(matches!(&actions[..], [Action::Play { prompts, .. }] if &*prompts[0].id == "sorry"), "{actions:?}");
    match &session.handle(Instant::now(), Event::PromptFinished)[..] {
        [Action::Finished(outcome)] => assert_eq!(outcome.end, End::Hangup),
        other => panic!("{other:?}"),
    }
    // Without `failed`, the call ends at once.
    let text = TRANSFER.replace(r#", failed = "sorry""#, "").replace("sorry = { type", "# sorry = { type");
    let ivr = Ivr::parse("after-hours.toml", &text).unwrap_or_else(|errors| panic!("{errors:?}"));
    let (mut session, _) = Session::start(ivr.flow_for("+3225550111").unwrap(), OPEN);
    session.handle(Instant::now(), Event::PromptFinished);
    match &session.handle(Instant::now(), Event::TransferFailed)[..] {
        [Action::Finished(outcome)] => assert_eq!(outcome.end, End::Hangup),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_catalog_speaks_numbers_and_the_demo_announces_the_wait() {
    let ivr = Ivr::parse("demo.toml", DEMO).unwrap();
    let texts: Vec<_> = ivr.prompt_texts().collect();
    assert!(texts.contains(&("number-71", Language::Fr, "septante et un")));
    assert!(texts.contains(&("number-22", Language::Nl, "tweeëntwintig")));
    let waiting = ivr.waiting().expect("the demo configures the wait");
    assert_eq!(waiting.announce_every, Duration::from_secs(45));
    let offer = waiting.offer.as_ref().expect("and a callback offer");
    assert_eq!((offer.after, offer.key), (Duration::from_secs(300), '1'));
}
