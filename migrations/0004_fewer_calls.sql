-- Fewest Certn calls per case (issue 14): when the last GET of a case that was saved began, so
-- that a sync asked for by events that all arrived before it needs no call of its own.
ALTER TABLE cases ADD COLUMN fetched_at timestamptz;
-- Events are matched to a case through its checks too; write_manifest waits for the case's other
-- archive jobs, which it finds by the case id in their payload.
CREATE INDEX jobs_open_case_idx ON jobs ((payload->>'case_id'))
    WHERE state IN ('queued', 'failed', 'running');
