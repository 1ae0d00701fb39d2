-- When Certn's last Retry-After ends, apart from the turns booked (next_turn_end): a booking
-- further away than its caller waits is refused (the job goes back to the queue) only during such
-- a hold, never because other replicas have booked the turns before it.
ALTER TABLE rate_limits ADD COLUMN held_until timestamptz;
