-- The SQLite store's statements (store/sqlite/), in the `-- name: x` format of store/queries.py.
-- Rows read by name have the fields of store/rows.py: BatchRow, ClaimRow, EntryRow.

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_version;

-- name: record_version
INSERT INTO schema_version (version) VALUES (?);

-- name: insert_batch
INSERT INTO batches (id, workspace, status, created_at, expires_at, n_processing)
VALUES (?, ?, 'in_progress', ?, ?, ?);

-- name: insert_request
INSERT INTO requests (key, custom_id) VALUES (?, ?);

-- name: insert_params
INSERT INTO request_params (key, params) VALUES (?, ?);

-- name: fetch_batch
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE id = ?;

-- name: list_first
-- Message Batches only: an OpenAI batch (`batch_…`, api/openai/) is not listed on Anthropic's wire.
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = ? AND substr(id, 1, 6) <> 'batch_' ORDER BY seq DESC LIMIT ?;

-- name: list_after
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = ? AND substr(id, 1, 6) <> 'batch_' AND seq < ? ORDER BY seq DESC LIMIT ?;

-- name: list_before
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = ? AND substr(id, 1, 6) <> 'batch_' AND seq > ? ORDER BY seq ASC LIMIT ?;

-- name: list_all_first
-- Both wires' batches (the dashboard's list): Message Batches and OpenAI batches (`batch_…`).
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = ? ORDER BY seq DESC LIMIT ?;

-- name: list_all_after
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = ? AND seq < ? ORDER BY seq DESC LIMIT ?;

-- name: list_all_before
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = ? AND seq > ? ORDER BY seq ASC LIMIT ?;

-- name: set_canceling
UPDATE batches SET status = 'canceling', cancel_initiated_at = ? WHERE seq = ?;

-- name: delete_results
DELETE FROM results WHERE key BETWEEN ? AND ?;

-- name: delete_requests
DELETE FROM requests WHERE key BETWEEN ? AND ?;

-- name: delete_params
DELETE FROM request_params WHERE key BETWEEN ? AND ?;

-- name: delete_batch
DELETE FROM batches WHERE seq = ?;

-- name: set_archived
UPDATE batches SET archived_at = ? WHERE seq = ?;

-- name: open_batches
-- The batches a claim shares out (store/shares.py): few rows, read through the partial index
-- batches_open (the `!= 'ended'` term lets the planner use it; an ORDER BY would make it scan).
SELECT seq, workspace FROM batches WHERE status != 'ended' AND status = 'in_progress' AND expires_at > ?;

-- name: claim
-- Up to ?4 pending requests of batch ?1 (keys ?2 to ?3) in key order: a range of the state index,
-- which holds no done request, so the cost does not grow with the requests done before them.
SELECT r.key, b.id AS batch_id, r.custom_id, p.params, r.claims, b.expires_at, b.workspace
FROM requests r JOIN batches b ON b.seq = ?1 JOIN request_params p ON p.key = r.key
WHERE r.state = 0 AND r.key >= ?2 AND r.key <= ?3
ORDER BY r.key LIMIT ?4;

-- name: lease
UPDATE requests SET state = 1, worker = ?, lease_until = ?, claims = claims + 1
WHERE key IN (SELECT value FROM json_each(?));

-- name: batch_seqs
SELECT id, seq FROM batches WHERE id IN (SELECT value FROM json_each(?));

-- name: done_among
SELECT key FROM requests WHERE key IN (SELECT value FROM json_each(?)) AND state = 2;

-- name: finish_requests
UPDATE requests SET state = 2, worker = NULL, lease_until = NULL
WHERE key IN (SELECT value FROM json_each(?)) AND state != 2;

-- name: insert_result
-- The first row of a multi-row INSERT: SQLiteStore appends one `, (?, ?, ?)` per further row.
INSERT OR IGNORE INTO results (key, type, line) VALUES (?, ?, ?);

-- name: move_counts
UPDATE batches SET n_processing = n_processing - ?, n_succeeded = n_succeeded + ?,
    n_errored = n_errored + ?, n_canceled = n_canceled + ?, n_expired = n_expired + ?
WHERE seq = ?;

-- name: end_if_done
UPDATE batches SET status = 'ended', ended_at = ?
WHERE seq = ? AND n_processing = 0 AND status != 'ended';

-- name: close_pending
-- Gives every pending (or, with state 1, running) request of one batch the same terminal result.
INSERT OR IGNORE INTO results (key, type, line)
SELECT key, ?, CAST('{"custom_id":"' || custom_id || '","result":{"type":"' || ? || '"}}' || char(10) AS BLOB)
FROM requests WHERE key BETWEEN ? AND ? AND state = ?;

