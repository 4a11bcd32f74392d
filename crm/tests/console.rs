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

#[tokio::test]
async fn every_route_admits_exactly_its_roles() {
    let (_db, app) = sqlite_app().await;
    let (target, _) = app.create_user("target.user", &[Role::Agent]).await;
    let target_path = |action: &str| format!("/admin/users/{}{action}", target.0);
    let admin_only = Allowed::Only(&[Role::Admin]);
    let routes: Vec<(&str, String, Allowed)> = vec![
        ("GET", "/".into(), Allowed::EveryRole),
        ("GET", "/api/me".into(), Allowed::EveryRole),
        ("GET", "/admin/users".into(), admin_only),
        ("GET", "/admin/users/new".into(), admin_only),
        ("GET", target_path(""), admin_only),
        ("GET", "/admin/roles".into(), admin_only),
        ("GET", "/audit".into(), Allowed::Only(&[Role::Dpo])),
        ("POST", "/admin/users".into(), admin_only),
        ("POST", target_path("/roles"), admin_only),
        ("POST", target_path("/unlock"), admin_only),
        ("POST", target_path("/disable"), admin_only),
        ("POST", target_path("/enable"), admin_only),
        ("POST", "/language".into(), Allowed::EveryRole),
        ("POST", "/logout".into(), Allowed::EveryRole),
    ];
    for role in Role::ALL {
        let (_, password) = app.create_user(&format!("walker.{role}"), &[role]).await;
        let mut browser = app.login(&format!("walker.{role}"), &password).await;
        for (method, path, allowed) in &routes {
            let may = match allowed {
                Allowed::EveryRole => true,
                Allowed::Only(roles) => roles.contains(&role),
            };
            let response = match *method {
                "GET" => app.get(&mut browser, path).await,
                _ => {
                    let new_username = format!("made.by.{role}");
                    let fields: Vec<(&str, &str)> = vec![
                        ("username", &new_username),
                        ("display_name", "Made"),
                        ("language", "nl"),
                        ("password", "a long enough password"),
                        ("roles", "agent"),
                        ("back", "/"),
                    ];
                    app.post(&mut browser, path, &fields).await
                }
            };
            let expected = match (may, *method) {
                (false, _) => StatusCode::FORBIDDEN,
                (true, "GET") => StatusCode::OK,
                (true, _) => StatusCode::SEE_OTHER,
            };
            assert_eq!(response.status, expected, "{role} {method} {path}: {}", response.body);
            // Every page rendered for a GET carries a fresh token; keep using it.
            if *method == "GET" && may {
                let _ = app.get(&mut browser, "/").await;
            }
        }
    }
}

#[tokio::test]
async fn anonymous_visitors_reach_only_the_public_routes() {
    let (_db, app) = sqlite_app().await;
    let mut browser = Browser::default();
    for path in ["/login", "/healthz", "/readyz", "/metrics", "/static/console.css"] {
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
