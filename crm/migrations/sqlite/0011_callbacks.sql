-- Callbacks that waiting callers chose (issue 5), kept until the call back is over: the work item
-- keeps the caller's place in the router (which, on Redis, outlives a restart of loket), and this
-- row keeps the number to call and the case the call belongs to, which the router does not know.
-- `item_id` is the router's work item; `number` is E.164; `queue` is where the item goes back
-- should the agent's phone not answer.
CREATE TABLE callbacks (
    item_id      BIGINT PRIMARY KEY,
    number       TEXT   NOT NULL,
    case_id      BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    contact_id   BIGINT REFERENCES contacts(id) ON DELETE SET NULL,
    queue        TEXT   NOT NULL,
    requested_at BIGINT NOT NULL
);
