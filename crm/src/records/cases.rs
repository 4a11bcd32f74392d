//! Cases: one citizen's or company's request, whatever channel it came in by, with its status,
//! owner, queue, custom fields and links to related cases.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::{Backend, Db, LikePosition, like_pattern};
use crate::records::timeline::{self, NewEntry, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct CaseId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    New,
    InProgress,
    WaitingForCitizen,
    Escalated,
    Closed,
}

/// Why a case was closed; a closed case always has one.
pub const CLOSE_REASONS: [&str; 5] = ["resolved", "answered_by_phone", "duplicate", "no_response", "withdrawn"];

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] = [
        CaseStatus::New,
        CaseStatus::InProgress,
        CaseStatus::WaitingForCitizen,
        CaseStatus::Escalated,
        CaseStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::New => "new",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::WaitingForCitizen => "waiting_for_citizen",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Closed => "closed",
        }
    }
}

impl FromStr for CaseStatus {
    type Err = CaseError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        CaseStatus::ALL.into_iter().find(|status| status.as_str() == name).ok_or(CaseError::UnknownStatus)
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("unknown case status")]
    UnknownStatus,
    #[error("closing a case needs one of the close reasons")]
    CloseReasonRequired,
    #[error("no expert team handles this case type")]
    NoExpertTeam,
    #[error("the case does not exist")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Case {
    pub id: i64,
    pub number: String,
    pub contact_id: Option<i64>,
    pub account_id: Option<i64>,
    pub service_code: String,
    pub case_type: String,
    pub channel: String,
    pub support_line: i64,
    pub status: CaseStatus,
    pub status_reason: Option<String>,
    pub priority: i64,
    pub owner_id: Option<i64>,
    pub owner_name: Option<String>,
    pub queue_code: Option<String>,
    pub expert_team: Option<String>,
    pub subject: String,
    pub custom_fields: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct CaseInput {
    pub contact_id: Option<i64>,
    pub account_id: Option<i64>,
    pub service_code: String,
    pub case_type: String,
    pub channel: String,
    pub support_line: i64,
    pub priority: i64,
    pub owner_id: Option<i64>,
    pub queue_code: Option<String>,
    pub subject: String,
    pub custom_fields: Map<String, Value>,
}

/// Inserts a case with the next number of `year` (`2026-000042`) and its first timeline entry.
pub async fn insert(
    conn: &mut AnyConnection,
    input: &CaseInput,
    year: i32,
    actor_name: &str,
    now: Millis,
) -> Result<(CaseId, String), CaseError> {
    let number = next_number(conn, year).await?;
    let id = insert_numbered(conn, &number, input, actor_name, now).await?;
    Ok((id, number))
}

/// Inserts a case that already has a number (the demo, imports) unless that number exists; the
/// year's sequence then continues after it.
pub async fn import_if_absent(
    conn: &mut AnyConnection,
    number: &str,
    input: &CaseInput,
    now: Millis,
) -> Result<bool, CaseError> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT id FROM cases WHERE number = $1").bind(number).fetch_optional(&mut *conn).await?;
    if exists.is_some() {
        return Ok(false);
    }
    insert_numbered(conn, number, input, "loket", now).await?;
    if let Some((year, seq)) =
        number.split_once('-').and_then(|(year, seq)| Some((year.parse().ok()?, seq.parse().ok()?)))
    {
        bump_sequence(conn, year, seq).await?;
    }
    Ok(true)
}

async fn insert_numbered(
    conn: &mut AnyConnection,
    number: &str,
    input: &CaseInput,
    actor_name: &str,
    now: Millis,
) -> Result<CaseId, CaseError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO cases (number, contact_id, account_id, service_code, request_type, channel, support_line, status,
                            priority, owner_id, queue_code, subject, custom_fields, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'new', $8, $9, $10, $11, $12, $13, $13) RETURNING id",
    )
    .bind(number)
    .bind(input.contact_id)
    .bind(input.account_id)
    .bind(&input.service_code)
    .bind(&input.case_type)
    .bind(&input.channel)
    .bind(input.support_line)
    .bind(input.priority)
    .bind(input.owner_id)
    .bind(input.queue_code.as_deref())
    .bind(input.subject.trim())
    .bind(Value::Object(input.custom_fields.clone()).to_string())
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await?;
    let entry = NewEntry {
        case_id: Some(id),
        contact_id: None,
        kind: "created",
        actor_name,
        public: true,
        summary: Summary::new("timeline-created")
            .arg("number", number)
            .term("channel", format!("channel-{}", input.channel)),
        body: None,
    };
    timeline::append(conn, &entry, now).await?;
    Ok(CaseId(id))
}

