-- The whole schema of DESIGN.md: webhook events, cases, status history, report files, the job
-- queue and archived artifacts.

CREATE TABLE webhook_events (
    id               text PRIMARY KEY,            -- Certn's event id ("id", else "event_id")
    event_type       text NOT NULL,
    object_id        text NOT NULL,
    object_type      text NOT NULL,
    body             bytea NOT NULL,              -- the raw request body, exactly as received
    signature_scheme text NOT NULL,               -- the scheme that verified it
    received_at      timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz                  -- set when its job finished (or none was needed)
);
CREATE INDEX webhook_events_object_idx ON webhook_events (object_id);
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at);

CREATE TABLE cases (
    id              text PRIMARY KEY,
    overall_status  text,
    snapshot        jsonb,                        -- the last case JSON fetched from the API
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_synced     timestamptz,
    closed_at       timestamptz
);
CREATE INDEX cases_open_idx ON cases (last_synced) WHERE closed_at IS NULL;

CREATE TABLE case_status_history (
    id           bigserial PRIMARY KEY,
    case_id      text NOT NULL REFERENCES cases (id),
    status       text NOT NULL,
    observed_at  timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL                    -- an event id, 'reconcile' or 'backfill'
);
CREATE INDEX case_status_history_case_idx ON case_status_history (case_id, observed_at);

CREATE TABLE report_files (
    id            text PRIMARY KEY,               -- Certn's report file id
    case_id       text NOT NULL REFERENCES cases (id),
    status        text NOT NULL,                  -- IN_PROGRESS | COMPLETE | FAILED | ...
    requested_at  timestamptz NOT NULL DEFAULT now(),
    ready_at      timestamptz
);
CREATE INDEX report_files_case_idx ON report_files (case_id);

CREATE TYPE job_state AS ENUM ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled');

CREATE TABLE jobs (
    id             bigserial PRIMARY KEY,
    kind           text NOT NULL,
    key            text NOT NULL,                 -- what the job is about (a case id, ...)
    payload        jsonb NOT NULL DEFAULT '{}',
    state          job_state NOT NULL DEFAULT 'queued',
    attempts       integer NOT NULL DEFAULT 0,
    max_attempts   integer NOT NULL DEFAULT 10 CHECK (max_attempts > 0),
    run_at         timestamptz NOT NULL DEFAULT now(),
    lease_owner    text,
    lease_expires  timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
-- At most one pending job per (kind, key): a duplicate event never doubles the work. A running
-- job does not count: an event that arrives while its job runs may carry news the running job
-- has already missed, so it gets one pending successor (the claim keeps the two apart).
CREATE UNIQUE INDEX jobs_pending_key_idx ON jobs (kind, key)
    WHERE state IN ('queued', 'failed');
-- What workers claim: due jobs in run_at order.
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE state IN ('queued', 'failed');
-- What the rescuer scans: running jobs by lease expiry.
CREATE INDEX jobs_lease_idx ON jobs (lease_expires) WHERE state = 'running';
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE artifacts (
    id            bigserial PRIMARY KEY,
    case_id       text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('report', 'supplementary_file',
                      'supplementary_information', 'case_snapshot', 'manifest')),
    source_id     text,                           -- report file id, file id, ...
    object_key    text NOT NULL UNIQUE,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes    bigint NOT NULL CHECK (size_bytes >= 0),
    content_type  text,
    archived_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artifacts_case_idx ON artifacts (case_id);
