//! Cases: the list with filters, saved views and bulk actions; a case's page with its fields,
//! custom fields, status, timeline, notes, documents, mail, related cases, clone and escalation.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, RawQuery, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use loket_be::NationalRegisterNumber;
use minijinja::context;
use serde::Deserialize;
use serde_json::Map;

use super::session::CsrfForm;
use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::i18n::{Language, Texts};
use crate::mail::{self, TemplateAgent, TemplateCase, TemplateContact, TemplateContext};
use crate::records::case_types::{self, FieldError};
use crate::records::cases::{
    self, CLOSE_REASONS, Case, CaseChanges, CaseError, CaseFilter, CaseId, CaseInput, CaseStatus,
};
use crate::records::contacts::{self, ContactId};
use crate::records::documents::{self, Upload};
use crate::records::outbox::{self, NewMail};
use crate::records::timeline::{self, NewEntry, Summary};
use crate::records::{directory, email_templates, facebook_comments, saved_views, users};

pub fn routes(max_upload_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/cases", get(list).post(create))
        .route("/cases/new", get(new_form))
        .route("/cases/bulk", post(bulk))
        .route("/cases/views", post(save_view))
        .route("/cases/views/{view_id}/delete", post(delete_view))
        .route("/cases/{id}", get(view))
        .route("/cases/{id}/edit", post(edit))
        .route("/cases/{id}/status", post(set_status))
        .route("/cases/{id}/note", post(add_note))
        .route(
            "/cases/{id}/documents",
            // Room for the multipart framing around the largest allowed file.
            post(upload).layer(DefaultBodyLimit::max(max_upload_bytes + 64 * 1024)),
        )
        .route("/cases/{id}/documents/{document_id}", get(download))
        .route("/cases/{id}/mail", post(send_mail))
        .route("/cases/{id}/mail/{mail_id}/retry", post(retry_mail))
        .route("/cases/{id}/link", post(link))
        .route("/cases/{id}/clone", post(clone_case))
        .route("/cases/{id}/escalate", post(escalate))
}

const CHANNELS: [&str; 6] = ["voice", "email", "web_form", "facebook", "counter", "letter"];
const DOCUMENT_TYPES: [(&str, &str); 8] = [
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("txt", "text/plain"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("odt", "application/vnd.oasis.opendocument.text"),
];

async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(filter): Query<CaseFilter>,
    RawQuery(raw_query): RawQuery,
) -> Result<Html<String>, WebError> {
    current.require(Permission::WorkCases)?;
    let (rows, total) = cases::list(&state.db, &filter, current.user.id.0).await?;
    let views = saved_views::for_user(&state.db, current.user.id).await?;
    let services = directory::services(&state.db).await?;
    let queues = directory::queues(&state.db).await?;
    let page = filter.page.unwrap_or(1).max(1);
    let query_without_page = raw_query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.starts_with("page=") && !pair.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    let layout = Layout::for_user(&current, "/cases");
    let html = state.templates.render(
        "cases/list.html",
        &layout,
        context! {
            rows, total, filter, views, page, query => query_without_page,
            has_next => page * cases::PAGE_SIZE < total,
            total_shown => if total > cases::COUNT_CAP { format!("{}+", cases::COUNT_CAP) } else { total.to_string() },
            statuses => CaseStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            close_reasons => CLOSE_REASONS,
            services => services, queues => queues.iter().map(|q| q.code.clone()).collect::<Vec<_>>(),
        },
    )?;
    Ok(Html(html))
}

#[derive(Deserialize)]
struct SaveViewForm {
    name: String,
    query: String,
}

async fn save_view(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<SaveViewForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    if form.name.trim().is_empty() {
        return Err(WebError::BadRequest("a saved view needs a name".into()));
    }
    // Only a query the case list understands is kept, so a saved view cannot smuggle anything.
    serde_html_form::from_str::<CaseFilter>(&form.query).map_err(|error| WebError::BadRequest(error.to_string()))?;
    saved_views::save(&state.db, current.user.id, &form.name, &form.query).await?;
    Ok(Redirect::to(&format!("/cases?{}", form.query)))
}

async fn delete_view(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(view_id): Path<i64>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    saved_views::delete(&state.db, current.user.id, view_id).await?;
    Ok(Redirect::to("/cases"))
}

