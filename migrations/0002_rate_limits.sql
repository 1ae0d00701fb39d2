-- The Certn rate limit shared by every replica of one database (service/shared_rate_limit):
-- one row per Certn account, holding when its last booked turn's slot ends (GCRA).

CREATE TABLE rate_limits (
    name          text PRIMARY KEY,      -- "certn " + a digest of base URL and API key
    next_turn_end timestamptz NOT NULL
);
