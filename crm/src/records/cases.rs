//! Cases: one citizen's or company's request, whatever channel it came in by.

use sqlx::AnyConnection;

use crate::clock::Millis;

pub struct NewCase<'a> {
    pub number: &'a str,
    pub contact_id: Option<i64>,
    pub account_id: Option<i64>,
    pub service_code: &'a str,
    pub request_type: &'a str,
    pub channel: &'a str,
    pub support_line: i64,
    pub status: &'a str,
    pub subject: &'a str,
}

/// Inserts the case unless its number exists; true when it was inserted.
pub async fn insert_if_absent(conn: &mut AnyConnection, case: &NewCase<'_>, now: Millis) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO cases (number, contact_id, account_id, service_code, request_type, channel, support_line,
                            status, subject, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (number) DO NOTHING",
    )
    .bind(case.number)
    .bind(case.contact_id)
    .bind(case.account_id)
    .bind(case.service_code)
    .bind(case.request_type)
    .bind(case.channel)
    .bind(case.support_line)
    .bind(case.status)
    .bind(case.subject)
    .bind(now.0)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
