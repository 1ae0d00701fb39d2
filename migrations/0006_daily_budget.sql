-- The day's budget of Certn calls (issue 14), shared by every replica: each booked turn also
-- counts one call against the UTC day it was booked on (service/shared_rate_limit).
ALTER TABLE rate_limits ADD COLUMN day date;
ALTER TABLE rate_limits ADD COLUMN day_used integer NOT NULL DEFAULT 0;
