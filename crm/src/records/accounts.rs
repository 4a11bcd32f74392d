//! Business accounts: companies and their enterprise number, the base of the tax dossiers.

use loket_be::EnterpriseNumber;
use sqlx::AnyConnection;

use crate::clock::Millis;
use crate::records::contacts::Address;

pub struct NewAccount<'a> {
    pub enterprise_number: &'a EnterpriseNumber,
    pub name: &'a str,
    pub legal_form: Option<&'a str>,
    pub address: Option<&'a Address>,
}

/// Inserts an account unless its enterprise number is known; returns the id either way.
pub async fn insert_or_find(
    conn: &mut AnyConnection,
    account: &NewAccount<'_>,
    now: Millis,
) -> Result<i64, sqlx::Error> {
    let digits = account.enterprise_number.digits();
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE enterprise_number = $1")
        .bind(&digits)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let address = account.address;
    sqlx::query_scalar(
        "INSERT INTO accounts (enterprise_number, name, legal_form, street, postcode, city, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&digits)
    .bind(account.name)
    .bind(account.legal_form)
    .bind(address.map(|a| a.street.as_str()))
    .bind(address.map(|a| a.postcode.as_str()))
    .bind(address.map(|a| a.city.as_str()))
    .bind(now.0)
    .fetch_one(conn)
    .await
}
