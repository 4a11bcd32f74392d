//! The DPO's view of the audit log, with filters.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use minijinja::context;
use serde::Deserialize;

use super::templates::Layout;
use super::{AppState, CurrentUser, WebError};
use crate::auth::Permission;
use crate::clock::Millis;
use crate::records::audit::{self, AuditFilter};

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

const PAGE_SIZE: i64 = 200;

#[derive(Deserialize, Default)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    subject: Option<String>,
    /// `YYYY-MM-DD`, inclusive, in UTC.
    from: Option<String>,
    /// `YYYY-MM-DD`, inclusive, in UTC.
    until: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    Query(query): Query<AuditQuery>,
) -> Result<Html<String>, WebError> {
    current.require(Permission::ViewAudit)?;
    let non_empty =
        |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let day_start = |value: &Option<String>, field: &str| -> Result<Option<Millis>, WebError> {
        match non_empty(value) {
            Some(text) => day_start_millis(&text)
                .map(Some)
                .ok_or_else(|| WebError::BadRequest(format!("{field}: expected a date as YYYY-MM-DD, got {text:?}"))),
            None => Ok(None),
        }
    };
    let filter = AuditFilter {
        actor_name: non_empty(&query.actor),
        action_prefix: non_empty(&query.action),
        subject_type: non_empty(&query.subject),
        from: day_start(&query.from, "from")?,
        until: day_start(&query.until, "until")?.map(|start| Millis(start.0 + 86_400_000)),
    };
    let entries = audit::list(&state.db, &filter, PAGE_SIZE).await?;
    let layout = Layout::for_user(&current, "/audit");
    let html = state.templates.render(
        "audit/list.html",
        &layout,
        context! {
            entries,
            filter => context! {
                actor => query.actor, action => query.action, subject => query.subject,
                from => query.from, until => query.until,
            },
            page_size => PAGE_SIZE,
        },
    )?;
    Ok(Html(html))
}

fn day_start_millis(text: &str) -> Option<Millis> {
    let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(Millis(date.midnight().assume_utc().unix_timestamp() * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_utc_midnight() {
        assert_eq!(day_start_millis("1970-01-02"), Some(Millis(86_400_000)));
        assert_eq!(day_start_millis("2026-02-30"), None);
        assert_eq!(day_start_millis("yesterday"), None);
    }
}
