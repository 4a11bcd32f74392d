//! The registration on a virtual clock, as a transcript of its actions.

use super::*;

struct Test {
    registration: Registration,
    start: Instant,
    now: Instant,
    transcript: Vec<String>,
}

impl Test {
    fn new(expires: u32) -> Test {
        let start = Instant::now();
        let backoff = Backoff { first: Duration::from_secs(5), max: Duration::from_secs(60) };
        Test { registration: Registration::new(expires, backoff), start, now: start, transcript: Vec::new() }
    }

    fn event(&mut self, event: RegistrationEvent) -> &mut Self {
        for action in self.registration.handle(self.now, event) {
            let at = self.now - self.start;
            self.transcript.push(format!("{:>5.1}s {action:?}", at.as_secs_f64()));
        }
        self
    }

    /// Lets time pass, firing the deadlines on the way; a REGISTER sent is answered by `answer`.
    fn wait(&mut self, duration: Duration, answer: Option<RegistrationEvent>) -> &mut Self {
        let until = self.now + duration;
        while let Some(deadline) = self.registration.next_deadline().filter(|deadline| *deadline <= until) {
            self.now = deadline;
            let sent = self.transcript.len();
            self.event(RegistrationEvent::DeadlineReached);
            if let Some(answer) = answer.filter(|_| self.transcript.len() > sent) {
                self.event(answer);
            }
        }
        self.now = until;
        self
    }

    fn check(&self, expected: &[&str]) {
        assert_eq!(self.transcript, expected, "\n{}", self.transcript.join("\n"));
    }
}

use RegistrationEvent::*;

/// Challenged, answered, registered for what the registrar grants, renewed at half of it (the
/// renewal answers the old challenge first), and removed at shutdown.
#[test]
fn registers_renews_at_half_the_interval_and_unregisters() {
    let mut test = Test::new(600);
    test.event(Start).event(Challenged { status: 401 }).event(Accepted { granted: Some(120) });
    test.wait(Duration::from_secs(150), Some(Accepted { granted: None }));
    test.event(Stop).event(Challenged { status: 401 }).event(Accepted { granted: Some(0) });
    test.check(&[
        "  0.0s Send { expires: 600 }",
        "  0.0s Send { expires: 600 }",
        "  0.0s Registered { expires: 120 }",
        " 60.0s Send { expires: 600 }",
        " 60.0s Registered { expires: 600 }",
        "150.0s Send { expires: 0 }",
        "150.0s Send { expires: 0 }",
        "150.0s Stopped",
    ]);
    assert!(test.registration.is_stopped());
    assert_eq!(test.registration.next_deadline(), None);
}

/// Wrong credentials (a second challenge), a refusal or silence: retried after 5, 10, 20, 40 s,
/// then every 60 s; a success resets the back-off.
#[test]
fn failures_are_retried_with_back_off() {
    let mut test = Test::new(600);
    test.event(Start).event(Challenged { status: 401 }).event(Challenged { status: 401 });
    test.wait(Duration::from_secs(5), Some(Refused { status: 503 }));
    test.wait(Duration::from_secs(210), Some(NoResponse));
    let waits: Vec<&str> = test.transcript.iter().filter_map(|line| line.split("retry_in: ").nth(1)).collect();
    assert_eq!(waits, ["5s }", "10s }", "20s }", "40s }", "60s }", "60s }", "60s }"]);
    assert!(test.transcript[2].ends_with("Failed { status: Some(401), retry_in: 5s }"), "{:?}", test.transcript);
    assert!(test.transcript[4].ends_with("Failed { status: Some(503), retry_in: 10s }"), "{:?}", test.transcript);

    let before = test.transcript.len();
    test.wait(Duration::from_secs(40), Some(Accepted { granted: Some(300) }));
    test.wait(Duration::from_secs(150), Some(NoResponse));
    assert_eq!(
        test.transcript[before..],
        [
            "255.0s Send { expires: 600 }",
            "255.0s Registered { expires: 300 }",
            "405.0s Send { expires: 600 }",
            "405.0s Failed { status: None, retry_in: 5s }",
        ]
    );
}

/// RFC 3261 §10.2.8: 423 raises the interval asked for, for good, but not beyond a day.
#[test]
fn a_registrar_that_wants_longer_intervals_gets_them() {
    let mut test = Test::new(60);
    test.event(Start).event(IntervalTooBrief { min_expires: 300 }).event(Accepted { granted: None });
    test.wait(Duration::from_secs(150), None);
    test.event(IntervalTooBrief { min_expires: 100_000 });
    test.check(&[
        "  0.0s Send { expires: 60 }",
        "  0.0s Send { expires: 300 }",
        "  0.0s Registered { expires: 300 }",
        "150.0s Send { expires: 300 }",
        "150.0s Failed { status: Some(423), retry_in: 5s }",
    ]);
}

/// A registrar that grants 0 has not registered loket; stopping before anything is registered
/// sends nothing; late answers and early deadlines change nothing.
#[test]
fn odd_answers_and_an_early_stop() {
    let mut test = Test::new(600);
    test.event(Accepted { granted: Some(60) }).event(Start).event(Accepted { granted: Some(0) });
    test.event(DeadlineReached).event(Accepted { granted: Some(60) }).event(Start);
    test.event(Stop).event(Start).event(Stop);
    test.check(&[
        "  0.0s Send { expires: 600 }",
        "  0.0s Failed { status: Some(200), retry_in: 5s }",
        "  0.0s Stopped",
    ]);
    let mut silent = Test::new(600);
    silent.event(Start).event(Stop).event(DeadlineReached).event(NoResponse);
    silent.check(&["  0.0s Send { expires: 600 }", "  0.0s Send { expires: 0 }", "  0.0s Stopped"]);
}

#[test]
fn hosts_and_ports() {
    assert_eq!(host_port("pbx.gemeente.be"), Some(("pbx.gemeente.be", 5060)));
    assert_eq!(host_port("192.0.2.10:5080"), Some(("192.0.2.10", 5080)));
    assert_eq!(host_port("[2001:db8::1]:5062"), Some(("2001:db8::1", 5062)));
    assert_eq!(host_port("[2001:db8::1]"), Some(("2001:db8::1", 5060)));
    for bad in
        ["", ":5060", "pbx:0", "pbx:x", "sip:pbx", "user@pbx", "pbx;transport=tcp", "pbx 1", "2001:db8::1", "[x]"]
    {
        assert_eq!(host_port(bad), None, "{bad}");
    }
}

#[test]
fn the_password_stays_out_of_debug() {
    let trunk = Trunk {
        host: "pbx.test".into(),
        username: "loket".into(),
        password: Password::new("s3cret"),
        caller_id: "+3225550100".into(),
        register: None,
        outbound_proxy: Some("192.0.2.9:5060".into()),
        ring_timeout: Duration::from_secs(60),
        retry: Backoff::default(),
    };
    let shown = format!("{trunk:?}");
    assert!(!shown.contains("s3cret") && shown.contains("Password(***)"), "{shown}");
    assert_eq!(trunk.password.expose(), "s3cret");
    assert_eq!((trunk.next_hop(), trunk.route().as_deref()), ("192.0.2.9:5060", Some("<sip:192.0.2.9:5060;lr>")));
}
