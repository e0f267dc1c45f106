-- Algorithms, their artifacts, builds and versions (SQLite dialect). Kept in step
-- with migrations/postgres/0002_algorithms.sql.

CREATE TABLE artifacts (
    digest TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('wasm', 'http')),
    bytes BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE algorithms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    app_id INTEGER REFERENCES apps (id) ON DELETE SET NULL,
    details TEXT NOT NULL DEFAULT '{}',
    settings TEXT NOT NULL DEFAULT '{}',
    runtime TEXT NOT NULL DEFAULT 'wasm' CHECK (runtime IN ('wasm', 'http')),
    artifact_digest TEXT NOT NULL REFERENCES artifacts (digest),
    created_by INTEGER NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    CONSTRAINT algorithms_uuid_key UNIQUE (uuid),
    CONSTRAINT algorithms_owner_name_key UNIQUE (owner_id, name_lower)
);

CREATE TABLE builds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    algorithm_id INTEGER NOT NULL REFERENCES algorithms (id),
    commit_sha TEXT NOT NULL,
    artifact_digest TEXT NOT NULL REFERENCES artifacts (digest),
    status TEXT NOT NULL CHECK (status IN ('in-progress', 'succeeded', 'failed')),
    logs TEXT NOT NULL DEFAULT '',
    created_by INTEGER NOT NULL REFERENCES accounts (id),
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    CONSTRAINT builds_uuid_key UNIQUE (uuid)
);

CREATE INDEX builds_algorithm ON builds (algorithm_id, id);

CREATE TABLE versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL,
    algorithm_id INTEGER NOT NULL REFERENCES algorithms (id),
    build_id INTEGER NOT NULL REFERENCES builds (id),
    major INTEGER NOT NULL,
    minor INTEGER NOT NULL,
    patch INTEGER NOT NULL,
    git_hash TEXT NOT NULL,
    artifact_digest TEXT NOT NULL REFERENCES artifacts (digest),
    callability TEXT NOT NULL CHECK (callability IN ('public', 'private')),
    status TEXT NOT NULL CHECK (status IN ('published', 'pending', 'rejected')),
    release_notes TEXT NOT NULL DEFAULT '',
    sample_input TEXT,
    sample_output TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    published_by INTEGER NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL,
    decided_by INTEGER REFERENCES accounts (id),
    decided_at INTEGER,
    decision_reason TEXT,
    approved_digest TEXT,
    CONSTRAINT versions_uuid_key UNIQUE (uuid),
    CONSTRAINT versions_build_key UNIQUE (build_id),
    CONSTRAINT versions_semver_key UNIQUE (algorithm_id, major, minor, patch)
);

CREATE INDEX versions_algorithm ON versions (algorithm_id, major, minor, patch);
