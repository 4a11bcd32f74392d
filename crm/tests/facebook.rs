//! The Facebook Page channel through the real router: Meta's handshake, signed deliveries that
//! open one case per new comment (with its timeline entry and work request) however often they
//! come, refused deliveries that store nothing, and the agent's reply posted to a Graph API server
//! of the test's own that speaks the documented format.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use http_body_util::BodyExt;
use loket_crm::auth::Role;
use loket_crm::db::Db;
use loket_crm::db_test;
use loket_crm::facebook::{FacebookConfig, sign};
use loket_crm::testing::{Browser, TEST_START, TestApp};
use loket_crm::web::WebConfig;
use serde_json::json;
use tower::ServiceExt;

const PAGE: &str = "1000000000001";
const SECRET: &str = "the-app-secret";
const VERIFY: &str = "the-verify-token";
const TOKEN: &str = "EAA-page-access-token";
const VERSION: &str = "v21.0";
/// Comments the Graph server refuses replies to.
const REFUSED: &str = "77_666";
const REFUSAL: &str = "(#10) This comment can no longer be replied to";

/// A reply the Graph server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Posted {
    comment_id: String,
    message: String,
}

type Posts = Arc<Mutex<Vec<Posted>>>;

/// The Graph API's `POST /{version}/{comment-id}/comments` as documented: form fields `message`
/// and `access_token`, `{"id": …}` for a reply, `{"error": {message, type, code}}` otherwise.
async fn graph_reply(
    State(posts): State<Posts>,
    Path((version, comment_id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let error = |status: StatusCode, message: &str, kind: &str, code: i64| {
        (status, Json(json!({ "error": { "message": message, "type": kind, "code": code, "fbtrace_id": "A1" } })))
            .into_response()
    };
    if version != VERSION {
        return error(StatusCode::BAD_REQUEST, "Unknown path components", "OAuthException", 2500);
    }
    if form.get("access_token").map(String::as_str) != Some(TOKEN) {
        return error(StatusCode::BAD_REQUEST, "Invalid OAuth access token", "OAuthException", 190);
    }
    let Some(message) = form.get("message").filter(|message| !message.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "(#100) Missing message", "OAuthException", 100);
    };
    if comment_id == REFUSED {
        return error(StatusCode::BAD_REQUEST, REFUSAL, "OAuthException", 10);
    }
    let mut posts = posts.lock().unwrap();
    posts.push(Posted { comment_id: comment_id.clone(), message: message.clone() });
    Json(json!({ "id": format!("{comment_id}_{}", 9000 + posts.len()) })).into_response()
}

/// Starts the Graph server; its base URL and what it was sent.
async fn graph_server() -> (String, Posts) {
    let posts = Posts::default();
    let app = axum::Router::new()
        .route("/{version}/{comment_id}/comments", axum::routing::post(graph_reply))
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port for the Graph server");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), posts)
}

/// The demo municipality with the page configured, and the Graph server its replies go to.
async fn app_with_page(db: Db) -> (TestApp, Posts) {
    let (graph_base_url, posts) = graph_server().await;
    let facebook = FacebookConfig { graph_base_url, ..FacebookConfig::new(PAGE, SECRET, VERIFY, TOKEN) };
    let app = TestApp::with_config(db, WebConfig { facebook: Some(facebook), ..WebConfig::default() });
    loket_crm::demo::seed(&app.state.db, TEST_START, 2026).await.expect("demo");
    (app, posts)
}

fn comment(comment_id: &str, from_id: &str, name: &str, message: &str) -> serde_json::Value {
    json!({
        "field": "feed",
        "value": {
            "item": "comment", "verb": "add",
            "comment_id": comment_id, "post_id": format!("{PAGE}_77"), "parent_id": format!("{PAGE}_77"),
            "from": { "id": from_id, "name": name },
            "message": message, "created_time": 1_795_000_000,
            "post": { "id": format!("{PAGE}_77"), "status_type": "added_photos", "is_published": true }
        }
    })
}

fn payload(changes: Vec<serde_json::Value>) -> Vec<u8> {
    let payload = json!({ "object": "page", "entry": [{ "id": PAGE, "time": 1_795_000_001, "changes": changes }] });
    serde_json::to_vec(&payload).expect("json")
}

/// A question in Dutch and the page's own answer under it, in one delivery.
fn question_and_echo() -> Vec<u8> {
    payload(vec![
        comment("77_1001", "5550001", "Jan Peeters", "Wanneer is het gemeentehuis open op zaterdag?"),
        comment("77_1002", PAGE, "Gemeente", "Op zaterdag van 9 tot 12 uur."),
    ])
}

/// Posts a delivery as Meta does: JSON, anonymous, signed when `signature` is given.
async fn deliver(app: &TestApp, body: &[u8], signature: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::post("/webhooks/facebook").header(header::CONTENT_TYPE, "application/json");
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    let request = request.body(Body::from(body.to_vec())).expect("request");
    let response = loket_crm::web::router(app.state.clone()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn deliver_signed(app: &TestApp, body: &[u8]) -> StatusCode {
    let (status, text) = deliver(app, body, Some(&sign(SECRET, body))).await;
    assert!(status != StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    status
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(db.pool()).await.expect(sql)
}

/// Everything a delivery or a reply could have written.
async fn footprint(db: &Db) -> [i64; 5] {
    [
        count(db, "SELECT COUNT(*) FROM cases").await,
        count(db, "SELECT COUNT(*) FROM timeline").await,
        count(db, "SELECT COUNT(*) FROM facebook_comments").await,
        count(db, "SELECT COUNT(*) FROM work_requests").await,
        count(db, "SELECT COUNT(*) FROM audit_log").await,
    ]
}

async fn facebook_case(db: &Db, comment_id: &str) -> i64 {
    sqlx::query_scalar("SELECT case_id FROM facebook_comments WHERE comment_id = $1")
        .bind(comment_id)
        .fetch_one(db.pool())
        .await
        .expect("the comment's case")
}

async fn work_request(db: &Db, case_id: i64) -> (String, String, String, String) {
    sqlx::query_as("SELECT channel, queue_code, skills, language FROM work_requests WHERE case_id = $1")
        .bind(case_id)
        .fetch_one(db.pool())
        .await
        .expect("the case's work request")
}

db_test!(the_handshake_echoes_the_challenge_for_our_token_only, async |db: Db| {
    let (app, _) = app_with_page(db.clone()).await;
    let mut meta = Browser::default();
    let path = |mode: &str, token: &str| {
        format!("/webhooks/facebook?hub.mode={mode}&hub.challenge=1158201444&hub.verify_token={token}")
    };
    let answer = app.get(&mut meta, &path("subscribe", VERIFY)).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "1158201444"));
    assert!(meta.cookie.is_none(), "the handshake opens no session");
    for (mode, token) in [("subscribe", "wrong-token"), ("subscribe", ""), ("unsubscribe", VERIFY)] {
        assert_eq!(app.get(&mut meta, &path(mode, token)).await.status, StatusCode::FORBIDDEN, "{mode} {token}");
    }
    assert_eq!(app.get(&mut meta, "/webhooks/facebook").await.status, StatusCode::FORBIDDEN);

    // Without a page configured there is no webhook.
    let bare = TestApp::new(db);
    assert_eq!(bare.get(&mut Browser::default(), &path("subscribe", VERIFY)).await.status, StatusCode::NOT_FOUND);
    let body = question_and_echo();
    assert_eq!(deliver(&bare, &body, Some(&sign(SECRET, &body))).await.0, StatusCode::NOT_FOUND);
});

db_test!(a_signed_delivery_opens_one_case_per_new_comment_and_a_retry_none, async |db: Db| {
    let (app, _) = app_with_page(db).await;
    let work = app.state.work_requests();
    let before = footprint(&app.state.db).await;
    let body = question_and_echo();
    assert_eq!(deliver_signed(&app, &body).await, StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(5), work.notified()).await.expect("the router is told at once");
    let [cases, timeline, comments, requests, _] = footprint(&app.state.db).await;
    assert_eq!(
        [cases, timeline, comments, requests],
        [before[0] + 1, before[1] + 2, before[2] + 1, before[3] + 1],
        "one case (its creation and the comment on its timeline), not one for the page's own answer"
    );

    let case_id = facebook_case(&app.state.db, "77_1001").await;
    let (channel, service, case_type, subject, queue): (String, String, String, String, Option<String>) =
        sqlx::query_as("SELECT channel, service_code, request_type, subject, queue_code FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(app.state.db.pool())
            .await
            .expect("the case");
    assert_eq!((channel.as_str(), service.as_str()), ("facebook", "population"));
    assert_eq!(case_type, "identity_card", "the first public case type of the service");
    assert_eq!(subject, "Jan Peeters: Wanneer is het gemeentehuis open op zaterdag?");
    assert_eq!(queue.as_deref(), Some("population-nl-l1"));
    let (kind, actor, visibility, text): (String, String, String, Option<String>) = sqlx::query_as(
        "SELECT kind, actor_name, visibility, body FROM timeline WHERE case_id = $1 AND kind = 'facebook_in'",
    )
    .bind(case_id)
    .fetch_one(app.state.db.pool())
    .await
    .expect("the comment on the timeline");
    assert_eq!((kind.as_str(), actor.as_str(), visibility.as_str()), ("facebook_in", "Jan Peeters", "public"));
    assert_eq!(text.as_deref(), Some("Wanneer is het gemeentehuis open op zaterdag?"));
    assert_eq!(
        work_request(&app.state.db, case_id).await,
        ("facebook".into(), "population-nl-l1".into(), "population".into(), "nl".into())
    );
    let (from_id, from_name, created_at): (Option<String>, Option<String>, Option<i64>) =
        sqlx::query_as("SELECT from_id, from_name, created_at FROM facebook_comments WHERE comment_id = '77_1001'")
            .fetch_one(app.state.db.pool())
            .await
            .expect("the comment's row");
    assert_eq!(
        (from_id.as_deref(), from_name.as_deref(), created_at),
        (Some("5550001"), Some("Jan Peeters"), Some(1_795_000_000_000))
    );

    // Meta retries a delivery it thinks failed: nothing new.
    let after = footprint(&app.state.db).await;
    assert_eq!(deliver_signed(&app, &body).await, StatusCode::OK);
    assert_eq!(footprint(&app.state.db).await, after, "a retried delivery opens no second case");
});

db_test!(badly_signed_and_unsigned_deliveries_are_refused_and_store_nothing, async |db: Db| {
    let (app, _) = app_with_page(db).await;
    let before = footprint(&app.state.db).await;
    let body = question_and_echo();
    let other_body = payload(vec![comment("77_1003", "5550002", "Els", "Andere vraag")]);
    let lowercase_hex = sign(SECRET, &body);
    let bad = [
        Some(sign("another-secret", &body)),
        Some(sign(SECRET, &other_body)),
        Some(lowercase_hex.replacen("sha256=", "sha1=", 1)),
        Some(lowercase_hex.trim_start_matches("sha256=").to_owned()),
        Some("sha256=".to_owned()),
        None,
    ];
    for signature in bad {
        let (status, _) = deliver(&app, &body, signature.as_deref()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{signature:?}");
    }
    assert_eq!(footprint(&app.state.db).await, before, "nothing stored");
});

db_test!(a_malformed_signed_body_is_refused_and_stores_nothing, async |db: Db| {
    let (app, _) = app_with_page(db).await;
    let before = footprint(&app.state.db).await;
    let mut without_id = comment("77_1004", "5550003", "Els", "Zonder id");
    without_id["value"].as_object_mut().expect("object").remove("comment_id");
    let malformed = [
        b"not json at all".to_vec(),
        b"{\"object\":\"page\",\"entry\":{}}".to_vec(),
        // A good comment and a broken one: the delivery is refused as a whole.
        payload(vec![comment("77_1005", "5550004", "Els", "Goede vraag"), without_id]),
    ];
    for body in malformed {
        let (status, text) = deliver(&app, &body, Some(&sign(SECRET, &body))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    }
    assert_eq!(footprint(&app.state.db).await, before, "nothing stored");
    let oversized = payload(vec![comment("77_1006", "5550004", "Els", &"vraag ".repeat(200_000))]);
    let signature = sign(SECRET, &oversized);
    assert_eq!(deliver(&app, &oversized, Some(&signature)).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(footprint(&app.state.db).await, before, "nothing stored");
    // What is signed and well formed but not a new comment is taken and ignored.
    let reaction = payload(vec![json!({ "field": "feed", "value": { "item": "reaction", "verb": "add" } })]);
    assert_eq!(deliver_signed(&app, &reaction).await, StatusCode::OK);
    assert_eq!(footprint(&app.state.db).await, before);
});

db_test!(a_french_comment_goes_to_the_french_queue, async |db: Db| {
    let (app, _) = app_with_page(db).await;
    let body = payload(vec![comment(
        "77_2001",
        "5550005",
        "Chloé Dubois",
        "Bonjour, je voudrais savoir quand la maison communale est ouverte pour les passeports. Merci !",
    )]);
    assert_eq!(deliver_signed(&app, &body).await, StatusCode::OK);
    let case_id = facebook_case(&app.state.db, "77_2001").await;
    assert_eq!(
        work_request(&app.state.db, case_id).await,
        ("facebook".into(), "population-fr-l1".into(), "population".into(), "fr".into())
    );
});

db_test!(the_agent_replies_from_the_case_and_the_reply_lands_on_the_timeline, async |db: Db| {
    let (app, posts) = app_with_page(db).await;
    assert_eq!(deliver_signed(&app, &question_and_echo()).await, StatusCode::OK);
    let case_id = facebook_case(&app.state.db, "77_1001").await;
    let (_, password) = app.create_user("an.agent", &[Role::Agent]).await;
    let mut agent = app.login("an.agent", &password).await;
    let page = app.get(&mut agent, &format!("/cases/{case_id}")).await;
    assert!(page.body.contains(&format!("action=\"/cases/{case_id}/facebook-reply\"")), "{}", page.body);
    assert!(page.body.contains("<label for=\"facebook-reply\">"), "the reply has its label");
    let other_case: i64 = sqlx::query_scalar("SELECT id FROM cases WHERE number = '2026-000001'")
        .fetch_one(app.state.db.pool())
        .await
        .expect("a demo case from the phone");
    let other = app.get(&mut agent, &format!("/cases/{other_case}")).await;
    assert!(!other.body.contains("facebook-reply"), "only a case from Facebook can be answered there");
    let fields = [("case_type", "passport"), ("channel", "facebook"), ("subject", "Bericht via Messenger")];
    let by_hand = app.post(&mut agent, "/cases", &fields).await;
    let by_hand = app.get(&mut agent, by_hand.location.as_deref().expect("the new case")).await;
    assert!(!by_hand.body.contains("facebook-reply"), "a case filed by hand has no comment to answer");

    let message = "Goedemorgen Jan, op zaterdag zijn we open van 9 tot 12 uur.";
    let response = app.post(&mut agent, &format!("/cases/{case_id}/facebook-reply"), &[("message", message)]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert_eq!(response.location, Some(format!("/cases/{case_id}")));
    let sent = posts.lock().unwrap().clone();
    assert_eq!(sent, [Posted { comment_id: "77_1001".into(), message: message.into() }]);

    let (actor, visibility, text): (String, String, Option<String>) = sqlx::query_as(
        "SELECT actor_name, visibility, body FROM timeline WHERE case_id = $1 AND kind = 'facebook_out'",
    )
    .bind(case_id)
    .fetch_one(app.state.db.pool())
    .await
    .expect("the reply on the timeline");
    assert_eq!((actor.as_str(), visibility.as_str(), text.as_deref()), ("an.agent", "public", Some(message)));
    let (reply_id, parent_id): (String, Option<String>) =
        sqlx::query_as("SELECT comment_id, parent_id FROM facebook_comments WHERE case_id = $1 AND direction = 'out'")
            .bind(case_id)
            .fetch_one(app.state.db.pool())
            .await
            .expect("the reply's row");
    assert_eq!((reply_id.as_str(), parent_id.as_deref()), ("77_1001_9001", Some("77_1001")));
    let audited = count(
        &app.state.db,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'facebook.replied' AND actor_name = 'an.agent'",
    )
    .await;
    assert_eq!(audited, 1);
    let page = app.get(&mut agent, &format!("/cases/{case_id}")).await;
    assert!(page.body.contains(message) && page.body.contains("Public reply on Facebook"), "{}", page.body);
});

db_test!(a_refused_or_unfit_reply_is_explained_and_nothing_is_written, async |db: Db| {
    let (app, posts) = app_with_page(db).await;
    let body = payload(vec![comment(REFUSED, "5550006", "Els Janssens", "Kan ik mijn paspoort komen halen?")]);
    assert_eq!(deliver_signed(&app, &body).await, StatusCode::OK);
    let case_id = facebook_case(&app.state.db, REFUSED).await;
    let (_, password) = app.create_user("an.agent", &[Role::Agent]).await;
    let mut agent = app.login("an.agent", &password).await;
    let path = format!("/cases/{case_id}/facebook-reply");
    let before = footprint(&app.state.db).await;

    app.get(&mut agent, &format!("/cases/{case_id}")).await;
    let draft = "Ja, vanaf dinsdag.";
    let refused = app.post(&mut agent, &path, &[("message", draft)]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert!(refused.body.contains("Facebook did not accept the reply"), "{}", refused.body);
    assert!(refused.body.contains(REFUSAL), "Facebook's reason is shown: {}", refused.body);
    assert!(refused.body.contains(draft), "the text is kept to try again");
    assert!(refused.body.contains("aria-describedby=\"facebook-reply-hint facebook-reply-error\""));

    let empty = app.post(&mut agent, &path, &[("message", "  \n ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains("The reply is empty."), "{}", empty.body);
    let long = "a".repeat(8_001);
    let too_long = app.post(&mut agent, &path, &[("message", &long)]).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(too_long.body.contains("at most 8000 characters"), "{}", too_long.body);

    assert!(posts.lock().unwrap().is_empty(), "nothing reached Facebook");
    assert_eq!(footprint(&app.state.db).await, before, "nothing written");
});

db_test!(only_case_workers_reply_and_only_with_the_pages_token, async |db: Db| {
    let (app, posts) = app_with_page(db).await;
    assert_eq!(deliver_signed(&app, &question_and_echo()).await, StatusCode::OK);
    let case_id = facebook_case(&app.state.db, "77_1001").await;
    let path = format!("/cases/{case_id}/facebook-reply");
    let (_, password) = app.create_user("a.teller", &[Role::Teller]).await;
    let mut teller = app.login("a.teller", &password).await;
    let (_, password) = app.create_user("an.agent", &[Role::Agent]).await;
    let mut agent = app.login("an.agent", &password).await;
    // Logins are audited; what follows must add nothing.
    let before = footprint(&app.state.db).await;

    let response = app.post(&mut teller, &path, &[("message", "Hallo")]).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);

    // The webhook needs no token, but the reply form still does.
    app.get(&mut agent, &format!("/cases/{case_id}")).await;
    let forged = app.post_raw(&mut agent, &path, &[("message", "Hallo"), ("csrf", "0000")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post_raw(&mut agent, &path, &[("message", "Hallo")]).await.status, StatusCode::FORBIDDEN);

    assert!(posts.lock().unwrap().is_empty(), "nothing reached Facebook");
    assert_eq!(footprint(&app.state.db).await, before, "nothing written");
});
