-- batchd schema v1 (PostgreSQL)
-- Same shape as the SQLite schema: a request's key is batches.seq << 32 | index (bigint), so the
-- requests of one batch are one key range and claiming in key order is FIFO across batches.
-- Timestamps are epoch seconds (double precision), exactly as the domain models carry them.
CREATE TABLE batches (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    workspace text NOT NULL,
    status text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    ended_at double precision,
    cancel_initiated_at double precision,
    archived_at double precision,
    n_processing integer NOT NULL,
    n_succeeded integer NOT NULL DEFAULT 0,
    n_errored integer NOT NULL DEFAULT 0,
    n_canceled integer NOT NULL DEFAULT 0,
    n_expired integer NOT NULL DEFAULT 0
);
CREATE INDEX batches_by_workspace ON batches (workspace, seq);
CREATE INDEX batches_open ON batches (expires_at) WHERE status <> 'ended';
CREATE INDEX batches_unarchived ON batches (created_at) WHERE archived_at IS NULL;

CREATE TABLE requests (
    key bigint PRIMARY KEY,
    custom_id text NOT NULL,
    params bytea NOT NULL,
    state smallint NOT NULL DEFAULT 0,
    worker text,
    lease_until double precision,
    claims integer NOT NULL DEFAULT 0
);
-- Claims walk the pending keys in order; heartbeats and lease recovery look only at running rows.
CREATE INDEX requests_pending ON requests (key) WHERE state = 0;
CREATE INDEX requests_running ON requests (worker, lease_until) WHERE state = 1;

-- One row per request once it has its result; the primary key makes the first result final.
-- `line` is the whole JSONL line, newline included, so downloads are concatenation.
CREATE TABLE results (
    key bigint PRIMARY KEY,
    type text NOT NULL,
    line bytea NOT NULL
);
