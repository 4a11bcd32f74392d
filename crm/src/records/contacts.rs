//! Citizens. The national register number is stored as its 11 digits for exact lookup; it leaves
//! this module only inside a `NationalRegisterNumber`, which masks itself. Every read of a
//! contact's personal data goes through `read` or `find_by_national_number`, which write the audit
//! row with the reader and the purpose.

use loket_be::{NationalRegisterNumber, PhoneNumber};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::{Db, LikePosition, like_pattern};
use crate::i18n::Language;
use crate::records::audit::{self, Actor, AuditEntry};
use crate::records::timeline::{self, NewEntry, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ContactId(pub i64);

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Address {
    pub street: String,
    pub postcode: String,
    pub city: String,
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub id: ContactId,
    pub first_name: String,
    pub last_name: String,
    pub national_number: Option<NationalRegisterNumber>,
    pub language: Language,
    pub preferred_channel: Option<String>,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub address: Address,
    pub merged_into: Option<ContactId>,
}

/// A line in a list or search result: enough to recognise the person, nothing more.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContactSummary {
    pub id: i64,
    pub name: String,
    pub masked_national_number: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub city: Option<String>,
}

pub struct ContactInput {
    pub first_name: String,
    pub last_name: String,
    pub national_number: Option<NationalRegisterNumber>,
    pub language: Language,
    pub preferred_channel: Option<String>,
    pub phones: Vec<PhoneNumber>,
    pub emails: Vec<String>,
    pub address: Address,
}

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("another contact has this national register number")]
    DuplicateNationalNumber(ContactId),
    #[error("a contact cannot be merged into itself or into a merged contact")]
    InvalidMerge,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn insert(conn: &mut AnyConnection, input: &ContactInput, now: Millis) -> Result<ContactId, ContactError> {
    ensure_number_free(conn, input, None).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO contacts (first_name, last_name, national_number, language, preferred_channel,
                               street, postcode, city, search_name, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
    )
    .bind(input.first_name.trim())
    .bind(input.last_name.trim())
    .bind(input.national_number.as_ref().map(NationalRegisterNumber::digits))
    .bind(input.language.code())
    .bind(input.preferred_channel.as_deref())
    .bind(&input.address.street)
    .bind(&input.address.postcode)
    .bind(&input.address.city)
    .bind(search_name(&input.first_name, &input.last_name))
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await?;
    replace_phones_and_emails(conn, ContactId(id), input).await?;
    Ok(ContactId(id))
}

pub async fn update(
    conn: &mut AnyConnection,
    id: ContactId,
    input: &ContactInput,
    now: Millis,
) -> Result<(), ContactError> {
    ensure_number_free(conn, input, Some(id)).await?;
    sqlx::query(
        "UPDATE contacts SET first_name = $1, last_name = $2, national_number = $3, language = $4,
                preferred_channel = $5, street = $6, postcode = $7, city = $8, search_name = $9, updated_at = $10
         WHERE id = $11",
    )
    .bind(input.first_name.trim())
    .bind(input.last_name.trim())
    .bind(input.national_number.as_ref().map(NationalRegisterNumber::digits))
    .bind(input.language.code())
    .bind(input.preferred_channel.as_deref())
    .bind(&input.address.street)
    .bind(&input.address.postcode)
    .bind(&input.address.city)
    .bind(search_name(&input.first_name, &input.last_name))
    .bind(now.0)
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    replace_phones_and_emails(conn, id, input).await
}

/// Reads a contact's personal data for `reader`, writing the audit row first: no read without
/// its trace.
pub async fn read(
    db: &Db,
    reader: Actor<'_>,
    purpose: &str,
    id: ContactId,
    now: Millis,
) -> Result<Option<Contact>, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    let entry = AuditEntry {
        actor: reader,
        action: "contact.read",
        subject_type: "contact",
        subject_id: Some(id.0.to_string()),
        purpose: Some(purpose),
        detail: None,
    };
    audit::record(&mut *conn, &entry, now).await?;
    load(&mut conn, id).await
}

