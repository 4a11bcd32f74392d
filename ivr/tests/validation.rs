//! A broken IVR configuration is refused at start with every problem named by file, flow and node.

use loket_ivr::{ConfigError, Ivr};

const PROMPTS: &str = r#"
version = 1
[prompts]
hello = { nl = "Hallo", fr = "Bonjour", en = "Hello" }
invalid-choice = { nl = "Fout", fr = "Erreur", en = "Wrong" }
no-input = { nl = "Niets", fr = "Rien", en = "Nothing" }
[schedules.office]
monday = ["08:00-12:00"]
"#;

fn errors(flow: &str) -> Vec<String> {
    let text = format!("{PROMPTS}\n{flow}");
    match Ivr::parse("ivr.toml", &text) {
        Ok(_) => panic!("accepted:\n{flow}"),
        Err(errors) => errors.iter().map(ConfigError::to_string).collect(),
    }
}

fn assert_error(flow: &str, expected: &str) {
    let errors = errors(flow);
    assert!(errors.iter().any(|error| error.contains(expected)), "expected {expected:?} in {errors:#?}");
}

const MINIMAL: &str = r#"
[[flows]]
name = "main"
numbers = ["+3225550100"]
start = "hello"
[flows.nodes]
hello = { type = "play", prompts = ["hello"], next = "bye" }
bye = { type = "hangup" }
"#;

#[test]
fn a_minimal_flow_is_accepted() {
    Ivr::parse("ivr.toml", &format!("{PROMPTS}\n{MINIMAL}")).unwrap_or_else(|errors| panic!("{errors:?}"));
}

