//! The municipality's Facebook Page as a channel: a citizen's comment becomes a case, and the
//! agent's public reply goes back under it. This module is the pure core and a small Graph API
//! client; `web::facebook` is the webhook and the reply form, `records::facebook_comments` the rows.
//!
//! Meta's webhook (see the Graph API webhooks documentation): a `GET` handshake that echoes
//! `hub.challenge` when `hub.verify_token` is ours, then `POST`s of JSON signed with
//! `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body keyed with the app
//! secret. One POST may batch several entries and changes; only new comments (`field` `feed`,
//! `item` `comment`, `verb` `add`) on our page by someone other than the page itself concern us.
//!
//! Privacy: a comment's author and text are a citizen's personal data. Nothing here logs them,
//! `NewComment`'s `Debug` leaves them out, and errors about a payload name positions, never
//! content.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Sha256;

use crate::clock::Millis;
use crate::i18n::Language;

/// How long a reply may take before the agent is told it failed.
const GRAPH_TIMEOUT: Duration = Duration::from_secs(10);
/// Characters of a comment that go into its case's subject.
const SUBJECT_CHARS: usize = 60;

/// The `[facebook]` section of the configuration: the page, the app's secrets, where the Graph
/// API is, and the cases its comments open.
///
/// `case_type` may be left out: the case type is then the first of the public web forms'
/// (`web::forms::PUBLIC_FORMS`) that belongs to `service`. A service without one needs it set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacebookConfig {
    /// The page's id: its comments are taken, its own (the agents' replies) are not.
    #[serde(deserialize_with = "page_id")]
    pub page_id: String,
    /// The app secret that signs every webhook delivery.
    #[serde(deserialize_with = "not_empty")]
    pub app_secret: String,
    /// The token chosen when the webhook was configured in the app; the handshake must carry it.
    #[serde(deserialize_with = "not_empty")]
    pub verify_token: String,
    /// A page access token with `pages_manage_engagement`, to post replies as the page.
    #[serde(deserialize_with = "not_empty")]
    pub page_access_token: String,
    #[serde(default = "default_graph_base_url", deserialize_with = "base_url")]
    pub graph_base_url: String,
    #[serde(default = "default_graph_version", deserialize_with = "graph_version")]
    pub graph_version: String,
    /// The service code of the cases.
    #[serde(default = "default_service", deserialize_with = "not_empty")]
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_type: Option<String>,
    /// The language of every comment; unset, each comment's is detected from its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

impl FacebookConfig {
    /// A page with the defaults for everything but its ids and secrets.
    pub fn new(page_id: &str, app_secret: &str, verify_token: &str, page_access_token: &str) -> FacebookConfig {
        FacebookConfig {
            page_id: page_id.to_owned(),
            app_secret: app_secret.to_owned(),
            verify_token: verify_token.to_owned(),
            page_access_token: page_access_token.to_owned(),
            graph_base_url: default_graph_base_url(),
            graph_version: default_graph_version(),
            service: default_service(),
            case_type: None,
            language: None,
        }
    }
}

/// The secrets stay out of logs and panics.
impl fmt::Debug for FacebookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FacebookConfig")
            .field("page_id", &self.page_id)
            .field("graph_base_url", &self.graph_base_url)
            .field("graph_version", &self.graph_version)
            .field("service", &self.service)
            .field("case_type", &self.case_type)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

fn default_graph_base_url() -> String {
    "https://graph.facebook.com".to_owned()
}

fn default_graph_version() -> String {
    "v21.0".to_owned()
}

fn default_service() -> String {
    "population".to_owned()
}

fn not_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(text)
}

fn page_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(serde::de::Error::custom("expected the page's numeric id"));
    }
    Ok(text)
}

fn base_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    let usable = reqwest::Url::parse(&text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.query().is_none() && url.fragment().is_none());
    if !usable {
        return Err(serde::de::Error::custom("expected an http:// or https:// URL such as https://graph.facebook.com"));
    }
    Ok(text)
}

fn graph_version<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    let valid = text.strip_prefix('v').and_then(|rest| rest.split_once('.')).is_some_and(|(major, minor)| {
        [major, minor].iter().all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
    });
    if !valid {
        return Err(serde::de::Error::custom("expected a Graph API version such as \"v21.0\""));
    }
    Ok(text)
}

/// Whether `header_value` (the `X-Hub-Signature-256` header) is `sha256=` and the hex HMAC-SHA256
/// of `raw_body` under `app_secret`. The bytes are hashed exactly as received, and the MAC is
/// compared in constant time.
pub fn verify_signature(app_secret: &str, raw_body: &[u8], header_value: &str) -> bool {
    let Some(sent) = header_value.strip_prefix("sha256=").and_then(|hex_digest| hex::decode(hex_digest).ok()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&sent).is_ok()
}

