-- An operator may pause a whole priority class (issue 14: `backfill --pause`): workers claim no job
-- of a paused class until it is resumed. Kept in the database, so a pause outlives restarts and
-- holds for every replica.
CREATE TABLE paused_classes (
    priority   smallint PRIMARY KEY CHECK (priority BETWEEN 0 AND 3),
    paused_at  timestamptz NOT NULL DEFAULT now(),
    paused_by  text NOT NULL
);
