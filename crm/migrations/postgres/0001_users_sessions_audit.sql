-- Users, their roles, server-side sessions and the audit log: the records every other one leans on.
-- Times are milliseconds since the Unix epoch (BIGINT) so that SQLite and PostgreSQL store them alike.

CREATE TABLE users (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    display_name    TEXT    NOT NULL,
    email           TEXT,
    password_hash   TEXT    NOT NULL,
    language        TEXT    NOT NULL DEFAULT 'nl',
    failed_logins   BIGINT  NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    disabled_at     BIGINT,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE user_roles (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role    TEXT   NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE sessions (
    token_hash  TEXT   PRIMARY KEY,
    user_id     BIGINT REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT   NOT NULL,
    language    TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE audit_log (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor_user_id BIGINT,
    actor_name    TEXT   NOT NULL,
    action        TEXT   NOT NULL,
    subject_type  TEXT   NOT NULL,
    subject_id    TEXT,
    purpose       TEXT,
    detail        TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subject ON audit_log (subject_type, subject_id);
