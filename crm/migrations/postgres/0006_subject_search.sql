-- Searching cases by words of the subject (`lower(subject) LIKE '%word%'`). Without this index
-- a rare word scans every case, and the planner, blind to how common a word is, walked 100,000
-- rows for a common one too: ANALYZE gathers statistics on the indexed expression, so it now
-- estimates well. pg_trgm ships with PostgreSQL and is a trusted extension: the database's owner
-- may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX cases_subject_words ON cases USING gin (lower(subject) gin_trgm_ops);
