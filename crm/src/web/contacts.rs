//! Citizens: search, create, edit, merge, and the 360° view. Every page that shows a contact's
//! personal data reads it through `records::contacts::read`, which audits the read.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use loket_be::{NationalRegisterNumber, PhoneNumber};
use minijinja::context;
use serde::Deserialize;

use super::session::CsrfForm;
use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::i18n::Language;
use crate::records::audit::{self, AuditEntry};
use crate::records::cases::{self, CaseFilter};
use crate::records::contacts::{self, Address, ContactError, ContactId, ContactInput};
use crate::records::timeline;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list).post(create))
        .route("/contacts/new", get(new_form))
        .route("/contacts/find", post(find_by_national_number))
        .route("/contacts/{id}", get(view))
        .route("/contacts/{id}/edit", get(edit_form).post(update))
        .route("/contacts/{id}/merge", post(merge))
}

/// Why the console reads a contact, written to the audit log with each read.
const PURPOSE_VIEW: &str = "case handling: contact view";

#[derive(Deserialize, Default)]
struct SearchQuery {
    q: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(query): Query<SearchQuery>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::WorkCases)?;
    let text = query.q.as_deref().map(str::trim).unwrap_or_default();
    let results = if text.is_empty() {
        Vec::new()
    } else {
        contacts::search(&state.db, current.actor(), text, 100, state.clock.now()).await?
    };
    let layout = Layout::for_user(&current, "/contacts");
    Ok(Html(state.templates.render(
        "contacts/list.html",
        &layout,
        context! { q => text, results, searched => !text.is_empty() },
    )?))
}

#[derive(Deserialize)]
struct FindForm {
    national_number: String,
    purpose: String,
}

/// The national number travels in a POST body, never in a URL, and the lookup is audited with
/// the purpose the agent gives.
async fn find_by_national_number(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<FindForm>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let purpose = form.purpose.trim();
    let layout = Layout::for_user(&current, "/contacts");
    let problem = if purpose.is_empty() { Some("contacts-purpose-required") } else { None };
    let number = NationalRegisterNumber::parse(&form.national_number, current_year(&state));
    let (problem, number) = match (problem, number) {
        (Some(problem), _) => (Some(problem), None),
        (None, Err(_)) => (Some("contacts-national-number-invalid"), None),
        (None, Ok(number)) => (None, Some(number)),
    };
    if let Some(number) = number {
        match contacts::find_by_national_number(&state.db, current.actor(), purpose, &number, state.clock.now()).await?
        {
            Some(id) => return Ok(Redirect::to(&format!("/contacts/{}", id.0)).into_response()),
            None => {
                let html = state.templates.render(
                    "contacts/list.html",
                    &layout,
                    context! { q => "", results => Vec::<()>::new(), searched => true, find_error => "contacts-not-found" },
                )?;
                return Ok(Html(html).into_response());
            }
        }
    }
    let html = state.templates.render(
        "contacts/list.html",
        &layout,
        context! { q => "", results => Vec::<()>::new(), searched => false, find_error => problem },
    )?;
    Ok(Html(html).into_response())
}

#[derive(Deserialize, Default, Clone, serde::Serialize)]
struct ContactForm {
    first_name: String,
    last_name: String,
    #[serde(default)]
    national_number: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    preferred_channel: String,
    /// One per line.
    #[serde(default)]
    phones: String,
    /// One per line.
    #[serde(default)]
    emails: String,
    #[serde(default)]
    street: String,
    #[serde(default)]
    postcode: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    confirm_duplicate: Option<String>,
}

const CHANNELS: [&str; 4] = ["phone", "email", "letter", "counter"];

impl ContactForm {
    /// The contact to store, or every field with its problem.
    fn validate(
        &self,
        current_year: u16,
        keep_number: Option<NationalRegisterNumber>,
    ) -> Result<ContactInput, Vec<(&'static str, &'static str)>> {
        let mut problems = Vec::new();
        if self.first_name.trim().is_empty() {
            problems.push(("first_name", "error-required"));
        }
        if self.last_name.trim().is_empty() {
            problems.push(("last_name", "error-required"));
        }
        let national_number = match self.national_number.trim() {
            "" => keep_number,
            text => match NationalRegisterNumber::parse(text, current_year) {
                Ok(number) => Some(number),
                Err(_) => {
                    problems.push(("national_number", "contacts-national-number-invalid"));
                    None
                }
            },
        };
        let mut phones = Vec::new();
        for line in self.phones.lines().map(str::trim).filter(|line| !line.is_empty()) {
            match PhoneNumber::parse(line) {
                Ok(phone) => phones.push(phone),
                Err(_) => {
                    problems.push(("phones", "contacts-phone-invalid"));
                    break;
                }
            }
        }
        let emails: Vec<String> =
            self.emails.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect();
        if emails.iter().any(|email| !plausible_email(email)) {
            problems.push(("emails", "contacts-email-invalid"));
        }
        let language = Language::from_code(&self.language);
        if language.is_none() {
            problems.push(("language", "error-required"));
        }
        let preferred_channel = match self.preferred_channel.as_str() {
            "" => None,
            channel if CHANNELS.contains(&channel) => Some(channel.to_owned()),
            _ => {
                problems.push(("preferred_channel", "error-required"));
                None
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ContactInput {
            first_name: self.first_name.trim().to_owned(),
            last_name: self.last_name.trim().to_owned(),
            national_number,
            language: language.unwrap_or_default(),
            preferred_channel,
            phones,
            emails,
            address: Address {
                street: self.street.trim().to_owned(),
                postcode: self.postcode.trim().to_owned(),
                city: self.city.trim().to_owned(),
            },
        })
    }
}

pub(super) fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.contains(char::is_whitespace)
}