#[derive(Deserialize)]
struct BulkForm {
    #[serde(default)]
    ids: Vec<i64>,
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// One transaction for the whole selection: all the cases change, or none does.
async fn bulk(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<BulkForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    let now = state.clock.now();
    let actor = current.user.username.as_str();
    let mut tx = state.db.pool().begin().await?;
    for id in &form.ids {
        let result = match form.action.as_str() {
            "assign_me" => {
                cases::assign(&mut tx, CaseId(*id), Some((current.user.id.0, &current.user.display_name)), actor, now)
                    .await
            }
            "in_progress" => cases::set_status(&mut tx, CaseId(*id), CaseStatus::InProgress, None, actor, now).await,
            "close" => {
                cases::set_status(&mut tx, CaseId(*id), CaseStatus::Closed, Some(&form.reason), actor, now).await
            }
            other => return Err(WebError::BadRequest(format!("unknown bulk action {other:?}"))),
        };
        result.map_err(case_error)?;
    }
    tx.commit().await?;
    let back = if form.back.starts_with("/cases") { form.back } else { "/cases".to_owned() };
    Ok(Redirect::to(&back))
}

#[derive(Deserialize, Default)]
struct NewCaseQuery {
    contact: Option<i64>,
    account: Option<i64>,
}

async fn new_form(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(query): Query<NewCaseQuery>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::WorkCases)?;
    render_new_form(
        &state,
        &current,
        &NewCaseForm { contact_id: query.contact, account_id: query.account, ..NewCaseForm::default() },
        &[],
    )
    .await
}

#[derive(Deserialize, Default, serde::Serialize)]
struct NewCaseForm {
    #[serde(default)]
    contact_id: Option<i64>,
    #[serde(default)]
    account_id: Option<i64>,
    #[serde(default)]
    case_type: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    support_line: Option<i64>,
}

async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<NewCaseForm>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let case_type = case_types::get(&state.db, &form.case_type).await?;
    let mut problems = Vec::new();
    if case_type.is_none() {
        problems.push(("case_type", "error-required"));
    }
    if !CHANNELS.contains(&form.channel.as_str()) {
        problems.push(("channel", "error-required"));
    }
    if form.subject.trim().is_empty() {
        problems.push(("subject", "error-required"));
    }
    let support_line = form.support_line.unwrap_or(1);
    if !(1..=2).contains(&support_line) {
        problems.push(("support_line", "cases-line-invalid"));
    }
    let Some(case_type) = case_type.filter(|_| problems.is_empty()) else {
        return Ok(render_new_form(&state, &current, &form, &problems).await?.into_response());
    };
    let input = CaseInput {
        contact_id: form.contact_id,
        account_id: form.account_id,
        service_code: case_type.service.clone(),
        case_type: case_type.code.clone(),
        channel: form.channel.clone(),
        support_line,
        priority: 0,
        owner_id: Some(current.user.id.0),
        queue_code: None,
        subject: form.subject.clone(),
        custom_fields: Map::new(),
    };
    let mut tx = state.db.pool().begin().await?;
    let (id, _) = cases::insert(&mut tx, &input, state.year(), &current.user.username, state.clock.now())
        .await
        .map_err(case_error)?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/cases/{}", id.0)).into_response())
}

async fn render_new_form(
    state: &AppState,
    current: &CurrentUser,
    form: &NewCaseForm,
    problems: &[(&str, &str)],
) -> Result<Html<String>, WebError> {
    let types = case_types::all(&state.db).await?;
    let contact_name = match form.contact_id {
        Some(id) => contacts::display_name(&state.db, ContactId(id)).await?,
        None => None,
    };
    let errors: BTreeMap<&str, &str> = problems.iter().copied().collect();
    let layout = Layout::for_user(current, "/cases/new");
    let html = state.templates.render(
        "cases/new.html",
        &layout,
        context! { form, errors, types, channels => CHANNELS, contact_name },
    )?;
    Ok(Html(html))
}

#[derive(Deserialize, Default)]
struct ViewQuery {
    template: Option<String>,
    canned: Option<String>,
    lang: Option<String>,
}

/// What a re-rendered case page has to say besides the case itself.
#[derive(Default)]
pub(super) struct PageNotes {
    field_errors: Vec<FieldError>,
    submitted_fields: BTreeMap<String, String>,
    status_error: Option<&'static str>,
    upload_error: Option<String>,
    compose: Option<Compose>,
    compose_error: Option<&'static str>,
    /// Why a Facebook reply was not posted, and its text to correct (`web::facebook`).
    facebook_error: Option<String>,
    facebook_draft: Option<String>,
}

