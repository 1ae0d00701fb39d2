// certn-sim's Cases API (/api/public/cases/...): the nine endpoints of certn-api.md, Api-Key
// authentication, Django REST pagination and error envelopes, injected faults (429, 500, slow)
// and a per-key sliding-minute rate limit. Runs on the simulator's io_context thread.
#pragma once

#include <memory>

#include "context.hpp"
#include "http/server.hpp"

namespace certn_sim {

// Answers any request under /api/public/. Never throws for bad input (4xx envelopes instead).
archiver::awaitable<archiver::http::response> handle_api(std::shared_ptr<context> ctx,
                                                         const archiver::http::request& req);

}  // namespace certn_sim
