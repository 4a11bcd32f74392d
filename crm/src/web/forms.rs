//! The public web forms: a citizen without an account files a request of one of the types in
//! `PUBLIC_FORMS`, in Dutch, French or English. A valid submission becomes, in one transaction,
//! a contact (matched or new), a case on the `web_form` channel with the form's custom fields, its
//! timeline entry, its attachments and the acknowledgement mail with the case number.
//!
//! Abuse: the form needs the anonymous session's CSRF token (as the login page does), a filled
//! honeypot field is answered as if accepted and stores nothing, and accepted submissions are
//! limited per client address (`RateLimiter`). Privacy: a national register number is read from
//! the body only, never shown again, never put in a URL or a log.
//!
//! The new case asks for a work item in the first-line queue of its service and language, in the
//! same transaction (`records::work_requests`); the binary's router takes it after the commit.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use loket_be::{NationalRegisterNumber, PhoneNumber};
use loket_routing::model::Channel;
use minijinja::context;
use serde::Deserialize;

use super::cases::check_upload;
use super::contacts::{current_year, plausible_email};
use super::session::{Visitor, session_or_anonymous};
use super::templates::Layout;
use super::{AppState, WebError};
use crate::clock::Millis;
use crate::i18n::{Language, Texts};
use crate::records::audit::Actor;
use crate::records::case_types::{self, CaseType};
use crate::records::cases::{self, CaseError, CaseInput};
use crate::records::contacts::{self, ContactError, ContactId, ContactInput};
use crate::records::documents::{DocumentError, PendingFiles, Upload};
use crate::records::outbox::{self, Acknowledgement, AutoSubmitted};
use crate::records::timeline::{self, NewEntry, Summary};
use crate::records::work_requests::{self, WorkRequest};
use crate::records::{directory, email_templates, inbound_mail};

/// The request types a citizen may file on the web, in the order of the index page. A code
/// without a case type is left out. Kept here rather than on the case type because offering a
/// form is a decision about the public site, and a case type has no column for it yet.
pub const PUBLIC_FORMS: [&str; 8] = [
    "identity_card",
    "passport",
    "driving_licence",
    "certificates",
    "marriage",
    "legal_cohabitation",
    "certified_copies",
    "organ_donation",
];

/// Accepted submissions per client address and window: enough for a family filing a few
/// requests, too few for a script.
const SUBMISSIONS_PER_WINDOW: usize = 5;
const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Addresses remembered at once; the limiter's memory stays bounded under a flood of addresses.
const MAX_CLIENTS: usize = 10_000;
const MAX_ATTACHMENTS: usize = 3;
const MAX_NAME_CHARS: usize = 100;
const MAX_MESSAGE_CHARS: usize = 5_000;
/// The name the form's documents and mail are written under.
const ACTOR: &str = "web form";
/// The purpose recorded when a submission is matched to a contact (audit log).
const PURPOSE: &str = "web form intake";
/// The honeypot: hidden from people, and named so that form-filling bots fill it.
const HONEYPOT: &str = "website";

pub fn routes(max_upload_bytes: usize) -> Router<AppState> {
    let limiter = Arc::new(Mutex::new(RateLimiter::new(SUBMISSIONS_PER_WINDOW, WINDOW, MAX_CLIENTS)));
    Router::new()
        .route("/forms", get(index))
        .route(
            "/forms/{case_type}",
            // Room for every attachment at its limit and the text fields around them.
            get(show).post(submit).layer(DefaultBodyLimit::max(MAX_ATTACHMENTS * max_upload_bytes + 256 * 1024)),
        )
        .layer(Extension(limiter))
}

type SharedLimiter = Arc<Mutex<RateLimiter>>;

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

/// `?lang=` first (the language links), then the visitor's session or browser.
fn page_language(query: &LangQuery, visitor: &Visitor) -> Language {
    query.lang.as_deref().and_then(Language::from_code).unwrap_or(visitor.language)
}