impl PageNotes {
    pub(super) fn facebook_reply(error: String, draft: String) -> PageNotes {
        PageNotes { facebook_error: Some(error), facebook_draft: Some(draft), ..PageNotes::default() }
    }
}

#[derive(Default, serde::Serialize, Deserialize)]
struct Compose {
    to: String,
    subject: String,
    body: String,
}

async fn view(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<ViewQuery>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::WorkCases)?;
    let case = cases::get(&state.db, CaseId(id)).await?.ok_or(WebError::NotFound)?;
    let mut notes = PageNotes::default();
    if query.template.is_some() || query.canned.is_some() {
        notes.compose = Some(compose_from_templates(&state, &current, &case, &query).await?);
    }
    render_case(&state, &current, case, notes).await
}

async fn compose_from_templates(
    state: &AppState,
    current: &CurrentUser,
    case: &Case,
    query: &ViewQuery,
) -> Result<Compose, WebError> {
    let language = query.lang.as_deref().and_then(Language::from_code).unwrap_or(current.language());
    let (contact, to) = match case.contact_id {
        Some(contact_id) => {
            let purpose = format!("case handling: mail for case {}", case.number);
            match contacts::read(&state.db, current.actor(), &purpose, ContactId(contact_id), state.clock.now()).await?
            {
                Some(contact) => {
                    let to = contact.emails.first().cloned().unwrap_or_default();
                    (TemplateContact { first_name: contact.first_name, last_name: contact.last_name }, to)
                }
                None => (TemplateContact::default(), String::new()),
            }
        }
        None => (TemplateContact::default(), String::new()),
    };
    let context = TemplateContext {
        contact,
        case: TemplateCase { number: case.number.clone(), subject: case.subject.clone() },
        agent: TemplateAgent { name: current.user.display_name.clone() },
    };
    let mut compose = Compose { to, ..Compose::default() };
    let render =
        |text: &str| mail::render(text, &context).map_err(|error| WebError::BadRequest(format!("template: {error}")));
    if let Some(code) = &query.template {
        let template = email_templates::get(&state.db, code, language).await?.ok_or(WebError::NotFound)?;
        compose.subject = render(&template.subject)?;
        compose.body = render(&template.body)?;
    }
    if let Some(code) = &query.canned {
        let canned = email_templates::get(&state.db, code, language).await?.ok_or(WebError::NotFound)?;
        if !compose.body.is_empty() {
            compose.body.push_str("\n\n");
        }
        compose.body.push_str(&render(&canned.body)?);
    }
    Ok(compose)
}

