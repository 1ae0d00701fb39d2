// The outgoing client itself: its settings checked at construction, and fetch(), which checks a
// URL against the policy, takes a pooled connection or opens one, and retries once when a reused
// connection turns out closed. The steps live in client_connection/request/download.cpp.
#include "http/client.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>

#include "http/client_detail.hpp"

namespace archiver::http {
using client_detail::build_request;
using client_detail::deadlines;
using client_detail::exchange;
using client_detail::exchange_outcome;
using client_detail::failed;
using client_detail::open_connection;
using client_detail::outgoing_request;
using std::chrono::steady_clock;

const char* to_string(failure kind) {
  switch (kind) {
    case failure::none:
      return "none";
    case failure::invalid_url:
      return "invalid_url";
    case failure::refused_by_policy:
      return "refused_by_policy";
    case failure::dns:
      return "dns";
    case failure::connect:
      return "connect";
    case failure::tls:
      return "tls";
    case failure::timeout:
      return "timeout";
    case failure::truncated:
      return "truncated";
    case failure::too_large:
      return "too_large";
    case failure::protocol:
      return "protocol";
  }
  return "unknown";
}

client::client(asio::io_context& io, destination_policy policy, ssl::context* tls,
               client_settings settings)
    : io_(io), policy_(std::move(policy)), tls_(tls), settings_(std::move(settings)) {
  if (settings_.max_connections_per_host == 0) {
    throw std::invalid_argument("http client: max_connections_per_host must be at least 1");
  }
  const auto parse_proxy = [](const std::string& text, const char* name) {
    std::optional<proxy_endpoint> endpoint;
    if (!text.empty()) {
      std::string error;
      endpoint = parse_proxy_url(text, &error);
      if (!endpoint) {
        throw std::invalid_argument(std::string("http client: ") + name + ": " + error);
      }
    }
    return endpoint;
  };
  https_proxy_ = parse_proxy(settings_.proxy.https_proxy, "https_proxy");
  http_proxy_ = parse_proxy(settings_.proxy.http_proxy, "http_proxy");
  pool_limits limits;
  limits.max_per_host = settings_.max_connections_per_host;
  limits.max_idle_per_host = settings_.keep_alive ? settings_.max_idle_per_host : 0;
  limits.idle_timeout = settings_.idle_timeout;
  pool_ = std::make_shared<connection_pool>(io_, limits);
}

client::~client() = default;

client_stats client::stats() const {
  return client_stats{pool_->opened(), pool_->reused()};
}

awaitable<fetch_result> client::fetch(std::string_view text, const request_options& options,
                                      body_sink& sink) {
  // Timeouts are clamped to a day so that adding them to now() cannot overflow.
  const auto clamp = [](std::chrono::milliseconds value) {
    return std::clamp(value, std::chrono::milliseconds(0), std::chrono::milliseconds(86'400'000));
  };
  const auto started = steady_clock::now();
  const deadlines limits{started + clamp(options.connect_timeout),
                         started + clamp(options.total_timeout), clamp(options.connect_timeout),
                         clamp(options.read_timeout), clamp(options.total_timeout)};
  std::string error;
  const std::optional<url> target = parse_url(text, &error);
  if (!target) {
    co_return failed(failure::invalid_url, error);
  }
  const std::string& host = target->host;
  const bool https = target->scheme == "https";
  if (!https && !policy_.allow_plain_http) {
    co_return failed(failure::refused_by_policy,
                     "plain http to " + host + " is not allowed (https only)");
  }
  if (https && tls_ == nullptr) {
    co_return failed(failure::refused_by_policy,
                     "https to " + host + " is not possible: no TLS context configured");
  }
  if (!policy_.allowed_hosts.empty() && !host_matches(host, policy_.allowed_hosts)) {
    co_return failed(failure::refused_by_policy, "host " + host + " is not in the allowed hosts");
  }
  std::optional<outgoing_request> req = build_request(*target, options, settings_.keep_alive, error);
  if (!req) {
    co_return failed(failure::protocol, error);
  }
  const std::optional<proxy_endpoint>& configured = https ? https_proxy_ : http_proxy_;
  const proxy_endpoint* proxy =
      configured && !bypasses_proxy(host, target->port, settings_.proxy.no_proxy) ? &*configured
                                                                                  : nullptr;
  const std::string key = target->scheme + "://" + host_header(*target) + ":" +
                          std::to_string(target->port) +
                          (proxy ? " via " + proxy->display() : std::string());

  for (int attempt = 0;; ++attempt) {
    std::optional<connection_lease> lease =
        co_await pool_->acquire(key, limits.for_connect(), attempt > 0);
    if (!lease) {
      co_return failed(failure::timeout,
                       limits.timeout_message("waiting for one of the " +
                                                  std::to_string(settings_.max_connections_per_host) +
                                                  " connections to " + host + " to be free",
                                              true));
    }
    if (!lease->conn) {
      auto conn = std::make_unique<connection>();
      fetch_result failure = co_await open_connection(io_, policy_, tls_, *target, proxy, limits, *conn);
      if (failure.error != failure::none) {
        co_return failure;
      }
      lease->conn = std::move(conn);
      pool_->count_opened();
    }
    connection& conn = *lease->conn;
    // Not a conditional expression: GCC 12 miscompiles co_await inside one.
    exchange_outcome outcome;
    if (conn.secure) {
      outcome = co_await exchange(*conn.secure, conn.lowest(), *req, options.body_stream, limits,
                                  host, sink);
    } else {
      outcome = co_await exchange(*conn.plain, conn.lowest(), *req, options.body_stream, limits,
                                  host, sink);
    }
    if (outcome.result.error == failure::none) {
      if (outcome.reusable) {
        lease->keep();
      }
      co_return outcome.result;
    }
    // Only a kept-alive connection the server closed before answering is worth a second try;
    // the lease going out of scope closes it.
    if (!(lease->reused() && outcome.nothing_received && attempt == 0)) {
      co_return outcome.result;
    }
  }
}

}  // namespace archiver::http
