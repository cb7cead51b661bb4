-- batchd schema v6 (SQLite): code-execution containers and the files their programs write.
-- A container lives while it is used: `expires_at` moves forward each time a request uses it, and a
-- container past it is removed (its row here, its home on the machine that ran it).
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX containers_by_expiry ON containers (expires_at);

-- The Files API's files (/v1/files), each its workspace's: those a program left in $OUTPUT_DIR
-- (downloadable, until `expires_at`: the results' retention after they were written) and those
-- uploaded for `container_upload` (not downloadable, as Anthropic's; kept until deleted: expires_at
-- is +inf).
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    container_id TEXT,
    filename TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    downloadable INTEGER NOT NULL,
    content BLOB NOT NULL
);
CREATE INDEX files_by_workspace ON files (workspace, created_at, id);
CREATE INDEX files_by_expiry ON files (expires_at);
