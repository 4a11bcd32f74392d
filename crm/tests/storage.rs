//! The repository suite: every test runs on SQLite and on PostgreSQL (`…::sqlite`, `…::postgres`).

use std::time::Duration;

use loket_crm::auth::Role;
use loket_crm::clock::Millis;
use loket_crm::db::Db;
use loket_crm::db_test;
use loket_crm::i18n::Language;
use loket_crm::records::audit::{self, Actor, AuditEntry, AuditFilter};
use loket_crm::records::users::{self, NewUser, UserError};
use loket_crm::records::{directory, sessions};

const T0: Millis = Millis(1_795_000_000_000);

async fn insert_user(db: &Db, username: &str, roles: &[Role]) -> Result<users::UserId, UserError> {
    let mut conn = db.pool().acquire().await?;
    let new_user = NewUser {
        username,
        display_name: "Test User",
        email: Some("test@example.be"),
        password_hash: "$argon2id$placeholder",
        language: Language::Fr,
        roles,
    };
    users::insert(&mut conn, &new_user, T0).await
}

async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(db.pool()).await.expect("count")
}

db_test!(users_round_trip_with_roles, async |db: Db| {
    let id = insert_user(&db, "an.peeters", &[Role::Supervisor, Role::Agent]).await.unwrap();
    let user = users::get(&db, id).await.unwrap().expect("inserted user");
    assert_eq!(user.username, "an.peeters");
    assert_eq!(user.language, Language::Fr);
    assert_eq!(user.email.as_deref(), Some("test@example.be"));
    assert_eq!(user.roles, vec![Role::Agent, Role::Supervisor]);
    assert!(!user.disabled);

    let candidate = users::find_for_login(&db, "an.peeters").await.unwrap().expect("login candidate");
    assert_eq!(candidate.password_hash, "$argon2id$placeholder");
    assert!(users::find_for_login(&db, "nobody").await.unwrap().is_none());

    let mut conn = db.pool().acquire().await.unwrap();
    users::set_roles(&mut conn, id, &[Role::Dpo]).await.unwrap();
    drop(conn);
    assert_eq!(users::get(&db, id).await.unwrap().unwrap().roles, vec![Role::Dpo]);
    let listed = users::list(&db).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].roles, vec![Role::Dpo]);
});

db_test!(usernames_are_unique_and_checked, async |db: Db| {
    insert_user(&db, "agent", &[Role::Agent]).await.unwrap();
    assert!(matches!(insert_user(&db, "agent", &[]).await, Err(UserError::UsernameTaken(name)) if name == "agent"));
    assert!(matches!(insert_user(&db, "has space", &[]).await, Err(UserError::InvalidUsername)));
    assert_eq!(count(&db, "users").await, 1);
});

db_test!(failed_logins_lock_at_the_threshold_and_clear, async |db: Db| {
    let id = insert_user(&db, "agent", &[Role::Agent]).await.unwrap();
    let until = T0.plus(Duration::from_secs(900));
    for _ in 0..2 {
        assert_eq!(users::record_failed_login(&db, id, 3, until).await.unwrap(), None);
    }
    assert_eq!(users::record_failed_login(&db, id, 3, until).await.unwrap(), Some(until));
    let user = users::get(&db, id).await.unwrap().unwrap();
    assert_eq!((user.failed_logins, user.locked_until), (3, Some(until)));
    users::clear_failed_logins(&db, id).await.unwrap();
    let user = users::get(&db, id).await.unwrap().unwrap();
    assert_eq!((user.failed_logins, user.locked_until), (0, None));
});

db_test!(sessions_expire_and_are_purged, async |db: Db| {
    let id = insert_user(&db, "agent", &[Role::Agent]).await.unwrap();
    let expires = T0.plus(Duration::from_secs(60));
    let new_session = sessions::create(&db, Some(id), Some(Language::Nl), T0, expires).await.unwrap();
    assert_ne!(new_session.token, new_session.session.token_hash, "only the hash is stored");
    let found = sessions::find(&db, &new_session.token, T0).await.unwrap().expect("live session");
    assert_eq!(found.user_id, Some(id));
    assert_eq!(found.language, Some(Language::Nl));
    assert_eq!(found.csrf_token, new_session.session.csrf_token);
    sessions::set_language(&db, &found.token_hash, Language::Fr).await.unwrap();
    assert_eq!(sessions::find(&db, &new_session.token, T0).await.unwrap().unwrap().language, Some(Language::Fr));
    assert!(sessions::find(&db, "not-a-token", T0).await.unwrap().is_none());
    assert!(sessions::find(&db, &new_session.token, expires).await.unwrap().is_none(), "expired at expires_at");

    let anonymous = sessions::create(&db, None, None, T0, T0.plus(Duration::from_secs(3600))).await.unwrap();
    assert_eq!(sessions::purge_expired(&db, expires).await.unwrap(), 1);
    assert!(sessions::find(&db, &anonymous.token, expires).await.unwrap().is_some());
    sessions::delete(&db, &anonymous.session.token_hash).await.unwrap();
    assert_eq!(count(&db, "sessions").await, 0);
});

