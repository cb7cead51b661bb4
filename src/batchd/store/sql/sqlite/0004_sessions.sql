-- batchd schema v4 (SQLite): dashboard login sessions. The browser's cookie holds a random session
-- id; a row keeps only its SHA-256, so reading the database gives no way to log in. `key_proof`
-- ties the session to the API key that made it (an HMAC keyed by the id), so removing the key
-- from the configuration ends its sessions.
CREATE TABLE sessions (
    digest TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    key_proof TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    revoked_at REAL
) WITHOUT ROWID;
