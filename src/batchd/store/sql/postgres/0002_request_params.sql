-- batchd schema v2 (PostgreSQL): a request's params move to a table of their own, written once at
-- create. Claiming and finishing a request write a new version of its `requests` row; with the
-- ~1 KB of params inside it, each of those copied the params too (and logged them in the WAL).
CREATE TABLE request_params (
    key bigint PRIMARY KEY,
    params bytea NOT NULL
);
INSERT INTO request_params (key, params) SELECT key, params FROM requests;
ALTER TABLE requests DROP COLUMN params;
