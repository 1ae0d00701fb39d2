// certn-sim's Cases API (/api/public/cases/...): the nine endpoints of certn-api.md, Api-Key
// authentication, error envelopes, answers in the response shapes in force (shapes.hpp), injected
// faults (429, 500, slow, 403 per endpoint) and a per-key sliding-minute rate limit. Runs on the
// simulator's io_context thread.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "context.hpp"
#include "http/server.hpp"

namespace certn_sim {

// Answers any request under /api/public/. Never throws for bad input (4xx envelopes instead).
archiver::awaitable<archiver::http::response> handle_api(std::shared_ptr<context> ctx,
                                                         const archiver::http::request& req);

// The endpoint names of /_sim/stats ("cases.list", ...), which the knob "forbidden" also uses.
const std::vector<std::string_view>& api_endpoint_names();

}  // namespace certn_sim
