-- batchd schema v7 (SQLite): managed API keys and per-workspace usage (issue 17).
-- A key is 32 random bytes shown once; a row keeps only its SHA-256 (`digest`), so reading the
-- database gives no key. `last_used_at` is written at most once a minute per key.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    admin INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    expires_at REAL,
    revoked_at REAL
) WITHOUT ROWID;
CREATE INDEX api_keys_by_workspace ON api_keys (workspace, created_at);

-- The bytes of each batch's params, for the stored-bytes quota: written with the batch. A batch
-- deleted or archived no longer counts (the usage query joins batches and skips archived ones).
-- `seq` may be reused by SQLite after the newest batch is deleted: writes replace the row.
CREATE TABLE batch_sizes (
    seq INTEGER PRIMARY KEY,
    workspace TEXT NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE INDEX batch_sizes_by_workspace ON batch_sizes (workspace);
INSERT INTO batch_sizes (seq, workspace, bytes)
SELECT b.seq, b.workspace, coalesce((
    SELECT sum(length(p.params)) FROM request_params p WHERE p.key BETWEEN b.seq << 32 AND (b.seq << 32) + 4294967295
), 0)
FROM batches b WHERE b.archived_at IS NULL;

-- The quota check reads a workspace's open batches only.
CREATE INDEX batches_open_by_workspace ON batches (workspace) WHERE status != 'ended';
