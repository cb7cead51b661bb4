-- batchd schema v3 (SQLite): the one row that /health's write probe (Store.probe_write) rewrites,
-- so that a store that answers reads but cannot be written shows as degraded.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at REAL NOT NULL
);
