//! Companies: search, create, and the account page with establishments, contacts and cases.
//! Agents see them for citizens' cases, tellers for the tax dossiers.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use loket_be::EnterpriseNumber;
use minijinja::context;
use serde::Deserialize;

use super::session::CsrfForm;
use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::records::accounts::{self, AccountError, AccountId, AccountInput};
use crate::records::audit::{self, AuditEntry};
use crate::records::cases::{self, CaseFilter};
use crate::records::contacts::Address;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(list).post(create))
        .route("/accounts/new", get(new_form))
        .route("/accounts/{id}", get(view))
        .route("/accounts/{id}/contacts", post(link_contact))
        .route("/accounts/{id}/establishments", post(add_establishment))
}

const MAY_SEE: [Permission; 2] = [Permission::WorkCases, Permission::WorkDossiers];

#[derive(Deserialize, Default)]
struct SearchQuery {
    q: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(query): Query<SearchQuery>,
) -> Result<Html<String>, WebError> {
    current.require_any(&MAY_SEE)?;
    let text = query.q.as_deref().map(str::trim).unwrap_or_default();
    let results = accounts::search(&state.db, text, 100).await?;
    let layout = Layout::for_user(&current, "/accounts");
    Ok(Html(state.templates.render("accounts/list.html", &layout, context! { q => text, results })?))
}

#[derive(Deserialize, Default, serde::Serialize)]
struct AccountForm {
    enterprise_number: String,
    name: String,
    #[serde(default)]
    legal_form: String,
    #[serde(default)]
    vat_registered: Option<String>,
    #[serde(default)]
    street: String,
    #[serde(default)]
    postcode: String,
    #[serde(default)]
    city: String,
}

async fn new_form(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require_any(&MAY_SEE)?;
    render_form(&state, &current, &AccountForm::default(), &[])
}

async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<AccountForm>,
) -> Result<Response, WebError> {
    current.require_any(&MAY_SEE)?;
    let mut problems = Vec::new();
    let number = EnterpriseNumber::parse(&form.enterprise_number);
    if number.is_err() {
        problems.push(("enterprise_number", "accounts-number-invalid"));
    }
    if form.name.trim().is_empty() {
        problems.push(("name", "error-required"));
    }
    let Ok(number) = number else {
        return Ok(render_form(&state, &current, &form, &problems)?.into_response());
    };
    if !problems.is_empty() {
        return Ok(render_form(&state, &current, &form, &problems)?.into_response());
    }
    let input = AccountInput {
        enterprise_number: number,
        name: form.name.trim().to_owned(),
        legal_form: Some(form.legal_form.trim().to_owned()).filter(|value| !value.is_empty()),
        vat_registered: form.vat_registered.is_some(),
        address: Address { street: form.street.clone(), postcode: form.postcode.clone(), city: form.city.clone() },
    };
    let now = state.clock.now();
    let mut tx = state.db.pool().begin().await?;
    let id = match accounts::insert(&mut tx, &input, now).await {
        Ok(id) => id,
        Err(AccountError::DuplicateEnterpriseNumber(_)) => {
            return Ok(render_form(&state, &current, &form, &[("enterprise_number", "accounts-number-taken")])?
                .into_response());
        }
        Err(AccountError::Database(error)) => return Err(error.into()),
    };
    let entry = AuditEntry {
        actor: current.actor(),
        action: "account.created",
        subject_type: "account",
        subject_id: Some(id.0.to_string()),
        purpose: None,
        detail: None,
    };
    audit::record(&mut *tx, &entry, now).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/accounts/{}", id.0)).into_response())
}

async fn view(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    current.require_any(&MAY_SEE)?;
    let account = accounts::get(&state.db, AccountId(id)).await?.ok_or(WebError::NotFound)?;
    let filter = CaseFilter { account_id: Some(id), ..CaseFilter::default() };
    let (account_cases, _) = cases::list(&state.db, &filter, current.user.id.0).await?;
    let path = format!("/accounts/{id}");
    let layout = Layout::for_user(&current, &path);
    let html = state.templates.render(
        "accounts/view.html",
        &layout,
        context! { account, cases => account_cases, may_work_cases => current.may(Permission::WorkCases) },
    )?;
    Ok(Html(html))
}

fn render_form(
    state: &AppState,
    current: &CurrentUser,
    form: &AccountForm,
    problems: &[(&str, &str)],
) -> Result<Html<String>, WebError> {
    let layout = Layout::for_user(current, "/accounts/new");
    let errors: BTreeMap<&str, &str> = problems.iter().copied().collect();
    Ok(Html(state.templates.render("accounts/form.html", &layout, context! { form, errors })?))
}

#[derive(Deserialize)]
struct LinkForm {
    contact_id: i64,
    #[serde(default)]
    role: String,
}

async fn link_contact(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<LinkForm>,
) -> Result<Redirect, WebError> {
    current.require_any(&MAY_SEE)?;
    accounts::get(&state.db, AccountId(id)).await?.ok_or(WebError::NotFound)?;
    crate::records::contacts::display_name(&state.db, crate::records::contacts::ContactId(form.contact_id))
        .await?
        .ok_or_else(|| WebError::BadRequest(format!("no citizen #{}", form.contact_id)))?;
    let mut conn = state.db.pool().acquire().await?;
    let role = Some(form.role.trim()).filter(|role| !role.is_empty());
    accounts::link_contact(&mut conn, AccountId(id), form.contact_id, role).await?;
    Ok(Redirect::to(&format!("/accounts/{id}")))
}

#[derive(Deserialize)]
struct EstablishmentForm {
    #[serde(default)]
    establishment_number: String,
    #[serde(default)]
    name: String,
    street: String,
    #[serde(default)]
    postcode: String,
    #[serde(default)]
    city: String,
}

async fn add_establishment(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<EstablishmentForm>,
) -> Result<Redirect, WebError> {
    current.require_any(&MAY_SEE)?;
    accounts::get(&state.db, AccountId(id)).await?.ok_or(WebError::NotFound)?;
    if form.street.trim().is_empty() {
        return Err(WebError::BadRequest("an establishment needs an address".into()));
    }
    let establishment = accounts::Establishment {
        establishment_number: Some(form.establishment_number.trim().to_owned()).filter(|n| !n.is_empty()),
        name: Some(form.name.trim().to_owned()).filter(|n| !n.is_empty()),
        address: Address {
            street: form.street.trim().to_owned(),
            postcode: form.postcode.trim().to_owned(),
            city: form.city.trim().to_owned(),
        },
    };
    let mut conn = state.db.pool().acquire().await?;
    accounts::add_establishment(&mut conn, AccountId(id), &establishment).await?;
    Ok(Redirect::to(&format!("/accounts/{id}")))
}
