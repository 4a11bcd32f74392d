//! E-mail templates and canned answers, in NL, FR and EN, edited by the municipality's admin.
//! Their text is minijinja with the variables of `mail::TemplateContext`.

use sqlx::{AnyConnection, Row};

use crate::db::Db;
use crate::i18n::Language;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EmailTemplate {
    pub code: String,
    pub language: Language,
    /// `template` (a whole message) or `canned` (an answer to paste into one).
    pub kind: String,
    pub title: String,
    pub subject: String,
    pub body: String,
}

pub async fn insert_if_absent(conn: &mut AnyConnection, template: &EmailTemplate) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO email_templates (code, language, kind, title, subject, body) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (code, language) DO NOTHING",
    )
    .bind(&template.code)
    .bind(template.language.code())
    .bind(&template.kind)
    .bind(&template.title)
    .bind(&template.subject)
    .bind(&template.body)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn save(db: &Db, template: &EmailTemplate) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_templates (code, language, kind, title, subject, body) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (code, language) DO UPDATE SET kind = excluded.kind, title = excluded.title,
             subject = excluded.subject, body = excluded.body",
    )
    .bind(&template.code)
    .bind(template.language.code())
    .bind(&template.kind)
    .bind(&template.title)
    .bind(&template.subject)
    .bind(&template.body)
    .execute(db.pool())
    .await
    .map(|_| ())
}

pub async fn get(db: &Db, code: &str, language: Language) -> Result<Option<EmailTemplate>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT} WHERE code = $1 AND language = $2"))
        .bind(code)
        .bind(language.code())
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(template_from_row).transpose()
}

pub async fn all(db: &Db) -> Result<Vec<EmailTemplate>, sqlx::Error> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY kind DESC, code, language")).fetch_all(db.pool()).await?;
    rows.iter().map(template_from_row).collect()
}

const SELECT: &str = "SELECT code, language, kind, title, subject, body FROM email_templates";

fn template_from_row(row: &sqlx::any::AnyRow) -> Result<EmailTemplate, sqlx::Error> {
    let language: String = row.try_get("language")?;
    Ok(EmailTemplate {
        code: row.try_get("code")?,
        language: Language::from_code(&language).unwrap_or_default(),
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
    })
}
