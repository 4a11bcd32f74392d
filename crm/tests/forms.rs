//! The public web forms through the real router: a submission becomes contact, case, timeline,
//! documents and acknowledgement; bad input is named and stores nothing; the honeypot, the rate
//! limit and the attachment limits hold; the national register number never comes back.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use loket_crm::db::Db;
use loket_crm::db_test;
use loket_crm::testing::{TEST_START, TestApp, multipart};
use loket_crm::web::WebConfig;
use tower::ServiceExt;

/// A citizen's browser at one address: its own router (so its own rate limiter) over the app's
/// state, the session cookie and the form's CSRF token.
struct Citizen {
    router: Router,
    cookie: Option<String>,
    csrf: Option<String>,
    ip: &'static str,
}

struct Answer {
    status: StatusCode,
    body: String,
}

impl Citizen {
    fn new(app: &TestApp, ip: &'static str) -> Citizen {
        Citizen { router: loket_crm::web::router(app.state.clone()), cookie: None, csrf: None, ip }
    }

    async fn get(&mut self, path: &str, accept_language: &str) -> Answer {
        let request = Request::get(path).header(header::ACCEPT_LANGUAGE, accept_language);
        self.send(request, Body::empty()).await
    }

    /// Posts the form as a browser does (multipart), with the page's CSRF token first.
    async fn submit(&mut self, path: &str, fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Answer {
        let csrf = self.csrf.clone().unwrap_or_default();
        let fields: Vec<(&str, &str)> =
            std::iter::once(("csrf", csrf.as_str())).chain(fields.iter().copied()).collect();
        let (content_type, body) = multipart(&fields, "attachments", files);
        self.send(Request::post(path).header(header::CONTENT_TYPE, content_type), Body::from(body)).await
    }

    async fn send(&mut self, mut request: axum::http::request::Builder, body: Body) -> Answer {
        request = request.header("x-forwarded-for", self.ip);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = self.router.clone().oneshot(request.body(body).expect("request")).await.expect("infallible");
        let status = response.status();
        if let Some(cookie) = response.headers().get(header::SET_COOKIE).and_then(|value| value.to_str().ok()) {
            self.cookie = cookie.split(';').next().map(str::to_owned);
        }
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        let marker = "name=\"csrf\" value=\"";
        if let Some(start) = body.find(marker).map(|at| at + marker.len()) {
            self.csrf = body[start..].split('"').next().map(str::to_owned);
        }
        Answer { status, body }
    }
}

async fn seeded(db: Db, config: WebConfig) -> TestApp {
    let app = TestApp::with_config(db, config);
    loket_crm::demo::seed(&app.state.db, TEST_START, 2026).await.expect("demo");
    app
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(db.pool()).await.expect(sql)
}

/// Everything a submission could have written.
async fn footprint(db: &Db) -> [i64; 6] {
    [
        count(db, "SELECT COUNT(*) FROM contacts").await,
        count(db, "SELECT COUNT(*) FROM cases").await,
        count(db, "SELECT COUNT(*) FROM timeline").await,
        count(db, "SELECT COUNT(*) FROM outbox").await,
        count(db, "SELECT COUNT(*) FROM documents").await,
        count(db, "SELECT COUNT(*) FROM work_requests").await,
    ]
}

const NEW_NUMBER: &str = "93.05.18-223.61";

fn passport_form<'a>(email: &'a str, national_number: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("lang", "fr"),
        ("website", ""),
        ("first_name", "Chloé"),
        ("last_name", "Dubois"),
        ("email", email),
        ("phone", "0470 12 34 99"),
        ("national_number", national_number),
        ("field.travel_date", "2027-03-01"),
        ("field.urgent", "true"),
        ("message", "Je pars en voyage en mars."),
    ]
}