/// Numbers are per year and gap-free within a committed transaction: the row lock of the upsert
/// orders concurrent inserts.
async fn next_number(conn: &mut AnyConnection, year: i32) -> Result<String, sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO case_number_sequence (year, last_seq) VALUES ($1, 1)
         ON CONFLICT (year) DO UPDATE SET last_seq = case_number_sequence.last_seq + 1 RETURNING last_seq",
    )
    .bind(i64::from(year))
    .fetch_one(conn)
    .await?;
    Ok(format!("{year}-{seq:06}"))
}

async fn bump_sequence(conn: &mut AnyConnection, year: i32, at_least: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_number_sequence (year, last_seq) VALUES ($1, $2)
         ON CONFLICT (year) DO UPDATE SET last_seq = CASE WHEN case_number_sequence.last_seq < $2 THEN $2
                                                          ELSE case_number_sequence.last_seq END",
    )
    .bind(i64::from(year))
    .bind(at_least)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn get(db: &Db, id: CaseId) -> Result<Option<Case>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT} WHERE c.id = $1")).bind(id.0).fetch_optional(db.pool()).await?;
    row.as_ref().map(case_from_row).transpose()
}

pub async fn id_by_number(db: &Db, number: &str) -> Result<Option<CaseId>, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM cases WHERE number = $1")
        .bind(number.trim())
        .fetch_optional(db.pool())
        .await?;
    Ok(id.map(CaseId))
}

/// Saves the editable fields; the caller has validated the custom fields against the case type.
pub async fn update(
    conn: &mut AnyConnection,
    id: CaseId,
    changes: &CaseChanges,
    actor_name: &str,
    now: Millis,
) -> Result<(), CaseError> {
    let done = sqlx::query(
        "UPDATE cases SET subject = $1, priority = $2, owner_id = $3, custom_fields = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(changes.subject.trim())
    .bind(changes.priority)
    .bind(changes.owner_id)
    .bind(Value::Object(changes.custom_fields.clone()).to_string())
    .bind(now.0)
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(CaseError::NotFound);
    }
    let entry = NewEntry {
        case_id: Some(id.0),
        contact_id: None,
        kind: "edit",
        actor_name,
        public: false,
        summary: Summary::new("timeline-changed"),
        body: None,
    };
    timeline::append(conn, &entry, now).await?;
    Ok(())
}

/// Gives a case that has no citizen yet its contact: an agent recognised the caller.
pub async fn set_contact(
    conn: &mut AnyConnection,
    id: CaseId,
    contact_id: i64,
    actor_name: &str,
    now: Millis,
) -> Result<(), CaseError> {
    let done = sqlx::query("UPDATE cases SET contact_id = $1, updated_at = $2 WHERE id = $3 AND contact_id IS NULL")
        .bind(contact_id)
        .bind(now.0)
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(CaseError::NotFound);
    }
    let entry = NewEntry {
        case_id: Some(id.0),
        contact_id: Some(contact_id),
        kind: "link",
        actor_name,
        public: false,
        summary: Summary::new("timeline-contact-linked"),
        body: None,
    };
    timeline::append(conn, &entry, now).await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct CaseChanges {
    pub subject: String,
    pub priority: i64,
    pub owner_id: Option<i64>,
    pub custom_fields: Map<String, Value>,
}

pub async fn set_status(
    conn: &mut AnyConnection,
    id: CaseId,
    status: CaseStatus,
    reason: Option<&str>,
    actor_name: &str,
    now: Millis,
) -> Result<(), CaseError> {
    let reason = reason.map(str::trim).filter(|reason| !reason.is_empty());
    if status == CaseStatus::Closed && !reason.is_some_and(|reason| CLOSE_REASONS.contains(&reason)) {
        return Err(CaseError::CloseReasonRequired);
    }
    let closed_at = (status == CaseStatus::Closed).then_some(now.0);
    let done =
        sqlx::query("UPDATE cases SET status = $1, status_reason = $2, closed_at = $3, updated_at = $4 WHERE id = $5")
            .bind(status.as_str())
            .bind(reason)
            .bind(closed_at)
            .bind(now.0)
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
    if done.rows_affected() == 0 {
        return Err(CaseError::NotFound);
    }
    let summary = match reason {
        Some(reason) => Summary::new("timeline-status-reason").term("reason", format!("reason-{reason}")),
        None => Summary::new("timeline-status"),
    }
    .term("status", format!("status-{status}"));
    let entry = NewEntry {
        case_id: Some(id.0),
        contact_id: None,
        kind: "status",
        actor_name,
        public: true,
        summary,
        body: None,
    };
    timeline::append(conn, &entry, now).await?;
    Ok(())
}

