//! The console's HTML templates (minijinja, compiled into the binary) and the `t()` function
//! that looks UI strings up in the page's language.

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use serde::{Deserialize, Serialize};

use crate::i18n::{Language, Texts};
use crate::records::timeline::Summary;

/// Everything the layout needs; a page's own values sit beside it in the context.
#[derive(Serialize)]
pub struct Layout<'a> {
    pub lang: &'static str,
    pub csrf: Option<&'a str>,
    /// The current path, where the language switch brings the visitor back to.
    pub path: &'a str,
    pub user: Option<LayoutUser<'a>>,
}

#[derive(Serialize)]
pub struct LayoutUser<'a> {
    pub display_name: &'a str,
    pub may_manage_users: bool,
    pub may_view_audit: bool,
    pub may_work_cases: bool,
    pub may_handle_work: bool,
    pub may_supervise: bool,
    pub may_see_accounts: bool,
    pub may_configure: bool,
}

pub struct Templates {
    env: Environment<'static>,
}

macro_rules! template {
    ($env:expr, $name:literal) => {
        $env.add_template($name, include_str!(concat!("../../templates/", $name))).expect(concat!(
            "template ",
            $name,
            " parses"
        ))
    };
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        template!(env, "layout.html");
        template!(env, "login.html");
        template!(env, "home.html");
        template!(env, "workspace.html");
        template!(env, "softphone.html");
        template!(env, "board.html");
        template!(env, "board_agent.html");
        template!(env, "admin/users.html");
        template!(env, "admin/user_new.html");
        template!(env, "admin/user_edit.html");
        template!(env, "admin/roles.html");
        template!(env, "audit/list.html");
        template!(env, "contacts/list.html");
        template!(env, "contacts/form.html");
        template!(env, "contacts/view.html");
        template!(env, "accounts/list.html");
        template!(env, "accounts/form.html");
        template!(env, "accounts/view.html");
        template!(env, "cases/list.html");
        template!(env, "cases/new.html");
        template!(env, "cases/view.html");
        template!(env, "search.html");
        template!(env, "timeline.html");
        template!(env, "admin/templates.html");
        template!(env, "admin/template_edit.html");
        template!(env, "admin/mailboxes.html");
        template!(env, "forms/languages.html");
        template!(env, "forms/index.html");
        template!(env, "forms/form.html");
        template!(env, "forms/done.html");
        template!(env, "forms/limited.html");
        env.add_function("t", translate);
        env.add_filter("datetime", datetime);
        env.add_filter("summary", summary);
        Templates { env }
    }

    pub fn render(&self, name: &str, layout: &Layout<'_>, page: Value) -> Result<String, minijinja::Error> {
        let context = minijinja::context! { layout => layout, lang => layout.lang, ..page };
        self.env.get_template(name)?.render(context)
    }
}

fn page_language(state: &State) -> Language {
    let code = state.lookup("lang").and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default();
    Language::from_code(&code).unwrap_or_default()
}

/// `t("key", name=value, …)`: the string in the language of the page being rendered.
fn translate(state: &State, key: &str, kwargs: Kwargs) -> Result<String, Error> {
    let language = page_language(state);
    let names: Vec<&str> = kwargs.args().collect();
    if names.is_empty() {
        return Ok(language.text(key));
    }
    let mut args = Vec::with_capacity(names.len());
    for name in names {
        let value: Value = kwargs.get(name)?;
        args.push((name, value.to_string()));
    }
    kwargs.assert_all_used()?;
    Ok(language.text_with(key, &args))
}

/// `entry.summary|summary`: a timeline entry's summary in the language of the page.
fn summary(state: &State, value: Value) -> Result<String, Error> {
    let summary = Summary::deserialize(value)
        .map_err(|error| Error::new(ErrorKind::InvalidOperation, format!("not a timeline summary: {error}")))?;
    Ok(summary.text(page_language(state)))
}

/// Milliseconds since the epoch as `2026-11-28 19:10` (UTC).
fn datetime(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|at| at.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]")).ok())
        .unwrap_or_default()
}

impl<'a> Layout<'a> {
    pub fn for_user(current: &'a super::CurrentUser, path: &'a str) -> Layout<'a> {
        use crate::auth::Permission;
        Layout {
            lang: current.language().code(),
            csrf: Some(&current.session.csrf_token),
            path,
            user: Some(LayoutUser {
                display_name: &current.user.display_name,
                may_manage_users: current.may(Permission::ManageUsers),
                may_view_audit: current.may(Permission::ViewAudit),
                may_work_cases: current.may(Permission::WorkCases),
                may_handle_work: current.may(Permission::HandleWork),
                may_supervise: current.may(Permission::Supervise),
                may_see_accounts: current.may(Permission::WorkCases) || current.may(Permission::WorkDossiers),
                may_configure: current.may(Permission::Configure),
            }),
        }
    }
}