-- name: finish_state
UPDATE requests SET state = 2, worker = NULL, lease_until = NULL
WHERE key BETWEEN ? AND ? AND state = ?;

-- name: heartbeat
UPDATE requests SET lease_until = ?
WHERE state = 1 AND worker = ? AND key IN (SELECT value FROM json_each(?));

-- name: recover_lapsed
UPDATE requests SET state = 0, worker = NULL, lease_until = NULL
WHERE state = 1 AND lease_until < ?;

-- name: recover_all
UPDATE requests SET state = 0, worker = NULL, lease_until = NULL WHERE state = 1;

-- name: due_to_expire
SELECT seq, expires_at FROM batches WHERE status != 'ended' AND expires_at <= ?;

-- name: due_to_archive
SELECT seq FROM batches WHERE archived_at IS NULL AND status = 'ended' AND created_at <= ?;

-- name: results_page
-- One row per page, its lines concatenated: a row fetched costs the reader thread a GIL round trip,
-- which waits on an event loop busy running a batch. In what order group_concat takes its rows is not
-- defined (an ORDER BY inside it needs SQLite 3.44), so the same pass also lists the key of each
-- line, as its offset from the page's start ?1, and SQLiteStore checks that they rise; a page whose
-- keys do not is read again as ordered rows (results_rows).
SELECT count(*), group_concat(key - ?1), CAST(group_concat(line, '') AS BLOB)
FROM (SELECT key, line FROM results WHERE key > ?1 AND key <= ?2 ORDER BY key LIMIT ?3);

-- name: list_results
-- One page of a batch's requests (key range), each with its result if any; optional filters.
SELECT r.key, r.custom_id, r.state, s.type, s.line
FROM requests r LEFT JOIN results s ON s.key = r.key
WHERE r.key > ?1 AND r.key <= ?2
    AND (?3 IS NULL OR r.custom_id = ?3)
    AND (?4 IS NULL OR s.type = ?4)
ORDER BY r.key LIMIT ?5;

-- name: write_probe
-- /health's write probe (Store.probe_write): rewrites the one row of its table.
INSERT OR REPLACE INTO write_probe (id, probed_at) VALUES (1, ?);

-- name: insert_session
INSERT INTO sessions (digest, workspace, key_proof, created_at, expires_at, last_seen_at, revoked_at)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: drop_ended_sessions
-- Sessions that ended by ?1: revoked, past their absolute end, or unused for the idle time (?2).
DELETE FROM sessions WHERE revoked_at IS NOT NULL OR expires_at <= ?1 OR last_seen_at <= ?1 - ?2;

-- name: fetch_session
SELECT digest, workspace, key_proof, created_at, expires_at, last_seen_at, revoked_at
FROM sessions WHERE digest = ?;

-- name: touch_session
UPDATE sessions SET last_seen_at = ?2 WHERE digest = ?1 AND last_seen_at < ?2;

-- name: revoke_session
UPDATE sessions SET revoked_at = ?2 WHERE digest = ?1 AND revoked_at IS NULL;

-- name: insert_server_secret
-- Store.server_secret: the first process to ask creates it; later ones keep the first value.
INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?, ?);

-- name: server_secret
SELECT value FROM server_secrets WHERE name = ?;

-- name: results_rows
-- One page of results as rows in key order, which ORDER BY defines: when results_page's did not rise.
SELECT key, line FROM results WHERE key > ? AND key <= ? ORDER BY key LIMIT ?;

-- name: insert_container
INSERT INTO containers (id, workspace, created_at, expires_at) VALUES (?, ?, ?, ?);

-- name: fetch_container
SELECT id, workspace, created_at, expires_at FROM containers WHERE id = ?;

-- name: touch_container
UPDATE containers SET expires_at = max(expires_at, ?2) WHERE id = ?1;

-- name: drop_expired_containers
DELETE FROM containers WHERE expires_at <= ? RETURNING id;

-- name: live_containers
SELECT id FROM containers WHERE id IN (SELECT value FROM json_each(?)) AND expires_at > ?;

-- name: insert_file
INSERT INTO files (id, workspace, container_id, filename, mime_type, size_bytes, created_at, expires_at, downloadable,
    content)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: fetch_file
SELECT id, workspace, container_id, filename, mime_type, size_bytes, created_at, expires_at, downloadable
FROM files WHERE id = ? AND workspace = ? AND expires_at > ?;

