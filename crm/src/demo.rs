//! The demo municipality (`crm/demo.toml`): loaded by `loket serve --demo` and `loket demo seed`.
//!
//! The whole seed is one transaction and every insert skips what exists, so seeding twice changes
//! nothing and a failed seed leaves nothing half-written. Demo users get random passwords when they
//! are created; the caller keeps and prints them (they are not recoverable from the database).

use std::collections::BTreeMap;

use loket_be::{EnterpriseNumber, NationalRegisterNumber};
use rand::Rng;
use serde::Deserialize;

use crate::auth::{Role, hash_password};
use crate::clock::Millis;
use crate::db::Db;
use crate::i18n::Language;
use crate::records::audit::{self, Actor, AuditEntry};
use crate::records::contacts::{Address, NewContact};
use crate::records::directory::{self, Names, Queue, SkillKind};
use crate::records::{accounts, cases, contacts, users};

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
    let mut contact_ids = BTreeMap::new();
    for contact in &demo.contacts {
        let number = NationalRegisterNumber::parse(&contact.national_number, current_year).map_err(|error| {
            DemoError::Invalid(format!("contact {} {}: {error}", contact.first_name, contact.last_name))
        })?;
        let new_contact = NewContact {
            first_name: &contact.first_name,
            last_name: &contact.last_name,
            national_number: Some(&number),
            language: contact.language,
            phone_e164: contact.phone.as_deref(),
            email: contact.email.as_deref(),
            address: contact.address.as_ref(),
        };
        contact_ids.insert(number.digits(), contacts::insert_or_find(&mut tx, &new_contact, now).await?);
    }
    let mut account_ids = BTreeMap::new();
    for account in &demo.accounts {
        let number = EnterpriseNumber::parse(&account.enterprise_number)
            .map_err(|error| DemoError::Invalid(format!("account {}: {error}", account.name)))?;
        let new_account = accounts::NewAccount {
            enterprise_number: &number,
            name: &account.name,
            legal_form: account.legal_form.as_deref(),
            address: account.address.as_ref(),
        };
        account_ids.insert(number.digits(), accounts::insert_or_find(&mut tx, &new_account, now).await?);
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
        let new_case = cases::NewCase {
            number: &case.number,
            contact_id,
            account_id,
            service_code: &case.service,
            request_type: &case.request_type,
            channel: &case.channel,
            support_line: case.support_line,
            status: &case.status,
            subject: &case.subject,
        };
        report.inserted_rows += usize::from(cases::insert_if_absent(&mut tx, &new_case, now).await?);
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
    phone: Option<String>,
    email: Option<String>,
    address: Option<Address>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoAccount {
    enterprise_number: String,
    name: String,
    legal_form: Option<String>,
    address: Option<Address>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoCase {
    number: String,
    contact: Option<String>,
    account: Option<String>,
    service: String,
    request_type: String,
    channel: String,
    subject: String,
    #[serde(default = "default_status")]
    status: String,
    #[serde(default = "default_line")]
    support_line: i64,
}

fn default_status() -> String {
    "new".to_owned()
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