async fn index(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<LangQuery>,
) -> Result<Html<String>, WebError> {
    let language = page_language(&query, &visitor);
    let mut types = Vec::new();
    for code in PUBLIC_FORMS {
        if let Some(case_type) = case_types::get(&state.db, code).await? {
            types.push(context! { code => case_type.code, name => case_type.name });
        }
    }
    let layout = Layout { lang: language.code(), csrf: None, path: "/forms", user: None };
    Ok(Html(state.templates.render("forms/index.html", &layout, context! { types })?))
}

async fn public_case_type(state: &AppState, code: &str) -> Result<CaseType, WebError> {
    if !PUBLIC_FORMS.contains(&code) {
        return Err(WebError::NotFound);
    }
    case_types::get(&state.db, code).await?.ok_or(WebError::NotFound)
}

async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(code): Path<String>,
    Query(query): Query<LangQuery>,
) -> Result<Response, WebError> {
    let case_type = public_case_type(&state, &code).await?;
    let language = page_language(&query, &visitor);
    render_form(&state, visitor, language, &case_type, &Submission::default(), &[], StatusCode::OK).await
}

/// What the citizen sent, kept to fill the form again when something is wrong. The national
/// register number and the files are not kept: neither goes back into a page.
#[derive(Default)]
struct Submission {
    csrf: String,
    language: Option<Language>,
    honeypot: String,
    first_name: String,
    last_name: String,
    email: String,
    phone: String,
    national_number: String,
    message: String,
    fields: BTreeMap<String, String>,
    files: Vec<(String, Bytes)>,
}

impl Submission {
    async fn read(mut multipart: Multipart) -> Result<Submission, WebError> {
        let bad = |error: axum::extract::multipart::MultipartError| WebError::BadRequest(error.body_text());
        let mut submission = Submission::default();
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "attachments" {
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let bytes = field.bytes().await.map_err(bad)?;
                // An empty file input still sends a part, with no name and no bytes.
                if !(file_name.is_empty() && bytes.is_empty()) {
                    submission.files.push((file_name, bytes));
                }
                continue;
            }
            let text = field.text().await.map_err(bad)?;
            match name.as_str() {
                "csrf" => submission.csrf = text,
                "lang" => submission.language = Language::from_code(&text),
                HONEYPOT => submission.honeypot = text,
                "first_name" => submission.first_name = text,
                "last_name" => submission.last_name = text,
                "email" => submission.email = text,
                "phone" => submission.phone = text,
                "national_number" => submission.national_number = text,
                "message" => submission.message = text,
                other => {
                    if let Some(custom) = other.strip_prefix("field.") {
                        submission.fields.insert(custom.to_owned(), text);
                    }
                }
            }
        }
        Ok(submission)
    }
}

/// A field the citizen has to correct: the id of its input and what is wrong, in their language.
#[derive(serde::Serialize)]
struct Problem {
    field: String,
    label: String,
    message: String,
}