async fn render_case(
    state: &AppState,
    current: &CurrentUser,
    case: Case,
    notes: PageNotes,
) -> Result<Html<String>, WebError> {
    let id = case.id;
    let contact = match case.contact_id {
        Some(contact_id) => {
            let purpose = format!("case handling: case {}", case.number);
            contacts::read(&state.db, current.actor(), &purpose, ContactId(contact_id), state.clock.now()).await?.map(
                |contact| {
                    context! {
                        id => contact.id.0,
                        name => format!("{} {}", contact.first_name, contact.last_name),
                        national_number => contact.national_number.as_ref().map(NationalRegisterNumber::masked),
                        language => contact.language.code(),
                        phones => contact.phones,
                        emails => contact.emails,
                    }
                },
            )
        }
        None => None,
    };
    let case_type = case_types::get(&state.db, &case.case_type).await?;
    let visible: Vec<_> = case_type
        .iter()
        .flat_map(|case_type| case_type.fields.iter())
        .filter(|field| field.visible_to(&current.user.roles))
        .collect();
    let fields: Vec<_> = visible
        .iter()
        .map(|field| {
            let value = notes.submitted_fields.get(&field.name).cloned().or_else(|| {
                case.custom_fields.get(&field.name).map(|value| match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
            });
            let error = notes.field_errors.iter().find(|error| error.field == field.name).map(|error| error.key);
            context! { def => field, value, error }
        })
        .collect();
    // Errors on the fixed fields (subject, priority) and on fields this user may not set.
    let other_errors: Vec<&FieldError> =
        notes.field_errors.iter().filter(|error| !visible.iter().any(|field| field.name == error.field)).collect();
    let entries = timeline::for_case(&state.db, id, 200).await?;
    let documents = documents::for_case(&state.db, id).await?;
    let mails = outbox::for_case(&state.db, id).await?;
    let related = cases::related(&state.db, CaseId(id)).await?;
    let templates = email_templates::all(&state.db).await?;
    let owners: Vec<_> = users::list(&state.db)
        .await?
        .into_iter()
        .filter(|user| !user.disabled && user.roles.iter().any(|role| role.grants(Permission::WorkCases)))
        .map(|user| context! { id => user.id.0, name => user.display_name })
        .collect();
    // Only a case a comment opened has somewhere to reply to (an agent may file a case on the
    // facebook channel by hand).
    let facebook_reply = case.channel == "facebook"
        && state.config.facebook.is_some()
        && current.may(Permission::WorkCases)
        && facebook_comments::incoming_for_case(&state.db, id).await?.is_some();
    let path = format!("/cases/{id}");
    let layout = Layout::for_user(current, &path);
    let html = state.templates.render(
        "cases/view.html",
        &layout,
        context! {
            case, contact, case_type, fields, other_errors, entries, documents, mails, related, templates, owners,
            statuses => CaseStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            close_reasons => CLOSE_REASONS,
            status_error => notes.status_error,
            upload_error => notes.upload_error,
            compose => notes.compose,
            compose_error => notes.compose_error,
            facebook_reply,
            facebook_error => notes.facebook_error,
            facebook_draft => notes.facebook_draft,
            facebook_max_chars => super::facebook::MAX_REPLY_CHARS,
            max_upload_mb => state.config.max_upload_bytes / (1024 * 1024),
            document_types => DOCUMENT_TYPES.iter().map(|(extension, _)| *extension).collect::<Vec<_>>().join(", "),
        },
    )?;
    Ok(Html(html))
}

/// The edit form posts `subject`, `priority`, `owner_id` and one `field.<name>` per custom field.
async fn edit(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let case = cases::get(&state.db, CaseId(id)).await?.ok_or(WebError::NotFound)?;
    let value = |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.trim().to_owned());
    let submitted: BTreeMap<String, String> = form
        .iter()
        .filter_map(|(key, value)| key.strip_prefix("field.").map(|name| (name.to_owned(), value.clone())))
        .collect();
    let custom_fields = match case_types::get(&state.db, &case.case_type).await? {
        Some(case_type) => case_type.validate(&submitted, &case.custom_fields, &current.user.roles),
        None => Ok(case.custom_fields.clone()),
    };
    let priority = value("priority").and_then(|p| p.parse::<i64>().ok()).filter(|p| (0..=5).contains(p));
    let subject = value("subject").filter(|subject| !subject.is_empty());
    let (custom_fields, priority, subject) = match (custom_fields, priority, subject) {
        (Ok(custom_fields), Some(priority), Some(subject)) => (custom_fields, priority, subject),
        (custom_fields, priority, subject) => {
            // Nothing is saved when any value is wrong; every wrong one is named.
            let mut field_errors = custom_fields.err().unwrap_or_default();
            if priority.is_none() {
                field_errors.push(FieldError { field: "priority".into(), key: "cases-priority-invalid" });
            }
            if subject.is_none() {
                field_errors.push(FieldError { field: "subject".into(), key: "error-required" });
            }
            let notes = PageNotes { field_errors, submitted_fields: submitted, ..PageNotes::default() };
            return unprocessable(&state, &current, case, notes).await;
        }
    };
    let owner_id = value("owner_id").and_then(|owner| owner.parse::<i64>().ok());
    let changes = CaseChanges { subject, priority, owner_id, custom_fields };
    let mut tx = state.db.pool().begin().await?;
    cases::update(&mut tx, CaseId(id), &changes, &current.user.username, state.clock.now())
        .await
        .map_err(case_error)?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/cases/{id}")).into_response())
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    #[serde(default)]
    reason: String,
}