/// The exact search by national register number, audited with its purpose. The number itself is
/// not written to the audit log: the contact id it found is.
pub async fn find_by_national_number(
    db: &Db,
    reader: Actor<'_>,
    purpose: &str,
    number: &NationalRegisterNumber,
    now: Millis,
) -> Result<Option<ContactId>, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    let found = id_by_national_number(&mut conn, number).await?;
    let entry = AuditEntry {
        actor: reader,
        action: "contact.searched_by_national_number",
        subject_type: "contact",
        subject_id: found.map(|id| id.0.to_string()),
        purpose: Some(purpose),
        detail: Some(if found.is_some() { "found".to_owned() } else { "not found".to_owned() }),
    };
    audit::record(&mut *conn, &entry, now).await?;
    Ok(found)
}

/// Caller-ID matching: the live contacts with this phone number (at most `limit`), oldest first,
/// with their language. Audited like a search, without the number: the caller's identity is
/// personal data.
pub async fn by_phone(
    db: &Db,
    reader: Actor<'_>,
    purpose: &str,
    phone: &PhoneNumber,
    limit: i64,
    now: Millis,
) -> Result<Vec<(ContactId, Language)>, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    let rows = sqlx::query(
        "SELECT c.id, c.language FROM contacts c WHERE c.merged_into IS NULL
           AND c.id IN (SELECT contact_id FROM contact_phones WHERE e164 = $1) ORDER BY c.id LIMIT $2",
    )
    .bind(phone.e164())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let language: String = row.try_get("language")?;
        found.push((ContactId(row.try_get("id")?), Language::from_code(&language).unwrap_or_default()));
    }
    let entry = AuditEntry {
        actor: reader,
        action: "contact.matched_by_phone",
        subject_type: "contact",
        subject_id: found.first().map(|(id, _)| id.0.to_string()),
        purpose: Some(purpose),
        detail: Some(format!("{} found", found.len())),
    };
    audit::record(&mut *conn, &entry, now).await?;
    Ok(found)
}

/// Name (any part, case-insensitive), phone (any written form) or e-mail; merged contacts are
/// left out. The search is audited with its text: the result shows personal data.
pub async fn search(
    db: &Db,
    reader: Actor<'_>,
    text: &str,
    limit: i64,
    now: Millis,
) -> Result<Vec<ContactSummary>, sqlx::Error> {
    let text = text.trim();
    let phone = PhoneNumber::parse(text).ok().map(|phone| phone.e164().to_owned());
    let pattern = like_pattern(&text.to_lowercase(), LikePosition::Contains);
    let rows = sqlx::query(&format!(
        "{SUMMARY_SELECT} WHERE c.merged_into IS NULL AND (
             c.search_name LIKE $1 ESCAPE '\\'
             OR c.id IN (SELECT contact_id FROM contact_emails WHERE email = $2)
             OR c.id IN (SELECT contact_id FROM contact_phones WHERE e164 = $3))
         ORDER BY c.last_name, c.first_name, c.id LIMIT $4"
    ))
    .bind(&pattern)
    .bind(text.to_lowercase())
    .bind(phone.as_deref().unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let entry = AuditEntry {
        actor: reader,
        action: "contact.searched",
        subject_type: "contact",
        subject_id: None,
        purpose: Some("search"),
        detail: Some(format!("{text:?}: {} found", rows.len())),
    };
    audit::record(db.pool(), &entry, now).await?;
    rows.iter().map(summary_from_row).collect()
}

/// Other live contacts that share a phone, an e-mail or the full name with `input`.
pub async fn possible_duplicates(
    db: &Db,
    input: &ContactInput,
    except: Option<ContactId>,
) -> Result<Vec<ContactSummary>, sqlx::Error> {
    let phones: Vec<&str> = input.phones.iter().map(PhoneNumber::e164).collect();
    let mut found: Vec<ContactSummary> = Vec::new();
    let by_name = sqlx::query(&format!("{SUMMARY_SELECT} WHERE c.merged_into IS NULL AND c.search_name = $1"))
        .bind(search_name(&input.first_name, &input.last_name))
        .fetch_all(db.pool())
        .await?;
    for row in &by_name {
        found.push(summary_from_row(row)?);
    }
    for phone in phones {
        let rows = sqlx::query(&format!(
            "{SUMMARY_SELECT} WHERE c.merged_into IS NULL AND c.id IN (SELECT contact_id FROM contact_phones WHERE e164 = $1)"
        ))
        .bind(phone)
        .fetch_all(db.pool())
        .await?;
        for row in &rows {
            found.push(summary_from_row(row)?);
        }
    }
    for email in &input.emails {
        let rows = sqlx::query(&format!(
            "{SUMMARY_SELECT} WHERE c.merged_into IS NULL AND c.id IN (SELECT contact_id FROM contact_emails WHERE email = $1)"
        ))
        .bind(email.to_lowercase())
        .fetch_all(db.pool())
        .await?;
        for row in &rows {
            found.push(summary_from_row(row)?);
        }
    }
    found.sort_by_key(|summary| summary.id);
    found.dedup_by_key(|summary| summary.id);
    found.retain(|summary| Some(ContactId(summary.id)) != except);
    Ok(found)
}

