-- The municipality's organisation as data (services, skills, queues, who works which queue) and the
-- first CRM records (contacts, business accounts, cases). The CRM issue extends these tables.

CREATE TABLE services (
    code     TEXT PRIMARY KEY,
    name_nl  TEXT NOT NULL,
    name_fr  TEXT NOT NULL,
    name_en  TEXT NOT NULL
);

CREATE TABLE skills (
    code     TEXT PRIMARY KEY,
    kind     TEXT NOT NULL CHECK (kind IN ('language', 'service', 'expertise')),
    name_nl  TEXT NOT NULL,
    name_fr  TEXT NOT NULL,
    name_en  TEXT NOT NULL
);

CREATE TABLE queues (
    code          TEXT   PRIMARY KEY,
    service_code  TEXT   NOT NULL REFERENCES services(code),
    language      TEXT,
    support_line  BIGINT NOT NULL CHECK (support_line IN (1, 2, 3)),
    name_nl       TEXT   NOT NULL,
    name_fr       TEXT   NOT NULL,
    name_en       TEXT   NOT NULL
);

CREATE TABLE queue_skills (
    queue_code  TEXT   NOT NULL REFERENCES queues(code) ON DELETE CASCADE,
    skill_code  TEXT   NOT NULL REFERENCES skills(code),
    min_level   BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (queue_code, skill_code)
);

CREATE TABLE user_skills (
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    skill_code  TEXT   NOT NULL REFERENCES skills(code),
    level       BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, skill_code)
);

CREATE TABLE user_queues (
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    queue_code  TEXT   NOT NULL REFERENCES queues(code) ON DELETE CASCADE,
    PRIMARY KEY (user_id, queue_code)
);

CREATE TABLE contacts (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    first_name         TEXT   NOT NULL,
    last_name          TEXT   NOT NULL,
    -- 11 digits, validated before insert; looked up exactly, never shown unmasked in lists.
    national_number    TEXT   UNIQUE,
    language           TEXT   NOT NULL DEFAULT 'nl',
    phone_e164         TEXT,
    email              TEXT,
    street             TEXT,
    postcode           TEXT,
    city               TEXT,
    created_at         BIGINT NOT NULL
);
CREATE INDEX contacts_phone ON contacts (phone_e164);

CREATE TABLE accounts (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    enterprise_number  TEXT   NOT NULL UNIQUE,
    name               TEXT   NOT NULL,
    legal_form         TEXT,
    street             TEXT,
    postcode           TEXT,
    city               TEXT,
    created_at         BIGINT NOT NULL
);

CREATE TABLE cases (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    number        TEXT   NOT NULL UNIQUE,
    contact_id    BIGINT REFERENCES contacts(id),
    account_id    BIGINT REFERENCES accounts(id),
    service_code  TEXT   NOT NULL REFERENCES services(code),
    request_type  TEXT   NOT NULL,
    channel       TEXT   NOT NULL,
    support_line  BIGINT NOT NULL DEFAULT 1,
    status        TEXT   NOT NULL DEFAULT 'new',
    subject       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX cases_contact ON cases (contact_id);
