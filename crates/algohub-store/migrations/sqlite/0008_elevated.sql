-- Elevated access (SQLite dialect): impersonation sessions and super powers; and
-- the claim column of outbox email delivery.
-- Kept in step with migrations/postgres/0008_elevated.sql.

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES accounts (id),
    actor_id INTEGER NOT NULL REFERENCES accounts (id),
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER,
    end_reason TEXT
);

CREATE INDEX sessions_live ON sessions (expires_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_actor ON sessions (actor_id);

ALTER TABLE users ADD COLUMN super_powers_until INTEGER;
ALTER TABLE users ADD COLUMN super_powers_started_at INTEGER;
ALTER TABLE users ADD COLUMN super_powers_reason TEXT;

-- Email delivery from the outbox: a node claims a message for a while before
-- sending it, so two nodes do not send the same email.
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
