-- The minimal durable intake transaction, as pgbench runs it (-M prepared): insert the event
-- (deduplicated by id) and its job, on the same tables and indexes; no NOTIFY.
\set n random(1, 1000000000000)
BEGIN;
INSERT INTO webhook_events (id, event_type, object_id, object_type, body, signature_scheme)
  VALUES ('pgb-' || :n || '-' || :client_id, 'CASE_STATUS_CHANGED', 'case-' || :n, 'CASE',
          decode(repeat('7b', 150), 'hex'), 'x-signature-hex')
  ON CONFLICT (id) DO NOTHING;
INSERT INTO jobs (kind, key, payload, max_attempts, run_at)
  VALUES ('sync_case', 'case-' || :n || '-' || :client_id, '{"case_id":"x","source_event":"y"}', 10, now())
  ON CONFLICT (kind, key) WHERE state IN ('queued', 'failed') DO NOTHING;
COMMIT;
