-- E-mail intake (issue 9): where each polled mailbox stands, and every inbound message once.
--
-- `mailbox_state` holds, per configured mailbox, the UIDVALIDITY of its folder and the highest
-- UID whose message is processed; the row is updated in the transaction that processes the
-- message, so a restart neither loses nor re-reads one. The other columns are for the admin page.
CREATE TABLE mailbox_state (
    mailbox          TEXT   PRIMARY KEY,
    uid_validity     BIGINT,
    last_uid         BIGINT NOT NULL DEFAULT 0,
    last_success_at  BIGINT,
    last_error       TEXT,
    last_error_at    BIGINT,
    failures         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    processed        BIGINT NOT NULL DEFAULT 0
);

-- One row per distinct message, whichever mailbox it arrived in first: the unique Message-ID is
-- what makes a message sent to two mailboxes one case (and what de-duplicates after a change of
-- UIDVALIDITY). `outcome` is `case` (it opened `case_id`), `reply` (it joined `case_id`) or
-- `noise` (auto-reply, bounce, bulk). A new case's work item is `routed_at` once the router has
-- it, with the `language` it was routed by; rows still NULL there are handed to the router again
-- after a restart.
CREATE TABLE inbound_mail (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT   NOT NULL UNIQUE,
    mailbox      TEXT   NOT NULL,
    uid          BIGINT NOT NULL,
    outcome      TEXT   NOT NULL CHECK (outcome IN ('case', 'reply', 'noise')),
    case_id      BIGINT REFERENCES cases(id) ON DELETE CASCADE,
    received_at  BIGINT NOT NULL,
    language     TEXT,
    work_item    BIGINT,
    routed_at    BIGINT
);
CREATE INDEX inbound_mail_case ON inbound_mail (case_id);
CREATE INDEX inbound_mail_unrouted ON inbound_mail (id) WHERE outcome = 'case' AND routed_at IS NULL;
