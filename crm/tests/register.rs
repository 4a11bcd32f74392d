//! Contacts created from the national register: the demo's local file and the HTTP gateway client
//! against a local server that speaks the gateway's documented format. Every test runs on SQLite
//! and on PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use loket_be::NationalRegisterNumber;
use loket_crm::db::Db;
use loket_crm::db_test;
use loket_crm::i18n::Language;
use loket_crm::records::audit::{self, Actor, AuditFilter};
use loket_crm::records::contacts;
use loket_crm::register::{HttpRegister, Identified, LocalRegister, RegisterError, identify};
use loket_crm::testing::TEST_START;

const PURPOSE: &str = "identification of a caller (IVR)";

fn number(digits: &str) -> NationalRegisterNumber {
    NationalRegisterNumber::parse(digits, 2026).unwrap()
}

async fn audit_rows(db: &Db, prefix: &str) -> Vec<audit::AuditRecord> {
    let filter = AuditFilter { action_prefix: Some(prefix.to_owned()), ..AuditFilter::default() };
    audit::list(db, &filter, 100).await.unwrap()
}

async fn contact_count(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM contacts").fetch_one(db.pool()).await.unwrap()
}

db_test!(a_number_the_crm_does_not_know_creates_the_contact_from_the_register, async |db: Db| {
    let register = LocalRegister::demo();
    let found = identify(&db, &register, Actor::System, PURPOSE, &number("85073003328"), TEST_START).await.unwrap();
    let Identified::Created(id) = found else { panic!("{found:?}") };
    let contact = contacts::read(&db, Actor::System, "test", id, TEST_START).await.unwrap().unwrap();
    assert_eq!((contact.first_name.as_str(), contact.last_name.as_str()), ("Lotte", "Vermeulen"));
    assert_eq!(contact.language, Language::Nl);
    assert_eq!(contact.address.city, "Brussel");
    assert_eq!(contact.national_number.map(|n| n.digits()), Some("85073003328".to_owned()));
    // The second time the CRM knows the number: no new contact, no register lookup.
    let again = identify(&db, &register, Actor::System, PURPOSE, &number("85073003328"), TEST_START).await.unwrap();
    assert_eq!(again, Identified::Known(id));
    let lookups = audit_rows(&db, "register.lookup").await;
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].purpose.as_deref(), Some(PURPOSE));
    assert_eq!(lookups[0].subject_id, Some(id.0.to_string()));
    let searches = audit_rows(&db, "contact.searched_by_national_number").await;
    assert_eq!(searches.len(), 2);
    let everything = audit::list(&db, &AuditFilter::default(), 100).await.unwrap();
    assert!(
        everything.iter().all(|row| !format!("{row:?}").contains("85073003328")),
        "the number never enters the audit log"
    );
});

db_test!(a_number_nobody_knows_is_unknown_and_creates_nothing, async |db: Db| {
    let found = identify(&db, &LocalRegister::demo(), Actor::System, PURPOSE, &number("78021412342"), TEST_START)
        .await
        .unwrap();
    assert_eq!(found, Identified::Unknown);
    assert_eq!(contact_count(&db).await, 0);
    assert_eq!(audit_rows(&db, "register.lookup").await[0].detail.as_deref(), Some("not found"));
});

/// What the fake gateway saw and how it answers.
#[derive(Default)]
struct Gateway {
    seen: Mutex<Vec<(String, String, Option<String>)>>,
}

async fn start_gateway(answer: fn(&str) -> Response) -> (String, Arc<Gateway>) {
    let gateway = Arc::new(Gateway::default());
    let state = Arc::clone(&gateway);
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
        let state = Arc::clone(&state);
        async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
            state.seen.lock().unwrap().push((uri.path().to_owned(), body.clone(), auth));
            answer(&body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/gateway/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, gateway)
}

