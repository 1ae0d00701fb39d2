-- Fencing tokens (issue 15): every claim of a job takes a new token from a sequence; heartbeats,
-- outcomes and releases must present it. A run that lost its lease (rescued, then claimed again,
-- even by the same process under the same owner name) can then never extend the newer run's lease
-- or record its outcome over the newer run's.
CREATE SEQUENCE job_lease_tokens;
ALTER TABLE jobs ADD COLUMN lease_token bigint;
