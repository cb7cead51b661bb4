-- batchd schema v4 (PostgreSQL): dashboard login sessions, shared by every process of a fleet. The
-- browser's cookie holds a random session id; a row keeps only its SHA-256, so reading the database
-- gives no way to log in. `key_proof` ties the session to the API key that made it (an HMAC keyed
-- by the id), so removing the key from the configuration ends its sessions.
CREATE TABLE sessions (
    digest text PRIMARY KEY,
    workspace text NOT NULL,
    key_proof text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    revoked_at double precision
);