/// Folds `duplicate` into `keep`: its cases, timeline, phones, e-mails and company links move,
/// the duplicate stays as a record pointing at `keep` so that its history can be followed.
pub async fn merge(
    conn: &mut AnyConnection,
    keep: ContactId,
    duplicate: ContactId,
    actor_name: &str,
    now: Millis,
) -> Result<(), ContactError> {
    let target_merged: Option<Option<i64>> = sqlx::query_scalar("SELECT merged_into FROM contacts WHERE id = $1")
        .bind(keep.0)
        .fetch_optional(&mut *conn)
        .await?;
    let source_merged: Option<Option<i64>> = sqlx::query_scalar("SELECT merged_into FROM contacts WHERE id = $1")
        .bind(duplicate.0)
        .fetch_optional(&mut *conn)
        .await?;
    if keep == duplicate || target_merged != Some(None) || source_merged != Some(None) {
        return Err(ContactError::InvalidMerge);
    }
    for statement in [
        "UPDATE cases SET contact_id = $1 WHERE contact_id = $2",
        "UPDATE timeline SET contact_id = $1 WHERE contact_id = $2",
        "INSERT INTO contact_phones (contact_id, e164) SELECT $1, e164 FROM contact_phones WHERE contact_id = $2
           AND e164 NOT IN (SELECT e164 FROM contact_phones WHERE contact_id = $1)",
        "INSERT INTO contact_emails (contact_id, email) SELECT $1, email FROM contact_emails WHERE contact_id = $2
           AND email NOT IN (SELECT email FROM contact_emails WHERE contact_id = $1)",
        "INSERT INTO account_contacts (account_id, contact_id, role) SELECT account_id, $1, role FROM account_contacts
           WHERE contact_id = $2 AND account_id NOT IN (SELECT account_id FROM account_contacts WHERE contact_id = $1)",
    ] {
        sqlx::query(statement).bind(keep.0).bind(duplicate.0).execute(&mut *conn).await?;
    }
    // The national number moves to the kept contact when it has none: it is unique, so it cannot
    // stay on both.
    let duplicate_number: Option<String> = sqlx::query_scalar("SELECT national_number FROM contacts WHERE id = $1")
        .bind(duplicate.0)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("UPDATE contacts SET national_number = NULL, merged_into = $1, updated_at = $2 WHERE id = $3")
        .bind(keep.0)
        .bind(now.0)
        .bind(duplicate.0)
        .execute(&mut *conn)
        .await?;
    if let Some(number) = duplicate_number {
        sqlx::query("UPDATE contacts SET national_number = $1 WHERE id = $2 AND national_number IS NULL")
            .bind(number)
            .bind(keep.0)
            .execute(&mut *conn)
            .await?;
    }
    let entry = NewEntry {
        case_id: None,
        contact_id: Some(keep.0),
        kind: "merge",
        actor_name,
        public: false,
        summary: Summary::new("timeline-merged").arg("id", duplicate.0.to_string()),
        body: None,
    };
    timeline::append(conn, &entry, now).await?;
    Ok(())
}

