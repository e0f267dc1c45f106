-- The audit trail (SQLite dialect): events become audit records with the
-- request's facts and a hash chain (see algohub_core::audit).
-- Kept in step with migrations/postgres/0005_audit.sql.

ALTER TABLE events ADD COLUMN effective_id INTEGER;
ALTER TABLE events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE events ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN auth_method TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN token_sha256 TEXT;
ALTER TABLE events ADD COLUMN source TEXT;
ALTER TABLE events ADD COLUMN prev_hash TEXT;
ALTER TABLE events ADD COLUMN hash TEXT;

CREATE INDEX events_actor_idx ON events (actor_id, id);
CREATE INDEX events_subject_idx ON events (subject, id);
CREATE INDEX events_at_idx ON events (at);
