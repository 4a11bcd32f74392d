-- Work the console asks the router for (issue 9): a case opened by a web form or a Facebook
-- comment becomes a work item in the same queues as calls. The row is written in the case's own
-- transaction and handed to the router after the commit (`routed_at`, `work_item`); rows still
-- NULL there are handed over again after a restart, so no case is left without its work item.
-- `skills` are skill codes separated by commas, each required at level 1; `language` is the one
-- skill the router never relaxes.
CREATE TABLE work_requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    channel     TEXT   NOT NULL,
    queue_code  TEXT   NOT NULL,
    skills      TEXT   NOT NULL DEFAULT '',
    language    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    work_item   BIGINT,
    routed_at   BIGINT
);
CREATE INDEX work_requests_unrouted ON work_requests (id) WHERE routed_at IS NULL;
