//! The timeline of a case and of a contact: every interaction and change, appended in order.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::Db;
use crate::i18n::{Language, Texts};

pub struct NewEntry<'a> {
    pub case_id: Option<i64>,
    pub contact_id: Option<i64>,
    /// `call`, `email_in`, `email_out`, `web_form`, `facebook`, `note`, `status`, `document`,
    /// `escalation`, `merge`, `created`, `link`.
    pub kind: &'a str,
    pub actor_name: &'a str,
    /// Public entries may be shown to the citizen (portal, replies); internal ones never are.
    pub public: bool,
    pub summary: Summary,
    pub body: Option<String>,
}

/// What an entry says, kept as a message of the console's locales with its arguments rather than
/// as text: an entry written during a Dutch-speaking agent's call is read by a French-speaking
/// expert. Stored as JSON in `timeline.summary`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub key: String,
    /// Shown as they are: case numbers, names, subjects.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// Message keys (a status, a channel), translated before they are put in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub terms: BTreeMap<String, String>,
}

impl Summary {
    pub fn new(key: &str) -> Summary {
        Summary { key: key.to_owned(), args: BTreeMap::new(), terms: BTreeMap::new() }
    }

    pub fn arg(mut self, name: &str, value: impl Into<String>) -> Summary {
        self.args.insert(name.to_owned(), value.into());
        self
    }

    pub fn term(mut self, name: &str, key: impl Into<String>) -> Summary {
        self.terms.insert(name.to_owned(), key.into());
        self
    }

    pub fn text(&self, language: Language) -> String {
        let args: Vec<(&str, String)> = self
            .args
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .chain(self.terms.iter().map(|(name, key)| (name.as_str(), language.text(key))))
            .collect();
        language.text_with(&self.key, &args)
    }

    fn stored(&self) -> String {
        serde_json::to_string(self).expect("a map of strings serializes")
    }

    /// Text that is not a stored summary is shown as it is rather than lost.
    fn from_stored(text: String) -> Summary {
        serde_json::from_str(&text).unwrap_or_else(|_| Summary::new("timeline-text").arg("text", text))
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: i64,
    pub case_id: Option<i64>,
    pub case_number: Option<String>,
    pub kind: String,
    pub actor_name: String,
    pub public: bool,
    pub summary: Summary,
    pub body: Option<String>,
}

pub async fn append(conn: &mut AnyConnection, entry: &NewEntry<'_>, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timeline (at, case_id, contact_id, kind, actor_name, visibility, summary, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(now.0)
    .bind(entry.case_id)
    .bind(entry.contact_id)
    .bind(entry.kind)
    .bind(entry.actor_name)
    .bind(if entry.public { "public" } else { "internal" })
    .bind(entry.summary.stored())
    .bind(entry.body.as_deref())
    .execute(conn)
    .await
    .map(|_| ())
}

/// Newest first.
pub async fn for_case(db: &Db, case_id: i64, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    let rows = sqlx::query(&format!("{SELECT} WHERE t.case_id = $1 ORDER BY t.id DESC LIMIT $2"))
        .bind(case_id)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(entry_from_row).collect()
}

/// Everything about a contact, on its own record and on its cases, newest first.
pub async fn for_contact(db: &Db, contact_id: i64, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    // Two index lookups joined by UNION ALL: with an OR between them PostgreSQL scanned the table.
    let rows = sqlx::query(&format!(
        "SELECT * FROM ({SELECT} WHERE t.case_id IN (SELECT id FROM cases WHERE contact_id = $1)
         UNION ALL {SELECT} WHERE t.contact_id = $1 AND t.case_id IS NULL) entries
         ORDER BY id DESC LIMIT $2"
    ))
    .bind(contact_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(entry_from_row).collect()
}

const SELECT: &str = "SELECT t.id, t.at, t.case_id, c.number AS case_number, t.kind, t.actor_name, t.visibility,
        t.summary, t.body
    FROM timeline t LEFT JOIN cases c ON c.id = t.case_id";

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        case_id: row.try_get("case_id")?,
        case_number: row.try_get("case_number")?,
        kind: row.try_get("kind")?,
        actor_name: row.try_get("actor_name")?,
        public: row.try_get::<String, _>("visibility")? == "public",
        summary: Summary::from_stored(row.try_get("summary")?),
        body: row.try_get("body")?,
    })
}
