-- Jobs and their append-only event history.
--
-- Ids are UUID text and times are microseconds since the Unix epoch, so that the
-- same queries run unchanged on PostgreSQL and on SQLite.

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
    -- Sequence number of the job's newest event; each append increments it.
    last_sequence   BIGINT NOT NULL,
    created_at_us   BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL,
    started_at_us   BIGINT,
    finished_at_us  BIGINT,
    CONSTRAINT jobs_request_id_unique UNIQUE (tenant, request_id),
    CONSTRAINT jobs_state_valid CHECK (state IN
        ('QUEUED', 'SCHEDULED', 'RUNNING', 'RECOVERING', 'SUCCEEDED', 'FAILED', 'CANCELLED'))
);

CREATE INDEX jobs_newest_first ON jobs (created_at_us DESC, id DESC);
CREATE INDEX jobs_by_state ON jobs (state, priority DESC, created_at_us);

CREATE TABLE job_events (
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    sequence        BIGINT NOT NULL,
    created_at_us   BIGINT NOT NULL,
    -- 'state_change' or 'progress'.
    kind            TEXT NOT NULL,
    from_state      TEXT,
    to_state        TEXT,
    message         TEXT NOT NULL DEFAULT '',
    progress_json   TEXT,
    PRIMARY KEY (job_id, sequence)
);

CREATE FUNCTION job_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'job_events is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER job_events_no_update BEFORE UPDATE OR DELETE ON job_events
    FOR EACH ROW EXECUTE FUNCTION job_events_append_only();

CREATE TABLE checkpoints (
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    step            BIGINT NOT NULL,
    epoch           INTEGER NOT NULL,
    uri             TEXT NOT NULL,
    loss            DOUBLE PRECISION NOT NULL,
    committed_at_us BIGINT NOT NULL,
    PRIMARY KEY (job_id, step)
);
