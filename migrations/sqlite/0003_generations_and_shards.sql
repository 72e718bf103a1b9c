-- Generation events, reports of unreachable peers and shards; the SQLite twin of
-- migrations/postgres/0003_generations_and_shards.sql, with the same tables and columns.

CREATE TABLE peer_reports (
    job_id              TEXT NOT NULL REFERENCES jobs (id),
    generation          INTEGER NOT NULL,
    reporter_id         TEXT NOT NULL REFERENCES workers (id),
    reporter_rank       INTEGER NOT NULL,
    unreachable_id      TEXT NOT NULL REFERENCES workers (id),
    unreachable_rank    INTEGER NOT NULL,
    data_address        TEXT NOT NULL,
    message             TEXT NOT NULL,
    reported_at_us      INTEGER NOT NULL
);

CREATE INDEX peer_reports_by_job ON peer_reports (job_id);

-- Events of kind 'generation' record each new generation of a job's worker set.
ALTER TABLE job_events ADD COLUMN generation INTEGER;
ALTER TABLE job_events ADD COLUMN world_size INTEGER;

-- The objects of each job's dataset, listed when the job is first admitted.
CREATE TABLE shards (
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    shard_index     INTEGER NOT NULL,
    uri             TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL,
    PRIMARY KEY (job_id, shard_index)
);
