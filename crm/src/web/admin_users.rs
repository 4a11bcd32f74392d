//! The admin's pages: users, their roles, lock-outs, and the permission matrix.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;

use super::session::CsrfForm;
use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::{PasswordError, Permission, Role, hash_password};
use crate::i18n::Language;
use crate::records::audit::{self, Actor, AuditEntry};
use crate::records::sessions;
use crate::records::users::{self, NewUser, UserError, UserId};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/new", get(new_form))
        .route("/admin/users/{id}", get(edit_form))
        .route("/admin/users/{id}/roles", post(set_roles))
        .route("/admin/users/{id}/unlock", post(unlock))
        .route("/admin/users/{id}/disable", post(disable))
        .route("/admin/users/{id}/enable", post(enable))
        .route("/admin/roles", get(roles_matrix))
}

async fn list(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require(Permission::ManageUsers)?;
    let now = state.clock.now();
    let users: Vec<_> = users::list(&state.db)
        .await?
        .into_iter()
        .map(|user| {
            context! {
                id => user.id.0,
                username => user.username,
                display_name => user.display_name,
                roles => user.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>(),
                language => user.language.code(),
                locked => user.locked_until.is_some_and(|until| until > now),
                disabled => user.disabled,
            }
        })
        .collect();
    let layout = Layout::for_user(&current, "/admin/users");
    Ok(Html(state.templates.render("admin/users.html", &layout, context! { users })?))
}

#[derive(Deserialize, Default)]
struct NewUserForm {
    username: String,
    display_name: String,
    #[serde(default)]
    email: String,
    language: String,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

async fn new_form(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require(Permission::ManageUsers)?;
    render_new_form(&state, &current, &NewUserForm::default(), None)
}

async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    CsrfForm { form, .. }: CsrfForm<NewUserForm>,
) -> Result<Response, WebError> {
    current.require(Permission::ManageUsers)?;
    let invalid = |field: &'static str, message: &'static str| Some((field, message));
    let roles: Result<Vec<Role>, _> = form.roles.iter().map(|name| name.parse::<Role>()).collect();
    let language = Language::from_code(&form.language);
    let problem = if !users::valid_username(form.username.trim()) {
        invalid("username", "error-username")
    } else if form.display_name.trim().is_empty() {
        invalid("display_name", "error-required")
    } else if language.is_none() {
        invalid("language", "error-required")
    } else if roles.is_err() {
        invalid("roles", "error-role")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Ok(render_new_form(&state, &current, &form, Some(problem))?.into_response());
    }
    let password_hash = match hash_password(&form.password) {
        Ok(hash) => hash,
        Err(PasswordError::TooShort { .. }) => {
            return Ok(
                render_new_form(&state, &current, &form, invalid("password", "error-password-short"))?.into_response()
            );
        }
        Err(PasswordError::Hash(error)) => return Err(WebError::BadRequest(error.to_string())),
    };
    let roles = roles.unwrap_or_default();
    let now = state.clock.now();
    let email = Some(form.email.trim()).filter(|email| !email.is_empty());
    let new_user = NewUser {
        username: form.username.trim(),
        display_name: form.display_name.trim(),
        email,
        password_hash: &password_hash,
        language: language.unwrap_or_default(),
        roles: &roles,
    };
    let mut tx = state.db.pool().begin().await?;
    let id = match users::insert(&mut tx, &new_user, now).await {
        Ok(id) => id,
        Err(UserError::UsernameTaken(_)) => {
            return Ok(
                render_new_form(&state, &current, &form, invalid("username", "error-username-taken"))?.into_response()
            );
        }
        Err(UserError::InvalidUsername) => {
            return Ok(render_new_form(&state, &current, &form, invalid("username", "error-username"))?.into_response());
        }
        Err(UserError::Database(error)) => return Err(error.into()),
    };
    let detail = Some(format!("roles: {}", form.roles.join(", ")));
    audit::record(&mut *tx, &admin_entry(&current, "user.created", id, detail), now).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/users/{}", id.0)).into_response())
}

fn render_new_form(
    state: &AppState,
    current: &CurrentUser,
    form: &NewUserForm,
    problem: Option<(&str, &str)>,
) -> Result<Html<String>, WebError> {
    let layout = Layout::for_user(current, "/admin/users/new");
    let all_roles: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
    let html = state.templates.render(
        "admin/user_new.html",
        &layout,
        context! {
            form => context! {
                username => form.username, display_name => form.display_name, email => form.email,
                language => form.language, roles => form.roles,
            },
            all_roles,
            error_field => problem.map(|(field, _)| field),
            error_key => problem.map(|(_, key)| key),
        },
    )?;
    Ok(Html(html))
}