#[test]
fn unknown_nodes_and_prompts_are_named_with_their_flow_and_node() {
    assert_error(
        &MINIMAL.replace(r#"next = "bye""#, r#"next = "by""#),
        r#"ivr.toml: flow "main", node "hello": `next` names "by", which is not a node of this flow"#,
    );
    assert_error(
        &MINIMAL.replace(r#"prompts = ["hello"]"#, r#"prompts = ["helo"]"#),
        r#"flow "main", node "hello": unknown prompt "helo""#,
    );
    assert_error(
        &MINIMAL.replace(r#"prompts = ["hello"]"#, r#"prompts = ["hello@de"]"#),
        r#"node "hello": prompt "hello@de": unknown language "de""#,
    );
    assert_error(
        &MINIMAL.replace(r#"start = "hello""#, r#"start = "begin""#),
        r#"flow "main": the start node "begin" does not exist"#,
    );
}

#[test]
fn a_prompt_missing_a_language_is_named() {
    let text = format!("{}\n{MINIMAL}", PROMPTS.replace(r#", en = "Hello""#, ""));
    let errors: Vec<String> = Ivr::parse("ivr.toml", &text).unwrap_err().iter().map(ConfigError::to_string).collect();
    assert_eq!(errors, [r#"ivr.toml: prompt "hello": no text in en"#]);
}

#[test]
fn unreachable_nodes_are_named() {
    assert_error(
        &format!("{MINIMAL}orphan = {{ type = \"hangup\" }}\n"),
        r#"flow "main", node "orphan": no path from the start reaches this node"#,
    );
}

#[test]
fn a_loop_that_never_waits_for_the_caller_is_refused() {
    let flow = MINIMAL.replace(r#"next = "bye""#, r#"next = "again""#)
        + "again = { type = \"set\", attributes = { x = \"1\" }, next = \"hello\" }\nbye = { type = \"hangup\" }\n";
    let flow = flow.replacen("bye = { type = \"hangup\" }\n", "", 1);
    assert_error(&flow, "a loop through this node never waits for the caller");
    // A transfer that fails back to itself would dial for ever.
    let redial = MINIMAL.replace(r#"next = "bye""#, r#"next = "dial""#)
        + "dial = { type = \"transfer\", number = \"+3250123456\", failed = \"hello\" }\n";
    assert_error(&redial, "a loop through this node never waits for the caller");
    // The same loop through a menu waits for the caller: accepted.
    let menu = r#"
[[flows]]
name = "main"
numbers = ["+3225550100"]
start = "ask"
[flows.nodes]
ask = { type = "menu", prompts = ["hello"], choices = { 1 = "again", 2 = "bye" }, on_failure = "bye" }
again = { type = "play", prompts = ["hello"], next = "ask" }
bye = { type = "hangup" }
"#;
    Ivr::parse("ivr.toml", &format!("{PROMPTS}\n{menu}")).unwrap_or_else(|errors| panic!("{errors:?}"));
}

#[test]
fn bad_values_in_nodes_are_named() {
    let node = |node: &str| {
        format!(
            r#"
[[flows]]
name = "main"
numbers = ["+3225550100"]
start = "n"
[flows.nodes]
n = {node}
bye = {{ type = "hangup" }}
"#
        )
    };
    for (definition, expected) in [
        (
            r#"{ type = "menu", prompts = ["hello"], choices = { 12 = "bye" }, on_failure = "bye" }"#,
            r#"choice "12" is not one key of the keypad"#,
        ),
        (
            r#"{ type = "menu", prompts = ["hello"], choices = {}, on_failure = "bye" }"#,
            "a menu needs at least one choice",
        ),
        (
            r#"{ type = "menu", prompts = ["hello"], choices = { 1 = "bye" }, timeout_secs = 0, on_failure = "bye" }"#,
            "`timeout_secs` must be 1 to 60 seconds, not 0",
        ),
        (
            r#"{ type = "collect", prompts = ["hello"], into = "x", max_digits = 4, terminator = "5", next = "bye", on_failure = "bye" }"#,
            r#"terminator "5" must be # or *"#,
        ),
        (
            r#"{ type = "collect", prompts = ["hello"], into = "x", min_digits = 5, max_digits = 4, next = "bye", on_failure = "bye" }"#,
            "min_digits ≤ max_digits",
        ),
        (
            r#"{ type = "collect", prompts = ["hello"], into = "x", max_digits = 4, check = "national_number", next = "bye", on_failure = "bye" }"#,
            "11 digits",
        ),
        (r#"{ type = "hours", schedule = "weekend", open = "bye", closed = "bye" }"#, r#"unknown schedule "weekend""#),
        (r#"{ type = "set", attributes = { language = "de" }, next = "bye" }"#, r#"unknown language "de""#),
        (r#"{ type = "queue", queue = "{service}-l1" }"#, "{service} names no attribute that this flow sets"),
        (r#"{ type = "transfer", number = "call me" }"#, r#""call me" is not a phone number"#),
        (r#"{ type = "transfer", number = "+3250123456", failed = "nowhere" }"#, r#"`failed` names "nowhere""#),
    ] {
        let errors = errors(&node(definition));
        assert!(
            errors
                .iter()
                .any(|error| error.starts_with(r#"ivr.toml: flow "main", node "n": "#) && error.contains(expected)),
            "{definition}: expected {expected:?} in {errors:#?}"
        );
    }
}

#[test]
fn flow_level_problems_are_named_with_the_flow() {
    let second = MINIMAL.replace(r#"numbers = ["+3225550100"]"#, r#"numbers = ["02 555 01 00", "phone"]"#);
    let errors = errors(&format!("{MINIMAL}{second}"));
    assert!(errors.contains(&r#"ivr.toml: flow "main": a second flow with this name"#.to_owned()), "{errors:#?}");
    assert!(
        errors.contains(&r#"ivr.toml: flow "main": the number 02 555 01 00 belongs to another flow too"#.to_owned())
    );
    assert!(errors.contains(&r#"ivr.toml: flow "main": "phone" is not a phone number"#.to_owned()));
}

#[test]
fn syntax_errors_unknown_keys_and_versions_are_refused() {
    let errors: Vec<String> =
        Ivr::parse("ivr.toml", "version = 1\n[prompts\n").unwrap_err().iter().map(ConfigError::to_string).collect();
    assert!(errors[0].starts_with("ivr.toml: ") && errors[0].contains("line 2"), "{errors:?}");
    let misspelt = MINIMAL.replace(r#"next = "bye""#, r#"next = "bye", barge_inn = false"#);
    assert_error(&misspelt, "unknown field `barge_inn`");
    let errors: Vec<String> =
        Ivr::parse("ivr.toml", "version = 2\n").unwrap_err().iter().map(ConfigError::to_string).collect();
    assert_eq!(errors, ["ivr.toml: version: this loket reads version 1, not 2"]);
}

#[test]
fn schedules_with_bad_hours_are_named() {
    let text = format!("{}\n{MINIMAL}", PROMPTS.replace(r#"monday = ["08:00-12:00"]"#, r#"monday = ["8-12"]"#));
    let errors: Vec<String> = Ivr::parse("ivr.toml", &text).unwrap_err().iter().map(ConfigError::to_string).collect();
    assert_eq!(errors, [r#"ivr.toml: schedule "office": "8-12" is not a range like "08:30-12:30""#]);
}

#[test]
fn the_waiting_announcements_are_checked() {
    let waiting = r#"
[waiting]
announce_every_secs = 5
position_prompt = "hello"
wait_prompt = "plaats"
offer = { after_secs = 300, prompt = "hello", key = "11" }
"#;
    let errors: Vec<String> = Ivr::parse("ivr.toml", &format!("{PROMPTS}\n{waiting}\n{MINIMAL}"))
        .unwrap_err()
        .iter()
        .map(ConfigError::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            r#"ivr.toml: waiting: unknown prompt "plaats""#,
            r#"ivr.toml: waiting: unknown prompt "more-than""#,
            r#"ivr.toml: waiting: offer key "11" is not one key of the keypad"#,
            "ivr.toml: waiting: `announce_every_secs` must be 10 to 600, not 5",
        ]
    );
}
