-- The PostgreSQL store's statements (store/postgres/), in the `-- name: x` format of store/queries.py.
-- Rows read by name have the fields of store/rows.py: BatchRow, ClaimRow, EntryRow. Advisory lock
-- keys are parameters, declared in store/postgres/locks.py.

-- name: migrate_lock
SELECT pg_advisory_lock($1);

-- name: migrate_unlock
SELECT pg_advisory_unlock($1);

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY);

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_version;

-- name: record_version
INSERT INTO schema_version (version) VALUES ($1);

-- name: ping
-- The LISTEN connection's liveness check: a link that died silently fails it.
SELECT 1;

-- name: insert_batch
INSERT INTO batches (id, workspace, status, created_at, expires_at, n_processing)
VALUES ($1, $2, 'in_progress', $3, $4, $5)
RETURNING seq;

-- name: notify_work
-- Wakes every listening dispatcher once the transaction commits.
SELECT pg_notify('batchd_work', '');

-- name: fetch_batch
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE id = $1;

-- name: lock_batch
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE id = $1 FOR UPDATE;

-- name: list_first
-- Message Batches only: an OpenAI batch (`batch_…`, api/openai/) is not listed on Anthropic's wire.
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = $1 AND substr(id, 1, 6) <> 'batch_' ORDER BY seq DESC LIMIT $2;

-- name: list_after
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = $1 AND substr(id, 1, 6) <> 'batch_' AND seq < $2 ORDER BY seq DESC LIMIT $3;

-- name: list_before
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = $1 AND substr(id, 1, 6) <> 'batch_' AND seq > $2 ORDER BY seq ASC LIMIT $3;

-- name: list_all_first
-- Both wires' batches (the dashboard's list): Message Batches and OpenAI batches (`batch_…`).
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = $1 ORDER BY seq DESC LIMIT $2;

-- name: list_all_after
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3;

-- name: list_all_before
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE workspace = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3;

-- name: set_canceling
UPDATE batches SET status = 'canceling', cancel_initiated_at = $2 WHERE seq = $1;

-- name: delete_results
DELETE FROM results WHERE key BETWEEN $1 AND $2;

-- name: delete_requests
DELETE FROM requests WHERE key BETWEEN $1 AND $2;

-- name: delete_params
DELETE FROM request_params WHERE key BETWEEN $1 AND $2;

-- name: delete_batch
DELETE FROM batches WHERE seq = $1;

-- name: set_archived
UPDATE batches SET archived_at = $2 WHERE seq = $1;

-- name: claim_lock
-- Serialises claims fleet-wide while a cap on running requests is set, so the count below holds.
SELECT pg_advisory_xact_lock($1);

-- name: claim_plan
-- For the claim's transaction only: no bitmap scans. After a VACUUM without ANALYZE (a fresh
-- database's first autovacuum, or a bulk load's) the planner guessed a few pending rows per key
-- range and read each batch's pending requests whole through a bitmap, then sorted them, instead
-- of walking the pending index in key order up to the claim's count: measured on ten batches of
-- 10,000 requests, 130 ms a claim of 256 instead of 3 ms, growing with the batches' size.
SET LOCAL enable_bitmapscan = off;

-- name: count_running
SELECT count(*) FROM requests WHERE state = 1;

-- name: open_batches
-- The batches a claim shares out (store/shares.py): few rows, read through the partial index
-- batches_open (which the `<> 'ended'` term lets the planner use).
SELECT seq, workspace FROM batches WHERE status <> 'ended' AND status = 'in_progress' AND expires_at > $1;

-- name: claim
-- Up to $6[i] pending requests of each batch, keys $4[i] to $5[i], in key order: one walk of the
-- pending index per batch that stops at its count. SKIP LOCKED: concurrent claimers never wait for
-- each other and never take the same request. $4[i] is the batch's floor, its first key or the
-- lowest this store took from it last time, so the walk skips the dead index entries of the
-- requests done since the last vacuum (see PostgresStore._claim). The batch check is repeated per
-- row: a batch may have ended since open_batches read it.
WITH picked AS (
    SELECT x.key FROM unnest($4::bigint[], $5::bigint[], $6::int[]) AS t(low, high, n)
    CROSS JOIN LATERAL (
        SELECT r.key FROM requests r
        WHERE r.state = 0 AND r.key >= t.low AND r.key <= t.high
            AND (SELECT b.status = 'in_progress' AND b.expires_at > $1 FROM batches b WHERE b.seq = r.key >> 32)
        ORDER BY r.key LIMIT t.n
        FOR UPDATE OF r SKIP LOCKED
    ) x
)
UPDATE requests r SET state = 1, worker = $2, lease_until = $3, claims = r.claims + 1
FROM picked, batches b, request_params p
WHERE r.key = picked.key AND b.seq = r.key >> 32 AND p.key = r.key
RETURNING r.key, b.id AS batch_id, r.custom_id, p.params, r.claims - 1 AS claims, b.expires_at,
    b.workspace;

