//! Business accounts: companies with their enterprise number, establishments and the contacts who
//! speak for them; the base of the tax dossiers.

use loket_be::EnterpriseNumber;
use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::{Db, LikePosition, like_pattern};
use crate::records::contacts::Address;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AccountId(pub i64);

pub struct AccountInput {
    pub enterprise_number: EnterpriseNumber,
    pub name: String,
    pub legal_form: Option<String>,
    pub vat_registered: bool,
    pub address: Address,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Account {
    pub id: i64,
    /// `0403.019.261`.
    pub enterprise_number: String,
    /// `BE0403019261` when the enterprise is VAT-registered.
    pub vat_number: Option<String>,
    pub name: String,
    pub legal_form: Option<String>,
    pub address: Address,
    pub establishments: Vec<Establishment>,
    pub contacts: Vec<LinkedContact>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Establishment {
    pub establishment_number: Option<String>,
    pub name: Option<String>,
    pub address: Address,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkedContact {
    pub contact_id: i64,
    pub name: String,
    pub role: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with enterprise number {0} exists")]
    DuplicateEnterpriseNumber(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn insert(conn: &mut AnyConnection, input: &AccountInput, now: Millis) -> Result<AccountId, AccountError> {
    if find_by_enterprise_number(conn, &input.enterprise_number).await?.is_some() {
        return Err(AccountError::DuplicateEnterpriseNumber(input.enterprise_number.to_string()));
    }
    let id = sqlx::query_scalar(
        "INSERT INTO accounts (enterprise_number, name, legal_form, vat_registered, street, postcode, city, search_name,
                               created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(input.enterprise_number.digits())
    .bind(input.name.trim())
    .bind(input.legal_form.as_deref())
    .bind(i64::from(input.vat_registered))
    .bind(&input.address.street)
    .bind(&input.address.postcode)
    .bind(&input.address.city)
    .bind(input.name.trim().to_lowercase())
    .bind(now.0)
    .fetch_one(conn)
    .await?;
    Ok(AccountId(id))
}

pub async fn find_by_enterprise_number(
    conn: &mut AnyConnection,
    number: &EnterpriseNumber,
) -> Result<Option<AccountId>, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE enterprise_number = $1")
        .bind(number.digits())
        .fetch_optional(conn)
        .await?;
    Ok(id.map(AccountId))
}

pub async fn add_establishment(
    conn: &mut AnyConnection,
    account: AccountId,
    establishment: &Establishment,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO establishments (account_id, establishment_number, name, street, postcode, city)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account.0)
    .bind(establishment.establishment_number.as_deref())
    .bind(establishment.name.as_deref())
    .bind(&establishment.address.street)
    .bind(&establishment.address.postcode)
    .bind(&establishment.address.city)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn link_contact(
    conn: &mut AnyConnection,
    account: AccountId,
    contact_id: i64,
    role: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_contacts (account_id, contact_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(account.0)
    .bind(contact_id)
    .bind(role)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn get(db: &Db, id: AccountId) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, enterprise_number, name, legal_form, vat_registered, street, postcode, city FROM accounts WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let establishments = sqlx::query(
        "SELECT establishment_number, name, street, postcode, city FROM establishments WHERE account_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(Establishment {
            establishment_number: row.try_get("establishment_number")?,
            name: row.try_get("name")?,
            address: address_from_row(row)?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let contacts = sqlx::query(
        "SELECT ac.contact_id, c.first_name, c.last_name, ac.role FROM account_contacts ac
         JOIN contacts c ON c.id = ac.contact_id WHERE ac.account_id = $1 ORDER BY c.last_name",
    )
    .bind(id.0)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(LinkedContact {
            contact_id: row.try_get("contact_id")?,
            name: format!("{} {}", row.try_get::<String, _>("first_name")?, row.try_get::<String, _>("last_name")?),
            role: row.try_get("role")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let digits: String = row.try_get("enterprise_number")?;
    let number = EnterpriseNumber::parse(&digits).map(|number| number.to_string()).unwrap_or(digits.clone());
    let vat_registered: i64 = row.try_get("vat_registered")?;
    Ok(Some(Account {
        id: id.0,
        enterprise_number: number,
        vat_number: (vat_registered != 0).then(|| format!("BE{digits}")),
        name: row.try_get("name")?,
        legal_form: row.try_get("legal_form")?,
        address: address_from_row(&row)?,
        establishments,
        contacts,
    }))
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountSummary {
    pub id: i64,
    pub enterprise_number: String,
    pub name: String,
    pub city: Option<String>,
}

/// By name (any part) or by enterprise number in any written form.
pub async fn search(db: &Db, text: &str, limit: i64) -> Result<Vec<AccountSummary>, sqlx::Error> {
    let digits = EnterpriseNumber::parse(text).ok().map(|number| number.digits());
    let pattern = like_pattern(&text.trim().to_lowercase(), LikePosition::Contains);
    let rows = sqlx::query(
        "SELECT id, enterprise_number, name, city FROM accounts WHERE search_name LIKE $1 ESCAPE '\\' OR enterprise_number = $2
         ORDER BY name, id LIMIT $3",
    )
    .bind(pattern)
    .bind(digits.unwrap_or_default())
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(summary_from_row).collect()
}

fn address_from_row(row: &sqlx::any::AnyRow) -> Result<Address, sqlx::Error> {
    Ok(Address {
        street: row.try_get::<Option<String>, _>("street")?.unwrap_or_default(),
        postcode: row.try_get::<Option<String>, _>("postcode")?.unwrap_or_default(),
        city: row.try_get::<Option<String>, _>("city")?.unwrap_or_default(),
    })
}

/// The companies a contact speaks for.
pub async fn for_contact(db: &Db, contact_id: i64) -> Result<Vec<AccountSummary>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.id, a.enterprise_number, a.name, a.city FROM accounts a
         JOIN account_contacts ac ON ac.account_id = a.id WHERE ac.contact_id = $1 ORDER BY a.name",
    )
    .bind(contact_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(summary_from_row).collect()
}

fn summary_from_row(row: &sqlx::any::AnyRow) -> Result<AccountSummary, sqlx::Error> {
    let digits: String = row.try_get("enterprise_number")?;
    Ok(AccountSummary {
        id: row.try_get("id")?,
        enterprise_number: EnterpriseNumber::parse(&digits).map(|n| n.to_string()).unwrap_or(digits),
        name: row.try_get("name")?,
        city: row.try_get("city")?,
    })
}
