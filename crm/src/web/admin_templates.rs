//! The admin edits the municipality's mail templates and canned answers, per language. A template
//! that does not render (a syntax error, an unknown variable) is refused with the line named.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::context;
use serde::Deserialize;

use super::session::CsrfForm;
use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::i18n::Language;
use crate::mail::{self, TemplateAgent, TemplateCase, TemplateContact, TemplateContext};
use crate::records::audit::{self, AuditEntry};
use crate::records::email_templates::{self, EmailTemplate};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/templates", get(list))
        .route("/admin/templates/{code}/{language}", get(edit_form).post(save))
}

async fn list(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require(Permission::Configure)?;
    let templates = email_templates::all(&state.db).await?;
    let layout = Layout::for_user(&current, "/admin/templates");
    Ok(Html(state.templates.render("admin/templates.html", &layout, context! { templates })?))
}

async fn edit_form(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((code, language)): Path<(String, String)>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::Configure)?;
    let language = Language::from_code(&language).ok_or(WebError::NotFound)?;
    let template = email_templates::get(&state.db, &code, language).await?.ok_or(WebError::NotFound)?;
    render_form(&state, &current, &template, None)
}

#[derive(Deserialize)]
struct TemplateForm {
    title: String,
    subject: String,
    body: String,
}

async fn save(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((code, language)): Path<(String, String)>,
    CsrfForm { form, .. }: CsrfForm<TemplateForm>,
) -> Result<Response, WebError> {
    current.require(Permission::Configure)?;
    let language = Language::from_code(&language).ok_or(WebError::NotFound)?;
    let existing = email_templates::get(&state.db, &code, language).await?.ok_or(WebError::NotFound)?;
    let template = EmailTemplate { title: form.title, subject: form.subject, body: form.body, ..existing };
    // A sample message proves the template renders before anyone depends on it.
    let sample = TemplateContext {
        contact: TemplateContact { first_name: "Emma".into(), last_name: "Claes".into() },
        case: TemplateCase { number: "2026-000001".into(), subject: "…".into() },
        agent: TemplateAgent { name: current.user.display_name.clone() },
    };
    for (part, text) in [("subject", &template.subject), ("body", &template.body)] {
        if let Err(error) = mail::render(text, &sample) {
            let problem = match error.line() {
                Some(line) => format!("{part}, line {line}: {}", error.detail().unwrap_or(&error.to_string())),
                None => format!("{part}: {error}"),
            };
            let mut response = render_form(&state, &current, &template, Some(problem))?.into_response();
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(response);
        }
    }
    email_templates::save(&state.db, &template).await?;
    let entry = AuditEntry {
        actor: current.actor(),
        action: "template.changed",
        subject_type: "email_template",
        subject_id: Some(format!("{code}/{}", language.code())),
        purpose: None,
        detail: None,
    };
    audit::record(state.db.pool(), &entry, state.clock.now()).await?;
    Ok(Redirect::to("/admin/templates").into_response())
}

fn render_form(
    state: &AppState,
    current: &CurrentUser,
    template: &EmailTemplate,
    problem: Option<String>,
) -> Result<Html<String>, WebError> {
    let path = format!("/admin/templates/{}/{}", template.code, template.language.code());
    let layout = Layout::for_user(current, &path);
    Ok(Html(state.templates.render(
        "admin/template_edit.html",
        &layout,
        context! { template, problem, action => path },
    )?))
}
