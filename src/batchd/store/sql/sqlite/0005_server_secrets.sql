-- batchd schema v5 (SQLite): secrets generated once and shared by every process of the store
-- (Store.server_secret), e.g. the key of the server tools' encrypted_content tokens.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
