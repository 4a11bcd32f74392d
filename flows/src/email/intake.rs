//! One inbound message into the CRM, in one transaction: claimed by its Message-ID, turned into a
//! new case (contact matched or created, timeline, attachments, acknowledgement in the outbox) or
//! a reply on an existing case, or recorded as noise; and, for a message read over IMAP, the
//! mailbox moved past its UID. Either all of that commits or none of it, so a crash re-reads the
//! message (or the MX delivers it again) and nothing is doubled.
//!
//! An attachment over `max_attachment_bytes` is not kept. The citizen is told which and why: in
//! the acknowledgement of a new case, or in a short automatic answer to a reply. Machine mail
//! gets neither.

use std::collections::HashMap;
use std::sync::Arc;

use loket_crm::clock::{Clock, Millis};
use loket_crm::db::Db;
use loket_crm::i18n::{Language, Texts};
use loket_crm::records::cases::{self, CaseError, CaseInput};
use loket_crm::records::contacts::{self, ContactError, ContactId, ContactInput};
use loket_crm::records::documents::{DocumentError, DocumentStore, PendingFiles, Upload};
use loket_crm::records::email_templates::{self, EmailTemplate};
use loket_crm::records::inbound_mail::{self, InboundOutcome};
use loket_crm::records::outbox::{self, Acknowledgement, AutoSubmitted, NewMail};
use loket_crm::records::timeline::{self, NewEntry, Summary};
use sqlx::AnyConnection;

use super::classify::{self, Noise};
use super::config::{IntakeConfig, MailboxConfig};
use super::message::{InboundMessage, Sender, contact_names};
use super::thread::{self, Evidence, Thread, ThreadedBy, TokenMatch};

/// The name loket writes its own timeline entries, documents and mail under.
const ACTOR: &str = "loket";
/// The purpose recorded when a sender is matched to a contact (audit log).
const PURPOSE: &str = "email intake";

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Read from the mailbox's folder (whose UIDVALIDITY is `uid_validity`), which moves past it.
    Imap { uid_validity: u32, uid: u32 },
    /// Delivered to the SMTP listener for the mailbox's address: there is no position to keep.
    Smtp,
}

impl Source {
    pub fn uid(self) -> Option<u32> {
        match self {
            Source::Imap { uid, .. } => Some(uid),
            Source::Smtp => None,
        }
    }
}

/// What a message became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NewCase {
        case_id: i64,
        number: String,
        acknowledged: bool,
    },
    Reply {
        case_id: i64,
        by: ThreadedBy,
    },
    Noise(Noise),
    /// Processed before, from this or another mailbox or over SMTP: nothing happened but the UID
    /// moving on.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// The acknowledgement template in each language, read once per batch of messages: reading it
/// inside a message's transaction would take a second connection while holding the first.
#[derive(Debug, Default)]
pub struct AckTemplates(HashMap<Language, EmailTemplate>);

impl AckTemplates {
    pub async fn load(db: &Db, code: &str) -> Result<AckTemplates, sqlx::Error> {
        let mut templates = HashMap::new();
        for language in Language::ALL {
            if let Some(template) = email_templates::get(db, code, language).await? {
                templates.insert(language, template);
            }
        }
        Ok(AckTemplates(templates))
    }
}

/// An attachment left out of its case because it is over `max_attachment_bytes`.
#[derive(Debug)]
struct NotKept<'a> {
    file_name: &'a str,
    bytes: usize,
}

/// Turns messages into CRM records; shared by every mailbox's poller and the SMTP listener.
pub struct Processor {
    db: Db,
    clock: Clock,
    documents: Arc<dyn DocumentStore>,
    config: Arc<IntakeConfig>,
    own_addresses: Vec<String>,
    /// The right-hand side of the acknowledgements' Message-IDs.
    mail_domain: String,
}

