// Durable recording of a verified webhook event: ONE transaction inserts the event (a duplicate
// id inserts nothing) and enqueues the job it asks for. Runs on a database thread.
#pragma once

#include <optional>
#include <string_view>

#include <pqxx/connection>

#include "queue/queue.hpp"
#include "webhook/event.hpp"

namespace archiver::webhook {

// The job an event asks for: CASE_STATUS_CHANGED, CHECK_STATUS_CHANGED and
// CASE_INPUT_CLAIMS_AUTOMATICALLY_GENERATED -> sync_case(object_id); CASE_REPORT_READY ->
// report_ready(object_id), which may name a case or a report file. Unknown types: nullopt (the
// event is stored and marked processed).
std::optional<queue::job_spec> job_for(const event& received, int max_attempts);

enum class store_outcome { stored, duplicate };

// Throws pqxx exceptions when the database cannot be reached or the commit fails; nothing is
// acknowledged then.
store_outcome store_event(pqxx::connection& conn, const event& received, std::string_view raw_body,
                          std::string_view signature_scheme,
                          const std::optional<queue::job_spec>& job);

}  // namespace archiver::webhook
