-- Case management: contacts with several phones and e-mails and merge history, business accounts
-- with establishments and linked contacts, configurable case types, the case timeline, documents,
-- outgoing mail, saved list views.

ALTER TABLE contacts ADD COLUMN preferred_channel TEXT;
ALTER TABLE contacts ADD COLUMN merged_into BIGINT REFERENCES contacts(id);
ALTER TABLE contacts ADD COLUMN updated_at BIGINT;
-- Lower-cased "first last", for searching by name on both engines alike.
ALTER TABLE contacts ADD COLUMN search_name TEXT;
UPDATE contacts SET search_name = lower(first_name || ' ' || last_name), updated_at = created_at;
CREATE INDEX contacts_search_name ON contacts (search_name);

CREATE TABLE contact_phones (
    contact_id  BIGINT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    e164        TEXT   NOT NULL,
    PRIMARY KEY (contact_id, e164)
);
CREATE INDEX contact_phones_e164 ON contact_phones (e164);
INSERT INTO contact_phones (contact_id, e164) SELECT id, phone_e164 FROM contacts WHERE phone_e164 IS NOT NULL;

CREATE TABLE contact_emails (
    contact_id  BIGINT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    email       TEXT   NOT NULL,
    PRIMARY KEY (contact_id, email)
);
CREATE INDEX contact_emails_email ON contact_emails (email);
INSERT INTO contact_emails (contact_id, email) SELECT id, lower(email) FROM contacts WHERE email IS NOT NULL;

DROP INDEX contacts_phone;
ALTER TABLE contacts DROP COLUMN phone_e164;
ALTER TABLE contacts DROP COLUMN email;

ALTER TABLE accounts ADD COLUMN vat_registered BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN search_name TEXT;
UPDATE accounts SET search_name = lower(name);

CREATE TABLE establishments (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id            BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    establishment_number  TEXT,
    name                  TEXT,
    street                TEXT,
    postcode              TEXT,
    city                  TEXT
);
CREATE INDEX establishments_account ON establishments (account_id);

CREATE TABLE account_contacts (
    account_id  BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    contact_id  BIGINT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    role        TEXT,
    PRIMARY KEY (account_id, contact_id)
);

-- A case type and its custom fields (a JSON list of field definitions, validated by the code that
-- writes it); `expert_team` is the line-3 queue escalations of this type go to.
CREATE TABLE case_types (
    code         TEXT PRIMARY KEY,
    service_code TEXT NOT NULL REFERENCES services(code),
    name_nl      TEXT NOT NULL,
    name_fr      TEXT NOT NULL,
    name_en      TEXT NOT NULL,
    fields       TEXT NOT NULL DEFAULT '[]',
    expert_team  TEXT REFERENCES queues(code)
);

ALTER TABLE cases ADD COLUMN status_reason TEXT;
ALTER TABLE cases ADD COLUMN priority BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN owner_id BIGINT REFERENCES users(id);
ALTER TABLE cases ADD COLUMN queue_code TEXT REFERENCES queues(code);
ALTER TABLE cases ADD COLUMN expert_team TEXT REFERENCES queues(code);
ALTER TABLE cases ADD COLUMN custom_fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE cases ADD COLUMN updated_at BIGINT;
ALTER TABLE cases ADD COLUMN closed_at BIGINT;
UPDATE cases SET updated_at = created_at;
CREATE INDEX cases_status_updated ON cases (status, updated_at);
CREATE INDEX cases_updated ON cases (updated_at);
CREATE INDEX cases_owner ON cases (owner_id);
CREATE INDEX cases_account ON cases (account_id);

CREATE TABLE case_links (
    case_id     BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    related_id  BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    PRIMARY KEY (case_id, related_id)
);

-- Every interaction and change on a case or a contact, in order: calls, mails, forms, comments,
-- notes, status changes, documents. Rows are appended, never edited.
CREATE TABLE timeline (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    case_id     BIGINT REFERENCES cases(id) ON DELETE CASCADE,
    contact_id  BIGINT REFERENCES contacts(id),
    kind        TEXT   NOT NULL,
    actor_name  TEXT   NOT NULL,
    visibility  TEXT   NOT NULL DEFAULT 'internal' CHECK (visibility IN ('internal', 'public')),
    summary     TEXT   NOT NULL,
    body        TEXT
);
CREATE INDEX timeline_case ON timeline (case_id, id);
CREATE INDEX timeline_contact ON timeline (contact_id, id);

CREATE TABLE documents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id       BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    file_name     TEXT   NOT NULL,
    content_type  TEXT   NOT NULL,
    size_bytes    BIGINT NOT NULL,
    storage_key   TEXT   NOT NULL UNIQUE,
    uploaded_by   TEXT   NOT NULL,
    uploaded_at   BIGINT NOT NULL
);
CREATE INDEX documents_case ON documents (case_id);

CREATE TABLE email_templates (
    code      TEXT NOT NULL,
    language  TEXT NOT NULL,
    kind      TEXT NOT NULL DEFAULT 'template' CHECK (kind IN ('template', 'canned')),
    title     TEXT NOT NULL,
    subject   TEXT NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (code, language)
);

-- Mail waiting to leave, sent, or failed; a failure is retried with back-off and never dropped.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id          BIGINT REFERENCES cases(id),
    message_id       TEXT   NOT NULL UNIQUE,
    in_reply_to      TEXT,
    mail_references  TEXT,
    to_address       TEXT   NOT NULL,
    subject          TEXT   NOT NULL,
    body             TEXT   NOT NULL,
    status           TEXT   NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  BIGINT NOT NULL,
    created_by       TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE saved_views (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name     TEXT   NOT NULL,
    query    TEXT   NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE case_number_sequence (
    year      BIGINT PRIMARY KEY,
    last_seq  BIGINT NOT NULL
);
