// Durable recording of verified webhook events: ONE transaction inserts a group of events (a
// duplicate id inserts nothing) and enqueues the jobs they ask for. Runs on a database thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/connection>

#include "queue/queue.hpp"
#include "webhook/event.hpp"

namespace archiver::webhook {

// The job an event asks for, routed by object_type (kind_of_object): a case -> sync_case, except
// CASE_REPORT_READY -> report_ready (which finds the case's pending report files); a check ->
// sync_case(case_id) when the body names the case, else check_changed(check id); a report file
// -> report_ready(object_id). Unknown event types and unknown object types: nullopt (the event is
// stored and marked processed). The jobs about a case or a check run after `coalesce` (their
// run_at is fixed by the first event of a burst; later ones join the pending job).
std::optional<queue::job_spec> job_for(const event& received, int max_attempts,
                                       std::chrono::seconds coalesce = std::chrono::seconds(0));

enum class store_outcome { stored, duplicate };

// One verified event to record, with the job it asks for (job_for).
struct event_record {
  event received;
  std::string raw_body;
  std::string signature_scheme;  // the form that verified it
  std::optional<queue::job_spec> job;
};

// What became of one event of a group: stored or duplicate, or not stored (`failure` says why).
struct store_result {
  std::optional<store_outcome> outcome;
  std::string failure;
};

// Records `events` in ONE transaction, so that events arriving together share one commit and one
// WAL flush: each event (a duplicate id inserts nothing; an id given twice: the later one is a
// duplicate) and the jobs they ask for (queue::enqueue_many: one NOTIFY at most). Returns one
// result per event, in order, after the commit. When the group fails for what may be one event's
// fault (a data or constraint error, a trigger, a deadlock), each event is tried again in a
// transaction of its own, so that a bad event fails alone. Throws, nothing acknowledged, when the
// connection breaks, the commit's outcome is unknown or the statement ran out of time.
std::vector<store_result> store_events(pqxx::connection& conn,
                                       const std::vector<event_record>& events);

// Retention: deletes up to `limit` processed events received more than `older_than` ago (oldest
// first), in its own transaction, and returns how many. Unprocessed events (their job pending or
// dead) are never deleted.
std::int64_t prune_processed_events(pqxx::connection& conn, std::chrono::seconds older_than,
                                    int limit);

}  // namespace archiver::webhook
