//! Citizens. The national register number is stored as its 11 digits for exact lookup; it leaves
//! this crate only masked.

use loket_be::NationalRegisterNumber;
use sqlx::AnyConnection;

use crate::clock::Millis;
use crate::i18n::Language;

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Address {
    pub street: String,
    pub postcode: String,
    pub city: String,
}

pub struct NewContact<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub national_number: Option<&'a NationalRegisterNumber>,
    pub language: Language,
    pub phone_e164: Option<&'a str>,
    pub email: Option<&'a str>,
    pub address: Option<&'a Address>,
}

/// Inserts a contact unless one with the same national register number exists; returns the id
/// of the contact either way.
pub async fn insert_or_find(
    conn: &mut AnyConnection,
    contact: &NewContact<'_>,
    now: Millis,
) -> Result<i64, sqlx::Error> {
    let digits = contact.national_number.map(NationalRegisterNumber::digits);
    if let Some(digits) = &digits {
        let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM contacts WHERE national_number = $1")
            .bind(digits)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(id) = existing {
            return Ok(id);
        }
    }
    let address = contact.address;
    sqlx::query_scalar(
        "INSERT INTO contacts (first_name, last_name, national_number, language, phone_e164, email,
                               street, postcode, city, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(contact.first_name)
    .bind(contact.last_name)
    .bind(digits)
    .bind(contact.language.code())
    .bind(contact.phone_e164)
    .bind(contact.email)
    .bind(address.map(|a| a.street.as_str()))
    .bind(address.map(|a| a.postcode.as_str()))
    .bind(address.map(|a| a.city.as_str()))
    .bind(now.0)
    .fetch_one(conn)
    .await
}