-- name: lock_batches_by_id
-- Batch rows are always locked first and in seq order: no deadlock between writers.
SELECT id, seq FROM batches WHERE id = ANY($1::text[]) ORDER BY seq FOR UPDATE;

-- name: finish_requests
UPDATE requests SET state = 2, worker = NULL, lease_until = NULL
WHERE key = ANY($1::bigint[]) AND state <> 2
RETURNING key;

-- name: insert_results
INSERT INTO results (key, type, line)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[])
ON CONFLICT (key) DO NOTHING;

-- name: move_counts
UPDATE batches SET n_processing = n_processing - $2, n_succeeded = n_succeeded + $3,
    n_errored = n_errored + $4, n_canceled = n_canceled + $5, n_expired = n_expired + $6
WHERE seq = $1;

-- name: end_if_done
UPDATE batches SET status = 'ended', ended_at = $2
WHERE seq = $1 AND n_processing = 0 AND status <> 'ended';

-- name: close_state
-- Gives every request of one batch in state $3 the terminal result $4, in one statement.
WITH closed AS (
    UPDATE requests SET state = 2, worker = NULL, lease_until = NULL
    WHERE key BETWEEN $1 AND $2 AND state = $3
    RETURNING key, custom_id
), written AS (
    INSERT INTO results (key, type, line)
    SELECT key, $4::text,
        convert_to('{"custom_id":"' || custom_id || '","result":{"type":"' || $4::text || '"}}' || chr(10), 'UTF8')
    FROM closed
    ON CONFLICT (key) DO NOTHING
)
SELECT count(*) FROM closed;