async fn set_status(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<StatusForm>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let status: CaseStatus =
        form.status.parse().map_err(|_| WebError::BadRequest(format!("unknown status {:?}", form.status)))?;
    let mut tx = state.db.pool().begin().await?;
    match cases::set_status(&mut tx, CaseId(id), status, Some(&form.reason), &current.user.username, state.clock.now())
        .await
    {
        Ok(()) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/cases/{id}")).into_response())
        }
        Err(CaseError::CloseReasonRequired) => {
            drop(tx);
            let case = cases::get(&state.db, CaseId(id)).await?.ok_or(WebError::NotFound)?;
            let notes = PageNotes { status_error: Some("cases-close-reason-required"), ..PageNotes::default() };
            unprocessable(&state, &current, case, notes).await
        }
        Err(error) => Err(case_error(error)),
    }
}

#[derive(Deserialize)]
struct NoteForm {
    body: String,
    #[serde(default)]
    public: Option<String>,
}

async fn add_note(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<NoteForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    if form.body.trim().is_empty() {
        return Err(WebError::BadRequest("an empty note".into()));
    }
    cases::get(&state.db, CaseId(id)).await?.ok_or(WebError::NotFound)?;
    let public = form.public.is_some();
    let entry = NewEntry {
        case_id: Some(id),
        contact_id: None,
        kind: "note",
        actor_name: &current.user.username,
        public,
        summary: Summary::new(if public { "timeline-note-public" } else { "timeline-note-internal" }),
        body: Some(form.body.trim().to_owned()),
    };
    let mut conn = state.db.pool().acquire().await?;
    timeline::append(&mut conn, &entry, state.clock.now()).await?;
    Ok(Redirect::to(&format!("/cases/{id}")))
}

/// Multipart with the CSRF token as the first field and the file as `file`; a refused upload says
/// why (size, type) on the case page and stores nothing.
async fn upload(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let case = cases::get(&state.db, CaseId(id)).await?.ok_or(WebError::NotFound)?;
    let mut csrf = None;
    let mut file = None;
    while let Some(field) = multipart.next_field().await.map_err(|error| WebError::BadRequest(error.body_text()))? {
        match field.name() {
            Some("csrf") => csrf = Some(field.text().await.map_err(|error| WebError::BadRequest(error.body_text()))?),
            Some("file") => {
                let file_name = field.file_name().unwrap_or("document").to_owned();
                let bytes = field.bytes().await.map_err(|error| WebError::BadRequest(error.body_text()))?;
                file = Some((file_name, bytes));
            }
            _ => {}
        }
    }
    if csrf.as_deref() != Some(current.session.csrf_token.as_str()) {
        return Err(WebError::CsrfMismatch);
    }
    let checked = check_upload(state.config.max_upload_bytes, current.language(), file);
    let (file_name, bytes, content_type) = match checked {
        Ok(accepted) => accepted,
        Err(message) => {
            let notes = PageNotes { upload_error: Some(message), ..PageNotes::default() };
            return unprocessable(&state, &current, case, notes).await;
        }
    };
    let upload =
        Upload { case_id: id, file_name: &file_name, content_type, bytes: &bytes, uploaded_by: &current.user.username };
    let mut tx = state.db.pool().begin().await?;
    let store = state.documents.clone();
    documents::store(&mut tx, store.as_ref(), &upload, state.clock.now())
        .await
        .map_err(|error| WebError::BadRequest(error.to_string()))?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/cases/{id}")).into_response())
}

/// The file's name, bytes and content type, or why it is refused, in the user's language. The
/// public web forms check their attachments here too, so both take the same files.
pub(super) fn check_upload(
    max_upload_bytes: usize,
    language: Language,
    file: Option<(String, axum::body::Bytes)>,
) -> Result<(String, axum::body::Bytes, &'static str), String> {
    let Some((file_name, bytes)) = file.filter(|(_, bytes)| !bytes.is_empty()) else {
        return Err(language.text("cases-upload-empty"));
    };
    if bytes.len() > max_upload_bytes {
        let limit = (max_upload_bytes / (1024 * 1024)).to_string();
        return Err(language.text_with("cases-upload-too-large", &[("count", limit)]));
    }
    let file_name = clean_file_name(&file_name);
    let extension = file_name.rsplit_once('.').map(|(_, extension)| extension.to_lowercase()).unwrap_or_default();
    match DOCUMENT_TYPES.iter().find(|(known, _)| *known == extension) {
        Some((_, content_type)) => Ok((file_name, bytes, content_type)),
        None => Err(language.text_with("cases-upload-type", &[("name", file_name)])),
    }
}

