//! The national register, consulted to create a contact from a valid number that the CRM does not
//! know yet (a caller who typed it in the IVR, an agent at the counter). Every consultation is
//! audited with its purpose, as the law on the register asks: the register logs them too, and
//! citizens see who looked them up.
//!
//! Two connectors: [`LocalRegister`], a file of people (the demo's is `crm/register.toml`), and
//! [`HttpRegister`], a client for the register gateway of the municipality's IT provider. The
//! register's own service is SOAP behind that provider; loket speaks one small JSON format to the
//! gateway, documented on [`HttpRegister`]. The number travels in the request body, never in a URL.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use loket_be::NationalRegisterNumber;
use serde::Deserialize;

use crate::clock::Millis;
use crate::db::Db;
use crate::i18n::Language;
use crate::records::audit::{self, Actor, AuditEntry};
use crate::records::contacts::{self, Address, ContactError, ContactId, ContactInput};

/// What the register says about a person: what a new contact needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterPerson {
    pub first_name: String,
    pub last_name: String,
    pub language: Option<Language>,
    pub address: Address,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the national register cannot be reached: {0}")]
    Unreachable(String),
    #[error("the national register refused the lookup (HTTP {0})")]
    Refused(u16),
    #[error("the national register's answer cannot be read: {0}")]
    BadAnswer(String),
}

pub type Lookup<'a> = Pin<Box<dyn Future<Output = Result<Option<RegisterPerson>, RegisterError>> + Send + 'a>>;

pub trait NationalRegister: Send + Sync {
    /// The person with this number, or `None` when the register has no such person.
    fn lookup<'a>(&'a self, number: &'a NationalRegisterNumber) -> Lookup<'a>;
}

