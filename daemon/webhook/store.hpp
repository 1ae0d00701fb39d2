// Durable recording of a verified webhook event: ONE transaction inserts the event (a duplicate
// id inserts nothing) and enqueues the job it asks for. Runs on a database thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

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

// Throws pqxx exceptions when the database cannot be reached or the commit fails; nothing is
// acknowledged then.
store_outcome store_event(pqxx::connection& conn, const event& received, std::string_view raw_body,
                          std::string_view signature_scheme,
                          const std::optional<queue::job_spec>& job);

// Retention: deletes up to `limit` processed events received more than `older_than` ago (oldest
// first), in its own transaction, and returns how many. Unprocessed events (their job pending or
// dead) are never deleted.
std::int64_t prune_processed_events(pqxx::connection& conn, std::chrono::seconds older_than,
                                    int limit);

}  // namespace archiver::webhook
