-- Issue 15, "unbounded growth":
-- The workers refresh the queue's depth every few seconds: with these indexes every state they
-- count (queued and failed: jobs_due_idx; running and dead: below) is read from a partial index,
-- never by scanning the finished jobs that make up most of the table (bench/queue/big-table.sh).
CREATE INDEX jobs_dead_idx ON jobs (finished_at) WHERE state = 'dead';
-- Heartbeats rewrite lease_expires every few seconds for every running job. Indexed, it made each
-- heartbeat a full (non-HOT) update that also writes every index; the running jobs are few, so
-- rescue finds the expired ones through an index of the running jobs' ids instead, and a
-- heartbeat changes no indexed column: a HOT update, which fillfactor leaves room for.
DROP INDEX jobs_lease_idx;
CREATE INDEX jobs_running_idx ON jobs (id) WHERE state = 'running';
ALTER TABLE jobs SET (fillfactor = 85);
