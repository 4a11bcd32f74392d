//! The IVR configuration file as written: prompts, schedules and flows, before validation.
//! `deny_unknown_fields` everywhere, so that a misspelt key is an error rather than a default.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The format version this build reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub version: u32,
    /// Prompt id → its text in each language; the WAV files are named after the id.
    #[serde(default)]
    pub prompts: BTreeMap<String, PromptTexts>,
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleConfig>,
    #[serde(default)]
    pub flows: Vec<FlowConfig>,
    /// What queued callers hear; without it, music alone.
    pub waiting: Option<WaitingFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitingFile {
    #[serde(default = "default_announce_every")]
    pub announce_every_secs: u32,
    #[serde(default = "default_position_prompt")]
    pub position_prompt: String,
    #[serde(default = "default_wait_prompt")]
    pub wait_prompt: String,
    pub offer: Option<OfferFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferFile {
    /// Offered once the expected wait is longer than this.
    pub after_secs: u32,
    pub prompt: String,
    #[serde(default = "default_offer_key")]
    pub key: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u32,
}

fn default_announce_every() -> u32 {
    45
}
fn default_position_prompt() -> String {
    "position".to_owned()
}
fn default_wait_prompt() -> String {
    "expected-wait".to_owned()
}
fn default_offer_key() -> String {
    "1".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptTexts {
    pub nl: Option<String>,
    pub fr: Option<String>,
    pub en: Option<String>,
}

/// Opening hours: ranges per weekday (`"08:30-12:30"`), days closed all day, and dates with hours
/// of their own (an empty list closes that day).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default)]
    pub monday: Vec<String>,
    #[serde(default)]
    pub tuesday: Vec<String>,
    #[serde(default)]
    pub wednesday: Vec<String>,
    #[serde(default)]
    pub thursday: Vec<String>,
    #[serde(default)]
    pub friday: Vec<String>,
    #[serde(default)]
    pub saturday: Vec<String>,
    #[serde(default)]
    pub sunday: Vec<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub closed: Vec<String>,
    #[serde(default)]
    pub exceptions: Vec<ExceptionConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionConfig {
    pub date: String,
    pub hours: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    pub name: String,
    /// The dialled numbers this flow answers.
    pub numbers: Vec<String>,
    /// The language of prompts before the caller chose one.
    #[serde(default = "default_language")]
    pub language: String,
    pub start: String,
    pub nodes: BTreeMap<String, NodeConfig>,
}

fn default_language() -> String {
    "nl".to_owned()
}

/// A prompt reference is a prompt id, played in the caller's language, or `id@nl` to pin one
/// (the language menu speaks each language in its own).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeConfig {
    Play {
        prompts: Vec<String>,
        next: String,
        /// A digit stops the prompt (and is dropped).
        #[serde(default = "yes")]
        barge_in: bool,
    },
    Menu {
        prompts: Vec<String>,
        /// Digit → node.
        choices: BTreeMap<String, String>,
        #[serde(default = "default_timeout")]
        timeout_secs: u32,
        /// Further attempts after the first.
        #[serde(default = "default_retries")]
        retries: u32,
        #[serde(default = "invalid_prompt")]
        invalid_prompt: String,
        #[serde(default = "no_input_prompt")]
        no_input_prompt: String,
        on_failure: String,
    },
    Collect {
        prompts: Vec<String>,
        /// Where the digits go; a checked national register number is kept apart, never here.
        into: String,
        #[serde(default)]
        min_digits: u32,
        max_digits: u32,
        /// Ends the entry early; alone, it skips the question.
        #[serde(default = "default_terminator")]
        terminator: String,
        #[serde(default = "default_timeout")]
        first_digit_timeout_secs: u32,
        #[serde(default = "default_inter_digit")]
        inter_digit_timeout_secs: u32,
        #[serde(default = "default_retries")]
        retries: u32,
        #[serde(default)]
        check: Check,
        #[serde(default = "invalid_prompt")]
        invalid_prompt: String,
        #[serde(default = "no_input_prompt")]
        no_input_prompt: String,
        next: String,
        /// After the last failed attempt; the call goes on, never a dead end.
        on_failure: String,
        /// The terminator alone; by default the same as `on_failure`.
        on_skip: Option<String>,
    },
    Set {
        attributes: BTreeMap<String, String>,
        next: String,
    },
    Hours {
        schedule: String,
        open: String,
        closed: String,
    },
    Queue {
        queue: String,
        /// Skill → minimum level; the caller's language is added by the router's request.
        #[serde(default)]
        skills: BTreeMap<String, u8>,
        #[serde(default)]
        priority: i32,
    },
    Transfer {
        number: String,
        /// Where the flow goes on when the number cannot be reached (refused, not answering, no
        /// trunk); without it the call ends.
        #[serde(default)]
        failed: Option<String>,
    },
    Hangup {
        #[serde(default)]
        prompts: Vec<String>,
    },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    #[default]
    None,
    /// Belgian national register or BIS number: 11 digits, mod 97 with the 2000+ rule.
    NationalNumber,
}

fn yes() -> bool {
    true
}
fn default_timeout() -> u32 {
    5
}
fn default_inter_digit() -> u32 {
    3
}
fn default_retries() -> u32 {
    2
}
fn default_terminator() -> String {
    "#".to_owned()
}
fn invalid_prompt() -> String {
    "invalid-choice".to_owned()
}
fn no_input_prompt() -> String {
    "no-input".to_owned()
}
