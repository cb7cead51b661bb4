-- batchd schema v8 (PostgreSQL): idempotent create and completion webhooks (issue 17).
-- idempotency_keys: one row per (workspace, Idempotency-Key), inserted in the transaction that
-- creates the batch; the primary key decides between concurrent duplicates.
CREATE TABLE idempotency_keys (
    workspace text NOT NULL,
    key text NOT NULL,
    body_sha256 text NOT NULL,
    batch_id text NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (workspace, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- A workspace's webhook endpoints; `secret` signs (HMAC) every delivery, so it is kept as is.
CREATE TABLE webhook_endpoints (
    id text PRIMARY KEY,
    workspace text NOT NULL,
    url text NOT NULL,
    secret text NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace);

-- The outbox: one event per batch end, written in the transaction that ends the batch, with the
-- batch as it ended (a JSON object of its columns), and one delivery per endpoint of its workspace.
CREATE TABLE webhook_events (
    id text PRIMARY KEY,
    workspace text NOT NULL,
    type text NOT NULL,
    batch text NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX webhook_events_by_age ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    event_id text NOT NULL,
    endpoint_id text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at double precision NOT NULL,
    last_status integer,
    last_error text,
    started_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
