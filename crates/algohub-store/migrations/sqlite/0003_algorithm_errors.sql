-- Recent errors of algorithm calls, for the owner's error listing (SQLite dialect).
-- Kept in step with migrations/postgres/0003_algorithm_errors.sql.

CREATE TABLE algorithm_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    algorithm_id INTEGER NOT NULL REFERENCES algorithms (id),
    created_at INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    caller_id INTEGER NOT NULL REFERENCES accounts (id),
    version TEXT NOT NULL,
    input TEXT NOT NULL,
    error TEXT NOT NULL,
    error_type TEXT NOT NULL
);

CREATE INDEX algorithm_errors_by_algorithm ON algorithm_errors (algorithm_id, created_at);