impl Processor {
    pub fn new(
        db: Db,
        clock: Clock,
        documents: Arc<dyn DocumentStore>,
        config: Arc<IntakeConfig>,
        mail_domain: &str,
    ) -> Processor {
        let own_addresses = config.own_addresses();
        Processor { db, clock, documents, config, own_addresses, mail_domain: mail_domain.to_owned() }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn config(&self) -> &Arc<IntakeConfig> {
        &self.config
    }

    pub fn mail_domain(&self) -> &str {
        &self.mail_domain
    }

    /// Processes a message of `mailbox` from `source`; `Ok` once its transaction committed.
    pub async fn process(
        &self,
        mailbox: &MailboxConfig,
        source: Source,
        raw: &[u8],
        acks: &AckTemplates,
    ) -> Result<Outcome, IntakeError> {
        let uid = source.uid();
        let message = InboundMessage::parse(raw);
        let noise = classify::noise(&message, &self.own_addresses);
        let thread = match noise {
            Some(_) => Thread::New,
            None => self.thread_of(&message).await?,
        };
        let now = self.clock.now();
        let mut files = PendingFiles::new(self.documents.as_ref());
        let mut tx = self.db.pool().begin().await?;
        let result = async {
            let outcome = match (noise, thread) {
                (Some(noise), _) => {
                    let claimed = inbound_mail::claim(
                        &mut tx,
                        &message.key,
                        &mailbox.name,
                        uid,
                        InboundOutcome::Noise,
                        None,
                        now,
                    )
                    .await?;
                    claimed.map_or(Outcome::Duplicate, |_| Outcome::Noise(noise))
                }
                (None, Thread::Existing { case_id, by }) => {
                    let claimed = inbound_mail::claim(
                        &mut tx,
                        &message.key,
                        &mailbox.name,
                        uid,
                        InboundOutcome::Reply,
                        Some(case_id),
                        now,
                    )
                    .await?;
                    match claimed {
                        Some(_) => {
                            let not_kept = self.add_message(&mut tx, case_id, &message, &mut files, now).await?;
                            inbound_mail::touch_case(&mut tx, case_id, now).await?;
                            self.answer_not_kept(&mut tx, case_id, &message, &not_kept, now).await?;
                            Outcome::Reply { case_id, by }
                        }
                        None => Outcome::Duplicate,
                    }
                }
                (None, Thread::New) => {
                    let claimed =
                        inbound_mail::claim(&mut tx, &message.key, &mailbox.name, uid, InboundOutcome::Case, None, now)
                            .await?;
                    match claimed {
                        Some(inbound_id) => {
                            self.open_case(&mut tx, inbound_id, mailbox, &message, acks, &mut files, now).await?
                        }
                        None => Outcome::Duplicate,
                    }
                }
            };
            if let Source::Imap { uid_validity, uid } = source {
                inbound_mail::advance(&mut tx, &mailbox.name, uid_validity, uid).await?;
            }
            Ok::<_, IntakeError>(outcome)
        }
        .await;
        files.finish(tx, result).await
    }

    async fn thread_of(&self, message: &InboundMessage) -> Result<Thread, sqlx::Error> {
        let mut evidence = Evidence::default();
        if let Some(sender) = &message.from {
            for number in thread::case_numbers(&message.subject) {
                if let Some((case_id, sender_known)) =
                    inbound_mail::case_by_number(&self.db, &number, &sender.address).await?
                {
                    evidence.by_number.push(TokenMatch { case_id, sender_known });
                }
            }
        }
        if !evidence.by_number.iter().any(|token| token.sender_known) {
            for ancestor in &message.ancestors {
                if let Some(case_id) = inbound_mail::case_of_message(&self.db, ancestor).await? {
                    evidence.by_reference = Some(case_id);
                    break;
                }
            }
        }
        Ok(thread::decide(&evidence))
    }

    #[expect(clippy::too_many_arguments, reason = "one transaction's context, passed down once")]
    async fn open_case(
        &self,
        conn: &mut AnyConnection,
        inbound_id: i64,
        mailbox: &MailboxConfig,
        message: &InboundMessage,
        acks: &AckTemplates,
        files: &mut PendingFiles<'_>,
        now: Millis,
    ) -> Result<Outcome, IntakeError> {
        let stated = mailbox.language.or_else(|| detect_language(message));
        let contact = match &message.from {
            Some(sender) => Some(self.contact_for(conn, sender, stated, now).await?),
            None => None,
        };
        let contact_language = contact.as_ref().map(|(_, language)| *language);
        // The mailbox's rule, else the text, else what the citizen chose before.
        let language = stated.or(contact_language).unwrap_or(self.config.intake.default_language);
        let subject = if message.subject.is_empty() { "—".to_owned() } else { message.subject.clone() };
        let input = CaseInput {
            contact_id: contact.as_ref().map(|(id, _)| id.0),
            account_id: None,
            service_code: mailbox.service.clone(),
            case_type: mailbox.case_type.clone(),
            channel: "email".to_owned(),
            support_line: 1,
            priority: 0,
            owner_id: None,
            queue_code: Some(mailbox.queue_for(language)),
            subject: subject.clone(),
            custom_fields: serde_json::Map::new(),
        };
        let (case_id, number) = cases::insert(conn, &input, now.year(), ACTOR, now).await?;
        inbound_mail::set_case(conn, inbound_id, case_id.0, language).await?;
        let not_kept = self.add_message(conn, case_id.0, message, files, now).await?;
        // A citizen is answered in the language they are known by; a new one in the message's.
        let ack_language = contact_language.unwrap_or(language);
        let note = (!not_kept.is_empty()).then(|| self.not_kept_note(&not_kept, ack_language));
        let acknowledged = match (&message.from, acks.0.get(&ack_language)) {
            (Some(sender), Some(template)) => {
                let (first_name, last_name) = contact_names(sender);
                let ack = Acknowledgement {
                    case_id: case_id.0,
                    number: &number,
                    subject: &subject,
                    to_address: &sender.address,
                    first_name: &first_name,
                    last_name: &last_name,
                    template,
                    actor: ACTOR,
                    auto_submitted: AutoSubmitted::Replied,
                };
                outbox::acknowledge_with_note(conn, &ack, note.as_deref(), &self.mail_domain, now).await?
            }
            _ => false,
        };
        Ok(Outcome::NewCase { case_id: case_id.0, number, acknowledged })
    }

    /// The contact with the sender's address, or a new one named from the display name.
    async fn contact_for(
        &self,
        conn: &mut AnyConnection,
        sender: &Sender,
        language: Option<Language>,
        now: Millis,
    ) -> Result<(ContactId, Language), IntakeError> {
        if let Some(found) = inbound_mail::contact_by_email(conn, &sender.address, PURPOSE, now).await? {
            return Ok(found);
        }
        let (first_name, last_name) = contact_names(sender);
        let language = language.unwrap_or(self.config.intake.default_language);
        let input = ContactInput {
            first_name,
            last_name,
            national_number: None,
            language,
            preferred_channel: Some("email".to_owned()),
            phones: Vec::new(),
            emails: vec![sender.address.clone()],
            address: contacts::Address::default(),
        };
        Ok((contacts::insert(conn, &input, now).await?, language))
    }

    /// The message on the case's timeline, its attachments among the case's documents; returns
    /// the attachments that were too large to keep.
    async fn add_message<'m>(
        &self,
        conn: &mut AnyConnection,
        case_id: i64,
        message: &'m InboundMessage,
        files: &mut PendingFiles<'_>,
        now: Millis,
    ) -> Result<Vec<NotKept<'m>>, IntakeError> {
        let max = self.config.intake.max_attachment_bytes;
        let mut body = message.text.clone();
        let mut not_kept = Vec::new();
        for attachment in &message.attachments {
            if attachment.bytes.len() > max {
                body.push_str(&format!(
                    "\n\n[{}: {} MB, over the limit of {} MB; not kept]",
                    attachment.file_name,
                    megabytes_up(attachment.bytes.len()),
                    max / MIB
                ));
                not_kept.push(NotKept { file_name: &attachment.file_name, bytes: attachment.bytes.len() });
                continue;
            }
            let upload = Upload {
                case_id,
                file_name: &attachment.file_name,
                content_type: &attachment.content_type,
                bytes: &attachment.bytes,
                uploaded_by: ACTOR,
            };
            files.store(conn, &upload, now).await?;
        }
        let from = message.from.as_ref().map(|from| from.address.clone()).unwrap_or_else(|| "?".to_owned());
        let actor = message.from.as_ref().and_then(|from| from.display_name.clone()).unwrap_or_else(|| from.clone());
        let entry = NewEntry {
            case_id: Some(case_id),
            contact_id: None,
            kind: "email_in",
            actor_name: &actor,
            public: true,
            summary: Summary::new("timeline-mail-in").arg("from", from).arg("subject", &message.subject),
            body: Some(body),
        };
        timeline::append(conn, &entry, now).await?;
        Ok(not_kept)
    }

    /// Tells the sender of a reply on a case which of its attachments were not kept, in a short
    /// automatic answer on the case (`Auto-Submitted: auto-replied`, RFC 3834).
    async fn answer_not_kept(
        &self,
        conn: &mut AnyConnection,
        case_id: i64,
        message: &InboundMessage,
        not_kept: &[NotKept<'_>],
        now: Millis,
    ) -> Result<(), IntakeError> {
        let Some(sender) = message.from.as_ref().filter(|_| !not_kept.is_empty()) else { return Ok(()) };
        let Some((number, case_language)) = inbound_mail::case_number_and_language(conn, case_id).await? else {
            return Ok(());
        };
        // The language the sender wrote in, else the one the case was opened in.
        let language = detect_language(message).or(case_language).unwrap_or(self.config.intake.default_language);
        let number = [("number", number)];
        let subject = language.text_with("mail-attachments-notice-subject", &number);
        let intro = language.text_with("mail-attachments-notice-intro", &number);
        let body = format!("{intro}\n\n{}", self.not_kept_note(not_kept, language));
        let mail = NewMail {
            case_id: Some(case_id),
            to_address: &sender.address,
            subject: &subject,
            body: &body,
            created_by: ACTOR,
            auto_submitted: Some(AutoSubmitted::Replied),
        };
        outbox::enqueue_on_timeline(conn, &mail, &self.mail_domain, now).await?;
        Ok(())
    }

    /// One line per attachment not kept, with its size and the limit, in `language`.
    fn not_kept_note(&self, not_kept: &[NotKept<'_>], language: Language) -> String {
        let limit = (self.config.intake.max_attachment_bytes / MIB).to_string();
        let lines: Vec<String> = not_kept
            .iter()
            .map(|file| {
                let args = [
                    ("file", file.file_name.to_owned()),
                    ("size", megabytes_up(file.bytes).to_string()),
                    ("limit", limit.clone()),
                ];
                language.text_with("mail-attachment-not-kept", &args)
            })
            .collect();
        lines.join("\n")
    }
}

const MIB: usize = 1024 * 1024;

/// Whole megabytes, rounded up: a file just over the limit never reads as within it.
fn megabytes_up(bytes: usize) -> usize {
    bytes.div_ceil(MIB)
}

/// The language of the message's subject and text, when clear.
fn detect_language(message: &InboundMessage) -> Option<Language> {
    loket_crm::i18n::detect::language(&format!("{}\n{}", message.subject, message.text))
}