async fn load(conn: &mut AnyConnection, id: ContactId) -> Result<Option<Contact>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, first_name, last_name, national_number, language, preferred_channel, street, postcode, city,
                merged_into
         FROM contacts WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let phones = sqlx::query_scalar("SELECT e164 FROM contact_phones WHERE contact_id = $1 ORDER BY e164")
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
    let emails = sqlx::query_scalar("SELECT email FROM contact_emails WHERE contact_id = $1 ORDER BY email")
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
    let digits: Option<String> = row.try_get("national_number")?;
    let language: String = row.try_get("language")?;
    Ok(Some(Contact {
        id,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        // Stored numbers were validated on the way in; a year bound of 9999 only re-reads them.
        national_number: digits.and_then(|digits| NationalRegisterNumber::parse(&digits, 9999).ok()),
        language: Language::from_code(&language).unwrap_or_default(),
        preferred_channel: row.try_get("preferred_channel")?,
        phones,
        emails,
        address: Address {
            street: row.try_get::<Option<String>, _>("street")?.unwrap_or_default(),
            postcode: row.try_get::<Option<String>, _>("postcode")?.unwrap_or_default(),
            city: row.try_get::<Option<String>, _>("city")?.unwrap_or_default(),
        },
        merged_into: row.try_get::<Option<i64>, _>("merged_into")?.map(ContactId),
    }))
}

/// A national number belongs to one contact; `except` is the contact being edited.
async fn ensure_number_free(
    conn: &mut AnyConnection,
    input: &ContactInput,
    except: Option<ContactId>,
) -> Result<(), ContactError> {
    let Some(number) = &input.national_number else { return Ok(()) };
    match id_by_national_number(conn, number).await? {
        Some(existing) if Some(existing) != except => Err(ContactError::DuplicateNationalNumber(existing)),
        _ => Ok(()),
    }
}

async fn id_by_national_number(
    conn: &mut AnyConnection,
    number: &NationalRegisterNumber,
) -> Result<Option<ContactId>, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM contacts WHERE national_number = $1")
        .bind(number.digits())
        .fetch_optional(conn)
        .await?;
    Ok(id.map(ContactId))
}

async fn replace_phones_and_emails(
    conn: &mut AnyConnection,
    id: ContactId,
    input: &ContactInput,
) -> Result<(), ContactError> {
    sqlx::query("DELETE FROM contact_phones WHERE contact_id = $1").bind(id.0).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM contact_emails WHERE contact_id = $1").bind(id.0).execute(&mut *conn).await?;
    let mut phones: Vec<&str> = input.phones.iter().map(PhoneNumber::e164).collect();
    phones.sort_unstable();
    phones.dedup();
    for phone in phones {
        sqlx::query("INSERT INTO contact_phones (contact_id, e164) VALUES ($1, $2)")
            .bind(id.0)
            .bind(phone)
            .execute(&mut *conn)
            .await?;
    }
    let mut emails: Vec<String> = input.emails.iter().map(|email| email.trim().to_lowercase()).collect();
    emails.sort_unstable();
    emails.dedup();
    for email in emails {
        sqlx::query("INSERT INTO contact_emails (contact_id, email) VALUES ($1, $2)")
            .bind(id.0)
            .bind(email)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

const SUMMARY_SELECT: &str = "SELECT c.id, c.first_name, c.last_name, c.national_number, c.city,
        (SELECT MIN(e164) FROM contact_phones WHERE contact_id = c.id) AS phone,
        (SELECT MIN(email) FROM contact_emails WHERE contact_id = c.id) AS email
    FROM contacts c";

fn summary_from_row(row: &AnyRow) -> Result<ContactSummary, sqlx::Error> {
    let first: String = row.try_get("first_name")?;
    let last: String = row.try_get("last_name")?;
    let digits: Option<String> = row.try_get("national_number")?;
    Ok(ContactSummary {
        id: row.try_get("id")?,
        name: format!("{first} {last}"),
        masked_national_number: digits
            .and_then(|digits| NationalRegisterNumber::parse(&digits, 9999).ok())
            .map(|number| number.masked()),
        phone: row.try_get("phone")?,
        email: row.try_get("email")?,
        city: row.try_get("city")?,
    })
}

fn search_name(first: &str, last: &str) -> String {
    format!("{} {}", first.trim(), last.trim()).to_lowercase()
}

/// Plain reads for lists that show no more than a name, e.g. a case's contact line.
pub async fn display_name(db: &Db, id: ContactId) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT first_name, last_name FROM contacts WHERE id = $1")
        .bind(id.0)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| Ok(format!("{} {}", row.try_get::<String, _>("first_name")?, row.try_get::<String, _>("last_name")?)))
        .transpose()
}
