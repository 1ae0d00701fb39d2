-- Priority classes (issue 14, ops/priority.hpp): 0 live, 1 archive, 2 sync, 3 bulk. Workers claim
-- by class, then run_at. Jobs queued before this migration count as sync: neither ahead of live
-- work nor behind a backfill.
ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 3);
DROP INDEX jobs_due_idx;
CREATE INDEX jobs_due_idx ON jobs (priority, run_at) WHERE state IN ('queued', 'failed');
