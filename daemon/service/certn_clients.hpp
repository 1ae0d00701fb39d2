// The Certn API client as configuration describes it: TLS trust (system store plus certn.ca_file),
// the API's destination policy (only the base URL's host) and the downloads' (only
// certn.download_hosts), one rate limiter for the process with the day's budget, shared with every
// other process of the database when one is given (`serve`, and the CLI's `cases`, `probe` and
// `backfill`, so that every call is charged). Used by `serve`, `cases`, `probe` and `backfill`.
#pragma once

#include <optional>

#include "certn/api.hpp"
#include "config/config.hpp"
#include "db/pool.hpp"
#include "net/asio.hpp"
#include "ops/metrics.hpp"

namespace archiver::service {

class certn_clients {
 public:
  // Throws std::runtime_error when the CA file cannot be loaded or the base URL is unusable.
  // `registry` may be null (no metrics). With `shared_limit_database`, the rate limit is also
  // shared with every other process using that database (service/shared_rate_limit).
  // `priorities`: how the rate limiter orders the classes' turns.
  certn_clients(asio::io_context& io, const config::certn_settings& settings,
                ops::registry* registry, db::pool* shared_limit_database = nullptr,
                ops::priority_settings priorities = {});
  certn::api_client& api() { return api_; }
  // The key for calls made from now on (SIGHUP); io_context thread only. The shared rate limit
  // is the account's (certn.account), whatever the key.
  void set_api_key(std::string key) { api_.set_api_key(std::move(key)); }
  // Null when constructed without a registry.
  certn::api_metrics* metrics() { return metrics_ ? &*metrics_ : nullptr; }

 private:
  ssl::context tls_;
  http::client api_http_;
  http::client download_http_;
  certn::rate_limiter limiter_;
  std::optional<certn::api_metrics> metrics_;
  certn::api_client api_;
};

}  // namespace archiver::service