async fn new_form(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require(Permission::WorkCases)?;
    let form = ContactForm { language: current.language().code().to_owned(), ..ContactForm::default() };
    render_form(&state, &current, &form, None, &[], &[], None)
}

async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<ContactForm>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let input = match form.validate(current_year(&state), None) {
        Ok(input) => input,
        Err(problems) => return Ok(render_form(&state, &current, &form, None, &problems, &[], None)?.into_response()),
    };
    if form.confirm_duplicate.is_none() {
        let duplicates = contacts::possible_duplicates(&state.db, &input, None).await?;
        if !duplicates.is_empty() {
            return Ok(render_form(&state, &current, &form, None, &[], &duplicates, None)?.into_response());
        }
    }
    let now = state.clock.now();
    let mut tx = state.db.pool().begin().await?;
    let id = match contacts::insert(&mut tx, &input, now).await {
        Ok(id) => id,
        Err(ContactError::DuplicateNationalNumber(existing)) => {
            return Ok(render_form(&state, &current, &form, None, &[], &[], Some(existing))?.into_response());
        }
        Err(ContactError::Database(error)) => return Err(error.into()),
        Err(ContactError::InvalidMerge) => return Err(WebError::BadRequest("not a merge".into())),
    };
    audit::record(&mut *tx, &contact_entry(&current, "contact.created", id), now).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/contacts/{}", id.0)).into_response())
}

async fn view(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::WorkCases)?;
    let contact = contacts::read(&state.db, current.actor(), PURPOSE_VIEW, ContactId(id), state.clock.now())
        .await?
        .ok_or(WebError::NotFound)?;
    let filter = CaseFilter { contact_id: Some(id), ..CaseFilter::default() };
    let (all_cases, _) = cases::list(&state.db, &filter, current.user.id.0).await?;
    let (closed, open): (Vec<_>, Vec<_>) = all_cases.into_iter().partition(|case| case.status == "closed");
    let entries = timeline::for_contact(&state.db, id, 200).await?;
    let input_for_duplicates = ContactInput {
        first_name: contact.first_name.clone(),
        last_name: contact.last_name.clone(),
        national_number: None,
        language: contact.language,
        preferred_channel: None,
        phones: contact.phones.iter().filter_map(|phone| PhoneNumber::parse(phone).ok()).collect(),
        emails: contact.emails.clone(),
        address: Address::default(),
    };
    let duplicates = if contact.merged_into.is_none() {
        contacts::possible_duplicates(&state.db, &input_for_duplicates, Some(contact.id)).await?
    } else {
        Vec::new()
    };
    let accounts = crate::records::accounts::for_contact(&state.db, id).await?;
    let path = format!("/contacts/{id}");
    let layout = Layout::for_user(&current, &path);
    let html = state.templates.render(
        "contacts/view.html",
        &layout,
        context! {
            contact => context! {
                id => id,
                first_name => contact.first_name,
                last_name => contact.last_name,
                national_number => contact.national_number.as_ref().map(NationalRegisterNumber::masked),
                language => contact.language.code(),
                preferred_channel => contact.preferred_channel,
                phones => contact.phones,
                emails => contact.emails,
                address => contact.address,
                merged_into => contact.merged_into.map(|id| id.0),
            },
            open_cases => open,
            closed_cases => closed,
            entries,
            duplicates,
            accounts,
        },
    )?;
    Ok(Html(html))
}

