-- Two-person approval of erasures (records.purge_approval = "two-person"): purging a case ahead
-- of its retention is requested by one operator and approved by another before it runs
-- (records/erasure.hpp). Rows are never deleted: each is evidence of who asked, who agreed and
-- when the purge ended.
CREATE TABLE erasure_requests (
    id            bigserial PRIMARY KEY,
    case_id       text NOT NULL CHECK (case_id <> ''),
    reason        text NOT NULL CHECK (reason <> ''),
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    approved_by   text,
    approved_at   timestamptz,
    completed_at  timestamptz,
    CHECK ((approved_at IS NULL) = (approved_by IS NULL)),
    CHECK (completed_at IS NULL OR approved_at IS NOT NULL)
);
-- At most one request in progress per case.
CREATE UNIQUE INDEX erasure_requests_open_idx ON erasure_requests (case_id)
    WHERE completed_at IS NULL;