pub async fn assign(
    conn: &mut AnyConnection,
    id: CaseId,
    owner: Option<(i64, &str)>,
    actor_name: &str,
    now: Millis,
) -> Result<(), CaseError> {
    let done = sqlx::query("UPDATE cases SET owner_id = $1, updated_at = $2 WHERE id = $3")
        .bind(owner.map(|(owner_id, _)| owner_id))
        .bind(now.0)
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(CaseError::NotFound);
    }
    let summary = match owner {
        Some((_, name)) => Summary::new("timeline-assigned").arg("name", name),
        None => Summary::new("timeline-unassigned"),
    };
    let entry = NewEntry {
        case_id: Some(id.0),
        contact_id: None,
        kind: "assign",
        actor_name,
        public: false,
        summary,
        body: None,
    };
    timeline::append(conn, &entry, now).await?;
    Ok(())
}

/// Hands the case to the expert team that the rules for its type choose (the type's own team,
/// else the service's line-3 queue). The expert sees the whole history: it is on the case.
pub async fn escalate(
    conn: &mut AnyConnection,
    id: CaseId,
    note: &str,
    actor_name: &str,
    now: Millis,
) -> Result<String, CaseError> {
    let row = sqlx::query(
        "SELECT c.service_code, t.expert_team FROM cases c LEFT JOIN case_types t ON t.code = c.request_type WHERE c.id = $1",
    )
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CaseError::NotFound)?;
    let service: String = row.try_get("service_code")?;
    let type_team: Option<String> = row.try_get("expert_team")?;
    let candidates = [type_team, Some(format!("{service}-l3"))];
    let mut team = None;
    for candidate in candidates.into_iter().flatten() {
        let exists: Option<String> = sqlx::query_scalar("SELECT code FROM queues WHERE code = $1 AND support_line = 3")
            .bind(&candidate)
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_some() {
            team = Some(candidate);
            break;
        }
    }
    let team = team.ok_or(CaseError::NoExpertTeam)?;
    sqlx::query(
        "UPDATE cases SET support_line = 3, status = 'escalated', status_reason = 'expert_knowledge_requested',
                expert_team = $1, queue_code = $1, owner_id = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(&team)
    .bind(now.0)
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    let entry = NewEntry {
        case_id: Some(id.0),
        contact_id: None,
        kind: "escalation",
        actor_name,
        public: false,
        summary: Summary::new("timeline-escalated").arg("team", &team),
        body: Some(note.trim().to_owned()).filter(|note| !note.is_empty()),
    };
    timeline::append(conn, &entry, now).await?;
    Ok(team)
}

pub async fn link(conn: &mut AnyConnection, a: CaseId, b: CaseId) -> Result<(), sqlx::Error> {
    for (from, to) in [(a, b), (b, a)] {
        sqlx::query("INSERT INTO case_links (case_id, related_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(from.0)
            .bind(to.0)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RelatedCase {
    pub id: i64,
    pub number: String,
    pub subject: String,
    pub status: String,
}

pub async fn related(db: &Db, id: CaseId) -> Result<Vec<RelatedCase>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.id, c.number, c.subject, c.status FROM case_links l JOIN cases c ON c.id = l.related_id
         WHERE l.case_id = $1 ORDER BY c.id",
    )
    .bind(id.0)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RelatedCase {
                id: row.try_get("id")?,
                number: row.try_get("number")?,
                subject: row.try_get("subject")?,
                status: row.try_get("status")?,
            })
        })
        .collect()
}