/// A submission that passed every check, ready to store.
struct Accepted {
    national_number: Option<NationalRegisterNumber>,
    phone: Option<PhoneNumber>,
    custom_fields: serde_json::Map<String, serde_json::Value>,
    files: Vec<(String, Bytes, &'static str)>,
}

fn check(
    state: &AppState,
    case_type: &CaseType,
    submission: &Submission,
    language: Language,
) -> Result<Accepted, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, label_key: &str, message: String| {
        problems.push(Problem { field: field.to_owned(), label: language.text(label_key), message });
    };
    for (field, label) in [("first_name", "contacts-first-name"), ("last_name", "contacts-last-name")] {
        let value = if field == "first_name" { &submission.first_name } else { &submission.last_name };
        if value.trim().is_empty() {
            problem(field, label, language.text("error-required"));
        } else if value.trim().chars().count() > MAX_NAME_CHARS {
            problem(field, label, language.text("field-error-too-long"));
        }
    }
    if !plausible_email(submission.email.trim()) {
        problem("email", "forms-email", language.text("contacts-email-invalid"));
    }
    let phone = match submission.phone.trim() {
        "" => None,
        text => PhoneNumber::parse(text)
            .map_err(|_| problem("phone", "contacts-phone", language.text("contacts-phone-invalid")))
            .ok(),
    };
    let national_number = match submission.national_number.trim() {
        "" => None,
        text => NationalRegisterNumber::parse(text, current_year(state))
            .map_err(|_| {
                problem(
                    "national_number",
                    "contacts-national-number",
                    language.text("contacts-national-number-invalid"),
                )
            })
            .ok(),
    };
    if submission.message.trim().is_empty() {
        problem("message", "forms-message", language.text("error-required"));
    } else if submission.message.chars().count() > MAX_MESSAGE_CHARS {
        problem("message", "forms-message", language.text("field-error-too-long"));
    }
    // A citizen has no role, so only the fields every role sees are on the form.
    let custom_fields = case_type.validate(&submission.fields, &serde_json::Map::new(), &[]).map_err(|errors| {
        for error in errors {
            let label = case_type
                .fields
                .iter()
                .find(|field| field.name == error.field)
                .map_or_else(|| error.field.clone(), |field| field.label.get(language).to_owned());
            problems.push(Problem {
                field: format!("field-{}", error.field),
                label,
                message: language.text(error.key),
            });
        }
    });
    let mut files = Vec::new();
    if submission.files.len() > MAX_ATTACHMENTS {
        let message = language.text_with("forms-attachments-too-many", &[("count", MAX_ATTACHMENTS.to_string())]);
        problems.push(Problem { field: "attachments".into(), label: language.text("forms-attachments"), message });
    }
    for (file_name, bytes) in submission.files.iter().take(MAX_ATTACHMENTS) {
        match check_upload(state.config.max_upload_bytes, language, Some((file_name.clone(), bytes.clone()))) {
            Ok(file) => files.push(file),
            Err(message) => {
                // With several files the citizen needs to know which one; some reasons name it already.
                let message =
                    if message.contains(file_name.as_str()) { message } else { format!("{file_name}: {message}") };
                problems.push(Problem {
                    field: "attachments".into(),
                    label: language.text("forms-attachments"),
                    message,
                });
            }
        }
    }
    match custom_fields {
        Ok(custom_fields) if problems.is_empty() => Ok(Accepted { national_number, phone, custom_fields, files }),
        _ => Err(problems),
    }
}

async fn submit(
    State(state): State<AppState>,
    Extension(limiter): Extension<SharedLimiter>,
    visitor: Visitor,
    Path(code): Path<String>,
    headers: HeaderMap,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let case_type = public_case_type(&state, &code).await?;
    let submission = Submission::read(multipart).await?;
    let expected = visitor.session.as_ref().map(|session| session.csrf_token.as_bytes());
    if expected.is_none_or(|expected| !super::session::constant_time_eq(expected, submission.csrf.as_bytes())) {
        return Err(WebError::CsrfMismatch);
    }
    let language = submission.language.unwrap_or(visitor.language);
    let client = client_key(connect_info.map(|Extension(ConnectInfo(peer))| peer.ip()), &headers);
    if !submission.honeypot.is_empty() {
        // Counted like a submission, so a bot that keeps trying is slowed down as well.
        let _ = limiter_allows(&limiter, client, state.clock.now());
        return render_confirmation(&state, language, None);
    }
    let accepted = match check(&state, &case_type, &submission, language) {
        Ok(accepted) => accepted,
        Err(problems) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render_form(&state, visitor, language, &case_type, &submission, &problems, status).await;
        }
    };
    if !limiter_allows(&limiter, client, state.clock.now()) {
        let layout = Layout { lang: language.code(), csrf: None, path: "/forms", user: None };
        let minutes = WINDOW.as_secs() / 60;
        let html = state.templates.render("forms/limited.html", &layout, context! { minutes })?;
        return Ok((StatusCode::TOO_MANY_REQUESTS, Html(html)).into_response());
    }
    let number = store(&state, &case_type, &submission, accepted, language).await?;
    state.work_requested();
    render_confirmation(&state, language, Some(&number))
}

fn limiter_allows(limiter: &SharedLimiter, client: IpAddr, now: Millis) -> bool {
    // A poisoned lock only means another request panicked mid-update; the counts are still usable.
    limiter.lock().unwrap_or_else(std::sync::PoisonError::into_inner).allow(client, now)
}

