-- The SQLite store's statements for the OpenAI wire (store/sqlite/openai.py), in the `-- name: x`
-- format of store/queries.py. Rows read by name have the fields of store/openai.py.

-- name: insert_file
INSERT INTO openai_files (id, workspace, filename, purpose, bytes, created_at, expires_at, complete)
VALUES (?, ?, ?, ?, ?, ?, ?, 0);

-- name: insert_chunk
INSERT INTO openai_file_chunks (file_id, n, data) VALUES (?, ?, ?);

-- name: complete_file
UPDATE openai_files SET complete = 1, filename = ?, purpose = ?, bytes = ?, expires_at = ? WHERE id = ?;

-- name: delete_chunks
DELETE FROM openai_file_chunks WHERE file_id = ?;

-- name: delete_file
DELETE FROM openai_files WHERE id = ?;

-- name: delete_upload
DELETE FROM openai_files WHERE id = ? AND workspace = ? AND complete = 1;

-- name: unlist_output
UPDATE openai_batches SET output_deleted = 1
WHERE output_file_id = ? AND workspace = ? AND closed_at IS NOT NULL AND output_bytes > 0 AND output_deleted = 0;

-- name: unlist_error
UPDATE openai_batches SET error_deleted = 1
WHERE error_file_id = ? AND workspace = ? AND closed_at IS NOT NULL AND error_bytes > 0 AND error_deleted = 0;

-- name: fetch_file
SELECT id, workspace, filename, purpose, bytes, created_at, expires_at FROM openai_file_list
WHERE id = ? AND workspace = ? AND (expires_at IS NULL OR expires_at > ?);

-- name: list_files_desc
-- ?1 workspace, ?2 now, ?3/?4 the cursor's (created_at, id), ?5 purpose or NULL, ?6 limit
SELECT id, workspace, filename, purpose, bytes, created_at, expires_at FROM openai_file_list
WHERE workspace = ?1 AND (expires_at IS NULL OR expires_at > ?2) AND (created_at, id) < (?3, ?4)
    AND (?5 IS NULL OR purpose = ?5)
ORDER BY created_at DESC, id DESC LIMIT ?6;

-- name: list_files_asc
SELECT id, workspace, filename, purpose, bytes, created_at, expires_at FROM openai_file_list
WHERE workspace = ?1 AND (expires_at IS NULL OR expires_at > ?2) AND (created_at, id) > (?3, ?4)
    AND (?5 IS NULL OR purpose = ?5)
ORDER BY created_at ASC, id ASC LIMIT ?6;

-- name: chunks
SELECT n, data FROM openai_file_chunks WHERE file_id = ? AND n > ? ORDER BY n LIMIT ?;

-- name: expired_files
SELECT id FROM openai_files WHERE expires_at <= ?1 OR (complete = 0 AND created_at <= ?2);

-- name: insert_batch
INSERT INTO openai_batches (id, workspace, input_file_id, endpoint, completion_window, metadata, model,
    created_at, expires_at, failed_at, errors, output_expires_after, output_file_id, error_file_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: fetch_batch
SELECT o.seq, o.id, o.workspace, o.input_file_id, o.endpoint, o.completion_window, o.metadata, o.model,
    o.created_at, o.expires_at, o.failed_at, o.errors, o.output_expires_after, o.output_file_id,
    o.error_file_id, o.closed_at, o.output_bytes, o.error_bytes, o.usage, b.seq AS engine_seq, b.status,
    b.ended_at, b.cancel_initiated_at, b.archived_at, b.n_processing, b.n_succeeded, b.n_errored,
    b.n_canceled, b.n_expired
FROM openai_batches o LEFT JOIN batches b ON b.id = o.id
WHERE o.id = ? AND o.workspace = ?;

-- name: fetch_by_output
SELECT o.seq, o.id, o.workspace, o.input_file_id, o.endpoint, o.completion_window, o.metadata, o.model,
    o.created_at, o.expires_at, o.failed_at, o.errors, o.output_expires_after, o.output_file_id,
    o.error_file_id, o.closed_at, o.output_bytes, o.error_bytes, o.usage, b.seq AS engine_seq, b.status,
    b.ended_at, b.cancel_initiated_at, b.archived_at, b.n_processing, b.n_succeeded, b.n_errored,
    b.n_canceled, b.n_expired
FROM openai_batches o LEFT JOIN batches b ON b.id = o.id
WHERE o.workspace = ?1 AND o.id = (
    SELECT id FROM openai_batches WHERE output_file_id = ?2
    UNION ALL SELECT id FROM openai_batches WHERE error_file_id = ?2 LIMIT 1);

-- name: list_batches
-- ?1 workspace, ?2 the seq the page starts below, ?3 limit
SELECT o.seq, o.id, o.workspace, o.input_file_id, o.endpoint, o.completion_window, o.metadata, o.model,
    o.created_at, o.expires_at, o.failed_at, o.errors, o.output_expires_after, o.output_file_id,
    o.error_file_id, o.closed_at, o.output_bytes, o.error_bytes, o.usage, b.seq AS engine_seq, b.status,
    b.ended_at, b.cancel_initiated_at, b.archived_at, b.n_processing, b.n_succeeded, b.n_errored,
    b.n_canceled, b.n_expired
FROM openai_batches o LEFT JOIN batches b ON b.id = o.id
WHERE o.workspace = ?1 AND o.seq < ?2 ORDER BY o.seq DESC LIMIT ?3;

-- name: batch_seq
SELECT seq FROM openai_batches WHERE id = ? AND workspace = ?;

-- name: close_batch
UPDATE openai_batches SET closed_at = ?, output_bytes = ?, error_bytes = ?, usage = ?, files_expire_at = ?
WHERE id = ? AND closed_at IS NULL;

-- name: results
SELECT key, type, line FROM results WHERE key > ? AND key <= ? ORDER BY key LIMIT ?;

-- name: unclosed
-- The workspace's batches whose engine batch has ended and whose files are not summed yet.
SELECT o.seq, o.id, o.workspace, o.input_file_id, o.endpoint, o.completion_window, o.metadata, o.model,
    o.created_at, o.expires_at, o.failed_at, o.errors, o.output_expires_after, o.output_file_id,
    o.error_file_id, o.closed_at, o.output_bytes, o.error_bytes, o.usage, b.seq AS engine_seq, b.status,
    b.ended_at, b.cancel_initiated_at, b.archived_at, b.n_processing, b.n_succeeded, b.n_errored,
    b.n_canceled, b.n_expired
FROM openai_batches o JOIN batches b ON b.id = o.id
WHERE o.workspace = ? AND o.closed_at IS NULL AND o.failed_at IS NULL AND b.status = 'ended';

-- name: file_exists
SELECT 1 FROM openai_files WHERE id = ?;