/// The case page again, with what was wrong, answered 422 and nothing saved.
pub(super) async fn unprocessable(
    state: &AppState,
    current: &CurrentUser,
    case: Case,
    notes: PageNotes,
) -> Result<Response, WebError> {
    let mut response = render_case(state, current, case, notes).await?.into_response();
    *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

/// Keeps the last path component and printable characters, so a name cannot reach a header or
/// a path.
fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control() && *c != '"').take(120).collect();
    if cleaned.trim().is_empty() { "document".to_owned() } else { cleaned }
}

async fn download(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, document_id)): Path<(i64, i64)>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let document = documents::get(&state.db, document_id)
        .await?
        .filter(|document| document.case_id == id)
        .ok_or(WebError::NotFound)?;
    let store = state.documents.clone();
    let key = document.storage_key.clone();
    let bytes = tokio::task::spawn_blocking(move || store.get(&key))
        .await
        .map_err(|error| WebError::BadRequest(error.to_string()))?
        .map_err(|_| WebError::NotFound)?;
    let disposition =
        format!("attachment; filename=\"{}\"", document.file_name.replace(|c: char| !c.is_ascii() || c == '"', "_"));
    Ok(([(header::CONTENT_TYPE, document.content_type.clone()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response())
}

async fn send_mail(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<Compose>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let case = cases::get(&state.db, CaseId(id)).await?.ok_or(WebError::NotFound)?;
    let problem = if !super::contacts::plausible_email(form.to.trim()) {
        Some("contacts-email-invalid")
    } else if form.subject.trim().is_empty() || form.body.trim().is_empty() {
        Some("cases-mail-incomplete")
    } else {
        None
    };
    if let Some(problem) = problem {
        let notes = PageNotes { compose: Some(form), compose_error: Some(problem), ..PageNotes::default() };
        return unprocessable(&state, &current, case, notes).await;
    }
    let now = state.clock.now();
    let mut tx = state.db.pool().begin().await?;
    let mail = NewMail {
        case_id: Some(id),
        to_address: form.to.trim(),
        subject: form.subject.trim(),
        body: &form.body,
        created_by: &current.user.username,
        auto_submitted: None,
    };
    outbox::enqueue_on_timeline(&mut tx, &mail, &state.config.mail_domain, now).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/cases/{id}")).into_response())
}

async fn retry_mail(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, mail_id)): Path<(i64, i64)>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    let belongs = outbox::for_case(&state.db, id).await?.iter().any(|mail| mail.id == mail_id);
    if !belongs {
        return Err(WebError::NotFound);
    }
    outbox::retry(&state.db, mail_id, state.clock.now()).await?;
    Ok(Redirect::to(&format!("/cases/{id}")))
}

#[derive(Deserialize)]
struct LinkForm {
    number: String,
}

async fn link(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<LinkForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    let other = cases::id_by_number(&state.db, &form.number).await?.ok_or(WebError::NotFound)?;
    if other.0 == id {
        return Err(WebError::BadRequest("a case cannot be related to itself".into()));
    }
    cases::get(&state.db, CaseId(id)).await?.ok_or(WebError::NotFound)?;
    let mut tx = state.db.pool().begin().await?;
    cases::link(&mut tx, CaseId(id), other).await?;
    let entry = NewEntry {
        case_id: Some(id),
        contact_id: None,
        kind: "link",
        actor_name: &current.user.username,
        public: false,
        summary: Summary::new("timeline-linked").arg("number", form.number.trim()),
        body: None,
    };
    timeline::append(&mut tx, &entry, state.clock.now()).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/cases/{id}")))
}

async fn clone_case(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    let mut tx = state.db.pool().begin().await?;
    let (new_id, _) = cases::clone_case(&mut tx, CaseId(id), state.year(), &current.user.username, state.clock.now())
        .await
        .map_err(case_error)?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/cases/{}", new_id.0)))
}

#[derive(Deserialize)]
struct EscalateForm {
    #[serde(default)]
    note: String,
}

async fn escalate(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<EscalateForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    let mut tx = state.db.pool().begin().await?;
    cases::escalate(&mut tx, CaseId(id), &form.note, &current.user.username, state.clock.now())
        .await
        .map_err(case_error)?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/cases/{id}")))
}

fn case_error(error: CaseError) -> WebError {
    match error {
        CaseError::NotFound => WebError::NotFound,
        CaseError::Database(error) => WebError::Database(error),
        other => WebError::BadRequest(other.to_string()),
    }
}
