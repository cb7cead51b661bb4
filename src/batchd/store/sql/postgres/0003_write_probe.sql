-- batchd schema v3 (PostgreSQL): the table /health's write probe (Store.probe_write) writes into.
-- The probe truncates it and inserts one row, then rolls back: truncation gives the table a new,
-- empty file, so the row needs new room on disk, which a full disk refuses. It stays empty.
CREATE TABLE write_probe (probed_at double precision NOT NULL);