/// A new case with the same contact, type and fields, linked to the original.
pub async fn clone_case(
    conn: &mut AnyConnection,
    id: CaseId,
    year: i32,
    actor_name: &str,
    now: Millis,
) -> Result<(CaseId, String), CaseError> {
    let row = sqlx::query(&format!("{SELECT} WHERE c.id = $1")).bind(id.0).fetch_optional(&mut *conn).await?;
    let original = row.as_ref().map(case_from_row).transpose()?.ok_or(CaseError::NotFound)?;
    let input = CaseInput {
        contact_id: original.contact_id,
        account_id: original.account_id,
        service_code: original.service_code,
        case_type: original.case_type,
        channel: original.channel,
        support_line: original.support_line,
        priority: original.priority,
        owner_id: None,
        queue_code: original.queue_code,
        subject: original.subject,
        custom_fields: original.custom_fields,
    };
    let (new_id, number) = insert(conn, &input, year, actor_name, now).await?;
    link(conn, id, new_id).await?;
    let entry = NewEntry {
        case_id: Some(id.0),
        contact_id: None,
        kind: "link",
        actor_name,
        public: false,
        summary: Summary::new("timeline-cloned").arg("number", &number),
        body: None,
    };
    timeline::append(conn, &entry, now).await?;
    Ok((new_id, number))
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct CaseFilter {
    pub status: Option<String>,
    pub service: Option<String>,
    pub queue: Option<String>,
    pub support_line: Option<i64>,
    /// `me`, `none`, or empty for anyone.
    pub owner: Option<String>,
    /// A case number or words of the subject.
    pub text: Option<String>,
    pub contact_id: Option<i64>,
    pub account_id: Option<i64>,
    /// `updated` (newest first, the default), `created`, `priority`, `number`.
    pub sort: Option<String>,
    pub page: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseRow {
    pub id: i64,
    pub number: String,
    pub subject: String,
    pub status: String,
    pub service_code: String,
    pub case_type: String,
    pub channel: String,
    pub support_line: i64,
    pub priority: i64,
    pub owner_name: Option<String>,
    pub contact_name: Option<String>,
    pub updated_at: i64,
}

pub const PAGE_SIZE: i64 = 50;

/// Lists count their matches up to this many; more shows as "1000+".
pub const COUNT_CAP: i64 = 1_000;

/// One page of cases for a list view, and how many match (at most `COUNT_CAP + 1`).
pub async fn list(db: &Db, filter: &CaseFilter, me: i64) -> Result<(Vec<CaseRow>, i64), sqlx::Error> {
    let non_empty =
        |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let mut conditions = Conditions::default();
    if let Some(status) = non_empty(&filter.status) {
        conditions.add("c.status = ", Bound::Text(status));
    }
    if let Some(service) = non_empty(&filter.service) {
        conditions.add("c.service_code = ", Bound::Text(service));
    }
    if let Some(queue) = non_empty(&filter.queue) {
        conditions.add("c.queue_code = ", Bound::Text(queue));
    }
    if let Some(line) = filter.support_line {
        conditions.add("c.support_line = ", Bound::Int(line));
    }
    match non_empty(&filter.owner).as_deref() {
        Some("me") => conditions.add("c.owner_id = ", Bound::Int(me)),
        Some("none") => conditions.sql.push("c.owner_id IS NULL".to_owned()),
        _ => {}
    }
    // Where the SQLite trigram condition sits in `conditions`, if there is one.
    let mut subject_match = None;
    if let Some(text) = non_empty(&filter.text) {
        // A case number is looked up exactly (an index hit); other text searches the subjects.
        if looks_like_case_number(&text) {
            conditions.add("c.number = ", Bound::Text(text));
        } else if db.backend() == Backend::Sqlite && text.chars().count() >= 3 {
            // The trigram index (migration 0006) matches a quoted phrase as a substring.
            let phrase = format!("\"{}\"", text.replace('"', "\"\""));
            subject_match = Some(conditions.sql.len());
            conditions.add_sql(Bound::Text(phrase), |n| {
                format!("c.id IN (SELECT rowid FROM case_subjects WHERE case_subjects MATCH ${n})")
            });
        } else {
            conditions.add_like("lower(c.subject)", like_pattern(&text.to_lowercase(), LikePosition::Contains));
        }
    }
    if let Some(contact_id) = filter.contact_id {
        conditions.add("c.contact_id = ", Bound::Int(contact_id));
    }
    if let Some(account_id) = filter.account_id {
        conditions.add("c.account_id = ", Bound::Int(account_id));
    }
    let order = match filter.sort.as_deref() {
        Some("created") => "c.created_at ASC, c.id ASC",
        Some("priority") => "c.priority DESC, c.updated_at DESC, c.id DESC",
        Some("number") => "c.number DESC",
        _ => "c.updated_at DESC, c.id DESC",
    };
    // Counting stops past COUNT_CAP: an exact "53,217" costs a scan of every match and helps nobody.
    let count_sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM cases c {} LIMIT {}) matches",
        conditions.where_clause(),
        COUNT_CAP + 1
    );
    // Not prepared statements (`persistent(false)`): PostgreSQL plans those, after five runs, once
    // for any value, and a plan that suits a common word ("attest", every eighth case) walks the
    // whole table for a rare one. Planning with the values costs about a millisecond.
    let total: i64 =
        conditions.bind(sqlx::query(&count_sql).persistent(false)).fetch_one(db.pool()).await?.try_get(0)?;
    if let Some(index) = subject_match.filter(|_| total > COUNT_CAP) {
        // A common word: walking the cases in list order and testing each against the matches
        // stops after a page (8 ms with 12,000 matches in 100,000), where fetching and sorting
        // every match took 30 ms. A rare word is faster the other way round. The unary plus keeps
        // SQLite from driving the query by the IN list.
        conditions.sql[index].insert(0, '+');
    }
    let page = filter.page.unwrap_or(1).max(1);
    let where_clause = conditions.where_clause();
    let next = conditions.values.len();
    let sql = format!(
        // The page is cut from `cases` alone, and only its rows are joined: joining before the
        // OFFSET made deep pages join every skipped row.
        "SELECT c.id, c.number, c.subject, c.status, c.service_code, c.request_type, c.channel, c.support_line,
                c.priority, u.display_name AS owner_name, p.first_name, p.last_name, c.updated_at
         FROM (SELECT * FROM cases c {where_clause} ORDER BY {order} LIMIT ${} OFFSET ${}) c
         LEFT JOIN users u ON u.id = c.owner_id LEFT JOIN contacts p ON p.id = c.contact_id
         ORDER BY {order}",
        next + 1,
        next + 2
    );
    let rows = conditions
        .bind(sqlx::query(&sql).persistent(false))
        .bind(PAGE_SIZE)
        .bind((page - 1) * PAGE_SIZE)
        .fetch_all(db.pool())
        .await?;
    let rows = rows
        .iter()
        .map(|row| {
            let first: Option<String> = row.try_get("first_name")?;
            let last: Option<String> = row.try_get("last_name")?;
            Ok(CaseRow {
                id: row.try_get("id")?,
                number: row.try_get("number")?,
                subject: row.try_get("subject")?,
                status: row.try_get("status")?,
                service_code: row.try_get("service_code")?,
                case_type: row.try_get("request_type")?,
                channel: row.try_get("channel")?,
                support_line: row.try_get("support_line")?,
                priority: row.try_get("priority")?,
                owner_name: row.try_get("owner_name")?,
                contact_name: first.zip(last).map(|(first, last)| format!("{first} {last}")),
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((rows, total))
}

/// The WHERE clause of a list, with only the filters that are set: a condition on a NULL
/// parameter (`$1 IS NULL OR …`) would keep both engines from using their indexes.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    values: Vec<Bound>,
}

enum Bound {
    Text(String),
    Int(i64),
}

impl Conditions {
    fn add(&mut self, left: &str, value: Bound) {
        self.add_sql(value, |n| format!("{left}${n}"));
    }

    fn add_like(&mut self, column: &str, pattern: String) {
        self.add_sql(Bound::Text(pattern), |n| format!("{column} LIKE ${n} ESCAPE '\\'"));
    }

    /// A condition on one value, given the number of its placeholder.
    fn add_sql(&mut self, value: Bound, sql: impl FnOnce(usize) -> String) {
        self.values.push(value);
        self.sql.push(sql(self.values.len()));
    }

    fn where_clause(&self) -> String {
        if self.sql.is_empty() { String::new() } else { format!("WHERE {}", self.sql.join(" AND ")) }
    }

    fn bind<'q>(
        &'q self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for value in &self.values {
            query = match value {
                Bound::Text(text) => query.bind(text.as_str()),
                Bound::Int(number) => query.bind(*number),
            };
        }
        query
    }
}

/// `2026-000042`.
fn looks_like_case_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 11 && bytes[4] == b'-' && bytes.iter().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit())
}

const SELECT: &str = "SELECT c.id, c.number, c.contact_id, c.account_id, c.service_code, c.request_type, c.channel,
        c.support_line, c.status, c.status_reason, c.priority, c.owner_id, u.display_name AS owner_name, c.queue_code,
        c.expert_team, c.subject, c.custom_fields, c.created_at, c.updated_at
    FROM cases c LEFT JOIN users u ON u.id = c.owner_id";

fn case_from_row(row: &AnyRow) -> Result<Case, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let custom: String = row.try_get("custom_fields")?;
    let custom_fields = match serde_json::from_str::<Value>(&custom) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok(Case {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        contact_id: row.try_get("contact_id")?,
        account_id: row.try_get("account_id")?,
        service_code: row.try_get("service_code")?,
        case_type: row.try_get("request_type")?,
        channel: row.try_get("channel")?,
        support_line: row.try_get("support_line")?,
        status: status.parse().map_err(|error: CaseError| sqlx::Error::Decode(Box::new(error)))?,
        status_reason: row.try_get("status_reason")?,
        priority: row.try_get("priority")?,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        queue_code: row.try_get("queue_code")?,
        expert_team: row.try_get("expert_team")?,
        subject: row.try_get("subject")?,
        custom_fields,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