fn documented_answer(body: &str) -> Response {
    let request: serde_json::Value = serde_json::from_str(body).unwrap();
    if request["ssin"] == "90021214739" {
        Json(serde_json::json!({
            "givenName": "Mehdi", "familyName": "Benali", "language": "fr",
            "address": {"street": "Rue Haute 45", "postalCode": "1000", "municipality": "Bruxelles"}
        }))
        .into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

db_test!(the_http_gateway_is_asked_with_the_number_in_the_body, async |db: Db| {
    let (base, gateway) = start_gateway(documented_answer).await;
    let register = HttpRegister::new(&base, Some("secret-token".to_owned()), Duration::from_secs(5)).unwrap();
    let found = identify(&db, &register, Actor::System, PURPOSE, &number("90021214739"), TEST_START).await.unwrap();
    let Identified::Created(id) = found else { panic!("{found:?}") };
    let contact = contacts::read(&db, Actor::System, "test", id, TEST_START).await.unwrap().unwrap();
    assert_eq!((contact.first_name.as_str(), contact.language), ("Mehdi", Language::Fr));
    assert_eq!(contact.address.postcode, "1000");
    let unknown = identify(&db, &register, Actor::System, PURPOSE, &number("67041528917"), TEST_START).await.unwrap();
    assert_eq!(unknown, Identified::Unknown);
    let seen = gateway.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (path, body, auth) in &seen {
        assert_eq!(path, "/gateway/persons/lookup", "the number is never in the URL");
        assert!(body.contains("\"ssin\""));
        assert_eq!(auth.as_deref(), Some("Bearer secret-token"));
    }
});

db_test!(gateway_failures_are_errors_that_leave_no_contact, async |db: Db| {
    fn refused(_: &str) -> Response {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
    fn garbled(_: &str) -> Response {
        (StatusCode::OK, "{\"givenName\": 42").into_response()
    }
    let (base, _) = start_gateway(refused).await;
    let register = HttpRegister::new(&base, None, Duration::from_secs(5)).unwrap();
    let error = identify(&db, &register, Actor::System, PURPOSE, &number("90021214739"), TEST_START).await.unwrap_err();
    assert!(matches!(error, loket_crm::register::IdentifyError::Register(RegisterError::Refused(503))), "{error}");
    let (base, _) = start_gateway(garbled).await;
    let register = HttpRegister::new(&base, None, Duration::from_secs(5)).unwrap();
    let error = identify(&db, &register, Actor::System, PURPOSE, &number("90021214739"), TEST_START).await.unwrap_err();
    assert!(matches!(error, loket_crm::register::IdentifyError::Register(RegisterError::BadAnswer(_))), "{error}");
    // Nothing listens on this port once the listener is dropped.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let register = HttpRegister::new(&format!("http://{closed}"), None, Duration::from_secs(5)).unwrap();
    let error = identify(&db, &register, Actor::System, PURPOSE, &number("90021214739"), TEST_START).await.unwrap_err();
    assert!(matches!(error, loket_crm::register::IdentifyError::Register(RegisterError::Unreachable(_))), "{error}");
    assert!(!error.to_string().contains("90021214739"));
    assert_eq!(contact_count(&db).await, 0, "no half-written contact");
    let lookups = audit_rows(&db, "register.lookup").await;
    assert_eq!(lookups.len(), 3, "failed lookups are audited too");
    assert!(lookups.iter().all(|row| row.detail.as_deref().is_some_and(|d| d.starts_with("failed"))));
});

#[test]
fn a_bad_register_file_names_the_person_and_the_problem() {
    let bad_number = "[[person]]\nnumber = \"85073003329\"\nfirst_name = \"A\"\nlast_name = \"B\"\n";
    let error = LocalRegister::parse("register.toml", bad_number, 2026).err().unwrap();
    assert!(error.starts_with("register.toml: person 1: the number is not valid"), "{error}");
    let bad_language =
        "[[person]]\nnumber = \"85073003328\"\nfirst_name = \"A\"\nlast_name = \"B\"\nlanguage = \"de\"\n";
    let error = LocalRegister::parse("register.toml", bad_language, 2026).err().unwrap();
    assert_eq!(error, "register.toml: person 1: unknown language \"de\"");
}

db_test!(caller_id_finds_the_contacts_with_that_number_and_is_audited, async |db: Db| {
    use loket_be::PhoneNumber;
    let register = LocalRegister::demo();
    let Identified::Created(id) =
        identify(&db, &register, Actor::System, PURPOSE, &number("85073003328"), TEST_START).await.unwrap()
    else {
        panic!("the demo register knows this number")
    };
    let mut conn = db.pool().acquire().await.unwrap();
    sqlx::query("INSERT INTO contact_phones (contact_id, e164) VALUES ($1, '+32475123456')")
        .bind(id.0)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let written = PhoneNumber::parse("0475 12 34 56").unwrap();
    let found = contacts::by_phone(&db, Actor::System, PURPOSE, &written, 2, TEST_START).await.unwrap();
    assert_eq!(found, vec![(id, Language::Nl)]);
    let nobody = PhoneNumber::parse("+3225550199").unwrap();
    assert!(contacts::by_phone(&db, Actor::System, PURPOSE, &nobody, 2, TEST_START).await.unwrap().is_empty());
    let matches = audit_rows(&db, "contact.matched_by_phone").await;
    assert_eq!(matches.len(), 2);
    assert!(matches.iter().any(|row| row.subject_id == Some(id.0.to_string())));
    assert!(matches.iter().all(|row| !format!("{row:?}").contains("475")), "the number never enters the audit log");
});
