// What every certn-sim request handler reaches: the settings, the account state, the webhook
// sender, the URL signer, the fault generator and the request statistics. Owned through a
// shared_ptr by the simulator; timers hold a weak_ptr so that they outlive it harmlessly.
// Not thread-safe: everything runs on the simulator's io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "downloads.hpp"
#include "http/server.hpp"
#include "simulator.hpp"
#include "state.hpp"
#include "webhook_sender.hpp"

namespace certn_sim {

struct request_stats {
  std::map<std::string, std::map<int, std::uint64_t>> by_endpoint;  // endpoint -> status -> n
  std::uint64_t responses_429 = 0;   // every 429 sent (injected and rate-limited)
  std::uint64_t injected_429 = 0;
  std::uint64_t rate_limited = 0;    // 429s from the per-key limit
  std::uint64_t injected_500 = 0;
  std::uint64_t slowed = 0;
  std::uint64_t expired_urls = 0;    // presigned already expired (fault expire_next_urls)
};

struct context {
  // Throws std::invalid_argument naming the problem when config.shapes is not valid.
  context(asio::io_context& io, settings config);

  // Sends one webhook per event, in order, in the webhook shapes in force (webhook.id_name,
  // webhook.check_object).
  void send(const std::vector<event>& events);
  // A fresh presigned download URL for "files/<id>" or "reports/<id>"; already expired while the
  // fault expire_next_urls has some left (and one fewer afterwards).
  std::string presign(std::string_view path);
  // A uniform draw in [0, 1) from the fault generator.
  double draw();

  asio::io_context& io;
  settings config;
  std::string base_url;  // set once the listener is bound
  state cases;
  webhook_sender webhooks;
  download_signer signer;
  request_stats stats;
  std::mt19937_64 fault_random;
  std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> recent_by_key;
};

// A response with Content-Type application/json.
archiver::http::response json_response(archiver::http::status code, std::string body);

// The segments of `path` after `prefix` ("/api/public/cases/x/" -> {"cases", "x"}); a trailing
// slash is optional; an empty segment in the middle (".../a//b") yields {""} entries.
std::vector<std::string_view> path_segments(std::string_view path, std::string_view prefix);

}  // namespace certn_sim