async fn edit_form(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::WorkCases)?;
    let contact =
        contacts::read(&state.db, current.actor(), "case handling: edit contact", ContactId(id), state.clock.now())
            .await?
            .ok_or(WebError::NotFound)?;
    let form = ContactForm {
        first_name: contact.first_name,
        last_name: contact.last_name,
        // Never put the whole number back into a page: the field stays empty and keeps it.
        national_number: String::new(),
        language: contact.language.code().to_owned(),
        preferred_channel: contact.preferred_channel.unwrap_or_default(),
        phones: contact.phones.join("\n"),
        emails: contact.emails.join("\n"),
        street: contact.address.street,
        postcode: contact.address.postcode,
        city: contact.address.city,
        confirm_duplicate: None,
    };
    let masked = contact.national_number.as_ref().map(NationalRegisterNumber::masked);
    render_edit_form(&state, &current, id, &form, masked, &[])
}

async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<ContactForm>,
) -> Result<Response, WebError> {
    current.require(Permission::WorkCases)?;
    let now = state.clock.now();
    let existing = contacts::read(&state.db, current.actor(), "case handling: edit contact", ContactId(id), now)
        .await?
        .ok_or(WebError::NotFound)?;
    let masked = existing.national_number.as_ref().map(NationalRegisterNumber::masked);
    let input = match form.validate(current_year(&state), existing.national_number) {
        Ok(input) => input,
        Err(problems) => return Ok(render_edit_form(&state, &current, id, &form, masked, &problems)?.into_response()),
    };
    let mut tx = state.db.pool().begin().await?;
    match contacts::update(&mut tx, ContactId(id), &input, now).await {
        Ok(()) => {}
        Err(ContactError::DuplicateNationalNumber(_)) => {
            return Ok(render_edit_form(
                &state,
                &current,
                id,
                &form,
                masked,
                &[("national_number", "contacts-national-number-taken")],
            )?
            .into_response());
        }
        Err(ContactError::Database(error)) => return Err(error.into()),
        Err(ContactError::InvalidMerge) => return Err(WebError::BadRequest("not a merge".into())),
    }
    audit::record(&mut *tx, &contact_entry(&current, "contact.updated", ContactId(id)), now).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/contacts/{id}")).into_response())
}

#[derive(Deserialize)]
struct MergeForm {
    duplicate_id: i64,
}

async fn merge(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<MergeForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::WorkCases)?;
    let now = state.clock.now();
    let mut tx = state.db.pool().begin().await?;
    match contacts::merge(&mut tx, ContactId(id), ContactId(form.duplicate_id), &current.user.username, now).await {
        Ok(()) => {}
        Err(ContactError::InvalidMerge) => return Err(WebError::BadRequest("these contacts cannot be merged".into())),
        Err(ContactError::Database(error)) => return Err(error.into()),
        Err(ContactError::DuplicateNationalNumber(_)) => return Err(WebError::BadRequest("not an insert".into())),
    }
    let mut entry = contact_entry(&current, "contact.merged", ContactId(id));
    entry.detail = Some(format!("contact #{} merged into #{id}", form.duplicate_id));
    audit::record(&mut *tx, &entry, now).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/contacts/{id}")))
}

fn render_form(
    state: &AppState,
    current: &CurrentUser,
    form: &ContactForm,
    masked_number: Option<String>,
    problems: &[(&str, &str)],
    duplicates: &[contacts::ContactSummary],
    number_taken_by: Option<ContactId>,
) -> Result<Html<String>, WebError> {
    let layout = Layout::for_user(current, "/contacts/new");
    let errors: BTreeMap<&str, &str> = problems.iter().copied().collect();
    let html = state.templates.render(
        "contacts/form.html",
        &layout,
        context! {
            form, errors, duplicates, masked_number, channels => CHANNELS,
            number_taken_by => number_taken_by.map(|id| id.0),
            action => "/contacts", editing => false,
        },
    )?;
    Ok(Html(html))
}

fn render_edit_form(
    state: &AppState,
    current: &CurrentUser,
    id: i64,
    form: &ContactForm,
    masked_number: Option<String>,
    problems: &[(&str, &str)],
) -> Result<Html<String>, WebError> {
    let path = format!("/contacts/{id}/edit");
    let layout = Layout::for_user(current, &path);
    let errors: BTreeMap<&str, &str> = problems.iter().copied().collect();
    let html = state.templates.render(
        "contacts/form.html",
        &layout,
        context! {
            form, errors, duplicates => Vec::<()>::new(), masked_number, channels => CHANNELS,
            action => path, editing => true, id,
        },
    )?;
    Ok(Html(html))
}

fn contact_entry<'a>(current: &'a CurrentUser, action: &'a str, id: ContactId) -> AuditEntry<'a> {
    AuditEntry {
        actor: current.actor(),
        action,
        subject_type: "contact",
        subject_id: Some(id.0.to_string()),
        purpose: Some("case handling"),
        detail: None,
    }
}

pub(super) fn current_year(state: &AppState) -> u16 {
    u16::try_from(state.year()).unwrap_or(u16::MAX)
}
