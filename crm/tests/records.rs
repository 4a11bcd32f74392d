//! Contacts, companies and cases through the console, on SQLite and PostgreSQL.

use axum::http::StatusCode;
use loket_crm::auth::Role;
use loket_crm::db::Db;
use loket_crm::db_test;
use loket_crm::records::audit::{self, AuditFilter};
use loket_crm::records::{cases, outbox};
use loket_crm::testing::{Browser, TEST_START, TestApp};

async fn agent_app(db: Db) -> (TestApp, Browser) {
    loket_crm::demo::seed(&db, TEST_START, 2026).await.expect("demo");
    let app = TestApp::new(db);
    let (_, password) = app.create_user("test.agent", &[Role::Agent]).await;
    let browser = app.login("test.agent", &password).await;
    (app, browser)
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.expect(sql)
}

fn id_from_location(response: &loket_crm::testing::TestResponse, prefix: &str) -> i64 {
    let location = response.location.as_deref().unwrap_or_else(|| panic!("no redirect: {}", response.body));
    location.strip_prefix(prefix).and_then(|rest| rest.parse().ok()).unwrap_or_else(|| panic!("{location}"))
}

db_test!(a_citizen_is_created_viewed_in_360_and_every_read_is_audited, async |db: Db| {
    let (app, mut agent) = agent_app(db).await;
    app.get(&mut agent, "/contacts/new").await;
    let fields = [
        ("first_name", "Sara"),
        ("last_name", "Janssens"),
        ("national_number", "93.05.18-223.61"),
        ("language", "nl"),
        ("phones", "0470 11 22 33\n02/555.66.77"),
        ("emails", "Sara.Janssens@Example.be"),
        ("street", "Grote Markt 1"),
        ("postcode", "1000"),
        ("city", "Brussel"),
    ];
    let response = app.post(&mut agent, "/contacts", &fields).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let id = id_from_location(&response, "/contacts/");
    let page = app.get(&mut agent, &format!("/contacts/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Sara Janssens") && page.body.contains("+32470112233") && page.body.contains("+3225556677")
    );
    assert!(page.body.contains("sara.janssens@example.be"), "e-mails are kept lower-case");
    // The number is shown masked, never whole, not even in the edit form.
    assert!(page.body.contains("93.05.18-***.**") && !page.body.contains("93051822361"), "{}", page.body);
    let edit = app.get(&mut agent, &format!("/contacts/{id}/edit")).await;
    assert!(!edit.body.contains("93051822361") && !edit.body.contains("223.61"));
    let reads = audit::list(
        &app.state.db,
        &AuditFilter { action_prefix: Some("contact.read".into()), ..AuditFilter::default() },
        10,
    )
    .await
    .unwrap();
    assert!(reads.len() >= 2, "the view and the edit form are both audited");
    assert_eq!(reads[0].actor_name, "test.agent");
    assert!(reads.iter().all(|entry| entry.purpose.as_deref().is_some_and(|p| p.starts_with("case handling"))));
    assert!(reads.iter().all(|entry| entry.subject_id.as_deref() == Some(id.to_string().as_str())));
    // Saving the edit form without a number keeps the number.
    let mut edited = fields.to_vec();
    edited.retain(|(name, _)| *name != "national_number");
    edited.push(("national_number", ""));
    app.get(&mut agent, &format!("/contacts/{id}/edit")).await;
    let response = app.post(&mut agent, &format!("/contacts/{id}/edit"), &edited).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let kept = count(
        &app.state.db,
        &format!("SELECT COUNT(*) FROM contacts WHERE id = {id} AND national_number = '93051822361'"),
    )
    .await;
    assert_eq!(kept, 1);
});

