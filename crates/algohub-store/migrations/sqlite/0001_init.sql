-- algohub schema, SQLite dialect. Kept in step with migrations/postgres/0001_init.sql:
-- same tables, same columns in the same order (checked by the conformance suite).
-- Times are integer milliseconds since the Unix epoch; booleans are integers 0/1.
-- Accounts are never physically deleted: they are tombstoned (status = 'deleted').

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'org')),
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    CONSTRAINT accounts_uuid_key UNIQUE (uuid),
    CONSTRAINT accounts_name_key UNIQUE (name)
);

CREATE TABLE users (
    account_id INTEGER NOT NULL PRIMARY KEY REFERENCES accounts (id),
    email TEXT NOT NULL,
    full_name TEXT NOT NULL DEFAULT '',
    company_name TEXT,
    company_role TEXT,
    password_hash TEXT,
    cluster_admin INTEGER NOT NULL DEFAULT 0,
    sudo_user INTEGER NOT NULL DEFAULT 0,
    work_limit INTEGER,
    last_login_at INTEGER,
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE org_types (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    CONSTRAINT org_types_name_key UNIQUE (name)
);

INSERT INTO org_types (id, name) VALUES ('7c1d5e0a-6a43-4d3c-9a51-3f0b8e2d4a10', 'basic');

CREATE TABLE orgs (
    account_id INTEGER NOT NULL PRIMARY KEY REFERENCES accounts (id),
    label TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    email TEXT NOT NULL,
    url TEXT,
    type_id TEXT NOT NULL REFERENCES org_types (id),
    tos_version INTEGER NOT NULL DEFAULT 1,
    require_approval INTEGER NOT NULL DEFAULT 1,
    allow_self_approval INTEGER NOT NULL DEFAULT 0,
    consolidated_billing INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX orgs_type_id_idx ON orgs (type_id);

CREATE TABLE memberships (
    org_id INTEGER NOT NULL REFERENCES accounts (id),
    user_id INTEGER NOT NULL REFERENCES accounts (id),
    role INTEGER NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (org_id, user_id)
);

CREATE INDEX memberships_user_id_idx ON memberships (user_id);
CREATE INDEX memberships_expires_at_idx ON memberships (expires_at);

CREATE TABLE invitations (
    id TEXT NOT NULL PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES accounts (id),
    invitee_user_id INTEGER REFERENCES accounts (id),
    invitee_email TEXT,
    role INTEGER NOT NULL,
    token_digest TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    invited_by INTEGER NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    accepted_tos_version INTEGER,
    accepted_at INTEGER,
    CONSTRAINT invitations_token_digest_key UNIQUE (token_digest)
);

CREATE INDEX invitations_org_status_idx ON invitations (org_id, status);
CREATE INDEX invitations_invitee_user_idx ON invitations (invitee_user_id);
CREATE INDEX invitations_invitee_email_idx ON invitations (invitee_email);
CREATE INDEX invitations_status_expires_idx ON invitations (status, expires_at);

CREATE TABLE apps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_by INTEGER NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT apps_uuid_key UNIQUE (uuid),
    CONSTRAINT apps_owner_name_key UNIQUE (owner_id, name_lower)
);

CREATE TABLE app_pins (
    user_id INTEGER NOT NULL REFERENCES accounts (id),
    app_id INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    pinned_at INTEGER NOT NULL,
    CONSTRAINT app_pins_pkey PRIMARY KEY (user_id, app_id)
);

CREATE INDEX app_pins_app_id_idx ON app_pins (app_id);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    org_id INTEGER NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT teams_uuid_key UNIQUE (uuid),
    CONSTRAINT teams_org_name_key UNIQUE (org_id, name_lower)
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES accounts (id),
    expires_at INTEGER,
    CONSTRAINT team_members_pkey PRIMARY KEY (team_id, user_id)
);

CREATE INDEX team_members_user_id_idx ON team_members (user_id);
CREATE INDEX team_members_expires_at_idx ON team_members (expires_at);

CREATE TABLE team_apps (
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    app_id INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    role INTEGER NOT NULL,
    expires_at INTEGER,
    CONSTRAINT team_apps_pkey PRIMARY KEY (team_id, app_id)
);

CREATE INDEX team_apps_app_id_idx ON team_apps (app_id);
CREATE INDEX team_apps_expires_at_idx ON team_apps (expires_at);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'org', 'member')),
    owner_id INTEGER NOT NULL REFERENCES accounts (id),
    org_id INTEGER REFERENCES accounts (id),
    label TEXT NOT NULL DEFAULT '',
    key_type TEXT NOT NULL,
    mask TEXT NOT NULL,
    digest TEXT NOT NULL,
    scopes INTEGER NOT NULL,
    allow_web_algo INTEGER NOT NULL DEFAULT 0,
    referer_host TEXT,
    algo_acl TEXT NOT NULL DEFAULT '[]',
    created_by INTEGER NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER,
    CONSTRAINT api_keys_uuid_key UNIQUE (uuid),
    CONSTRAINT api_keys_digest_key UNIQUE (digest)
);

CREATE INDEX api_keys_owner_idx ON api_keys (owner_id, kind);
CREATE INDEX api_keys_org_idx ON api_keys (org_id);

CREATE TABLE policy_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    entity_id INTEGER NOT NULL,
    at INTEGER NOT NULL
);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    recipient_user_id INTEGER,
    recipient_email TEXT,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);

CREATE INDEX outbox_delivered_at_idx ON outbox (delivered_at);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    actor_id INTEGER,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    at INTEGER NOT NULL
);

CREATE INDEX events_kind_idx ON events (kind, id);