/// The `X-Hub-Signature-256` value Meta would send for `raw_body`: what a test signs with.
#[cfg(any(test, feature = "testing"))]
pub fn sign(app_secret: &str, raw_body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A citizen's new comment on the page.
#[derive(Clone, PartialEq, Eq)]
pub struct NewComment {
    /// `<post id>_<comment id>`: the key a retried delivery is recognised by, and where a reply goes.
    pub comment_id: String,
    pub post_id: String,
    /// The post for a comment on it, the parent comment for a reply in a thread.
    pub parent_id: Option<String>,
    /// The page-scoped id of the author; absent when their privacy settings hide them.
    pub from_id: Option<String>,
    pub from_name: Option<String>,
    /// Empty for a comment that is only a photo or a sticker.
    pub message: String,
    /// When it was written, by Facebook's clock.
    pub created_at: Option<Millis>,
}

impl NewComment {
    /// The subject of its case: who wrote, and how the comment starts.
    pub fn subject(&self) -> String {
        let name = self.from_name.as_deref().filter(|name| !name.trim().is_empty()).unwrap_or("Facebook");
        let words = self.message.split_whitespace().collect::<Vec<_>>().join(" ");
        if words.is_empty() {
            return name.trim().to_owned();
        }
        let start: String = words.chars().take(SUBJECT_CHARS).collect();
        let more = if words.chars().count() > SUBJECT_CHARS { "…" } else { "" };
        format!("{}: {start}{more}", name.trim())
    }
}

/// The ids only: the author and the text are personal data.
impl fmt::Debug for NewComment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewComment")
            .field("comment_id", &self.comment_id)
            .field("post_id", &self.post_id)
            .field("parent_id", &self.parent_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Why a signed body could not be read. Positions only: the body is a citizen's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not a JSON webhook payload (line {line}, column {column})")]
    NotPayload { line: usize, column: usize },
    #[error("entry {entry}, change {change}: a new comment without the fields it needs")]
    BadComment { entry: usize, change: usize },
}

#[derive(Deserialize)]
struct Payload {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    id: String,
    /// Messenger's entries carry `messaging` instead, which is not taken here.
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    /// Kept loose: each field and item has a value of its own shape.
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct CommentValue {
    comment_id: String,
    post_id: String,
    parent_id: Option<String>,
    from: Option<Author>,
    #[serde(default)]
    message: String,
    /// Seconds, in the feed (Messenger's timestamps are milliseconds).
    created_time: Option<i64>,
}

#[derive(Deserialize)]
struct Author {
    id: String,
    name: Option<String>,
}

/// The new comments of a webhook body, in their order in it: comments (`add`) by others on the
/// page `page_id`. Everything else (other objects, fields, items, verbs, other pages, the page's
/// own replies) is skipped; a body that is not a webhook payload, or a new comment without its
/// ids, is an error.
pub fn new_comments(page_id: &str, raw_body: &[u8]) -> Result<Vec<NewComment>, PayloadError> {
    let payload: Payload = serde_json::from_slice(raw_body)
        .map_err(|error| PayloadError::NotPayload { line: error.line(), column: error.column() })?;
    if payload.object != "page" {
        return Ok(Vec::new());
    }
    let mut comments = Vec::new();
    for (entry_index, entry) in payload.entry.iter().enumerate() {
        // One app may be subscribed to several pages; this one's token answers only its own.
        if entry.id != page_id {
            continue;
        }
        for (change_index, change) in entry.changes.iter().enumerate() {
            let text = |name: &str| change.value.get(name).and_then(serde_json::Value::as_str);
            if change.field != "feed" || text("item") != Some("comment") || text("verb") != Some("add") {
                continue;
            }
            let bad = || PayloadError::BadComment { entry: entry_index, change: change_index };
            let value = CommentValue::deserialize(&change.value).map_err(|_| bad())?;
            if value.comment_id.is_empty() || value.post_id.is_empty() {
                return Err(bad());
            }
            if value.from.as_ref().is_some_and(|author| author.id == page_id) {
                continue;
            }
            let (from_id, from_name) = value.from.map_or((None, None), |author| (Some(author.id), author.name));
            comments.push(NewComment {
                comment_id: value.comment_id,
                post_id: value.post_id,
                parent_id: value.parent_id,
                from_id,
                from_name,
                message: value.message,
                created_at: value.created_time.map(|seconds| Millis(seconds.saturating_mul(1000))),
            });
        }
    }
    Ok(comments)
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("the Graph API client cannot be set up: {0}")]
    Setup(String),
    #[error("the Graph API cannot be reached: {0}")]
    Unreachable(&'static str),
    /// Facebook's own description of what it refused, from its error object.
    #[error("{message} ({kind}, code {code})")]
    Refused { message: String, kind: String, code: i64 },
    #[error("the Graph API answered HTTP {0} without an error description")]
    Status(u16),
    #[error("the Graph API's answer is not the documented JSON")]
    BadAnswer,
}

/// Posts as the page through the Graph API.
pub struct GraphClient {
    base: reqwest::Url,
    version: String,
    access_token: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    message: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    code: i64,
}

impl GraphClient {
    pub fn new(config: &FacebookConfig) -> Result<GraphClient, GraphError> {
        let base = reqwest::Url::parse(&config.graph_base_url).map_err(|error| GraphError::Setup(error.to_string()))?;
        if base.cannot_be_a_base() {
            return Err(GraphError::Setup(format!("{} cannot be a base URL", config.graph_base_url)));
        }
        let http = reqwest::Client::builder()
            .timeout(GRAPH_TIMEOUT)
            .build()
            .map_err(|error| GraphError::Setup(error.to_string()))?;
        Ok(GraphClient {
            base,
            version: config.graph_version.clone(),
            access_token: config.page_access_token.clone(),
            http,
        })
    }

    /// Publishes `message` as the page's reply to `comment_id`
    /// (`POST /{version}/{comment-id}/comments`); the reply's id.
    pub async fn reply(&self, comment_id: &str, message: &str) -> Result<String, GraphError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| GraphError::Setup("the base URL takes no path".to_owned()))?
            .pop_if_empty()
            .extend([self.version.as_str(), comment_id, "comments"]);
        // The token goes in the body, so that no URL (which errors and proxies may log) carries it.
        let form = [("message", message), ("access_token", self.access_token.as_str())];
        let response = self.http.post(url).form(&form).send().await.map_err(|error| {
            GraphError::Unreachable(if error.is_timeout() {
                "timed out"
            } else if error.is_connect() {
                "connection failed"
            } else {
                "request failed"
            })
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|_| GraphError::Unreachable("the answer broke off"))?;
        if status.is_success() {
            let created: Created = serde_json::from_slice(&body).map_err(|_| GraphError::BadAnswer)?;
            return Ok(created.id);
        }
        match serde_json::from_slice::<ErrorAnswer>(&body) {
            Ok(ErrorAnswer { error }) => {
                Err(GraphError::Refused { message: error.message, kind: error.kind, code: error.code })
            }
            Err(_) => Err(GraphError::Status(status.as_u16())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "1000000000001";

    fn comment(id: &str, from_id: &str, message: &str) -> serde_json::Value {
        serde_json::json!({
            "field": "feed",
            "value": {
                "item": "comment", "verb": "add",
                "comment_id": id, "post_id": format!("{PAGE}_77"), "parent_id": format!("{PAGE}_77"),
                "from": { "id": from_id, "name": "Jan Peeters" },
                "message": message, "created_time": 1_742_667_604,
                "post": { "id": "x", "status_type": "added_photos", "is_published": true }
            }
        })
    }

    fn body(changes: Vec<serde_json::Value>) -> Vec<u8> {
        let payload = serde_json::json!({
            "object": "page",
            "entry": [{ "id": PAGE, "time": 1_742_667_605, "changes": changes }]
        });
        serde_json::to_vec(&payload).unwrap()
    }

    #[test]
    fn a_signature_is_the_hmac_of_the_raw_bytes() {
        let raw = br#"{"object":"page","entry":[{"id":"1","changes":[{"value":"\u00e9"}]}]}"#;
        let header = sign("app-secret", raw);
        assert!(header.starts_with("sha256=") && header[7..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(verify_signature("app-secret", raw, &header));
        assert!(!verify_signature("other-secret", raw, &header));
        // Re-encoding the same JSON (é instead of \u00e9) is another body.
        let reencoded = r#"{"object":"page","entry":[{"id":"1","changes":[{"value":"é"}]}]}"#;
        assert!(!verify_signature("app-secret", reencoded.as_bytes(), &header));
        for bad in ["", "sha256=", "sha256=zz", "sha1=abcd", &header[7..], &format!("{header}00")] {
            assert!(!verify_signature("app-secret", raw, bad), "{bad:?}");
        }
        // The well-known test vector HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert!(verify_signature(
            "key",
            b"The quick brown fox jumps over the lazy dog",
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        ));
    }

    #[test]
    fn new_comments_by_others_are_taken_from_every_entry_and_change() {
        let raw = body(vec![
            comment("77_1", "555", "Wanneer is het gemeentehuis open?"),
            comment("77_2", PAGE, "Vanaf 9 uur."),
            serde_json::json!({ "field": "feed", "value": { "item": "reaction", "verb": "add", "reaction_type": "like" } }),
            serde_json::json!({ "field": "feed", "value": { "item": "comment", "verb": "remove", "comment_id": "77_3" } }),
            serde_json::json!({ "field": "mention", "value": { "post_id": 12 } }),
            comment("77_4", "556", "Merci"),
        ]);
        let comments = new_comments(PAGE, &raw).unwrap();
        let ids: Vec<&str> = comments.iter().map(|comment| comment.comment_id.as_str()).collect();
        assert_eq!(ids, ["77_1", "77_4"]);
        let first = &comments[0];
        assert_eq!(first.from_id.as_deref(), Some("555"));
        assert_eq!(first.from_name.as_deref(), Some("Jan Peeters"));
        assert_eq!(first.post_id, format!("{PAGE}_77"));
        assert_eq!(first.created_at, Some(Millis(1_742_667_604_000)));
        let debug = format!("{first:?}");
        assert!(!debug.contains("Jan") && !debug.contains("gemeentehuis"), "{debug}");
    }

    #[test]
    fn other_objects_pages_and_unknown_fields_are_ignored() {
        let instagram = br#"{"object":"instagram","entry":[{"id":"1","changes":[]}]}"#;
        assert_eq!(new_comments(PAGE, instagram).unwrap(), []);
        let other_page = String::from_utf8(body(vec![comment("77_1", "555", "x")])).unwrap().replace(PAGE, "42");
        assert_eq!(new_comments(PAGE, other_page.as_bytes()).unwrap(), []);
        let messenger = br#"{"object":"page","entry":[{"id":"1000000000001","time":1,"messaging":[{"sender":{"id":"9"}}]}],"extra":true}"#;
        assert_eq!(new_comments(PAGE, messenger).unwrap(), []);
        // A hidden author and a photo without text are still a citizen's comment.
        let mut anonymous = comment("77_5", "x", "");
        anonymous["value"].as_object_mut().unwrap().remove("from");
        anonymous["value"].as_object_mut().unwrap().remove("message");
        let comments = new_comments(PAGE, &body(vec![anonymous])).unwrap();
        assert_eq!((comments[0].from_id.as_deref(), comments[0].message.as_str()), (None, ""));
        assert_eq!(comments[0].subject(), "Facebook");
    }

    #[test]
    fn a_malformed_body_is_an_error_that_quotes_nothing() {
        for raw in [&b""[..], b"not json", b"[]", b"{\"entry\":[]}", b"{\"object\":\"page\",\"entry\":{}}"] {
            assert!(matches!(new_comments(PAGE, raw), Err(PayloadError::NotPayload { .. })), "{raw:?}");
        }
        let mut without_id = comment("77_1", "555", "Jan Peeters schrijft");
        without_id["value"].as_object_mut().unwrap().remove("comment_id");
        let error = new_comments(PAGE, &body(vec![comment("77_0", "555", "ok"), without_id])).unwrap_err();
        assert_eq!(error, PayloadError::BadComment { entry: 0, change: 1 });
        let mut wrong_type = comment("77_1", "555", "x");
        wrong_type["value"]["from"] = serde_json::json!("Jan Peeters");
        let error = new_comments(PAGE, &body(vec![wrong_type])).unwrap_err().to_string();
        assert!(!error.contains("Jan"), "{error}");
    }

    #[test]
    fn the_subject_is_the_author_and_the_start_of_the_comment() {
        let mut comment = new_comments(PAGE, &body(vec![comment("77_1", "555", "Kort\n  bericht")])).unwrap().remove(0);
        assert_eq!(comment.subject(), "Jan Peeters: Kort bericht");
        comment.message = "é".repeat(SUBJECT_CHARS + 1);
        assert_eq!(comment.subject(), format!("Jan Peeters: {}…", "é".repeat(SUBJECT_CHARS)));
    }

    #[test]
    fn the_configuration_checks_its_values_and_hides_its_secrets() {
        let parse = |text: &str| toml::from_str::<FacebookConfig>(text);
        let minimal =
            "page_id = \"123\"\napp_secret = \"s3cret\"\nverify_token = \"v3rify\"\npage_access_token = \"EAAtoken\"\n";
        let config = parse(minimal).unwrap();
        assert_eq!(config, FacebookConfig::new("123", "s3cret", "v3rify", "EAAtoken"));
        assert_eq!(
            (config.graph_base_url.as_str(), config.graph_version.as_str()),
            ("https://graph.facebook.com", "v21.0")
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("v3rify") && !debug.contains("EAAtoken"), "{debug}");
        for extra in [
            "graph_base_url = \"ftp://x\"\n",
            "graph_version = \"21\"\n",
            "service = \" \"\n",
            "language = \"de\"\n",
            "colour = \"blue\"\n",
        ] {
            assert!(parse(&format!("{minimal}{extra}")).is_err(), "{extra}");
        }
        assert!(parse(&minimal.replace("\"123\"", "\"my page\"")).is_err());
        assert!(parse(&minimal.replace("\"s3cret\"", "\"\"")).is_err());
    }
}
