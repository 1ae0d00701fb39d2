-- A backfill's sync_case named its case only by its key: write_manifest, protect_case and the
-- purge, which find a case's open jobs by the case id in their payload, did not see it. Backfills
-- now put it there too; this gives the ones already recorded the same, finished ones included
-- (an operator may requeue a dead one).
UPDATE jobs SET payload = payload || jsonb_build_object('case_id', key)
 WHERE kind = 'sync_case' AND NOT payload ? 'case_id';
