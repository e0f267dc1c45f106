-- Sign-up invite codes (PostgreSQL dialect), as the v1 admin routes manage them.
-- Kept in step with migrations/sqlite/0007_invite_codes.sql.

CREATE TABLE invite_codes (
    code TEXT NOT NULL PRIMARY KEY,
    signup_credits BIGINT NOT NULL,
    comments TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES accounts (id)
);