async fn edit_form(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::ManageUsers)?;
    let user = users::get(&state.db, UserId(id)).await?.ok_or(WebError::NotFound)?;
    let now = state.clock.now();
    let path = format!("/admin/users/{id}");
    let layout = Layout::for_user(&current, &path);
    let all_roles: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
    let html = state.templates.render(
        "admin/user_edit.html",
        &layout,
        context! {
            user => context! {
                id => user.id.0, username => user.username, display_name => user.display_name,
                roles => user.roles.iter().map(|role| role.as_str()).collect::<Vec<_>>(),
                locked => user.locked_until.is_some_and(|until| until > now),
                failed_logins => user.failed_logins,
                disabled => user.disabled,
            },
            all_roles,
            is_self => user.id == current.user.id,
        },
    )?;
    Ok(Html(html))
}

#[derive(Deserialize)]
struct RolesForm {
    #[serde(default)]
    roles: Vec<String>,
}

async fn set_roles(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm { form, .. }: CsrfForm<RolesForm>,
) -> Result<Redirect, WebError> {
    current.require(Permission::ManageUsers)?;
    let user_id = existing_user(&state, id).await?;
    let roles = form
        .roles
        .iter()
        .map(|name| name.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| WebError::BadRequest(error.to_string()))?;
    // An admin who removes their own admin role would lock the municipality out of this page.
    if user_id == current.user.id && !roles.contains(&Role::Admin) {
        return Err(WebError::BadRequest("an admin cannot remove their own admin role".to_owned()));
    }
    let now = state.clock.now();
    let mut tx = state.db.pool().begin().await?;
    users::set_roles(&mut tx, user_id, &roles).await?;
    let detail = Some(format!("roles: {}", form.roles.join(", ")));
    audit::record(&mut *tx, &admin_entry(&current, "user.roles_changed", user_id, detail), now).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/users/{id}")))
}

async fn unlock(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Redirect, WebError> {
    current.require(Permission::ManageUsers)?;
    let user_id = existing_user(&state, id).await?;
    users::clear_failed_logins(&state.db, user_id).await?;
    audit::record(state.db.pool(), &admin_entry(&current, "user.unlocked", user_id, None), state.clock.now()).await?;
    Ok(Redirect::to(&format!("/admin/users/{id}")))
}

async fn disable(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Redirect, WebError> {
    current.require(Permission::ManageUsers)?;
    let user_id = existing_user(&state, id).await?;
    if user_id == current.user.id {
        return Err(WebError::BadRequest("an admin cannot disable their own account".to_owned()));
    }
    let now = state.clock.now();
    let mut tx = state.db.pool().begin().await?;
    users::set_disabled(&mut tx, user_id, Some(now)).await?;
    audit::record(&mut *tx, &admin_entry(&current, "user.disabled", user_id, None), now).await?;
    tx.commit().await?;
    // A disabled user is logged out everywhere at once.
    sessions::delete_for_user(&state.db, user_id).await?;
    Ok(Redirect::to(&format!("/admin/users/{id}")))
}

async fn enable(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<i64>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Redirect, WebError> {
    current.require(Permission::ManageUsers)?;
    let user_id = existing_user(&state, id).await?;
    let now = state.clock.now();
    let mut tx = state.db.pool().begin().await?;
    users::set_disabled(&mut tx, user_id, None).await?;
    audit::record(&mut *tx, &admin_entry(&current, "user.enabled", user_id, None), now).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/users/{id}")))
}

async fn roles_matrix(State(state): State<AppState>, current: CurrentUser) -> Result<Html<String>, WebError> {
    current.require(Permission::ManageUsers)?;
    let permissions: Vec<&str> = Permission::ALL.iter().map(|permission| permission.as_str()).collect();
    let rows: Vec<_> = Role::ALL
        .iter()
        .map(|role| {
            let grants: Vec<bool> = Permission::ALL.iter().map(|permission| role.grants(*permission)).collect();
            context! { role => role.as_str(), grants }
        })
        .collect();
    let layout = Layout::for_user(&current, "/admin/roles");
    Ok(Html(state.templates.render("admin/roles.html", &layout, context! { permissions, rows })?))
}

async fn existing_user(state: &AppState, id: i64) -> Result<UserId, WebError> {
    users::get(&state.db, UserId(id)).await?.map(|user| user.id).ok_or(WebError::NotFound)
}

fn admin_entry<'a>(
    current: &'a CurrentUser,
    action: &'a str,
    subject: UserId,
    detail: Option<String>,
) -> AuditEntry<'a> {
    AuditEntry {
        actor: Actor::User { id: current.user.id, name: &current.user.username },
        action,
        subject_type: "user",
        subject_id: Some(subject.0.to_string()),
        purpose: None,
        detail,
    }
}
