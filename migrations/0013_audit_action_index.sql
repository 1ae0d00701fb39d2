-- The newest row of one action (the approval rule serve runs with, the last purge for `status`)
-- without walking the whole trail, which gains a row per artifact written.
CREATE INDEX audit_log_action_seq_idx ON audit_log (action, seq);
