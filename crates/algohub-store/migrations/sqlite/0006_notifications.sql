-- In-app notifications (SQLite dialect): messages from cluster admins and
-- system notifications delivered from the outbox in the same transaction.
-- Kept in step with migrations/postgres/0006_notifications.sql.

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    url TEXT,
    context TEXT NOT NULL,
    sender_id INTEGER,
    created_at INTEGER NOT NULL,
    read_at INTEGER
);

CREATE INDEX notifications_by_user ON notifications (user_id, id);