/// The client's address: the peer when the server passes it, else the last hop a reverse proxy
/// appended to `X-Forwarded-For`; requests with neither share one budget.
fn client_key(peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
    let forwarded = || {
        headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
    };
    // Behind a proxy on this host or the private network every peer is the proxy.
    let behind_proxy = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback(),
    };
    match peer {
        Some(ip) if !behind_proxy(&ip) => ip,
        peer => forwarded().or(peer).unwrap_or(IpAddr::from([0, 0, 0, 0])),
    }
}

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("the service {0} has no first-line queue to route the request to")]
    NoQueue(String),
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> WebError {
        match error {
            StoreError::Database(error)
            | StoreError::Case(CaseError::Database(error))
            | StoreError::Contact(ContactError::Database(error))
            | StoreError::Document(DocumentError::Database(error)) => WebError::Database(error),
            StoreError::NoQueue(_) => WebError::Unavailable(error.to_string()),
            other => {
                tracing::error!(error = %other, "storing a web form failed");
                WebError::BadRequest("the request could not be stored".into())
            }
        }
    }
}

/// Everything the submission becomes, in one transaction; returns the case number.
async fn store(
    state: &AppState,
    case_type: &CaseType,
    submission: &Submission,
    accepted: Accepted,
    language: Language,
) -> Result<String, StoreError> {
    let now = state.clock.now();
    let email = submission.email.trim().to_lowercase();
    let first_name = submission.first_name.trim();
    let last_name = submission.last_name.trim();
    // Read before the transaction: each takes a connection of its own, which inside it would
    // wait on the one the transaction holds.
    let by_number = match &accepted.national_number {
        Some(number) => contacts::find_by_national_number(&state.db, Actor::System, PURPOSE, number, now).await?,
        None => None,
    };
    let ack_template = email_templates::get(&state.db, "email_ack", language).await?;
    let subject = format!("{} – {first_name} {last_name}", case_type.name.get(language));
    let queues = directory::queues(&state.db).await?;
    let queue = work_requests::first_line_queue(&queues, &case_type.service, language.code())
        .ok_or_else(|| StoreError::NoQueue(case_type.service.clone()))?;
    let mut files = PendingFiles::new(state.documents.as_ref());
    let mut tx = state.db.pool().begin().await?;
    let result = async {
        let contact_id = match by_number {
            Some(id) => id,
            None => match inbound_mail::contact_by_email(&mut tx, &email, PURPOSE, now).await? {
                Some((id, _)) => id,
                None => new_contact(&mut tx, submission, &accepted, &email, language, now).await?,
            },
        };
        let input = CaseInput {
            contact_id: Some(contact_id.0),
            account_id: None,
            service_code: case_type.service.clone(),
            case_type: case_type.code.clone(),
            channel: "web_form".to_owned(),
            support_line: 1,
            priority: 0,
            owner_id: None,
            queue_code: Some(queue.code.clone()),
            subject: subject.clone(),
            custom_fields: accepted.custom_fields.clone(),
        };
        let (case_id, number) = cases::insert(&mut tx, &input, state.year(), ACTOR, now).await?;
        let request = WorkRequest {
            case_id: case_id.0,
            channel: Channel::WebForm,
            queue_code: queue.code.clone(),
            skills: vec![case_type.service.clone()],
            language: language.code().to_owned(),
        };
        work_requests::add(&mut tx, &request, now).await?;
        let mut body = submission.message.trim().to_owned();
        // A matched contact is not changed by an anonymous form, so the number to call back
        // goes with the message.
        if let Some(phone) = &accepted.phone {
            body.push_str(&format!("\n\n☎ {}", phone.e164()));
        }
        let entry = NewEntry {
            case_id: Some(case_id.0),
            contact_id: None,
            kind: "web_form",
            actor_name: &format!("{first_name} {last_name}"),
            public: true,
            summary: Summary::new("timeline-web-form").arg("from", email.as_str()),
            body: Some(body),
        };
        timeline::append(&mut tx, &entry, now).await?;
        for (file_name, bytes, content_type) in &accepted.files {
            let upload = Upload { case_id: case_id.0, file_name, content_type, bytes, uploaded_by: ACTOR };
            files.store(&mut tx, &upload, now).await?;
        }
        if let Some(template) = &ack_template {
            let ack = Acknowledgement {
                case_id: case_id.0,
                number: &number,
                subject: &subject,
                to_address: &email,
                first_name,
                last_name,
                template,
                actor: ACTOR,
                auto_submitted: AutoSubmitted::Generated,
            };
            outbox::acknowledge(&mut tx, &ack, &state.config.mail_domain, now).await?;
        }
        Ok::<_, StoreError>(number)
    }
    .await;
    files.finish(tx, result).await
}

