//! The demo municipality (`crm/demo.toml`): loaded by `loket serve --demo` and `loket demo seed`.
//!
//! The whole seed is one transaction and every insert skips what exists, so seeding twice changes
//! nothing and a failed seed leaves nothing half-written. Demo users get random passwords when they
//! are created; the caller keeps and prints them (they are not recoverable from the database).

use std::collections::BTreeMap;

use loket_be::{EnterpriseNumber, NationalRegisterNumber, PhoneNumber};
use rand::Rng;
use serde::Deserialize;

use crate::auth::{Role, hash_password};
use crate::clock::Millis;
use crate::db::Db;
use crate::i18n::Language;
use crate::records::accounts::{AccountError, AccountInput, Establishment};
use crate::records::audit::{self, Actor, AuditEntry};
use crate::records::case_types::{self, CaseType};
use crate::records::cases::{CaseError, CaseInput};
use crate::records::contacts::{Address, ContactError, ContactInput};
use crate::records::directory::{self, Names, Queue, SkillKind};
use crate::records::email_templates::{self, EmailTemplate};
use crate::records::{accounts, cases, contacts, sip_credentials, users};

const DEMO_TOML: &str = include_str!("../demo.toml");

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("crm/demo.toml: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("crm/demo.toml: {0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    User(#[from] users::UserError),
}

/// What a seed created; empty when everything was there already.
#[derive(Debug, Default)]
pub struct SeedReport {
    /// `(username, password)` of each demo user created by this seed.
    pub new_credentials: Vec<(String, String)>,
    pub inserted_rows: usize,
}

pub async fn seed(db: &Db, now: Millis, current_year: u16) -> Result<SeedReport, DemoError> {
    let demo: Demo = toml::from_str(DEMO_TOML)?;
    let mut report = SeedReport::default();
    let queues = demo.queue_definitions();
    let mut tx = db.pool().begin().await?;
    for service in &demo.services {
        report.inserted_rows += usize::from(directory::insert_service(&mut tx, &service.code, &service.name).await?);
        let names = service.name.clone();
        report.inserted_rows +=
            usize::from(directory::insert_skill(&mut tx, &service.code, SkillKind::Service, &names).await?);
    }
    for skill in &demo.skills {
        report.inserted_rows +=
            usize::from(directory::insert_skill(&mut tx, &skill.code, skill.kind, &skill.name).await?);
    }
    for queue in &queues {
        report.inserted_rows += usize::from(directory::insert_queue(&mut tx, queue).await?);
    }
    for demo_user in &demo.users {
        if users::exists(&mut tx, &demo_user.username).await? {
            continue;
        }
        let roles = demo_user
            .roles
            .iter()
            .map(|name| {
                name.parse::<Role>()
                    .map_err(|error| DemoError::Invalid(format!("user {}: {error}", demo_user.username)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let password = random_password();
        let password_hash = hash_password(&password).map_err(|error| DemoError::Invalid(error.to_string()))?;
        let user_id = users::insert(
            &mut tx,
            &users::NewUser {
                username: &demo_user.username,
                display_name: &demo_user.display_name,
                email: None,
                password_hash: &password_hash,
                language: demo_user.language,
                roles: &roles,
            },
            now,
        )
        .await?;
        for (skill, level) in &demo_user.skills {
            directory::set_user_skill(&mut tx, user_id.0, skill, *level).await?;
        }
        for queue in &demo_user.queues {
            if !queues.iter().any(|known| &known.code == queue) {
                return Err(DemoError::Invalid(format!("user {}: unknown queue {queue:?}", demo_user.username)));
            }
            directory::add_user_queue(&mut tx, user_id.0, queue).await?;
        }
        report.inserted_rows += 1;
        report.new_credentials.push((demo_user.username.clone(), password));
    }
    for case_type in &demo.case_types {
        report.inserted_rows += usize::from(case_types::upsert(&mut tx, case_type).await?);
    }
    for template in &demo.email_templates {
        report.inserted_rows += usize::from(email_templates::insert_if_absent(&mut tx, template).await?);
    }
    let mut contact_ids = BTreeMap::new();
    for contact in &demo.contacts {
        let invalid = |error: &dyn std::fmt::Display| {
            DemoError::Invalid(format!("contact {} {}: {error}", contact.first_name, contact.last_name))
        };
        let number = NationalRegisterNumber::parse(&contact.national_number, current_year).map_err(|e| invalid(&e))?;
        let phones = contact
            .phones
            .iter()
            .map(|phone| PhoneNumber::parse(phone))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(&e))?;
        let input = ContactInput {
            first_name: contact.first_name.clone(),
            last_name: contact.last_name.clone(),
            national_number: Some(number.clone()),
            language: contact.language,
            preferred_channel: None,
            phones,
            emails: contact.emails.clone(),
            address: contact.address.clone().unwrap_or_default(),
        };
        let id = match contacts::insert(&mut tx, &input, now).await {
            Ok(id) => {
                report.inserted_rows += 1;
                id
            }
            Err(ContactError::DuplicateNationalNumber(existing)) => existing,
            Err(ContactError::Database(error)) => return Err(error.into()),
            Err(ContactError::InvalidMerge) => unreachable!("insert never merges"),
        };
        contact_ids.insert(number.digits(), id.0);
    }
    let mut account_ids = BTreeMap::new();
    for account in &demo.accounts {
        let number = EnterpriseNumber::parse(&account.enterprise_number)
            .map_err(|error| DemoError::Invalid(format!("account {}: {error}", account.name)))?;
        let id = match accounts::find_by_enterprise_number(&mut tx, &number).await? {
            Some(id) => id,
            None => {
                let input = AccountInput {
                    enterprise_number: number.clone(),
                    name: account.name.clone(),
                    legal_form: account.legal_form.clone(),
                    vat_registered: account.vat_registered,
                    address: account.address.clone().unwrap_or_default(),
                };
                let id = accounts::insert(&mut tx, &input, now).await.map_err(|error| match error {
                    AccountError::Database(error) => DemoError::Database(error),
                    other => DemoError::Invalid(other.to_string()),
                })?;
                for establishment in &account.establishments {
                    accounts::add_establishment(&mut tx, id, establishment).await?;
                }
                for (contact, role) in &account.contacts {
                    let contact_id = *contact_ids.get(contact).ok_or_else(|| {
                        DemoError::Invalid(format!("account {}: no demo contact {contact}", account.name))
                    })?;
                    accounts::link_contact(&mut tx, id, contact_id, Some(role)).await?;
                }
                report.inserted_rows += 1;
                id
            }
        };
        account_ids.insert(number.digits(), id.0);
    }
    for case in &demo.cases {
        let contact_id = match &case.contact {
            Some(digits) => Some(*contact_ids.get(digits).ok_or_else(|| {
                DemoError::Invalid(format!("case {}: no demo contact with that national number", case.number))
            })?),
            None => None,
        };
        let account_id = match &case.account {
            Some(number) => {
                let digits = EnterpriseNumber::parse(number)
                    .map_err(|error| DemoError::Invalid(format!("case {}: {error}", case.number)))?
                    .digits();
                Some(
                    *account_ids
                        .get(&digits)
                        .ok_or_else(|| DemoError::Invalid(format!("case {}: no demo account {number}", case.number)))?,
                )
            }
            None => None,
        };
        let input = CaseInput {
            contact_id,
            account_id,
            service_code: case.service.clone(),
            case_type: case.case_type.clone(),
            channel: case.channel.clone(),
            support_line: case.support_line,
            priority: 0,
            owner_id: None,
            queue_code: None,
            subject: case.subject.clone(),
            custom_fields: serde_json::Map::new(),
        };
        let inserted =
            cases::import_if_absent(&mut tx, &case.number, &input, now).await.map_err(|error| match error {
                CaseError::Database(error) => DemoError::Database(error),
                other => DemoError::Invalid(format!("case {}: {other}", case.number)),
            })?;
        report.inserted_rows += usize::from(inserted);
    }
    if report.inserted_rows > 0 {
        let entry = AuditEntry {
            actor: Actor::System,
            action: "demo.seeded",
            subject_type: "municipality",
            subject_id: None,
            purpose: None,
            detail: Some(format!("{} rows", report.inserted_rows)),
        };
        audit::record(&mut *tx, &entry, now).await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Gives every demo agent a SIP password for `realm` unless it has one, so that a phone can
/// register as that agent. `ha1` turns (username, password) into the stored digests (the SIP
/// crate knows how). Returns `(username, password)` of the credentials created, for the caller to
/// keep and print like the console passwords.
pub async fn seed_sip_credentials(
    db: &Db,
    realm: &str,
    now: Millis,
    ha1: impl Fn(&str, &str) -> sip_credentials::Ha1,
) -> Result<Vec<(String, String)>, DemoError> {
    let demo: Demo = toml::from_str(DEMO_TOML)?;
    let mut created = Vec::new();
    let mut tx = db.pool().begin().await?;
    for demo_user in demo.users.iter().filter(|user| user.roles.iter().any(|role| role == "agent")) {
        let password = random_password();
        let digests = ha1(&demo_user.username, &password);
        if sip_credentials::insert_if_absent(&mut tx, &demo_user.username, realm, &digests, now).await? {
            created.push((demo_user.username.clone(), password));
        }
    }
    tx.commit().await?;
    Ok(created)
}

/// 16 characters from an alphabet without look-alikes (no 0/O, 1/l/I).
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Demo {
    services: Vec<DemoService>,
    skills: Vec<DemoSkill>,
    queues: QueueLayout,
    users: Vec<DemoUser>,
    case_types: Vec<CaseType>,
    email_templates: Vec<EmailTemplate>,
    contacts: Vec<DemoContact>,
    accounts: Vec<DemoAccount>,
    cases: Vec<DemoCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoService {
    code: String,
    name: Names,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoSkill {
    code: String,
    kind: SkillKind,
    name: Names,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueLayout {
    languages: Vec<Language>,
    lines: Vec<i64>,
    expert_line: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoUser {
    username: String,
    display_name: String,
    roles: Vec<String>,
    language: Language,
    #[serde(default)]
    skills: BTreeMap<String, i64>,
    #[serde(default)]
    queues: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoContact {
    first_name: String,
    last_name: String,
    national_number: String,
    language: Language,
    #[serde(default)]
    phones: Vec<String>,
    #[serde(default)]
    emails: Vec<String>,
    address: Option<Address>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoAccount {
    enterprise_number: String,
    name: String,
    legal_form: Option<String>,
    #[serde(default)]
    vat_registered: bool,
    address: Option<Address>,
    #[serde(default)]
    establishments: Vec<Establishment>,
    /// National number of a demo contact → their role for the company.
    #[serde(default)]
    contacts: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoCase {
    number: String,
    contact: Option<String>,
    account: Option<String>,
    service: String,
    case_type: String,
    channel: String,
    subject: String,
    #[serde(default = "default_line")]
    support_line: i64,
}

fn default_line() -> i64 {
    1
}

impl Demo {
    /// Lines 1 and 2 get a queue per service and language (skills: the language and the service);
    /// the expert line gets one team per service (skills: the service and expertise).
    fn queue_definitions(&self) -> Vec<Queue> {
        let mut queues = Vec::new();
        for service in &self.services {
            for line in &self.queues.lines {
                for language in &self.queues.languages {
                    let code = format!("{}-{}-l{line}", service.code, language.code());
                    let names = Names {
                        nl: format!("{} {} – lijn {line}", service.name.nl, language.code().to_uppercase()),
                        fr: format!("{} {} – ligne {line}", service.name.fr, language.code().to_uppercase()),
                        en: format!("{} {} – line {line}", service.name.en, language.code().to_uppercase()),
                    };
                    queues.push(Queue {
                        code,
                        service_code: service.code.clone(),
                        language: Some(language.code().to_owned()),
                        support_line: *line,
                        names,
                        skills: vec![(language.code().to_owned(), 1), (service.code.clone(), 1)],
                    });
                }
            }
            let line = self.queues.expert_line;
            queues.push(Queue {
                code: format!("{}-l{line}", service.code),
                service_code: service.code.clone(),
                language: None,
                support_line: line,
                names: Names {
                    nl: format!("{} – experten", service.name.nl),
                    fr: format!("{} – experts", service.name.fr),
                    en: format!("{} – experts", service.name.en),
                },
                skills: vec![(service.code.clone(), 1), ("expertise".to_owned(), 1)],
            });
        }
        queues
    }
}
