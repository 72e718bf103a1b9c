-- Generations in the job history, shards, and reports by a worker that it cannot reach
-- a peer of its generation. A reported worker is dropped, and the job takes no
-- worker at that data address again, so a live but unreachable worker does not
-- rejoin after it registers anew.

CREATE TABLE peer_reports (
    job_id              TEXT NOT NULL REFERENCES jobs (id),
    generation          BIGINT NOT NULL,
    reporter_id         TEXT NOT NULL REFERENCES workers (id),
    reporter_rank       INTEGER NOT NULL,
    unreachable_id      TEXT NOT NULL REFERENCES workers (id),
    unreachable_rank    INTEGER NOT NULL,
    data_address        TEXT NOT NULL,
    message             TEXT NOT NULL,
    reported_at_us      BIGINT NOT NULL
);

CREATE INDEX peer_reports_by_job ON peer_reports (job_id);

-- Events of kind 'generation' record each new generation of a job's worker set,
-- with its number, its world size and why it opened in `message`.
ALTER TABLE job_events ADD COLUMN generation BIGINT;
ALTER TABLE job_events ADD COLUMN world_size INTEGER;

-- The objects of each job's dataset, listed when the job is first admitted.
-- Every generation reads them in `shard_index` order, so a resumed job sees the
-- same rows even when objects were added to the dataset's folder meanwhile.
CREATE TABLE shards (
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    shard_index     INTEGER NOT NULL,
    uri             TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    PRIMARY KEY (job_id, shard_index)
);