async fn new_contact(
    conn: &mut sqlx::AnyConnection,
    submission: &Submission,
    accepted: &Accepted,
    email: &str,
    language: Language,
    now: Millis,
) -> Result<ContactId, StoreError> {
    let input = ContactInput {
        first_name: submission.first_name.trim().to_owned(),
        last_name: submission.last_name.trim().to_owned(),
        national_number: accepted.national_number.clone(),
        language,
        preferred_channel: Some("email".to_owned()),
        phones: accepted.phone.iter().cloned().collect(),
        emails: vec![email.to_owned()],
        address: contacts::Address::default(),
    };
    match contacts::insert(conn, &input, now).await {
        // Someone with this number was created since it was looked up: the same citizen.
        Err(ContactError::DuplicateNationalNumber(id)) => Ok(id),
        other => Ok(other?),
    }
}

/// The form page, with the anonymous session that carries its CSRF token created if needed.
async fn render_form(
    state: &AppState,
    visitor: Visitor,
    language: Language,
    case_type: &CaseType,
    submission: &Submission,
    problems: &[Problem],
    status: StatusCode,
) -> Result<Response, WebError> {
    let (session, cookie) = session_or_anonymous(state, visitor.session).await?;
    let errors: HashMap<&str, &str> =
        problems.iter().map(|problem| (problem.field.as_str(), problem.message.as_str())).collect();
    let fields: Vec<_> = case_type
        .fields
        .iter()
        .filter(|field| field.roles.is_empty())
        .map(|field| {
            let id = format!("field-{}", field.name);
            let error = errors.get(id.as_str()).copied();
            context! { def => field, id, value => submission.fields.get(&field.name), error }
        })
        .collect();
    let path = format!("/forms/{}", case_type.code);
    // The form carries its own token; the layout's language switch posts, the form's links do not.
    let layout = Layout { lang: language.code(), csrf: None, path: &path, user: None };
    let values = context! {
        first_name => submission.first_name, last_name => submission.last_name,
        email => submission.email, phone => submission.phone, message => submission.message,
    };
    let html = state.templates.render(
        "forms/form.html",
        &layout,
        context! {
            csrf => session.csrf_token, path, case_type => case_type, fields, values, problems, errors,
            honeypot => HONEYPOT, max_attachments => MAX_ATTACHMENTS,
            max_upload_mb => state.config.max_upload_bytes / (1024 * 1024),
        },
    )?;
    let mut response = (status, Html(html)).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The thank-you page; without a number when a bot filled the honeypot, which it cannot tell.
fn render_confirmation(state: &AppState, language: Language, number: Option<&str>) -> Result<Response, WebError> {
    let layout = Layout { lang: language.code(), csrf: None, path: "/forms", user: None };
    let html = state.templates.render("forms/done.html", &layout, context! { number })?;
    Ok(Html(html).into_response())
}

/// Accepted submissions per client in a sliding window. Pure (the time comes in), bounded (at
/// most `max_clients` addresses, each with at most `limit` times) and fails closed: when the
/// table is full of active clients, a new one waits until an entry expires.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    max_clients: usize,
    seen: HashMap<IpAddr, VecDeque<Millis>>,
}

impl RateLimiter {
    pub fn new(limit: usize, window: Duration, max_clients: usize) -> RateLimiter {
        RateLimiter { limit, window, max_clients, seen: HashMap::new() }
    }