/// People from a TOML file (`[[person]]` tables with `number`, names, `language` and address).
pub struct LocalRegister {
    people: HashMap<String, RegisterPerson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterFile {
    person: Vec<PersonEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonEntry {
    number: String,
    first_name: String,
    last_name: String,
    language: Option<String>,
    #[serde(default)]
    street: String,
    #[serde(default)]
    postcode: String,
    #[serde(default)]
    city: String,
}

impl LocalRegister {
    /// The demo's register (`crm/register.toml`).
    pub fn demo() -> LocalRegister {
        LocalRegister::parse("crm/register.toml", include_str!("../register.toml"), 2026)
            .expect("the demo register is valid")
    }

    /// `current_year` bounds the 2000+ rule of the numbers.
    pub fn parse(file: &str, text: &str, current_year: u16) -> Result<LocalRegister, String> {
        let parsed: RegisterFile = toml::from_str(text).map_err(|error| format!("{file}: {error}"))?;
        let mut people = HashMap::new();
        for (index, entry) in parsed.person.into_iter().enumerate() {
            let place = format!("{file}: person {}", index + 1);
            let number = NationalRegisterNumber::parse(&entry.number, current_year)
                .map_err(|error| format!("{place}: the number is not valid: {error}"))?;
            let language = match entry.language.as_deref() {
                None => None,
                Some(code) => {
                    Some(Language::from_code(code).ok_or_else(|| format!("{place}: unknown language {code:?}"))?)
                }
            };
            let person = RegisterPerson {
                first_name: entry.first_name,
                last_name: entry.last_name,
                language,
                address: Address { street: entry.street, postcode: entry.postcode, city: entry.city },
            };
            if people.insert(number.digits(), person).is_some() {
                return Err(format!("{place}: the same number is listed twice"));
            }
        }
        Ok(LocalRegister { people })
    }
}

impl NationalRegister for LocalRegister {
    fn lookup<'a>(&'a self, number: &'a NationalRegisterNumber) -> Lookup<'a> {
        let found = self.people.get(&number.digits()).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// The register gateway over HTTP.
///
/// `POST {base_url}/persons/lookup` with `{"ssin": "85073003328"}` (and `Authorization: Bearer`
/// when a token is configured) answers `200` with
/// `{"givenName": "…", "familyName": "…", "language": "nl"|"fr"|"de"|null,
///   "address": {"street": "…", "postalCode": "…", "municipality": "…"} | null}`,
/// or `404` when the register has no such person. Any other status is a refusal.
pub struct HttpRegister {
    lookup_url: String,
    token: Option<String>,
    client: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GatewayPerson {
    given_name: String,
    family_name: String,
    language: Option<String>,
    address: Option<GatewayAddress>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GatewayAddress {
    street: String,
    postal_code: String,
    municipality: String,
}

impl HttpRegister {
    pub fn new(base_url: &str, token: Option<String>, timeout: Duration) -> Result<HttpRegister, RegisterError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|error| RegisterError::Unreachable(error.to_string()))?;
        Ok(HttpRegister { lookup_url: format!("{}/persons/lookup", base_url.trim_end_matches('/')), token, client })
    }

    async fn request(&self, number: &NationalRegisterNumber) -> Result<Option<RegisterPerson>, RegisterError> {
        let mut request = self.client.post(&self.lookup_url).json(&serde_json::json!({ "ssin": number.digits() }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        // Errors are described without the request: reqwest's would carry the URL, never the
        // body, but nothing about a citizen belongs in a log line.
        let response = request.send().await.map_err(|error| RegisterError::Unreachable(describe(&error)))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            status => return Err(RegisterError::Refused(status)),
        }
        let person: GatewayPerson =
            response.json().await.map_err(|error| RegisterError::BadAnswer(describe(&error)))?;
        // German-speaking citizens are served in French or Dutch; the CRM keeps one of its own.
        let language = person.language.as_deref().and_then(Language::from_code);
        let address = person.address.map_or_else(Address::default, |address| Address {
            street: address.street,
            postcode: address.postal_code,
            city: address.municipality,
        });
        Ok(Some(RegisterPerson { first_name: person.given_name, last_name: person.family_name, language, address }))
    }
}

fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_decode() {
        "not the documented JSON"
    } else {
        "request failed"
    };
    kind.to_owned()
}

impl NationalRegister for HttpRegister {
    fn lookup<'a>(&'a self, number: &'a NationalRegisterNumber) -> Lookup<'a> {
        Box::pin(self.request(number))
    }
}

/// How a number was matched to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identified {
    /// The CRM knew the number.
    Known(ContactId),
    /// The register knew the person; the contact is new.
    Created(ContactId),
    /// Neither knows the number.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The contact with this number: from the CRM, or created from the register. Each step is
/// audited with `purpose`; the number itself is never written to the audit log.
pub async fn identify(
    db: &Db,
    register: &dyn NationalRegister,
    actor: Actor<'_>,
    purpose: &str,
    number: &NationalRegisterNumber,
    now: Millis,
) -> Result<Identified, IdentifyError> {
    if let Some(id) = contacts::find_by_national_number(db, actor.clone(), purpose, number, now).await? {
        return Ok(Identified::Known(id));
    }
    let found = register.lookup(number).await;
    let mut tx = db.pool().begin().await?;
    let created = match &found {
        Ok(Some(person)) => {
            let input = ContactInput {
                first_name: person.first_name.clone(),
                last_name: person.last_name.clone(),
                national_number: Some(number.clone()),
                language: person.language.unwrap_or_default(),
                preferred_channel: None,
                phones: Vec::new(),
                emails: Vec::new(),
                address: person.address.clone(),
            };
            Some(contacts::insert(&mut tx, &input, now).await?)
        }
        _ => None,
    };
    let detail = match &found {
        Ok(Some(_)) => "found".to_owned(),
        Ok(None) => "not found".to_owned(),
        Err(error) => format!("failed: {error}"),
    };
    let entry = AuditEntry {
        actor,
        action: "register.lookup",
        subject_type: "contact",
        subject_id: created.map(|id| id.0.to_string()),
        purpose: Some(purpose),
        detail: Some(detail),
    };
    audit::record(&mut *tx, &entry, now).await?;
    tx.commit().await?;
    found?;
    Ok(created.map_or(Identified::Unknown, Identified::Created))
}