db_test!(a_bad_contact_form_names_each_field_and_saves_nothing, async |db: Db| {
    let (app, mut agent) = agent_app(db).await;
    let before = count(&app.state.db, "SELECT COUNT(*) FROM contacts").await;
    app.get(&mut agent, "/contacts/new").await;
    let response = app
        .post(
            &mut agent,
            "/contacts",
            &[
                ("first_name", ""),
                ("last_name", "X"),
                ("national_number", "93.05.18-223.62"),
                ("language", "nl"),
                ("phones", "12345"),
                ("emails", "not-an-address"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    for field in ["first_name", "national_number", "phones", "emails"] {
        assert!(response.body.contains(&format!("id=\"{field}-error\"")), "{field} is not named");
    }
    // A second citizen with a known number is refused, pointing at the first.
    app.get(&mut agent, "/contacts/new").await;
    let response = app
        .post(
            &mut agent,
            "/contacts",
            &[("first_name", "Emma"), ("last_name", "Other"), ("national_number", "78021412342"), ("language", "nl")],
        )
        .await;
    assert!(response.body.contains("Another citizen has this national register number"), "{}", response.body);
    assert_eq!(count(&app.state.db, "SELECT COUNT(*) FROM contacts").await, before);
});

db_test!(duplicates_are_proposed_and_merged_with_their_history, async |db: Db| {
    let (app, mut agent) = agent_app(db).await;
    // Emma Claes of the demo has +32470123456; a new record with that phone is a likely duplicate.
    app.get(&mut agent, "/contacts/new").await;
    let fields = [("first_name", "Em"), ("last_name", "Claes"), ("language", "nl"), ("phones", "0470 12 34 56")];
    let response = app.post(&mut agent, "/contacts", &fields).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.contains("Emma Claes"), "the duplicate is shown: {}", response.body);
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm_duplicate", "yes"));
    let response = app.post(&mut agent, "/contacts", &confirmed).await;
    let duplicate = id_from_location(&response, "/contacts/");
    let emma: i64 = count(&app.state.db, "SELECT id FROM contacts WHERE national_number = '78021412342'").await;
    // A case on the duplicate moves with the merge.
    app.get(&mut agent, &format!("/cases/new?contact={duplicate}")).await;
    let response = app
        .post(
            &mut agent,
            "/cases",
            &[
                ("contact_id", &duplicate.to_string()),
                ("case_type", "passport"),
                ("channel", "voice"),
                ("subject", "Paspoort"),
            ],
        )
        .await;
    let case_id = id_from_location(&response, "/cases/");
    let page = app.get(&mut agent, &format!("/contacts/{emma}")).await;
    assert!(page.body.contains(&format!("name=\"duplicate_id\" value=\"{duplicate}\"")), "merge is offered");
    let response =
        app.post(&mut agent, &format!("/contacts/{emma}/merge"), &[("duplicate_id", &duplicate.to_string())]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert_eq!(count(&app.state.db, &format!("SELECT contact_id FROM cases WHERE id = {case_id}")).await, emma);
    assert_eq!(count(&app.state.db, &format!("SELECT merged_into FROM contacts WHERE id = {duplicate}")).await, emma);
    let page = app.get(&mut agent, &format!("/contacts/{emma}")).await;
    assert!(page.body.contains(&format!("Contact #{duplicate} merged into this one")));
    // Merging twice is refused.
    let again =
        app.post(&mut agent, &format!("/contacts/{emma}/merge"), &[("duplicate_id", &duplicate.to_string())]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
});

db_test!(the_national_number_lookup_is_exact_audited_and_never_in_a_url, async |db: Db| {
    let (app, mut agent) = agent_app(db).await;
    app.get(&mut agent, "/contacts").await;
    let response = app
        .post(
            &mut agent,
            "/contacts/find",
            &[("national_number", "78.02.14-123.42"), ("purpose", "caller asks about passport")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let entry = &audit::list(
        &app.state.db,
        &AuditFilter { action_prefix: Some("contact.searched_by".into()), ..AuditFilter::default() },
        1,
    )
    .await
    .unwrap()[0];
    assert_eq!(entry.purpose.as_deref(), Some("caller asks about passport"));
    assert!(!format!("{entry:?}").contains("7802141"), "the number is not in the audit log");
    app.get(&mut agent, "/contacts").await;
    let without_purpose =
        app.post(&mut agent, "/contacts/find", &[("national_number", "78.02.14-123.42"), ("purpose", " ")]).await;
    assert_eq!(without_purpose.status, StatusCode::OK);
    assert!(without_purpose.body.contains("id=\"find-error\""));
    let search = app.get(&mut agent, "/search?q=78021412342").await;
    assert!(search.body.contains("never appear in an address bar"), "{}", search.body);
    assert!(!search.body.contains("Claes"));
    // The global search finds by phone in any written form, and by case number.
    let by_phone = app.get(&mut agent, "/search?q=0470%2012%2034%2056").await;
    assert!(by_phone.body.contains("Emma Claes"), "{}", by_phone.body);
    let by_number = app.get(&mut agent, "/search?q=2026-000001").await;
    assert_eq!(by_number.status, StatusCode::SEE_OTHER);
});

db_test!(a_case_is_worked_from_creation_to_closing, async |db: Db| {
    let (app, mut agent) = agent_app(db).await;
    let emma: i64 = count(&app.state.db, "SELECT id FROM contacts WHERE national_number = '78021412342'").await;
    app.get(&mut agent, &format!("/cases/new?contact={emma}")).await;
    let response = app
        .post(
            &mut agent,
            "/cases",
            &[
                ("contact_id", &emma.to_string()),
                ("case_type", "certificates"),
                ("channel", "voice"),
                ("subject", "Attest van woonst"),
            ],
        )
        .await;
    let id = id_from_location(&response, "/cases/");
    let page = app.get(&mut agent, &format!("/cases/{id}")).await;
    assert!(page.body.contains("2026-000006"), "numbers continue after the demo's: {}", page.body);
    assert!(page.body.contains("Emma Claes") && page.body.contains("Which certificate"), "the type's fields show");

    // A bad custom-field value is refused with the field named, and nothing is saved.
    let response = app
        .post(
            &mut agent,
            &format!("/cases/{id}/edit"),
            &[("subject", "Attest"), ("priority", "2"), ("field.copies", "11"), ("field.certificate", "woonst")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("id=\"field-copies-error\""), "{}", response.body);
    assert_eq!(count(&app.state.db, &format!("SELECT priority FROM cases WHERE id = {id}")).await, 0);
    let response = app
        .post(
            &mut agent,
            &format!("/cases/{id}/edit"),
            &[("subject", "Attest"), ("priority", "2"), ("field.copies", "3"), ("field.certificate", "woonst")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let stored: String = sqlx::query_scalar(&format!("SELECT custom_fields FROM cases WHERE id = {id}"))
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored).unwrap(),
        serde_json::json!({"certificate": "woonst", "copies": 3.0})
    );

    // Notes, internal and public.
    app.get(&mut agent, &format!("/cases/{id}")).await;
    app.post(&mut agent, &format!("/cases/{id}/note"), &[("body", "Belde terug om 10u")]).await;
    let page = app.get(&mut agent, &format!("/cases/{id}")).await;
    assert!(page.body.contains("Belde terug om 10u") && page.body.contains("Internal note"));
    // The timeline speaks the reader's language, whoever wrote the entry.
    for (language, note, created) in [
        ("nl", "Interne notitie", "Dossier 2026-"),
        ("fr", "Note interne", "Dossier 2026-"),
        ("en", "Internal note", "Case 2026-"),
    ] {
        app.post(&mut agent, "/language", &[("language", language), ("back", "/")]).await;
        let page = app.get(&mut agent, &format!("/cases/{id}")).await;
        assert!(page.body.contains(note) && page.body.contains(created), "{language}: {}", page.body);
    }

    // Closing needs a reason.
    let response = app.post(&mut agent, &format!("/cases/{id}/status"), &[("status", "closed"), ("reason", "")]).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        count(&app.state.db, &format!("SELECT COUNT(*) FROM cases WHERE id = {id} AND status = 'new'")).await,
        1
    );
    let response =
        app.post(&mut agent, &format!("/cases/{id}/status"), &[("status", "closed"), ("reason", "resolved")]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let page = app.get(&mut agent, &format!("/contacts/{emma}")).await;
    let (open_section, closed_section) = page.body.split_once("<h2>Closed cases</h2>").expect("a closed-cases section");
    assert!(closed_section.contains("2026-000006") && !open_section.contains("2026-000006"), "{}", page.body);
});

db_test!(documents_are_stored_and_bad_uploads_say_why, async |db: Db| {
    let (app, mut agent) = agent_app(db).await;
    let id: i64 = count(&app.state.db, "SELECT id FROM cases WHERE number = '2026-000001'").await;
    app.get(&mut agent, &format!("/cases/{id}")).await;
    let response = app.upload(&mut agent, &format!("/cases/{id}/documents"), "aanvraag.pdf", b"%PDF-1.4 test").await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let document: i64 = count(&app.state.db, &format!("SELECT id FROM documents WHERE case_id = {id}")).await;
    let download = app.get(&mut agent, &format!("/cases/{id}/documents/{document}")).await;
    assert_eq!(download.body, "%PDF-1.4 test");
    app.get(&mut agent, &format!("/cases/{id}")).await;
    let refused = app.upload(&mut agent, &format!("/cases/{id}/documents"), "script.exe", b"MZ").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("script.exe: this kind of file is not accepted"), "{}", refused.body);
    let too_large = vec![b'x'; app.state.config.max_upload_bytes + 1];
    app.get(&mut agent, &format!("/cases/{id}")).await;
    let refused = app.upload(&mut agent, &format!("/cases/{id}/documents"), "big.pdf", &too_large).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", &refused.body[..200.min(refused.body.len())]);
    assert!(refused.body.contains("20 MB"));
    assert_eq!(
        count(&app.state.db, &format!("SELECT COUNT(*) FROM documents WHERE case_id = {id}")).await,
        1,
        "only the good one"
    );
    assert_eq!(std::fs::read_dir(&app.documents_dir).unwrap().count(), 1, "no stray bytes on disk");
    // A document of another case is not reachable through this one.
    let other: i64 = count(&app.state.db, "SELECT id FROM cases WHERE number = '2026-000002'").await;
    assert_eq!(
        app.get(&mut agent, &format!("/cases/{other}/documents/{document}")).await.status,
        StatusCode::NOT_FOUND
    );
});

db_test!(mail_from_a_case_is_queued_threaded_and_on_the_timeline, async |db: Db| {
    let (app, mut agent) = agent_app(db).await;
    let id: i64 = count(&app.state.db, "SELECT id FROM cases WHERE number = '2026-000001'").await;
    let page = app.get(&mut agent, &format!("/cases/{id}?template=reply&canned=passport_documents&lang=nl")).await;
    assert!(
        page.body.contains("Uw dossier 2026-000001: Nieuw paspoort aanvragen"),
        "the template is rendered: {}",
        page.body
    );
    assert!(page.body.contains("Beste Emma Claes") && page.body.contains("recente pasfoto"));
    assert!(page.body.contains("value=\"emma.claes@example.be\""));
    for subject in ["Eerste bericht", "Tweede bericht"] {
        let response = app
            .post(
                &mut agent,
                &format!("/cases/{id}/mail"),
                &[("to", "emma.claes@example.be"), ("subject", subject), ("body", "Tekst")],
            )
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
        app.get(&mut agent, &format!("/cases/{id}")).await;
    }
    let mails = outbox::for_case(&app.state.db, id).await.unwrap();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].in_reply_to.as_deref(), Some(mails[1].message_id.as_str()), "the second answers the first");
    assert!(mails.iter().all(|mail| mail.status == "pending"));
    let page = app.get(&mut agent, &format!("/cases/{id}")).await;
    assert!(page.body.contains("E-mail to emma.claes@example.be: Tweede bericht"));
    let bad =
        app.post(&mut agent, &format!("/cases/{id}/mail"), &[("to", "nobody"), ("subject", "x"), ("body", "y")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(outbox::for_case(&app.state.db, id).await.unwrap().len(), 2);
});

db_test!(escalation_clone_links_bulk_and_saved_views, async |db: Db| {
    let (app, mut agent) = agent_app(db).await;
    let id: i64 = count(&app.state.db, "SELECT id FROM cases WHERE number = '2026-000002'").await;
    app.get(&mut agent, &format!("/cases/{id}")).await;
    let response =
        app.post(&mut agent, &format!("/cases/{id}/escalate"), &[("note", "Buitenlandse huwelijksakte")]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let row = sqlx::query_as::<_, (i64, String, String, String)>(&format!(
        "SELECT support_line, status, status_reason, expert_team FROM cases WHERE id = {id}"
    ))
    .fetch_one(app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(row, (3, "escalated".to_owned(), "expert_knowledge_requested".to_owned(), "civil_status-l3".to_owned()));

    app.get(&mut agent, &format!("/cases/{id}")).await;
    let response = app.post(&mut agent, &format!("/cases/{id}/clone"), &[]).await;
    let copy = id_from_location(&response, "/cases/");
    let page = app.get(&mut agent, &format!("/cases/{copy}")).await;
    assert!(page.body.contains("2026-000002"), "the copy links the original");
    let response = app.post(&mut agent, &format!("/cases/{copy}/link"), &[("number", "2026-000003")]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);

    app.get(&mut agent, "/cases").await;
    let ids: Vec<String> = [1, 4].iter().map(|n| format!("2026-00000{n}")).collect();
    let mut fields = vec![("action", "close"), ("reason", "answered_by_phone"), ("back", "/cases?status=new")];
    let case_ids: Vec<String> = {
        let mut found = Vec::new();
        for number in &ids {
            found.push(
                count(&app.state.db, &format!("SELECT id FROM cases WHERE number = '{number}'")).await.to_string(),
            );
        }
        found
    };
    for case_id in &case_ids {
        fields.push(("ids", case_id));
    }
    let response = app.post(&mut agent, "/cases/bulk", &fields).await;
    assert_eq!(response.location.as_deref(), Some("/cases?status=new"));
    assert_eq!(
        count(
            &app.state.db,
            "SELECT COUNT(*) FROM cases WHERE status = 'closed' AND status_reason = 'answered_by_phone'"
        )
        .await,
        2
    );
    // A bulk close without a reason changes none of them.
    app.get(&mut agent, "/cases").await;
    let response = app
        .post(&mut agent, "/cases/bulk", &[("action", "close"), ("ids", &copy.to_string()), ("ids", &id.to_string())])
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(count(&app.state.db, "SELECT COUNT(*) FROM cases WHERE status = 'closed'").await, 2);

    let list = app.get(&mut agent, "/cases?status=closed&sort=number").await;
    assert!(
        list.body.contains("2026-000001") && list.body.contains("2026-000004") && !list.body.contains("2026-000003")
    );
    app.post(&mut agent, "/cases/views", &[("name", "Afgesloten"), ("query", "status=closed&sort=number")]).await;
    let list = app.get(&mut agent, "/cases").await;
    assert!(list.body.contains("href=\"/cases?status=closed&amp;sort=number\""), "{}", list.body);
    let bad_view = app.post(&mut agent, "/cases/views", &[("name", "x"), ("query", "support_line=abc")]).await;
    assert_eq!(bad_view.status, StatusCode::BAD_REQUEST);
});

async fn subjects_matching(db: &Db, text: &str) -> Vec<String> {
    let filter = cases::CaseFilter { text: Some(text.to_owned()), ..cases::CaseFilter::default() };
    let (rows, total) = cases::list(db, &filter, 0).await.unwrap_or_else(|error| panic!("{text:?}: {error}"));
    assert_eq!(total, rows.len() as i64);
    rows.into_iter().map(|row| row.subject).collect()
}

db_test!(cases_are_found_by_any_part_of_their_subject, async |db: Db| {
    loket_crm::demo::seed(&db, TEST_START, 2026).await.unwrap();
    assert_eq!(subjects_matching(&db, "PASPOORT").await, ["Nieuw paspoort aanvragen"], "case does not matter");
    assert_eq!(subjects_matching(&db, "lichtreclame").await, ["Vraag over de belasting op lichtreclames"]);
    assert!(
        subjects_matching(&db, "st").await.contains(&"Demande de carte de stationnement".to_owned()),
        "two letters"
    );
    for odd in ["\"quoted", "100%", "a_b", "x\\y", "' OR 1=1 --"] {
        assert!(subjects_matching(&db, odd).await.is_empty(), "{odd:?} matches nothing and breaks nothing");
    }
    // The search follows a changed subject.
    let id = cases::id_by_number(&db, "2026-000001").await.unwrap().unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let changes = cases::CaseChanges {
        subject: "Rijbewijs verloren".to_owned(),
        priority: 0,
        owner_id: None,
        custom_fields: serde_json::Map::new(),
    };
    cases::update(&mut conn, id, &changes, "test", TEST_START).await.unwrap();
    assert!(subjects_matching(&db, "paspoort").await.is_empty());
    assert_eq!(subjects_matching(&db, "verloren").await, ["Rijbewijs verloren"]);
});

db_test!(a_common_word_lists_the_newest_matching_cases_first, async |db: Db| {
    loket_crm::demo::seed(&db, TEST_START, 2026).await.unwrap();
    // Every eighth generated case is an "Attest van woonst": more matches than the count cap.
    loket_crm::generate::generate(&db, 200, 9_000, TEST_START).await.unwrap();
    let filter = cases::CaseFilter { text: Some("attest".to_owned()), ..cases::CaseFilter::default() };
    let (rows, total) = cases::list(&db, &filter, 0).await.unwrap();
    assert_eq!(total, cases::COUNT_CAP + 1, "shown as 1000+");
    let expected: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM cases WHERE lower(subject) LIKE '%attest%' ORDER BY updated_at DESC, id DESC LIMIT 50",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), expected);
});

db_test!(files_stored_in_a_failed_transaction_leave_no_bytes_behind, async |db: Db| {
    use loket_crm::records::documents::{DiskStore, DocumentStore, PendingFiles, Upload};
    loket_crm::demo::seed(&db, TEST_START, 2026).await.unwrap();
    let case_id = cases::id_by_number(&db, "2026-000001").await.unwrap().unwrap().0;
    let dir = std::env::temp_dir().join(format!("loket-pending-{}-{}", std::process::id(), rand_suffix()));
    let store = DiskStore::new(dir.clone());
    let upload = |name: &'static str| Upload {
        case_id,
        file_name: name,
        content_type: "text/plain",
        bytes: b"scan",
        uploaded_by: "test",
    };
    let files_on_disk = || std::fs::read_dir(&dir).map(|entries| entries.count()).unwrap_or(0);
    // The work after the upload fails: nothing is committed and the bytes go.
    let mut files = PendingFiles::new(&store);
    let mut tx = db.pool().begin().await.unwrap();
    files.store(&mut tx, &upload("a.txt"), TEST_START).await.unwrap();
    assert_eq!(files_on_disk(), 1);
    let failed: Result<(), sqlx::Error> = Err(sqlx::Error::RowNotFound);
    assert!(files.finish(tx, failed).await.is_err());
    assert_eq!(files_on_disk(), 0, "the bytes of the failed transaction are removed");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM documents").await, 0);
    // A transaction that succeeds keeps both.
    let mut files = PendingFiles::new(&store);
    let mut tx = db.pool().begin().await.unwrap();
    let id = files.store(&mut tx, &upload("b.txt"), TEST_START).await.unwrap();
    files.finish(tx, Ok::<_, sqlx::Error>(())).await.unwrap();
    assert_eq!(files_on_disk(), 1);
    let key: String = sqlx::query_scalar("SELECT storage_key FROM documents WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(store.get(&key).unwrap(), b"scan");
    std::fs::remove_dir_all(&dir).ok();
});

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

db_test!(a_callback_is_kept_replaced_and_forgotten, async |db: Db| {
    use loket_crm::clock::Millis;
    use loket_crm::records::callbacks::{self, Callback};
    loket_crm::demo::seed(&db, TEST_START, 2026).await.expect("demo");
    let case_id: i64 = sqlx::query_scalar("SELECT MIN(id) FROM cases").fetch_one(db.pool()).await.expect("a case");
    let mut callback = Callback {
        item_id: 42,
        number: "+32470000001".into(),
        case_id,
        contact_id: None,
        queue: "population-nl-l1".into(),
    };
    callbacks::keep(&db, &callback, Millis(1_000)).await.expect("kept");
    let other = Callback { item_id: 7, ..callback.clone() };
    callbacks::keep(&db, &other, Millis(2_000)).await.expect("another");
    // Kept again (the agent's phone did not answer): one row, the newer queue.
    callback.queue = "population-nl-l2".into();
    callbacks::keep(&db, &callback, Millis(3_000)).await.expect("replaced");
    assert_eq!(callbacks::all(&db).await.expect("all"), vec![callback.clone(), other.clone()], "oldest first");
    callbacks::forget(&db, 42).await.expect("forgotten");
    assert_eq!(callbacks::all(&db).await.expect("all"), vec![other]);
    // A callback of a case that does not exist is refused: nothing half-written.
    let orphan = Callback { item_id: 8, case_id: i64::MAX, ..callback };
    assert!(callbacks::keep(&db, &orphan, Millis(4_000)).await.is_err(), "the case must exist");
});