    /// Counts a submission from `client` at `now` if it is within the limit.
    pub fn allow(&mut self, client: IpAddr, now: Millis) -> bool {
        let client = Self::bucket(client);
        let window = self.window;
        let expired = |at: &Millis| at.plus(window) <= now;
        if !self.seen.contains_key(&client) && self.seen.len() >= self.max_clients {
            self.seen.retain(|_, times| {
                times.retain(|at| !expired(at));
                !times.is_empty()
            });
            if self.seen.len() >= self.max_clients {
                return false;
            }
        }
        let times = self.seen.entry(client).or_default();
        while times.front().is_some_and(expired) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            return false;
        }
        times.push_back(now);
        true
    }

    /// One budget per IPv6 /64: a single host is usually given a whole one.
    fn bucket(client: IpAddr) -> IpAddr {
        match client {
            IpAddr::V4(_) => client,
            IpAddr::V6(v6) => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Millis = Millis(1_000_000);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_limit_holds_within_the_window_and_resets_after_it() {
        let mut limiter = RateLimiter::new(5, WINDOW, 100);
        for _ in 0..5 {
            assert!(limiter.allow(ip("192.0.2.1"), START));
        }
        assert!(!limiter.allow(ip("192.0.2.1"), START.plus(Duration::from_secs(60))));
        assert!(limiter.allow(ip("192.0.2.2"), START), "another address has its own budget");
        assert!(!limiter.allow(ip("192.0.2.1"), START.plus(WINDOW - Duration::from_millis(1))));
        assert!(limiter.allow(ip("192.0.2.1"), START.plus(WINDOW)));
    }

    #[test]
    fn the_window_slides() {
        let mut limiter = RateLimiter::new(2, WINDOW, 100);
        assert!(limiter.allow(ip("192.0.2.1"), START));
        assert!(limiter.allow(ip("192.0.2.1"), START.plus(Duration::from_secs(300))));
        assert!(!limiter.allow(ip("192.0.2.1"), START.plus(Duration::from_secs(599))));
        // The first has expired, the second has not.
        assert!(limiter.allow(ip("192.0.2.1"), START.plus(WINDOW)));
        assert!(!limiter.allow(ip("192.0.2.1"), START.plus(WINDOW)));
    }

    #[test]
    fn memory_is_bounded_and_expired_clients_make_room() {
        let mut limiter = RateLimiter::new(5, WINDOW, 3);
        for n in 1..=3 {
            assert!(limiter.allow(ip(&format!("192.0.2.{n}")), START));
        }
        assert!(!limiter.allow(ip("192.0.2.4"), START), "a full table refuses newcomers");
        assert!(limiter.allow(ip("192.0.2.1"), START), "known clients keep their budget");
        assert!(limiter.allow(ip("192.0.2.4"), START.plus(WINDOW)));
        assert_eq!(limiter.seen.len(), 1, "the expired clients were dropped");
    }

    #[test]
    fn an_ipv6_host_cannot_escape_by_changing_its_interface_id() {
        let mut limiter = RateLimiter::new(1, WINDOW, 100);
        assert!(limiter.allow(ip("2001:db8:1:2::1"), START));
        assert!(!limiter.allow(ip("2001:db8:1:2::ffff"), START));
        assert!(limiter.allow(ip("2001:db8:1:3::1"), START));
    }

    #[test]
    fn the_client_is_the_peer_unless_a_local_proxy_forwarded_it() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.9, 203.0.113.7".parse().unwrap());
        assert_eq!(client_key(Some(ip("192.0.2.1")), &headers), ip("192.0.2.1"), "a public peer is not a proxy");
        assert_eq!(client_key(Some(ip("127.0.0.1")), &headers), ip("203.0.113.7"), "the hop the proxy appended");
        assert_eq!(client_key(None, &headers), ip("203.0.113.7"));
        assert_eq!(client_key(Some(ip("10.0.0.2")), &HeaderMap::new()), ip("10.0.0.2"));
        assert_eq!(client_key(None, &HeaderMap::new()), ip("0.0.0.0"));
    }
}
