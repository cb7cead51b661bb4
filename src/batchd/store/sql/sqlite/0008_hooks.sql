-- batchd schema v8 (SQLite): idempotent create and completion webhooks (issue 17).
-- idempotency_keys: one row per (workspace, Idempotency-Key), inserted in the transaction that
-- creates the batch; the primary key decides between concurrent duplicates.
CREATE TABLE idempotency_keys (
    workspace TEXT NOT NULL,
    key TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (workspace, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- A workspace's webhook endpoints; `secret` signs (HMAC) every delivery, so it is kept as is.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace);

-- The outbox: one event per batch end, written in the transaction that ends the batch, with the
-- batch as it ended (a JSON object of its columns), and one delivery per endpoint of its workspace.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    type TEXT NOT NULL,
    batch TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX webhook_events_by_age ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
