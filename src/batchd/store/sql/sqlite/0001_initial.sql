-- batchd schema v1 (SQLite)
-- A request's key is batches.seq << 32 | index, so requests of one batch are one rowid range
-- and claiming in rowid order is FIFO across batches.
CREATE TABLE batches (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workspace TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    ended_at REAL,
    cancel_initiated_at REAL,
    archived_at REAL,
    n_processing INTEGER NOT NULL,
    n_succeeded INTEGER NOT NULL DEFAULT 0,
    n_errored INTEGER NOT NULL DEFAULT 0,
    n_canceled INTEGER NOT NULL DEFAULT 0,
    n_expired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX batches_by_workspace ON batches (workspace, seq);
CREATE INDEX batches_open ON batches (expires_at) WHERE status != 'ended';
CREATE INDEX batches_unarchived ON batches (created_at) WHERE archived_at IS NULL;

CREATE TABLE requests (
    key INTEGER PRIMARY KEY,
    custom_id TEXT NOT NULL,
    params BLOB NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    claims INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX requests_by_state ON requests (state);

-- One row per request once it has its result; the primary key makes the first result final.
-- `line` is the whole JSONL line, newline included, so downloads are concatenation.
CREATE TABLE results (
    key INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    line BLOB NOT NULL
);
