-- Jobs and their append-only event history; the SQLite twin of
-- migrations/postgres/0001_jobs.sql, with the same tables and columns.

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL DEFAULT 'default',
    request_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    spec_json       TEXT NOT NULL,
    state           TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    message         TEXT NOT NULL DEFAULT '',
    progress_json   TEXT,
    last_sequence   INTEGER NOT NULL,
    created_at_us   INTEGER NOT NULL,
    updated_at_us   INTEGER NOT NULL,
    started_at_us   INTEGER,
    finished_at_us  INTEGER,
    CONSTRAINT jobs_request_id_unique UNIQUE (tenant, request_id),
    CONSTRAINT jobs_state_valid CHECK (state IN
        ('QUEUED', 'SCHEDULED', 'RUNNING', 'RECOVERING', 'SUCCEEDED', 'FAILED', 'CANCELLED'))
);

CREATE INDEX jobs_newest_first ON jobs (created_at_us DESC, id DESC);
CREATE INDEX jobs_by_state ON jobs (state, priority DESC, created_at_us);

CREATE TABLE job_events (
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    sequence        INTEGER NOT NULL,
    created_at_us   INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    from_state      TEXT,
    to_state        TEXT,
    message         TEXT NOT NULL DEFAULT '',
    progress_json   TEXT,
    PRIMARY KEY (job_id, sequence)
);

CREATE TRIGGER job_events_no_update BEFORE UPDATE ON job_events
BEGIN
    SELECT RAISE(ABORT, 'job_events is append-only');
END;

CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events
BEGIN
    SELECT RAISE(ABORT, 'job_events is append-only');
END;

CREATE TABLE checkpoints (
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    step            INTEGER NOT NULL,
    epoch           INTEGER NOT NULL,
    uri             TEXT NOT NULL,
    loss            REAL NOT NULL,
    committed_at_us INTEGER NOT NULL,
    PRIMARY KEY (job_id, step)
);
