-- Tolerant reading of Certn's answers (issue 12): the raw answers that feed the archive are kept
-- as artifacts too, the "modified" we compare in reconcile is the one the reader found under any
-- accepted name, and checks are mapped to their case for events that name a check.

ALTER TABLE artifacts DROP CONSTRAINT artifacts_kind_check;
ALTER TABLE artifacts ADD CONSTRAINT artifacts_kind_check CHECK (kind IN ('report',
    'supplementary_file', 'supplementary_information', 'case_snapshot', 'manifest',
    'supplementary_files_listing', 'report_file_metadata', 'certn_response'));

ALTER TABLE cases ADD COLUMN certn_modified text;
UPDATE cases SET certn_modified = snapshot->>'modified' WHERE snapshot IS NOT NULL;

CREATE TABLE case_checks (
    check_id  text PRIMARY KEY,
    case_id   text NOT NULL REFERENCES cases (id)
);
CREATE INDEX case_checks_case_idx ON case_checks (case_id);
INSERT INTO case_checks (check_id, case_id)
SELECT DISTINCT ON (c->>'id') c->>'id', cases.id
FROM cases, jsonb_array_elements(CASE WHEN jsonb_typeof(snapshot->'checks') = 'array'
                                      THEN snapshot->'checks' ELSE '[]'::jsonb END) AS c
WHERE jsonb_typeof(c->'id') = 'string'
ON CONFLICT DO NOTHING;
