-- Sign-up invite codes (SQLite dialect), as the v1 admin routes manage them.
-- Kept in step with migrations/postgres/0007_invite_codes.sql.

CREATE TABLE invite_codes (
    code TEXT NOT NULL PRIMARY KEY,
    signup_credits INTEGER NOT NULL,
    comments TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by INTEGER NOT NULL REFERENCES accounts (id)
);
