-- Cluster secrets (PostgreSQL dialect): keys every node of a cluster shares, created
-- once by whichever node needs one first (e.g. the key that signs call tokens).
-- Kept in step with migrations/sqlite/0009_cluster_secrets.sql.

CREATE TABLE cluster_secrets (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
