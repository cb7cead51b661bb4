-- batchd schema v9 (SQLite): the OpenAI wire's Files and Batches (issue 16; docs/openai.md).
-- An uploaded file is a row of `openai_files` and its bytes, in order, rows of `openai_file_chunks`
-- (1 MiB each): written a few chunks per transaction while the upload streams in, so the writer is
-- never held for a whole 200 MB file; the file shows only once `complete`. Every process sharing a
-- PostgreSQL store reads every file: there is no files directory to share.
CREATE TABLE openai_files (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,  -- NULL: kept until deleted
    complete INTEGER NOT NULL  -- 0 while the upload is being written (a crash leaves it for the sweep)
) WITHOUT ROWID;
CREATE INDEX openai_files_by_workspace ON openai_files (workspace, created_at, id);
CREATE INDEX openai_files_by_expiry ON openai_files (expires_at);

CREATE TABLE openai_file_chunks (
    file_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (file_id, n)
);

-- An OpenAI batch: the engine batch of the same id (batches.id) runs its lines; this row holds what
-- only the OpenAI wire knows. A batch that failed validation has no engine batch (failed_at, errors).
-- closed_at: when its output and error files were summed up (bytes, usage), once the engine batch
-- ended: the batch is completed / cancelled / expired from then on, and its files listed.
CREATE TABLE openai_batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    workspace TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    metadata TEXT,  -- JSON object, or NULL
    model TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    failed_at REAL,
    errors TEXT,  -- JSON list of BatchError objects, with failed_at
    output_expires_after REAL NOT NULL,
    output_file_id TEXT NOT NULL UNIQUE,
    error_file_id TEXT NOT NULL UNIQUE,
    closed_at REAL,
    output_bytes INTEGER,
    error_bytes INTEGER,
    usage TEXT,  -- JSON object, or NULL
    files_expire_at REAL,
    output_deleted INTEGER NOT NULL DEFAULT 0,
    error_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX openai_batches_by_workspace ON openai_batches (workspace, seq);
CREATE INDEX openai_batches_unclosed ON openai_batches (workspace) WHERE closed_at IS NULL;

-- Every file the OpenAI wire lists: uploads, and the output and error files of closed batches
-- (content rendered from the batch's results, never copied).
CREATE VIEW openai_file_list AS
SELECT id, workspace, filename, purpose, bytes, created_at, expires_at FROM openai_files WHERE complete = 1
UNION ALL
SELECT output_file_id, workspace, id || '_output.jsonl', 'batch_output', output_bytes, closed_at, files_expire_at
FROM openai_batches WHERE closed_at IS NOT NULL AND output_bytes > 0 AND output_deleted = 0
UNION ALL
SELECT error_file_id, workspace, id || '_error.jsonl', 'batch_output', error_bytes, closed_at, files_expire_at
FROM openai_batches WHERE closed_at IS NOT NULL AND error_bytes > 0 AND error_deleted = 0;
