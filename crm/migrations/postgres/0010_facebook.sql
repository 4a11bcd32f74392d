-- Facebook Page comments (issue 9): every comment loket took from the page's webhook, and every
-- reply it posted there.
--
-- `comment_id` is Facebook's id (`<post id>_<comment id>`); the unique key is what makes a retried
-- delivery no second case: the row is claimed first in the transaction that opens the case.
-- `direction` is `in` for a citizen's comment (its `case_id` the case it opened) and `out` for the
-- page's reply sent from a case (`parent_id` the comment it answers, `from_id` the page). The
-- comment's text is on the case's timeline, not here. `created_at` is when Facebook says the
-- comment was written (NULL when it does not say), `received_at` when loket stored it.
CREATE TABLE facebook_comments (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    comment_id   TEXT   NOT NULL UNIQUE,
    direction    TEXT   NOT NULL CHECK (direction IN ('in', 'out')),
    post_id      TEXT   NOT NULL,
    parent_id    TEXT,
    case_id      BIGINT REFERENCES cases(id) ON DELETE CASCADE,
    from_id      TEXT,
    from_name    TEXT,
    created_at   BIGINT,
    received_at  BIGINT NOT NULL
);
CREATE INDEX facebook_comments_case ON facebook_comments (case_id);
