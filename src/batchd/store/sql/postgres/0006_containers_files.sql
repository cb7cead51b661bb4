-- batchd schema v6 (PostgreSQL): code-execution containers and the files their programs write.
-- A container lives while it is used: `expires_at` moves forward each time a request uses it, and a
-- container past it is removed (its row here, its home on the machine that ran it).
CREATE TABLE containers (
    id text PRIMARY KEY,
    workspace text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX containers_by_expiry ON containers (expires_at);

-- The Files API's files (/v1/files), each its workspace's: those a program left in $OUTPUT_DIR
-- (downloadable, until `expires_at`: the results' retention after they were written) and those
-- uploaded for `container_upload` (not downloadable, as Anthropic's; kept until deleted: expires_at
-- is +inf).
CREATE TABLE files (
    id text PRIMARY KEY,
    workspace text NOT NULL,
    container_id text,
    filename text NOT NULL,
    mime_type text NOT NULL,
    size_bytes bigint NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    downloadable boolean NOT NULL,
    content bytea NOT NULL
);
CREATE INDEX files_by_workspace ON files (workspace, created_at, id);
CREATE INDEX files_by_expiry ON files (expires_at);
