-- Workers, their assignments to job generations, and the scheduler's leader lease.

ALTER TABLE jobs ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN result_json TEXT;

CREATE TABLE workers (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    data_address        TEXT NOT NULL,
    capabilities_json   TEXT NOT NULL,
    -- 'IDLE', 'BUSY' (member of `job_id`'s current generation) or 'LOST' (lease
    -- expired, dropped by a peer report, or replaced by a new registration).
    state               TEXT NOT NULL,
    lease_expires_at_us BIGINT NOT NULL,
    job_id              TEXT REFERENCES jobs (id),
    registered_at_us    BIGINT NOT NULL,
    updated_at_us       BIGINT NOT NULL,
    CONSTRAINT workers_state_valid CHECK (state IN ('IDLE', 'BUSY', 'LOST'))
);

-- A name belongs to at most one worker that is not lost.
CREATE UNIQUE INDEX workers_live_name ON workers (name) WHERE state <> 'LOST';
CREATE INDEX workers_by_job ON workers (job_id);

CREATE TABLE assignments (
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    generation      BIGINT NOT NULL,
    worker_id       TEXT NOT NULL REFERENCES workers (id),
    rank            INTEGER NOT NULL,
    world_size      INTEGER NOT NULL,
    created_at_us   BIGINT NOT NULL,
    PRIMARY KEY (job_id, generation, rank),
    CONSTRAINT assignments_one_rank_per_worker UNIQUE (job_id, generation, worker_id)
);

-- One row per lease name; the coordinator whose `holder` is stored and whose
-- lease has not expired runs the scheduler.
CREATE TABLE leader_leases (
    name            TEXT PRIMARY KEY,
    holder          TEXT NOT NULL,
    expires_at_us   BIGINT NOT NULL
);
