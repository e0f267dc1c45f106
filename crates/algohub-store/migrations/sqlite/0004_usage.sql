-- Call governance (SQLite dialect): concurrency slots, usage records and their daily
-- rollups, the royalty ledger, and org work limits.
-- Kept in step with migrations/postgres/0004_usage.sql.

ALTER TABLE orgs ADD COLUMN work_limit INTEGER;

-- One row per running call while it holds a slot of its account's work limit.
-- Rows of a node that died expire at `expires_at` (live nodes renew theirs).
CREATE TABLE call_slots (
    id TEXT NOT NULL PRIMARY KEY,
    account_id INTEGER NOT NULL,
    node TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX call_slots_by_account ON call_slots (account_id, expires_at);
CREATE INDEX call_slots_by_node ON call_slots (node);

-- One row per call, refused ones included. `algorithm_id` is NULL when the
-- algorithm did not resolve; owner and name are then as requested.
CREATE TABLE usage_records (
    request_id TEXT NOT NULL PRIMARY KEY,
    started_at INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    caller_id INTEGER NOT NULL,
    acting_as_id INTEGER NOT NULL,
    payer_id INTEGER NOT NULL,
    via TEXT NOT NULL,
    algorithm_id INTEGER,
    owner_id INTEGER,
    algo_owner TEXT NOT NULL,
    algo_name TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    compute_units INTEGER NOT NULL,
    royalty_microcredits INTEGER NOT NULL
);

CREATE INDEX usage_records_by_start ON usage_records (started_at);

-- Daily rollups of usage_records, maintained in the same transaction; reports
-- read these. `day` counts days since 1970-01-01 (UTC); 0 ids mean "none".
CREATE TABLE usage_daily (
    day INTEGER NOT NULL,
    payer_id INTEGER NOT NULL,
    caller_id INTEGER NOT NULL,
    algorithm_id INTEGER NOT NULL,
    owner_id INTEGER NOT NULL,
    version TEXT NOT NULL,
    via TEXT NOT NULL,
    calls INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    compute_units INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    error_duration_us INTEGER NOT NULL,
    credits INTEGER NOT NULL,
    PRIMARY KEY (day, payer_id, caller_id, algorithm_id, version, via)
);

CREATE INDEX usage_daily_by_payer ON usage_daily (payer_id, day);
CREATE INDEX usage_daily_by_owner ON usage_daily (owner_id, day);

-- Double-entry ledger: every posting is a pair of rows summing to zero.
CREATE TABLE ledger_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    amount_microcredits INTEGER NOT NULL,
    at INTEGER NOT NULL
);

CREATE INDEX ledger_entries_by_account ON ledger_entries (account_id, at);