db_test!(audit_entries_filter_by_actor_action_and_time, async |db: Db| {
    let id = insert_user(&db, "dpo", &[Role::Dpo]).await.unwrap();
    let entries = [
        (T0, Actor::User { id, name: "dpo" }, "login.succeeded", "user"),
        (T0.plus(Duration::from_secs(10)), Actor::System, "demo.seeded", "municipality"),
        (T0.plus(Duration::from_secs(20)), Actor::User { id, name: "dpo" }, "login.failed", "user"),
    ];
    for (at, actor, action, subject_type) in entries {
        let entry =
            AuditEntry { actor, action, subject_type, subject_id: Some("1".into()), purpose: None, detail: None };
        audit::record(db.pool(), &entry, at).await.unwrap();
    }
    let all = audit::list(&db, &AuditFilter::default(), 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["login.failed", "demo.seeded", "login.succeeded"]
    );
    let logins = AuditFilter { action_prefix: Some("login.".into()), ..AuditFilter::default() };
    assert_eq!(audit::list(&db, &logins, 10).await.unwrap().len(), 2);
    let system = AuditFilter { actor_name: Some("loket".into()), ..AuditFilter::default() };
    assert_eq!(audit::list(&db, &system, 10).await.unwrap()[0].action, "demo.seeded");
    let window = AuditFilter {
        from: Some(T0.plus(Duration::from_secs(5))),
        until: Some(T0.plus(Duration::from_secs(15))),
        ..AuditFilter::default()
    };
    assert_eq!(audit::list(&db, &window, 10).await.unwrap().len(), 1);
    assert_eq!(audit::list(&db, &AuditFilter::default(), 1).await.unwrap().len(), 1, "the limit holds");
});

db_test!(demo_seed_is_idempotent, async |db: Db| {
    let first = loket_crm::demo::seed(&db, T0, 2026).await.unwrap();
    let usernames: Vec<&str> = first.new_credentials.iter().map(|(name, _)| name.as_str()).collect();
    for role in Role::ALL {
        let holder = users::list(&db).await.unwrap().into_iter().find(|user| user.roles.contains(&role));
        assert!(holder.is_some(), "no demo user has the role {role}");
    }
    assert!(usernames.contains(&"admin") && usernames.contains(&"dpo"));
    assert!(first.new_credentials.iter().all(|(_, password)| password.len() == 16));
    let tables = [
        "users",
        "user_roles",
        "services",
        "skills",
        "queues",
        "queue_skills",
        "user_skills",
        "user_queues",
        "contacts",
        "accounts",
        "cases",
        "audit_log",
    ];
    let mut before = Vec::new();
    for table in tables {
        before.push(count(&db, table).await);
    }
    assert_eq!(count(&db, "services").await, 4);
    // 4 services × (3 languages × 2 lines + 1 expert team).
    assert_eq!(count(&db, "queues").await, 28);
    assert_eq!(count(&db, "contacts").await, 5);
    assert_eq!(count(&db, "accounts").await, 3);
    assert_eq!(count(&db, "cases").await, 5);

    let second = loket_crm::demo::seed(&db, T0.plus(Duration::from_secs(60)), 2026).await.unwrap();
    assert!(second.new_credentials.is_empty());
    assert_eq!(second.inserted_rows, 0);
    for (table, expected) in tables.iter().zip(before) {
        assert_eq!(count(&db, table).await, expected, "seeding twice changed {table}");
    }
    let population_nl =
        directory::queues(&db).await.unwrap().into_iter().find(|q| q.code == "population-nl-l1").expect("queue");
    assert_eq!(population_nl.skills, vec![("nl".to_owned(), 1), ("population".to_owned(), 1)]);
    assert_eq!(population_nl.names.fr, "Population NL – ligne 1");
});

db_test!(national_numbers_are_stored_as_digits_for_exact_lookup, async |db: Db| {
    loket_crm::demo::seed(&db, T0, 2026).await.unwrap();
    let found: Option<String> = sqlx::query_scalar("SELECT last_name FROM contacts WHERE national_number = $1")
        .bind("78021412342")
        .fetch_optional(db.pool())
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some("Claes"));
});

db_test!(a_users_skills_and_queues_are_replaced_whole_or_not_at_all, async |db: Db| {
    loket_crm::demo::seed(&db, T0, 2026).await.unwrap();
    let agent: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE username = 'agent'").fetch_one(db.pool()).await.unwrap();
    let skills = vec![("fr".to_owned(), 4), ("taxes".to_owned(), 2)];
    let queues = vec!["taxes-fr-l1".to_owned()];
    let mut tx = db.pool().begin().await.unwrap();
    directory::replace_user_routing(&mut tx, agent, &skills, &queues).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(directory::user_routing(&db, agent).await.unwrap(), (skills.clone(), queues.clone()));

    // An unknown queue fails, and the transaction leaves the earlier routing as it was.
    let mut tx = db.pool().begin().await.unwrap();
    let failed = directory::replace_user_routing(&mut tx, agent, &[], &["no-such-queue".to_owned()]).await;
    assert!(failed.is_err(), "an unknown queue is refused");
    drop(tx);
    assert_eq!(directory::user_routing(&db, agent).await.unwrap(), (skills, queues));
    let codes: Vec<String> = directory::skills(&db).await.unwrap().into_iter().map(|(code, _)| code).collect();
    assert!(codes.contains(&"taxes".to_owned()) && codes.contains(&"nl".to_owned()), "{codes:?}");
});
