-- Browser sessions (SQLite dialect): a person signed in with a password, with the
-- session cookie. `sessions.kind` is `browser` (`actor_id` is then `user_id` and
-- `reason` empty); when it was last used (written now and then by the node that
-- served it, for the idle timeout and the sessions list), where from and in which
-- browser.
-- Kept in step with migrations/postgres/0014_browser_sessions.sql.

ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER;
ALTER TABLE sessions ADD COLUMN source TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
