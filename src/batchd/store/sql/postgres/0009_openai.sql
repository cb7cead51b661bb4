-- batchd schema v9 (PostgreSQL): the OpenAI wire's Files and Batches (issue 16; docs/openai.md).
-- An uploaded file is a row of `openai_files` and its bytes, in order, rows of `openai_file_chunks`
-- (1 MiB each): written a few chunks per transaction while the upload streams in, so the writer is
-- never held for a whole 200 MB file; the file shows only once `complete`. Every process sharing a
-- PostgreSQL store reads every file: there is no files directory to share.
CREATE TABLE openai_files (
    id text PRIMARY KEY,
    workspace text NOT NULL,
    filename text NOT NULL,
    purpose text NOT NULL,
    bytes bigint NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision,  -- NULL: kept until deleted
    complete boolean NOT NULL  -- false while the upload is being written (a crash leaves it for the sweep)
);
CREATE INDEX openai_files_by_workspace ON openai_files (workspace, created_at, id);
CREATE INDEX openai_files_by_expiry ON openai_files (expires_at);

CREATE TABLE openai_file_chunks (
    file_id text NOT NULL,
    n bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (file_id, n)
);

-- An OpenAI batch: the engine batch of the same id (batches.id) runs its lines; this row holds what
-- only the OpenAI wire knows. A batch that failed validation has no engine batch (failed_at, errors).
-- closed_at: when its output and error files were summed up (bytes, usage), once the engine batch
-- ended: the batch is completed / cancelled / expired from then on, and its files listed.
CREATE TABLE openai_batches (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    workspace text NOT NULL,
    input_file_id text NOT NULL,
    endpoint text NOT NULL,
    completion_window text NOT NULL,
    metadata text,  -- JSON object, or NULL
    model text,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    failed_at double precision,
    errors text,  -- JSON list of BatchError objects, with failed_at
    output_expires_after double precision NOT NULL,
    output_file_id text NOT NULL UNIQUE,
    error_file_id text NOT NULL UNIQUE,
    closed_at double precision,
    output_bytes bigint,
    error_bytes bigint,
    usage text,  -- JSON object, or NULL
    files_expire_at double precision,
    output_deleted boolean NOT NULL DEFAULT false,
    error_deleted boolean NOT NULL DEFAULT false
);
CREATE INDEX openai_batches_by_workspace ON openai_batches (workspace, seq);
CREATE INDEX openai_batches_unclosed ON openai_batches (workspace) WHERE closed_at IS NULL;

-- Every file the OpenAI wire lists: uploads, and the output and error files of closed batches
-- (content rendered from the batch's results, never copied).
CREATE VIEW openai_file_list AS
SELECT id, workspace, filename, purpose, bytes, created_at, expires_at FROM openai_files WHERE complete
UNION ALL
SELECT output_file_id, workspace, id || '_output.jsonl', 'batch_output', output_bytes, closed_at, files_expire_at
FROM openai_batches WHERE closed_at IS NOT NULL AND output_bytes > 0 AND output_deleted = false
UNION ALL
SELECT error_file_id, workspace, id || '_error.jsonl', 'batch_output', error_bytes, closed_at, files_expire_at
FROM openai_batches WHERE closed_at IS NOT NULL AND error_bytes > 0 AND error_deleted = false;