db_test!(a_valid_submission_becomes_contact_case_timeline_documents_and_acknowledgement, async |db: Db| {
    let app = seeded(db, WebConfig::default()).await;
    let mut citizen = Citizen::new(&app, "192.0.2.10");
    let page = citizen.get("/forms/passport?lang=fr", "nl").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Passeport") && page.body.contains("Date de départ"), "French page: {}", page.body);
    assert!(citizen.csrf.is_some(), "the form carries a CSRF token");

    let done = citizen
        .submit(
            "/forms/passport",
            &passport_form("Chloe.Dubois@example.be", NEW_NUMBER),
            &[("billet.pdf", b"%PDF-1.4")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let (case_id, number, contact_id, fields): (i64, String, i64, String) = sqlx::query_as(
        "SELECT id, number, contact_id, custom_fields FROM cases WHERE channel = 'web_form' AND request_type = 'passport'",
    )
    .fetch_one(app.state.db.pool())
    .await
    .expect("one web form case");
    assert!(done.body.contains(&number), "the confirmation shows the case number: {}", done.body);
    assert!(done.body.contains("Merci"), "in the citizen's language");
    // The case asks the router for work in the French first-line queue of its service.
    let request: (String, String, String, String) =
        sqlx::query_as("SELECT channel, queue_code, skills, language FROM work_requests WHERE case_id = $1")
            .bind(case_id)
            .fetch_one(app.state.db.pool())
            .await
            .expect("the case's work request");
    assert_eq!(request, ("web_form".into(), "population-fr-l1".into(), "population".into(), "fr".into()));
    let fields: serde_json::Value = serde_json::from_str(&fields).expect("json");
    assert_eq!(fields["travel_date"], "2027-03-01");
    assert_eq!(fields["urgent"], true);

    let (language, digits): (String, Option<String>) =
        sqlx::query_as("SELECT language, national_number FROM contacts WHERE id = $1")
            .bind(contact_id)
            .fetch_one(app.state.db.pool())
            .await
            .expect("the new contact");
    assert_eq!((language.as_str(), digits.as_deref()), ("fr", Some("93051822361")));
    let email: String = sqlx::query_scalar("SELECT email FROM contact_emails WHERE contact_id = $1")
        .bind(contact_id)
        .fetch_one(app.state.db.pool())
        .await
        .expect("the contact's e-mail");
    assert_eq!(email, "chloe.dubois@example.be");
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM timeline WHERE case_id = $1 ORDER BY id")
        .bind(case_id)
        .fetch_all(app.state.db.pool())
        .await
        .expect("timeline");
    for kind in ["web_form", "document", "email_out"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let (to, subject, body): (String, String, String) =
        sqlx::query_as("SELECT to_address, subject, body FROM outbox WHERE case_id = $1")
            .bind(case_id)
            .fetch_one(app.state.db.pool())
            .await
            .expect("the acknowledgement");
    assert_eq!(to, "chloe.dubois@example.be");
    assert!(subject.starts_with(&format!("Votre dossier {number}")), "{subject}");
    assert!(body.contains(&number) && body.contains("Dubois"), "{body}");
    assert_eq!(count(&app.state.db, "SELECT COUNT(*) FROM documents").await, 1);

    // The same citizen again, by e-mail now without a number: the same contact, a second case.
    citizen.get("/forms/passport", "fr").await;
    let again = citizen.submit("/forms/passport", &passport_form("chloe.dubois@example.be", ""), &[]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let cases_of_chloe = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cases WHERE contact_id = $1")
        .bind(contact_id)
        .fetch_one(app.state.db.pool())
        .await
        .expect("count");
    assert_eq!(cases_of_chloe, 2, "matched by e-mail");
    // A demo citizen's national number finds her record, whatever address the form gives.
    citizen.get("/forms/passport", "nl").await;
    let emma = citizen.submit("/forms/passport", &passport_form("someone@example.org", "78021412342"), &[]).await;
    assert_eq!(emma.status, StatusCode::OK, "{}", emma.body);
    let matched: i64 = count(
        &app.state.db,
        "SELECT COUNT(*) FROM cases c JOIN contacts p ON p.id = c.contact_id
         WHERE c.channel = 'web_form' AND p.national_number = '78021412342'",
    )
    .await;
    assert_eq!(matched, 1);
    assert!(!emma.body.contains("Emma"), "nothing of the matched record is shown");
});

db_test!(every_bad_field_is_named_in_the_citizens_language_and_nothing_is_saved, async |db: Db| {
    let app = seeded(db, WebConfig::default()).await;
    let mut citizen = Citizen::new(&app, "192.0.2.20");
    citizen.get("/forms/passport?lang=fr", "nl").await;
    let before = footprint(&app.state.db).await;
    let fields = [
        ("lang", "fr"),
        ("first_name", "Chloé"),
        ("last_name", " "),
        ("email", "not-an-address"),
        ("phone", "call me"),
        ("national_number", "93.05.18-223.62"),
        ("field.travel_date", "2027-02-30"),
        ("field.colour", "red"),
        ("message", ""),
    ];
    let refused = citizen.submit("/forms/passport", &fields, &[("virus.exe", b"MZ")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    for (id, text) in [
        ("last_name", "Nom"),
        ("email", "adresse e-mail"),
        ("phone", "Téléphone"),
        ("national_number", "numéro de registre national"),
        ("field-travel_date", "Date de départ"),
        ("field-colour", "colour"),
        ("message", "Votre question"),
        ("attachments", "virus.exe"),
    ] {
        assert!(refused.body.contains(&format!("href=\"#{id}\"")), "{id} is in the error summary: {}", refused.body);
        assert!(refused.body.to_lowercase().contains(&text.to_lowercase()), "{text} is named: {}", refused.body);
    }
    assert!(refused.body.contains("aria-describedby=\"email-error\""), "errors are tied to their inputs");
    assert!(refused.body.contains("value=\"Chloé\""), "good values are kept");
    assert!(!refused.body.contains("93.05.18") && !refused.body.contains("9305182236"), "the number is not echoed");
    assert_eq!(footprint(&app.state.db).await, before, "nothing saved");
});

db_test!(an_oversized_attachment_is_refused_with_the_reason, async |db: Db| {
    let config = WebConfig { max_upload_bytes: 1024 * 1024, ..WebConfig::default() };
    let app = seeded(db, config).await;
    let mut citizen = Citizen::new(&app, "192.0.2.30");
    citizen.get("/forms/passport?lang=fr", "nl").await;
    let before = footprint(&app.state.db).await;
    let big = vec![b'a'; 1024 * 1024 + 1];
    let refused =
        citizen.submit("/forms/passport", &passport_form("big@example.be", NEW_NUMBER), &[("scan.pdf", &big)]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert!(refused.body.contains("scan.pdf: Ce fichier dépasse 1 Mo."), "{}", refused.body);
    assert!(!refused.body.contains("93.05.18"), "the number is not echoed");
    assert_eq!(footprint(&app.state.db).await, before, "nothing saved");
});

db_test!(a_filled_honeypot_looks_accepted_and_stores_nothing, async |db: Db| {
    let app = seeded(db, WebConfig::default()).await;
    let mut citizen = Citizen::new(&app, "192.0.2.40");
    citizen.get("/forms/passport?lang=nl", "nl").await;
    let before = footprint(&app.state.db).await;
    let mut fields = passport_form("bot@example.be", NEW_NUMBER);
    fields.retain(|(name, _)| *name != "website" && *name != "lang");
    fields.push(("website", "https://spam.example"));
    let answer = citizen.submit("/forms/passport", &fields, &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("Bedankt"), "{}", answer.body);
    assert_eq!(footprint(&app.state.db).await, before, "nothing saved");
});

db_test!(submissions_are_limited_per_address_and_the_limit_passes, async |db: Db| {
    let app = seeded(db, WebConfig::default()).await;
    let mut citizen = Citizen::new(&app, "192.0.2.50");
    for n in 0..5 {
        citizen.get("/forms/passport?lang=en", "nl").await;
        let answer = citizen.submit("/forms/passport", &passport_form("family@example.be", ""), &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "submission {n}: {}", answer.body);
    }
    let before = footprint(&app.state.db).await;
    citizen.get("/forms/passport?lang=en", "nl").await;
    let limited = citizen.submit("/forms/passport", &passport_form("family@example.be", ""), &[]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.body);
    assert!(limited.body.contains("10 minutes"), "{}", limited.body);
    assert_eq!(footprint(&app.state.db).await, before, "nothing saved");

    // Another address behind the same router has its own budget.
    citizen.ip = "192.0.2.51";
    let other = citizen.submit("/forms/passport", &passport_form("neighbour@example.be", ""), &[]).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);

    citizen.ip = "192.0.2.50";
    app.clock.advance(Duration::from_secs(10 * 60));
    let later = citizen.submit("/forms/passport", &passport_form("family@example.be", ""), &[]).await;
    assert_eq!(later.status, StatusCode::OK, "after the window: {}", later.body);
});

db_test!(forms_need_their_token_and_only_public_types_have_one, async |db: Db| {
    let app = seeded(db, WebConfig::default()).await;
    let mut citizen = Citizen::new(&app, "192.0.2.60");
    let index = citizen.get("/forms", "fr-BE,fr;q=0.9").await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.body.contains("Demandes en ligne") && index.body.contains("/forms/passport"), "{}", index.body);
    assert!(!index.body.contains("/forms/business_taxes"), "a type not offered publicly is not listed");
    assert_eq!(citizen.get("/forms/business_taxes", "nl").await.status, StatusCode::NOT_FOUND);
    assert_eq!(citizen.get("/forms/no_such_type", "nl").await.status, StatusCode::NOT_FOUND);

    let before = footprint(&app.state.db).await;
    let forged = citizen.submit("/forms/passport", &passport_form("x@example.be", ""), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no session, no token");
    citizen.get("/forms/passport", "nl").await;
    citizen.csrf = Some("forged".into());
    let forged = citizen.submit("/forms/passport", &passport_form("x@example.be", ""), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(footprint(&app.state.db).await, before, "nothing saved");

    // Fields only some roles see are not on the public form.
    let marriage = citizen.get("/forms/marriage", "nl").await;
    assert!(marriage.body.contains("field.ceremony_date") && !marriage.body.contains("internal_remark"));
});