-- name: heartbeat
-- Rows locked by a writer are being finished right now: skip them rather than wait. The rows that an
-- earlier identity of the same worker holds ($4: the worker's id and '/', see postgres/liveness.py)
-- move to the current identity $2.
UPDATE requests SET lease_until = $1, worker = $2
WHERE key IN (
    SELECT key FROM requests
    WHERE key = ANY($3::bigint[]) AND state = 1 AND (worker = $2 OR starts_with(worker, $4))
    FOR UPDATE SKIP LOCKED
);

-- name: maintenance_lock
-- One process at a time runs each sweep; the others skip it (whoever gets there does it).
SELECT pg_try_advisory_xact_lock($1);

-- name: recover_lapsed
-- Spares the workers $2 whose liveness lock was found free only lately: they may be alive, taking a
-- new lock, and about to renew.
UPDATE requests SET state = 0, worker = NULL, lease_until = NULL
WHERE key IN (
    SELECT key FROM requests WHERE state = 1 AND lease_until < $1 AND worker <> ALL($2::text[])
    FOR UPDATE SKIP LOCKED
);

-- name: due_to_expire
SELECT seq, expires_at FROM batches WHERE status <> 'ended' AND expires_at <= $1
ORDER BY seq FOR UPDATE SKIP LOCKED;

-- name: recover_all
UPDATE requests SET state = 0, worker = NULL, lease_until = NULL WHERE state = 1;

-- name: due_to_archive
SELECT seq FROM batches WHERE archived_at IS NULL AND status = 'ended' AND created_at <= $1
ORDER BY seq FOR UPDATE SKIP LOCKED;

-- name: results_page
-- Rows in key order, which ORDER BY defines; PostgresStore joins their lines. (One row built with
-- string_agg(line, '' ORDER BY key), also defined, downloaded at less than half the speed.)
SELECT key, line FROM results WHERE key > $1 AND key <= $2 ORDER BY key LIMIT $3;

-- name: list_results
-- One page of a batch's requests (key range), each with its result if any; optional filters.
SELECT r.key, r.custom_id, r.state, s.type, s.line
FROM requests r LEFT JOIN results s ON s.key = r.key
WHERE r.key > $1 AND r.key <= $2
    AND ($3::text IS NULL OR r.custom_id = $3)
    AND ($4::text IS NULL OR s.type = $4)
ORDER BY r.key LIMIT $5;

-- name: try_slot
-- A route's fleet slot (store/postgres/slots.py): tries the candidate slots $2 in the order given and
-- stops at the first one it gets: the filter runs row by row under the LIMIT, so at most one lock is
-- taken.
SELECT s FROM unnest($2::int[]) AS s WHERE pg_try_advisory_lock($1, s) LIMIT 1;

-- name: unlock_slot
SELECT pg_advisory_unlock($1, $2);

-- name: truncate_write_probe
-- /health's write probe (Store.probe_write), rolled back after the insert below: the truncation
-- gives the table a new, empty file, so the row must find new room on disk.
TRUNCATE write_probe;

-- name: insert_write_probe
INSERT INTO write_probe (probed_at) VALUES ($1);

-- name: insert_session
INSERT INTO sessions (digest, workspace, key_proof, created_at, expires_at, last_seen_at, revoked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: drop_ended_sessions
-- Sessions that ended by $1: revoked, past their absolute end, or unused for the idle time ($2).
DELETE FROM sessions WHERE revoked_at IS NOT NULL OR expires_at <= $1 OR last_seen_at <= $1 - $2;

-- name: fetch_session
SELECT digest, workspace, key_proof, created_at, expires_at, last_seen_at, revoked_at
FROM sessions WHERE digest = $1;

-- name: touch_session
UPDATE sessions SET last_seen_at = $2 WHERE digest = $1 AND last_seen_at < $2;

-- name: revoke_session
UPDATE sessions SET revoked_at = $2 WHERE digest = $1 AND revoked_at IS NULL;

-- name: insert_server_secret
-- Store.server_secret: the first process to ask creates it; a racing insert waits for the first
-- to commit and then does nothing, so every process reads the same value.
INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING;

-- name: server_secret
SELECT value FROM server_secrets WHERE name = $1;

-- name: try_worker_lock
-- A worker's liveness lock (store/postgres/liveness.py), held by its session for as long as it lives.
SELECT pg_try_advisory_lock($1);

-- name: running_workers
-- The identities holding running requests: one walk of the running index.
SELECT DISTINCT worker FROM requests WHERE state = 1;

-- name: free_worker_locks
-- Which of the identities $1 (their lock keys in $2) no session holds the lock of any more. Taking it
-- here succeeds only then, and it goes back when this transaction ends.
SELECT w FROM unnest($1::text[], $2::bigint[]) AS t(w, k) WHERE pg_try_advisory_xact_lock(k);

-- name: recover_workers
-- The running requests of dead identities $1 return to pending; each is a crash (their claims count).
UPDATE requests SET state = 0, worker = NULL, lease_until = NULL
WHERE key IN (
    SELECT key FROM requests WHERE state = 1 AND worker = ANY($1::text[]) FOR UPDATE SKIP LOCKED
);

-- name: release_requests
-- A worker gives back requests $1 that it still holds (as $3, or an earlier identity: $4 is the
-- worker's id and '/'), alive: they return to pending and their claim does not count. $2 holds each
-- one's claim count under that claim: a request claimed again since (by anyone) is left alone.
UPDATE requests SET state = 0, worker = NULL, lease_until = NULL, claims = claims - 1
WHERE key IN (
    SELECT r.key FROM requests r JOIN unnest($1::bigint[], $2::int[]) AS g(key, claims)
        ON g.key = r.key AND g.claims = r.claims
    WHERE r.state = 1 AND (r.worker = $3 OR starts_with(r.worker, $4))
    FOR UPDATE OF r SKIP LOCKED
);

-- name: insert_container
INSERT INTO containers (id, workspace, created_at, expires_at) VALUES ($1, $2, $3, $4);

-- name: fetch_container
SELECT id, workspace, created_at, expires_at FROM containers WHERE id = $1;

-- name: touch_container
UPDATE containers SET expires_at = greatest(expires_at, $2) WHERE id = $1;

-- name: drop_expired_containers
DELETE FROM containers WHERE expires_at <= $1 RETURNING id;

-- name: live_containers
SELECT id FROM containers WHERE id = ANY($1::text[]) AND expires_at > $2;

-- name: insert_file
INSERT INTO files (id, workspace, container_id, filename, mime_type, size_bytes, created_at, expires_at, downloadable,
    content)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);

-- name: fetch_file
SELECT id, workspace, container_id, filename, mime_type, size_bytes, created_at, expires_at, downloadable
FROM files WHERE id = $1 AND workspace = $2 AND expires_at > $3;

-- name: file_content
SELECT content FROM files WHERE id = $1 AND workspace = $2 AND expires_at > $3;

-- name: list_files
-- Newest first; ($3, $4) is the last file of the previous page (created_at, id), or (inf, '').
SELECT id, workspace, container_id, filename, mime_type, size_bytes, created_at, expires_at, downloadable
FROM files WHERE workspace = $1 AND expires_at > $2 AND (created_at, id) < ($3, $4)
ORDER BY created_at DESC, id DESC LIMIT $5;

-- name: list_files_before
-- Oldest first from ($3, $4) up: the page before a file (before_id), read backwards.
SELECT id, workspace, container_id, filename, mime_type, size_bytes, created_at, expires_at, downloadable
FROM files WHERE workspace = $1 AND expires_at > $2 AND (created_at, id) > ($3, $4)
ORDER BY created_at ASC, id ASC LIMIT $5;

-- name: delete_file
DELETE FROM files WHERE id = $1 AND workspace = $2;

-- name: drop_expired_files
DELETE FROM files WHERE expires_at <= $1;

-- -- API keys and quotas (added for issue 17) --

-- name: insert_api_key
INSERT INTO api_keys (id, digest, workspace, name, admin, created_at, last_used_at, expires_at, revoked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- name: find_api_key
SELECT id, digest, workspace, name, admin, created_at, last_used_at, expires_at, revoked_at
FROM api_keys WHERE digest = $1;

-- name: fetch_api_key
SELECT id, digest, workspace, name, admin, created_at, last_used_at, expires_at, revoked_at
FROM api_keys WHERE id = $1;

-- name: list_api_keys
SELECT id, digest, workspace, name, admin, created_at, last_used_at, expires_at, revoked_at
FROM api_keys WHERE $1::text IS NULL OR workspace = $1 ORDER BY created_at, id;

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL;

-- name: touch_api_key
-- Last use written at most once per $3 seconds, whatever the number of processes.
UPDATE api_keys SET last_used_at = $2
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::float8 - $3::float8);

-- name: quota_lock
-- Creates of one workspace take turns from here to their commit, across the fleet: the quota check
-- and the insert see every batch committed before.
SELECT pg_advisory_xact_lock($1);

-- name: insert_batch_size
INSERT INTO batch_sizes (seq, workspace, bytes) VALUES ($1, $2, $3)
ON CONFLICT (seq) DO UPDATE SET workspace = excluded.workspace, bytes = excluded.bytes;

-- name: workspace_usage
-- One workspace's open batches, their requests still processing, and the params bytes it keeps.
SELECT $1::text,
    (SELECT count(*) FROM batches WHERE workspace = $1 AND status <> 'ended'),
    (SELECT coalesce(sum(n_processing), 0) FROM batches WHERE workspace = $1 AND status <> 'ended'),
    (SELECT coalesce(sum(s.bytes), 0)::bigint FROM batch_sizes s JOIN batches b ON b.seq = s.seq
     WHERE s.workspace = $1 AND b.archived_at IS NULL);

-- name: open_usage
-- workspace_usage without the bytes (0), which cost a pass over every batch the workspace keeps:
-- what a create reads when its quota does not count bytes.
SELECT $1::text, count(*), coalesce(sum(n_processing), 0), 0
FROM batches WHERE workspace = $1 AND status <> 'ended';

-- name: all_usage
-- Every workspace that has a batch: the same figures as workspace_usage.
SELECT b.workspace,
    count(*) FILTER (WHERE b.status <> 'ended'),
    coalesce(sum(b.n_processing) FILTER (WHERE b.status <> 'ended'), 0),
    coalesce(sum(s.bytes) FILTER (WHERE b.archived_at IS NULL), 0)::bigint
FROM batches b LEFT JOIN batch_sizes s ON s.seq = b.seq
GROUP BY b.workspace ORDER BY b.workspace;

-- -- idempotency and webhooks (issue 17) ---------------------------------------------------------

-- name: batch_by_seq
SELECT seq, id, workspace, status, created_at, expires_at, ended_at, cancel_initiated_at, archived_at,
    n_processing, n_succeeded, n_errored, n_canceled, n_expired
FROM batches WHERE seq = $1;

-- name: insert_idempotency_key
-- (workspace, key) is the primary key: of concurrent duplicates one inserts; the others wait for its
-- transaction to end, then insert nothing and read its row.
INSERT INTO idempotency_keys (workspace, key, body_sha256, batch_id, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (workspace, key) DO NOTHING;

-- name: fetch_idempotency_key
SELECT body_sha256, batch_id, created_at FROM idempotency_keys WHERE workspace = $1 AND key = $2 FOR UPDATE;

-- name: replace_idempotency_key
-- A key last used longer ago than the window is free again.
UPDATE idempotency_keys SET body_sha256 = $3, batch_id = $4, created_at = $5
WHERE workspace = $1 AND key = $2;

-- name: sweep_idempotency_keys
DELETE FROM idempotency_keys WHERE created_at <= $1;

-- name: insert_end_event
-- The outbox: written in the transaction that ended the batch, if its workspace $2 has endpoints.
INSERT INTO webhook_events (id, workspace, type, batch, created_at)
SELECT $1::text, $2::text, $3::text, $4::text, $5::float8
WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE workspace = $2::text)
ON CONFLICT (id) DO NOTHING;

-- name: insert_end_deliveries
INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_at, started_at, updated_at)
SELECT $1::text, id, 'pending', 0, $3::float8, $3::float8, $3::float8 FROM webhook_endpoints WHERE workspace = $2
ON CONFLICT (event_id, endpoint_id) DO NOTHING;

-- name: insert_webhook_endpoint
INSERT INTO webhook_endpoints (id, workspace, url, secret, created_at) VALUES ($1, $2, $3, $4, $5);

-- name: list_webhook_endpoints
SELECT id, workspace, url, secret, created_at FROM webhook_endpoints
WHERE workspace = $1 ORDER BY created_at, id;

-- name: delete_webhook_endpoint
DELETE FROM webhook_endpoints WHERE id = $1 AND workspace = $2;

-- name: delete_endpoint_deliveries
DELETE FROM webhook_deliveries WHERE endpoint_id = $1;

-- name: claim_webhook_deliveries
-- Due deliveries, each taken by one process of the fleet (SKIP LOCKED) and hidden from the others
-- until $3 (the claim's lease), one attempt counted.
WITH due AS (
    SELECT event_id, endpoint_id FROM webhook_deliveries
    WHERE state = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d SET next_attempt_at = $3, attempts = d.attempts + 1
FROM due, webhook_events e, webhook_endpoints p
WHERE d.event_id = due.event_id AND d.endpoint_id = due.endpoint_id
    AND e.id = d.event_id AND p.id = d.endpoint_id
RETURNING d.event_id, d.endpoint_id, d.attempts AS attempt, d.started_at, e.type, e.batch, e.created_at, p.url, p.secret;

-- name: record_webhook_attempt
UPDATE webhook_deliveries SET state = $3, next_attempt_at = $4, last_status = $5, last_error = $6,
    updated_at = $7
WHERE event_id = $1 AND endpoint_id = $2 AND state = 'pending';

-- name: list_webhook_deliveries
SELECT d.event_id, d.endpoint_id, p.url, e.type, d.state, d.attempts, d.next_attempt_at, d.last_status,
    d.last_error, e.created_at, d.updated_at
FROM webhook_deliveries d
JOIN webhook_events e ON e.id = d.event_id LEFT JOIN webhook_endpoints p ON p.id = d.endpoint_id
WHERE e.workspace = $1 AND ($2::text IS NULL OR d.state = $2) AND ($3::text IS NULL OR d.event_id = $3)
ORDER BY e.created_at DESC, d.event_id, d.endpoint_id LIMIT $4;

-- name: redeliver_webhook_event
UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3, started_at = $3, updated_at = $3
WHERE event_id = $1 AND event_id IN (SELECT id FROM webhook_events WHERE workspace = $2);

-- name: sweep_webhook_deliveries
-- Events older than the cutoff that nothing waits to deliver any more.
DELETE FROM webhook_deliveries WHERE state <> 'pending'
    AND event_id IN (SELECT id FROM webhook_events WHERE created_at <= $1);

-- name: sweep_webhook_events
DELETE FROM webhook_events WHERE created_at <= $1
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id);

-- name: upsert_webhook_endpoint
INSERT INTO webhook_endpoints (id, workspace, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET workspace = excluded.workspace, url = excluded.url, secret = excluded.secret;

-- name: drop_config_webhook_deliveries
-- The deliveries of configured endpoints (ids starting $1) that the configuration no longer names ($2).
DELETE FROM webhook_deliveries WHERE starts_with(endpoint_id, $1) AND endpoint_id <> ALL($2::text[]);

-- name: drop_config_webhook_endpoints
DELETE FROM webhook_endpoints WHERE starts_with(id, $1) AND id <> ALL($2::text[]);

-- name: list_params
-- Store.list_params (dashboard, issue 18): a page of a batch's requests with a result of the given
-- types, each with its params.
SELECT s.key, r.custom_id, p.params
FROM results s JOIN requests r ON r.key = s.key JOIN request_params p ON p.key = s.key
WHERE s.key > $1 AND s.key <= $2 AND s.type = ANY($3::text[])
ORDER BY s.key LIMIT $4;
