-- Issue 16, records management, first part: legal holds and the audit trail.

-- A legal hold keeps a case whatever its retention says. Rows are never deleted: a release
-- closes the hold and keeps who placed it, why, and who released it. The case need not be
-- archived yet (a hold may come before the case closes), so there is no foreign key.
CREATE TABLE legal_holds (
    id              bigserial PRIMARY KEY,
    case_id         text NOT NULL CHECK (case_id <> ''),
    reason          text NOT NULL CHECK (reason <> ''),
    held_by         text NOT NULL,
    held_at         timestamptz NOT NULL DEFAULT now(),
    released_by     text,
    released_at     timestamptz,
    release_reason  text,
    CHECK ((released_at IS NULL) = (released_by IS NULL)
           AND (released_at IS NULL) = (release_reason IS NULL))
);
-- At most one hold in force per case.
CREATE UNIQUE INDEX legal_holds_in_force_idx ON legal_holds (case_id) WHERE released_at IS NULL;

-- The audit trail: append-only and hash-chained. Each row's hash covers its own fields and the
-- previous row's hash (records/audit.hpp says how), so that a row altered or removed by someone
-- who can bypass the trigger below (a superuser) breaks the chain `audit verify` re-computes.
-- seq is gapless: appenders take an advisory lock (records/audit.cpp), not a sequence, so that a
-- missing number is itself evidence. Appending needs SELECT and INSERT only: the daemon's role
-- needs no UPDATE, DELETE or TRUNCATE here (README "Records management").
CREATE TABLE audit_log (
    seq        bigint PRIMARY KEY CHECK (seq > 0),
    at         timestamptz NOT NULL,
    actor      text NOT NULL CHECK (actor <> ''),   -- "user:<os user>" or "daemon:<instance>"
    action     text NOT NULL CHECK (action <> ''),  -- hold, release, job_retry, ...
    case_id    text NOT NULL DEFAULT '',            -- '' when the action concerns no one case
    detail     text NOT NULL DEFAULT '',            -- why, and what (the reason, a job id ...)
    prev_hash  text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash       text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_case_idx ON audit_log (case_id, seq) WHERE case_id <> '';
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
    USING HINT = 'the audit trail can only grow; see README "Records management"';
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Retention (records/retention.hpp): when a closed case may be purged, set when it closes by the
-- policy then in force ('infinity' for forever), with the rule that gave it; cleared when the
-- case re-opens, so that its next closing starts the clock again. A policy change applies to the
-- cases that close after it.
ALTER TABLE cases ADD COLUMN retain_until timestamptz, ADD COLUMN retention_rule text;
CREATE INDEX cases_retain_until_idx ON cases (retain_until) WHERE retain_until IS NOT NULL;

-- Purge (records/purge.hpp). An artifact row outlives its object as a tombstone, the proof of
-- disposition: its key, sha256 and size stay, with when it was purged and by which rule. A case
-- that is purged loses its snapshot (the case JSON, personal data) and keeps its row. A purge
-- holds a case by a lease (purge_owner until purge_lease_expires), so that two replicas, or the
-- daemon and an operator's command, never purge one case at once; a purger that dies leaves a
-- lease that runs out.
ALTER TABLE artifacts ADD COLUMN purged_at timestamptz, ADD COLUMN purge_rule text;
ALTER TABLE cases ADD COLUMN purged_at timestamptz, ADD COLUMN purge_owner text,
    ADD COLUMN purge_lease_expires timestamptz;
