-- batchd schema v2 (SQLite): a request's params move to a table of their own, written once at create.
-- Claiming and finishing a request update its `requests` row; with the ~1 KB of params inside it,
-- each update rewrote them too, and a run wrote ~10 KB per request through the WAL. The table is
-- rebuilt rather than altered (DROP COLUMN needs SQLite 3.35).
CREATE TABLE request_params (
    key INTEGER PRIMARY KEY,
    params BLOB NOT NULL
);
INSERT INTO request_params (key, params) SELECT key, params FROM requests;
CREATE TABLE requests_v2 (
    key INTEGER PRIMARY KEY,
    custom_id TEXT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    claims INTEGER NOT NULL DEFAULT 0
);
INSERT INTO requests_v2 (key, custom_id, state, worker, lease_until, claims)
SELECT key, custom_id, state, worker, lease_until, claims FROM requests;
DROP TABLE requests;
ALTER TABLE requests_v2 RENAME TO requests;
CREATE INDEX requests_by_state ON requests (state);