-- name: file_content
SELECT content FROM files WHERE id = ? AND workspace = ? AND expires_at > ?;

-- name: list_files
-- Newest first; (?3, ?4) is the last file of the previous page (created_at, id), or (inf, '').
SELECT id, workspace, container_id, filename, mime_type, size_bytes, created_at, expires_at, downloadable
FROM files WHERE workspace = ?1 AND expires_at > ?2 AND (created_at < ?3 OR (created_at = ?3 AND id < ?4))
ORDER BY created_at DESC, id DESC LIMIT ?5;

-- name: list_files_before
-- Oldest first from (?3, ?4) up: the page before a file (before_id), read backwards.
SELECT id, workspace, container_id, filename, mime_type, size_bytes, created_at, expires_at, downloadable
FROM files WHERE workspace = ?1 AND expires_at > ?2 AND (created_at > ?3 OR (created_at = ?3 AND id > ?4))
ORDER BY created_at ASC, id ASC LIMIT ?5;

-- name: delete_file
DELETE FROM files WHERE id = ? AND workspace = ?;

-- name: drop_expired_files
DELETE FROM files WHERE expires_at <= ?;

-- -- API keys and quotas (added for issue 17) --

-- name: insert_api_key
INSERT INTO api_keys (id, digest, workspace, name, admin, created_at, last_used_at, expires_at, revoked_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: find_api_key
SELECT id, digest, workspace, name, admin, created_at, last_used_at, expires_at, revoked_at
FROM api_keys WHERE digest = ?;

-- name: fetch_api_key
SELECT id, digest, workspace, name, admin, created_at, last_used_at, expires_at, revoked_at
FROM api_keys WHERE id = ?;

-- name: list_api_keys
SELECT id, digest, workspace, name, admin, created_at, last_used_at, expires_at, revoked_at
FROM api_keys WHERE ?1 IS NULL OR workspace = ?1 ORDER BY created_at, id;

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL;

-- name: touch_api_key
-- Last use written at most once per ?3 seconds, whatever the number of processes.
UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3);

-- name: insert_batch_size
INSERT OR REPLACE INTO batch_sizes (seq, workspace, bytes) VALUES (?, ?, ?);

-- name: workspace_usage
-- One workspace's open batches, their requests still processing, and the params bytes it keeps.
SELECT ?1,
    (SELECT count(*) FROM batches WHERE workspace = ?1 AND status != 'ended'),
    (SELECT coalesce(sum(n_processing), 0) FROM batches WHERE workspace = ?1 AND status != 'ended'),
    (SELECT coalesce(sum(s.bytes), 0) FROM batch_sizes s JOIN batches b ON b.seq = s.seq
     WHERE s.workspace = ?1 AND b.archived_at IS NULL);

-- name: open_usage
-- workspace_usage without the bytes (0), which cost a pass over every batch the workspace keeps:
-- what a create reads when its quota does not count bytes.
SELECT ?1, count(*), coalesce(sum(n_processing), 0), 0
FROM batches WHERE workspace = ?1 AND status != 'ended';

-- name: all_usage
-- Every workspace that has a batch: the same figures as workspace_usage.
SELECT b.workspace,
    sum(b.status != 'ended'),
    sum(CASE WHEN b.status != 'ended' THEN b.n_processing ELSE 0 END),
    coalesce(sum(CASE WHEN b.archived_at IS NULL THEN s.bytes END), 0)
FROM batches b LEFT JOIN batch_sizes s ON s.seq = b.seq
GROUP BY b.workspace ORDER BY b.workspace;

-- -- idempotency and webhooks (issue 17) ---------------------------------------------------------

-- name: batch_by_seq
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE seq = ?;

-- name: insert_idempotency_key
-- (workspace, key) is the primary key: of concurrent duplicates, one inserts and the others read it.
INSERT OR IGNORE INTO idempotency_keys (workspace, key, body_sha256, batch_id, created_at)
VALUES (?, ?, ?, ?, ?);

-- name: fetch_idempotency_key
SELECT body_sha256, batch_id, created_at FROM idempotency_keys WHERE workspace = ? AND key = ?;

-- name: replace_idempotency_key
-- A key last used longer ago than the window is free again.
UPDATE idempotency_keys SET body_sha256 = ?3, batch_id = ?4, created_at = ?5
WHERE workspace = ?1 AND key = ?2;

-- name: sweep_idempotency_keys
DELETE FROM idempotency_keys WHERE created_at <= ?;

