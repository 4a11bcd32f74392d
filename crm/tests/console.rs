//! The console through its real router: logins, lock-out, CSRF, language, the admin pages, and
//! the permission matrix walked route by route for every role.

use std::time::Duration;

use axum::http::StatusCode;
use loket_crm::auth::Role;
use loket_crm::db::{Backend, Db};
use loket_crm::db_test;
use loket_crm::records::audit::{self, AuditFilter};
use loket_crm::records::users;
use loket_crm::testing::{Browser, TestApp, TestDb};
use loket_crm::web::WebConfig;

async fn sqlite_app() -> (TestDb, TestApp) {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::new(test_db.db.clone());
    (test_db, app)
}

/// Who may reach each route. Written from the product's rules, not from the code's matrix, so
/// that a change to either shows up here.
#[derive(Clone, Copy)]
enum Allowed {
    EveryRole,
    Only(&'static [Role]),
}

struct RouteCheck {
    method: &'static str,
    path: String,
    allowed: Allowed,
    fields: Vec<(&'static str, String)>,
    /// What an allowed role gets: 200 for a page, 303 after a form, or the refusal of a
    /// well-formed but impossible request (400, 404) that still proves the role got through.
    allowed_status: StatusCode,
}

fn check(
    method: &'static str,
    path: impl Into<String>,
    allowed: Allowed,
    fields: &[(&'static str, &str)],
    status: u16,
) -> RouteCheck {
    RouteCheck {
        method,
        path: path.into(),
        allowed,
        fields: fields.iter().map(|(name, value)| (*name, (*value).to_owned())).collect(),
        allowed_status: StatusCode::from_u16(status).expect("status"),
    }
}

#[tokio::test]
async fn every_route_admits_exactly_its_roles() {
    let (_db, app) = sqlite_app().await;
    loket_crm::demo::seed(&app.state.db, loket_crm::testing::TEST_START, 2026).await.expect("demo");
    let (target, _) = app.create_user("target.user", &[Role::Agent]).await;
    let scalar = |sql: &'static str| {
        let db = app.state.db.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(db.pool()).await.expect(sql) }
    };
    let emma = scalar("SELECT id FROM contacts WHERE national_number = '78021412342'").await;
    let case = scalar("SELECT id FROM cases WHERE number = '2026-000001'").await;
    let account = scalar("SELECT id FROM accounts ORDER BY id LIMIT 1").await;
    let user = |action: &str| format!("/admin/users/{}{action}", target.0);
    let contact = |action: &str| format!("/contacts/{emma}{action}");
    let case_path = |action: &str| format!("/cases/{case}{action}");
    let admin = Allowed::Only(&[Role::Admin]);
    let case_workers = Allowed::Only(&[Role::Agent, Role::Supervisor, Role::Expert]);
    let company_readers = Allowed::Only(&[Role::Agent, Role::Supervisor, Role::Expert, Role::Teller, Role::Manager]);
    let new_user = [
        ("username", "made.by.walker"),
        ("display_name", "Made"),
        ("language", "nl"),
        ("password", "a long enough password"),
    ];
    let contact_fields =
        [("first_name", "Emma"), ("last_name", "Claes"), ("language", "nl"), ("phones", "+32470123456")];
    let routes = vec![
        check("GET", "/", Allowed::EveryRole, &[], 200),
        check("GET", "/api/me", Allowed::EveryRole, &[], 200),
        check("GET", "/admin/users", admin, &[], 200),
        check("GET", "/admin/users/new", admin, &[], 200),
        check("GET", user(""), admin, &[], 200),
        check("GET", "/admin/roles", admin, &[], 200),
        check("POST", "/admin/users", admin, &new_user, 303),
        check("POST", user("/roles"), admin, &[("roles", "agent")], 303),
        check("POST", user("/unlock"), admin, &[], 303),
        check("POST", user("/disable"), admin, &[], 303),
        check("POST", user("/enable"), admin, &[], 303),
        check("GET", "/admin/templates", admin, &[], 200),
        check("GET", "/admin/mailboxes", admin, &[], 200),
        check("GET", "/admin/templates/reply/nl", admin, &[], 200),
        check(
            "POST",
            "/admin/templates/reply/nl",
            admin,
            &[("title", "Antwoord"), ("subject", "Dossier {{ case.number }}"), ("body", "Beste")],
            303,
        ),
        check("GET", "/audit", Allowed::Only(&[Role::Dpo]), &[], 200),
        check("GET", "/contacts?q=claes", case_workers, &[], 200),
        check("GET", "/contacts/new", case_workers, &[], 200),
        check(
            "POST",
            "/contacts",
            case_workers,
            &[("first_name", "Walker"), ("last_name", "Test"), ("language", "fr"), ("confirm_duplicate", "yes")],
            303,
        ),
        check(
            "POST",
            "/contacts/find",
            case_workers,
            &[("national_number", "78021412342"), ("purpose", "permission walk")],
            303,
        ),
        check("GET", contact(""), case_workers, &[], 200),
        check("GET", contact("/edit"), case_workers, &[], 200),
        check("POST", contact("/edit"), case_workers, &contact_fields, 303),
        // Merging a contact into itself is refused, after the permission check.
        check("POST", contact("/merge"), case_workers, &[("duplicate_id", &emma.to_string())], 400),
        check("GET", "/accounts", company_readers, &[], 200),
        check("GET", "/accounts/new", company_readers, &[], 200),
        check(
            "POST",
            "/accounts",
            company_readers,
            &[("enterprise_number", "0403.019.262"), ("name", "Bad number")],
            200,
        ),
        check("GET", format!("/accounts/{account}"), company_readers, &[], 200),
        check(
            "POST",
            format!("/accounts/{account}/contacts"),
            company_readers,
            &[("contact_id", &emma.to_string()), ("role", "zaakvoerder")],
            303,
        ),
        check(
            "POST",
            format!("/accounts/{account}/establishments"),
            company_readers,
            &[("street", "Nieuwstraat 1"), ("city", "Brussel")],
            303,
        ),
        check("GET", "/search?q=claes", case_workers, &[], 200),
        // The workspace: the page for everyone who handles work; without a router (as here)
        // what an allowed role reaches answers 503, after the permission check.
        check("GET", "/workspace", case_workers, &[], 200),
        check("GET", "/api/workspace", case_workers, &[], 503),
        check("POST", "/workspace/presence", case_workers, &[("presence", "available")], 503),
        check("POST", "/workspace/items/1/accept", case_workers, &[], 503),
        check("POST", "/workspace/items/1/decline", case_workers, &[], 503),
        check("POST", "/workspace/items/1/claim", case_workers, &[], 503),
        check("POST", "/workspace/items/1/call/hangup", case_workers, &[], 503),
        check("POST", "/workspace/items/1/call/hold", case_workers, &[], 503),
        check("POST", "/workspace/items/1/call/resume", case_workers, &[], 503),
        check("POST", "/workspace/items/1/transfer", case_workers, &[("queue", "population-fr-l1")], 503),
        check("POST", "/workspace/items/1/wrap-up", case_workers, &[("disposition", "answered")], 503),
        check("POST", "/workspace/help", case_workers, &[("ask", "1")], 503),
        check("POST", "/workspace/items/1/link", case_workers, &[("contact_id", "1")], 503),
        check("POST", "/workspace/dial", case_workers, &[("number", "+3225550199")], 503),
        check("POST", "/workspace/dial/hangup", case_workers, &[], 503),
        check("POST", "/workspace/keypad", case_workers, &[("digit", "5")], 503),
        check("POST", "/workspace/items/1/consult", case_workers, &[("number", "+3225550199")], 503),
        check("POST", "/workspace/items/1/consult/complete", case_workers, &[], 503),
        check("GET", "/board", Allowed::Only(&[Role::Supervisor]), &[], 200),
        check("POST", "/board/agents/1/helped", Allowed::Only(&[Role::Supervisor]), &[], 503),
        check("POST", "/board/agents/1/help-reply", Allowed::Only(&[Role::Supervisor]), &[("text", "ja")], 503),
        check("GET", "/api/board", Allowed::Only(&[Role::Supervisor]), &[], 503),
        check("POST", "/board/items/1/move", Allowed::Only(&[Role::Supervisor]), &[("queue", "population-fr-l1")], 503),
        check("POST", "/board/items/1/priority", Allowed::Only(&[Role::Supervisor]), &[("priority", "2")], 503),
        check("POST", "/board/items/1/coach", Allowed::Only(&[Role::Supervisor]), &[("mode", "listen")], 503),
        check("POST", "/board/items/1/assign", Allowed::Only(&[Role::Supervisor]), &[("agent", "2")], 503),
        check("GET", "/board/agents/1", Allowed::Only(&[Role::Supervisor]), &[], 200),
        check("POST", "/board/agents/1/routing", Allowed::Only(&[Role::Supervisor]), &[("skill:nl", "3")], 503),
        check(
            "POST",
            "/board/agents/2/presence",
            Allowed::Only(&[Role::Supervisor]),
            &[("presence", "away"), ("reason", "break")],
            503,
        ),
        check("GET", "/cases?status=new", case_workers, &[], 200),
        check("GET", "/cases/new", case_workers, &[], 200),
        check(
            "POST",
            "/cases",
            case_workers,
            &[("case_type", "passport"), ("channel", "voice"), ("subject", "Walk")],
            303,
        ),
        check("POST", "/cases/bulk", case_workers, &[("action", "assign_me"), ("ids", &case.to_string())], 303),
        check("POST", "/cases/views", case_workers, &[("name", "Walk"), ("query", "status=new")], 303),
        check("POST", "/cases/views/999/delete", case_workers, &[], 303),
        check("GET", case_path(""), case_workers, &[], 200),
        check(
            "POST",
            case_path("/edit"),
            case_workers,
            &[("subject", "Nieuw paspoort aanvragen"), ("priority", "1")],
            303,
        ),
        check("POST", case_path("/status"), case_workers, &[("status", "in_progress")], 303),
        check("POST", case_path("/note"), case_workers, &[("body", "walk")], 303),
        check("UPLOAD", case_path("/documents"), case_workers, &[], 303),
        check("GET", case_path("/documents/1"), case_workers, &[], 200),
        check(
            "POST",
            case_path("/mail"),
            case_workers,
            &[("to", "emma.claes@example.be"), ("subject", "Walk"), ("body", "Walk")],
            303,
        ),
        check("POST", case_path("/mail/999/retry"), case_workers, &[], 404),
        check("POST", case_path("/link"), case_workers, &[("number", "2026-000003")], 303),
        check("POST", case_path("/clone"), case_workers, &[], 303),
        check("POST", case_path("/escalate"), case_workers, &[("note", "walk")], 303),
        // Without a Facebook page configured (as here) there is nothing to reply to: 404, after
        // the permission check.
        check("POST", case_path("/facebook-reply"), case_workers, &[("message", "walk")], 404),
        check("POST", "/language", Allowed::EveryRole, &[("language", "en"), ("back", "/")], 303),
        // The public web forms: open to everyone, logged in or not. The upload carries no form
        // fields, so it is refused as incomplete (422) after the token was accepted.
        check("GET", "/forms", Allowed::EveryRole, &[], 200),
        check("GET", "/forms/passport", Allowed::EveryRole, &[], 200),
        check("UPLOAD", "/forms/passport", Allowed::EveryRole, &[], 422),
        // Meta's webhook: anonymous and signed, never behind a login; without a page, absent.
        check(
            "GET",
            "/webhooks/facebook?hub.mode=subscribe&hub.verify_token=walk&hub.challenge=1",
            Allowed::EveryRole,
            &[],
            404,
        ),
        check("POST", "/webhooks/facebook", Allowed::EveryRole, &[], 404),
        check("POST", "/logout", Allowed::EveryRole, &[], 303),
    ];
    for role in Role::ALL {
        let (_, password) = app.create_user(&format!("walker.{role}"), &[role]).await;
        let mut browser = app.login(&format!("walker.{role}"), &password).await;
        for route in &routes {
            let may = match route.allowed {
                Allowed::EveryRole => true,
                Allowed::Only(roles) => roles.contains(&role),
            };
            // Every page carries a fresh token in its forms; a POST follows a page as in a browser.
            if route.method != "GET" {
                app.get(&mut browser, "/").await;
            }
            let username = format!("made.by.{role}");
            let fields: Vec<(&str, &str)> = route
                .fields
                .iter()
                .map(|(name, value)| (*name, if *name == "username" { username.as_str() } else { value.as_str() }))
                .collect();
            let response = match route.method {
                "GET" => app.get(&mut browser, &route.path).await,
                "UPLOAD" => app.upload(&mut browser, &route.path, "walk.txt", b"walk").await,
                _ => app.post(&mut browser, &route.path, &fields).await,
            };
            let expected = if may { route.allowed_status } else { StatusCode::FORBIDDEN };
            assert_eq!(response.status, expected, "{role} {} {}: {}", route.method, route.path, response.body);
        }
    }
}

#[tokio::test]
async fn anonymous_visitors_reach_only_the_public_routes() {
    let (_db, app) = sqlite_app().await;
    let mut browser = Browser::default();
    for path in ["/login", "/healthz", "/readyz", "/metrics", "/static/console.css", "/forms"] {
        assert_eq!(app.get(&mut browser, path).await.status, StatusCode::OK, "{path}");
    }
    for path in ["/", "/admin/users", "/admin/roles", "/audit", "/admin/users/1"] {
        let response = app.get(&mut Browser::default(), path).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.location.as_deref(), Some("/login"));
    }
    assert_eq!(app.get(&mut Browser::default(), "/api/me").await.status, StatusCode::UNAUTHORIZED);
    // The anonymous session from /login carries a CSRF token, but no rights.
    let response = app.post(&mut browser, "/admin/users", &[("username", "x")]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn forms_without_the_session_token_are_refused() {
    let (_db, app) = sqlite_app().await;
    let (_, password) = app.create_user("admin", &[Role::Admin]).await;
    let mut browser = app.login("admin", &password).await;
    let fields =
        [("username", "sneaky"), ("display_name", "S"), ("language", "nl"), ("password", "a long enough password")];
    let missing = app.post_raw(&mut browser, "/admin/users", &fields).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let mut forged = fields.to_vec();
    forged.push(("csrf", "0000"));
    assert_eq!(app.post_raw(&mut browser, "/admin/users", &forged).await.status, StatusCode::FORBIDDEN);
    // Nothing was written by the refused forms.
    assert!(users::find_for_login(&app.state.db, "sneaky").await.unwrap().is_none());
    // A login form without a token is refused too (login CSRF).
    let mut stranger = Browser::default();
    let response = app.post_raw(&mut stranger, "/login", &[("username", "admin"), ("password", &password)]).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

db_test!(login_logout_and_session_rotation, async |db: Db| {
    let app = TestApp::new(db);
    let (_, password) = app.create_user("agent", &[Role::Agent]).await;
    let mut browser = Browser::default();
    app.get(&mut browser, "/login").await;
    let anonymous_cookie = browser.cookie.clone().expect("the login page sets a session cookie");
    let response = app.post(&mut browser, "/login", &[("username", "agent"), ("password", &password)]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let cookie = response.set_cookie.expect("a new session cookie at login");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert_ne!(browser.cookie.as_deref(), Some(anonymous_cookie.as_str()), "the session id changes at login");
    let home = app.get(&mut browser, "/").await;
    assert!(home.body.contains("Welcome, agent"), "{}", home.body);
    let me = app.get(&mut browser, "/api/me").await;
    assert!(me.body.contains("\"roles\":[\"agent\"]"), "{}", me.body);

    // The planted anonymous session is gone: replaying it gets nothing.
    let mut replay = Browser { cookie: Some(anonymous_cookie), csrf: None };
    assert_eq!(app.get(&mut replay, "/").await.status, StatusCode::SEE_OTHER);

    let logged_in_cookie = browser.cookie.clone();
    let response = app.post(&mut browser, "/logout", &[]).await;
    assert_eq!(response.location.as_deref(), Some("/login"));
    let mut old = Browser { cookie: logged_in_cookie, csrf: None };
    assert_eq!(app.get(&mut old, "/").await.status, StatusCode::SEE_OTHER, "the session ends at logout");
    let actions: Vec<String> =
        audit::list(&app.state.db, &AuditFilter::default(), 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["login.succeeded"]);
});

db_test!(repeated_failures_lock_the_account_until_the_time_passes, async |db: Db| {
    let config = WebConfig { lockout_threshold: 3, lockout_duration: Duration::from_secs(600), ..WebConfig::default() };
    let app = TestApp::with_config(db, config);
    let (id, password) = app.create_user("agent", &[Role::Agent]).await;
    let mut browser = Browser::default();
    app.get(&mut browser, "/login").await;
    for attempt in 1..=3 {
        let response =
            app.post(&mut browser, "/login", &[("username", "agent"), ("password", "wrong password!")]).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // The right password no longer opens the account…
    let response = app.post(&mut browser, "/login", &[("username", "agent"), ("password", &password)]).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    // Visitors without a language get Dutch.
    assert!(response.body.contains("10 minuten geblokkeerd"), "{}", response.body);
    // …until the lock-out has passed.
    app.clock.advance(Duration::from_secs(601));
    let response = app.post(&mut browser, "/login", &[("username", "agent"), ("password", &password)]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(users::get(&app.state.db, id).await.unwrap().unwrap().failed_logins, 0);
    let actions: Vec<String> =
        audit::list(&app.state.db, &AuditFilter::default(), 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["login.succeeded", "login.locked", "login.failed", "login.failed"]);
});

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_answer() {
    let (_db, app) = sqlite_app().await;
    app.create_user("agent", &[Role::Agent]).await;
    let mut browser = Browser::default();
    app.get(&mut browser, "/login").await;
    let unknown = app.post(&mut browser, "/login", &[("username", "ghost"), ("password", "whatever it is")]).await;
    let wrong = app.post(&mut browser, "/login", &[("username", "agent"), ("password", "whatever it is")]).await;
    assert_eq!(unknown.status, wrong.status);
    let message = "Gebruikersnaam of wachtwoord is fout.";
    assert!(unknown.body.contains(message) && wrong.body.contains(message));
}

#[tokio::test]
async fn the_language_choice_sticks_to_the_user() {
    let (_db, app) = sqlite_app().await;
    let (id, password) = app.create_user("agent", &[Role::Agent]).await;
    let mut browser = app.login("agent", &password).await;
    let response = app.post(&mut browser, "/language", &[("language", "fr"), ("back", "/")]).await;
    assert_eq!(response.location.as_deref(), Some("/"));
    assert!(app.get(&mut browser, "/").await.body.contains("Bienvenue, agent"));
    // A new login, in another browser, speaks French too.
    let mut elsewhere = app.login("agent", &password).await;
    let home = app.get(&mut elsewhere, "/").await;
    assert!(home.body.contains("<html lang=\"fr\">") && home.body.contains("Bienvenue"), "{}", home.body);
    assert_eq!(users::get(&app.state.db, id).await.unwrap().unwrap().language.code(), "fr");
    // The switch refuses what it does not know and never redirects off-site.
    let bad = app.post(&mut elsewhere, "/language", &[("language", "de")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let off_site = app.post(&mut elsewhere, "/language", &[("language", "nl"), ("back", "//evil.example")]).await;
    assert_eq!(off_site.location.as_deref(), Some("/"));
}

#[tokio::test]
async fn visitors_get_the_browser_language_and_can_switch_before_login() {
    let (_db, app) = sqlite_app().await;
    let mut browser = Browser::default();
    let page = app.get(&mut browser, "/login").await;
    assert!(page.body.contains("Aanmelden"), "Dutch without Accept-Language");
    app.post(&mut browser, "/language", &[("language", "fr"), ("back", "/login")]).await;
    assert!(app.get(&mut browser, "/login").await.body.contains("Connexion"));
}

db_test!(the_admin_creates_a_user_who_can_then_log_in, async |db: Db| {
    let app = TestApp::new(db);
    let (_, password) = app.create_user("admin", &[Role::Admin]).await;
    let mut admin = app.login("admin", &password).await;
    app.get(&mut admin, "/admin/users/new").await;
    let fields = [
        ("username", "nieuwe.collega"),
        ("display_name", "Nieuwe Collega"),
        ("email", "collega@example.be"),
        ("language", "nl"),
        ("password", "een lang genoeg wachtwoord"),
        ("roles", "agent"),
        ("roles", "expert"),
    ];
    let response = app.post(&mut admin, "/admin/users", &fields).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let created = users::find_for_login(&app.state.db, "nieuwe.collega").await.unwrap().expect("created").user;
    assert_eq!(created.roles, vec![Role::Agent, Role::Expert]);
    let list = app.get(&mut admin, "/admin/users").await;
    assert!(list.body.contains("Nieuwe Collega"));
    let audit =
        audit::list(&app.state.db, &AuditFilter { action_prefix: Some("user.".into()), ..AuditFilter::default() }, 5)
            .await
            .unwrap();
    assert_eq!(audit[0].action, "user.created");
    assert_eq!(audit[0].actor_name, "admin");

    let mut colleague = app.login("nieuwe.collega", "een lang genoeg wachtwoord").await;
    assert!(app.get(&mut colleague, "/").await.body.contains("Welkom, Nieuwe Collega"));
});

#[tokio::test]
async fn a_bad_user_form_names_the_field_and_saves_nothing() {
    let (_db, app) = sqlite_app().await;
    let (_, password) = app.create_user("admin", &[Role::Admin]).await;
    let mut admin = app.login("admin", &password).await;
    type Fields<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Fields, &str, &str); 4] = [
        (
            &[("username", "x y"), ("display_name", "A"), ("language", "nl"), ("password", "long enough password")],
            "username",
            "Use 2 to 64 letters",
        ),
        (
            &[("username", "ok.name"), ("display_name", "A"), ("language", "nl"), ("password", "short")],
            "password",
            "at least 12 characters",
        ),
        (
            &[("username", "admin"), ("display_name", "A"), ("language", "nl"), ("password", "long enough password")],
            "username",
            "taken",
        ),
        (
            &[
                ("username", "ok.name"),
                ("display_name", "A"),
                ("language", "nl"),
                ("password", "long enough password"),
                ("roles", "root"),
            ],
            "roles",
            "Unknown role",
        ),
    ];
    for (fields, field, message) in cases {
        app.get(&mut admin, "/admin/users/new").await;
        let response = app.post(&mut admin, "/admin/users", fields).await;
        assert_eq!(response.status, StatusCode::OK, "{field}");
        assert!(response.body.contains(&format!("id=\"{field}-error\"")), "{field} not named: {}", response.body);
        assert!(response.body.contains(message), "{message}");
    }
    assert_eq!(users::list(&app.state.db).await.unwrap().len(), 1, "nothing saved");
}

#[tokio::test]
async fn a_disabled_user_is_logged_out_and_cannot_log_in() {
    let (_db, app) = sqlite_app().await;
    let (_, admin_password) = app.create_user("admin", &[Role::Admin]).await;
    let (agent_id, agent_password) = app.create_user("agent", &[Role::Agent]).await;
    let mut agent = app.login("agent", &agent_password).await;
    let mut admin = app.login("admin", &admin_password).await;
    app.get(&mut admin, &format!("/admin/users/{}", agent_id.0)).await;
    let response = app.post(&mut admin, &format!("/admin/users/{}/disable", agent_id.0), &[]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get(&mut agent, "/").await.status, StatusCode::SEE_OTHER, "the agent's session ended");
    let mut again = Browser::default();
    app.get(&mut again, "/login").await;
    let response = app.post(&mut again, "/login", &[("username", "agent"), ("password", &agent_password)]).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    // An admin cannot lock themselves out.
    let (admin_id, _) = (users::find_for_login(&app.state.db, "admin").await.unwrap().unwrap().user.id, ());
    let response = app.post(&mut admin, &format!("/admin/users/{}/roles", admin_id.0), &[("roles", "agent")]).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_dpo_filters_the_audit_log() {
    let (_db, app) = sqlite_app().await;
    let (_, password) = app.create_user("dpo", &[Role::Dpo]).await;
    app.create_user("agent", &[Role::Agent]).await;
    let mut stranger = Browser::default();
    app.get(&mut stranger, "/login").await;
    app.post(&mut stranger, "/login", &[("username", "agent"), ("password", "not the password")]).await;
    let mut dpo = app.login("dpo", &password).await;
    let page = app.get(&mut dpo, "/audit?action=login.failed").await;
    assert!(page.body.contains("login.failed") && !page.body.contains("login.succeeded"), "{}", page.body);
    let bad = app.get(&mut dpo, "/audit?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let (_db, app) = sqlite_app().await;
    let mut browser = Browser::default();
    assert_eq!(app.get(&mut browser, "/healthz").await.body, "ok\n");
    assert_eq!(app.get(&mut browser, "/readyz").await.body, "ready\n");
    app.get(&mut browser, "/login").await;
    let metrics = app.get(&mut browser, "/metrics").await.body;
    assert!(
        metrics.contains("loket_http_requests_total{method=\"GET\",route=\"/login\",status=\"200\"} 1"),
        "{metrics}"
    );
    // The telephony figures are there before the first call, at zero.
    for line in [
        "loket_sip_calls_refused_total 0",
        "loket_media_prompt_ticks_total 0",
        "loket_media_late_prompt_ticks_total 0",
        "loket_overload 0",
        "loket_overload_ceiling 0",
        "loket_sip_legs 0",
    ] {
        assert!(metrics.lines().any(|metric| metric == line), "{line} in {metrics}");
    }
    app.state.db.close().await;
    let response = app.get(&mut browser, "/readyz").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.body.contains("database (sqlite)"), "{}", response.body);
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let (_db, app) = sqlite_app().await;
    let request = axum::http::Request::get("/login").body(axum::body::Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(loket_crm::web::router(app.state.clone()), request).await.unwrap();
    let csp = response.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(response.headers().get("x-content-type-options").unwrap(), "nosniff");
}
