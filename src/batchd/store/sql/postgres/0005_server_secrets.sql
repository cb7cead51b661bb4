-- batchd schema v5 (PostgreSQL): secrets generated once and shared by every process of the fleet
-- (Store.server_secret), e.g. the key of the server tools' encrypted_content tokens.
CREATE TABLE server_secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
