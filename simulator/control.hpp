// certn-sim's control API (/_sim/...): create cases, move them through statuses, dispute and
// re-close them, change faults, and read the webhook deliveries and request statistics. No
// authentication and no faults: tests and demos drive the simulator through it. See README.md.
#pragma once

#include <memory>

#include "context.hpp"
#include "http/server.hpp"

namespace certn_sim {

// Answers any request under /_sim/. Bad input gets 400 {"error": "..."}; unknown ids 404.
archiver::awaitable<archiver::http::response> handle_control(std::shared_ptr<context> ctx,
                                                             const archiver::http::request& req);

// Creates the cases of POST /_sim/cases with default settings (used by --cases at start-up).
void create_default_cases(context& ctx, int count);

}  // namespace certn_sim
