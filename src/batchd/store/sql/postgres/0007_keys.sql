-- batchd schema v7 (PostgreSQL): managed API keys and per-workspace usage (issue 17), shared by every
-- process of a fleet. A key is 32 random bytes shown once; a row keeps only its SHA-256 (`digest`),
-- so reading the database gives no key. `last_used_at` is written at most once a minute per key.
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    digest text NOT NULL UNIQUE,
    workspace text NOT NULL,
    name text NOT NULL,
    admin boolean NOT NULL,
    created_at double precision NOT NULL,
    last_used_at double precision,
    expires_at double precision,
    revoked_at double precision
);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace, created_at);

-- The bytes of each batch's params, for the stored-bytes quota: written with the batch. A batch
-- deleted or archived no longer counts (the usage query joins batches and skips archived ones).
CREATE TABLE batch_sizes (
    seq bigint PRIMARY KEY,
    workspace text NOT NULL,
    bytes bigint NOT NULL
);
CREATE INDEX batch_sizes_by_workspace ON batch_sizes (workspace);
INSERT INTO batch_sizes (seq, workspace, bytes)
SELECT b.seq, b.workspace, coalesce((
    SELECT sum(octet_length(p.params)) FROM request_params p
    WHERE p.key BETWEEN b.seq << 32 AND (b.seq << 32) + 4294967295
), 0)
FROM batches b WHERE b.archived_at IS NULL;

-- The quota check reads a workspace's open batches only.
CREATE INDEX batches_open_by_workspace ON batches (workspace) WHERE status <> 'ended';