-- name: insert_end_event
-- The outbox: written in the transaction that ended the batch, if its workspace ?2 has endpoints.
INSERT OR IGNORE INTO webhook_events (id, workspace, type, batch, created_at)
SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE workspace = ?2);

-- name: insert_end_deliveries
INSERT OR IGNORE INTO webhook_deliveries
    (event_id, endpoint_id, state, attempts, next_attempt_at, started_at, updated_at)
SELECT ?1, id, 'pending', 0, ?3, ?3, ?3 FROM webhook_endpoints WHERE workspace = ?2;

-- name: insert_webhook_endpoint
INSERT INTO webhook_endpoints (id, workspace, url, secret, created_at) VALUES (?, ?, ?, ?, ?);

-- name: list_webhook_endpoints
SELECT id, workspace, url, secret, created_at FROM webhook_endpoints
WHERE workspace = ? ORDER BY created_at, id;

-- name: delete_webhook_endpoint
DELETE FROM webhook_endpoints WHERE id = ? AND workspace = ?;

-- name: delete_endpoint_deliveries
DELETE FROM webhook_deliveries WHERE endpoint_id = ?;

-- name: due_webhook_deliveries
SELECT d.event_id, d.endpoint_id, d.attempts + 1 AS attempt, d.started_at, e.type, e.batch, e.created_at, p.url, p.secret
FROM webhook_deliveries d
JOIN webhook_events e ON e.id = d.event_id JOIN webhook_endpoints p ON p.id = d.endpoint_id
WHERE d.state = 'pending' AND d.next_attempt_at <= ?
ORDER BY d.next_attempt_at LIMIT ?;

-- name: take_webhook_delivery
-- Claimed: out of sight of the delivery loop until ?1 (the claim's lease), one attempt counted.
UPDATE webhook_deliveries SET next_attempt_at = ?1, attempts = attempts + 1
WHERE event_id = ?2 AND endpoint_id = ?3;

-- name: record_webhook_attempt
UPDATE webhook_deliveries SET state = ?3, next_attempt_at = ?4, last_status = ?5, last_error = ?6,
    updated_at = ?7
WHERE event_id = ?1 AND endpoint_id = ?2 AND state = 'pending';

-- name: list_webhook_deliveries
SELECT d.event_id, d.endpoint_id, p.url, e.type, d.state, d.attempts, d.next_attempt_at, d.last_status,
    d.last_error, e.created_at, d.updated_at
FROM webhook_deliveries d
JOIN webhook_events e ON e.id = d.event_id LEFT JOIN webhook_endpoints p ON p.id = d.endpoint_id
WHERE e.workspace = ?1 AND (?2 IS NULL OR d.state = ?2) AND (?3 IS NULL OR d.event_id = ?3)
ORDER BY e.created_at DESC, d.event_id, d.endpoint_id LIMIT ?4;

-- name: redeliver_webhook_event
UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?3, started_at = ?3, updated_at = ?3
WHERE event_id = ?1 AND event_id IN (SELECT id FROM webhook_events WHERE workspace = ?2);

-- name: sweep_webhook_deliveries
-- Events older than the cutoff that nothing waits to deliver any more.
DELETE FROM webhook_deliveries WHERE state != 'pending'
    AND event_id IN (SELECT id FROM webhook_events WHERE created_at <= ?);

-- name: sweep_webhook_events
DELETE FROM webhook_events WHERE created_at <= ?
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id);

-- name: upsert_webhook_endpoint
INSERT INTO webhook_endpoints (id, workspace, url, secret, created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET workspace = excluded.workspace, url = excluded.url, secret = excluded.secret;

-- name: drop_config_webhook_deliveries
-- The deliveries of configured endpoints (ids starting ?1) that the configuration no longer names (?2).
DELETE FROM webhook_deliveries
WHERE substr(endpoint_id, 1, length(?1)) = ?1 AND endpoint_id NOT IN (SELECT value FROM json_each(?2));

-- name: drop_config_webhook_endpoints
DELETE FROM webhook_endpoints WHERE substr(id, 1, length(?1)) = ?1 AND id NOT IN (SELECT value FROM json_each(?2));

-- name: list_params
-- Store.list_params (dashboard, issue 18): a page of a batch's requests with a result of the given
-- types (a JSON list), each with its params.
SELECT s.key, r.custom_id, p.params
FROM results s JOIN requests r ON r.key = s.key JOIN request_params p ON p.key = s.key
WHERE s.key > ?1 AND s.key <= ?2 AND s.type IN (SELECT value FROM json_each(?3))
ORDER BY s.key LIMIT ?4;
