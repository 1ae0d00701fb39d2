-- Reconcile that costs pages, not cases (issue 14): each case's order date (Certn's "created",
-- as a UTC date) tells which listing finds it, and each listing ("scope": recent, window,
-- open_before, open_old) remembers when it last completed, so that it runs at its own pace.
ALTER TABLE cases ADD COLUMN ordered_on date;

-- Order dates of the cases held already, from their snapshots; a snapshot whose "created" is not
-- a date leaves it unknown (the next sync or listing fills it in).
DO $$
DECLARE
  c record;
BEGIN
  FOR c IN SELECT id, COALESCE(snapshot->>'created', snapshot->>'created_at') AS created
           FROM cases WHERE snapshot IS NOT NULL LOOP
    BEGIN
      IF c.created ~ '^\d{4}-\d{2}-\d{2}' THEN
        UPDATE cases SET ordered_on = left(c.created, 10)::date WHERE id = c.id;
      END IF;
    EXCEPTION WHEN others THEN
      NULL;
    END;
  END LOOP;
END
$$;

CREATE TABLE reconcile_runs (
    scope        text PRIMARY KEY,
    finished_at  timestamptz NOT NULL
);
