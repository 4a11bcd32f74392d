-- Mail loket writes by itself (acknowledgements) carries Auto-Submitted (RFC 3834), so that other
-- responders do not answer it with their own automatic replies: `auto-replied` for an answer to a
-- citizen's message, `auto-generated` otherwise; NULL for mail an agent wrote.
ALTER TABLE outbox ADD COLUMN auto_submitted TEXT;
