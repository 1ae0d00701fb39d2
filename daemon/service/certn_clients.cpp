#include "service/certn_clients.hpp"

#include <stdexcept>

#include "http/proxy.hpp"
#include "http/url.hpp"
#include "service/shared_rate_limit.hpp"

namespace archiver::service {

namespace {

ssl::context make_tls(const config::certn_settings& settings) {
  ssl::context tls(ssl::context::tls_client);
  tls.set_default_verify_paths();
  if (!settings.ca_file.empty()) {
    error_code ec;
    tls.load_verify_file(settings.ca_file, ec);
    if (ec) {
      throw std::runtime_error("certn.ca_file: cannot load " + settings.ca_file + ": " +
                               ec.message());
    }
  }
  return tls;
}

http::destination_policy api_policy(const config::certn_settings& settings) {
  std::string error;
  const auto base = http::parse_url(settings.base_url, &error);
  if (!base) {
    throw std::runtime_error("certn.base_url: " + error);
  }
  http::destination_policy policy;
  policy.allow_plain_http = settings.allow_plain_http;
  policy.allow_special_addresses = settings.allow_special_addresses;
  policy.allowed_hosts = {base->host};
  return policy;
}

http::destination_policy download_policy(const config::certn_settings& settings) {
  http::destination_policy policy;
  policy.allow_plain_http = settings.allow_plain_http;
  policy.allow_special_addresses = settings.allow_special_addresses;
  policy.allowed_hosts = settings.download_hosts;
  // An empty list would mean "any host" to the client; configuration means "none".
  if (policy.allowed_hosts.empty()) {
    policy.allowed_hosts = {"download-hosts.invalid"};
  }
  return policy;
}

// HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as corporate networks set them for every program.
http::client_settings client_settings_from_environment() {
  http::client_settings settings;
  settings.proxy = http::proxy_from_environment(config::from_environ());
  return settings;
}

}  // namespace

certn_clients::certn_clients(asio::io_context& io, const config::certn_settings& settings,
                             ops::registry* registry, db::pool* shared_limit_database,
                             ops::priority_settings priorities)
    : tls_(make_tls(settings)),
      api_http_(io, api_policy(settings), &tls_, client_settings_from_environment()),
      download_http_(io, download_policy(settings), &tls_, client_settings_from_environment()),
      limiter_(settings.requests_per_minute, 1, ops::real_clock(), priorities),
      metrics_(registry != nullptr ? std::optional<certn::api_metrics>(std::in_place, *registry)
                                   : std::nullopt),
      api_(api_http_, download_http_, limiter_, {settings.base_url, settings.api_key},
           metrics_ ? &*metrics_ : nullptr) {
  limiter_.set_budget({settings.requests_per_day, settings.live_reserve_percent});
  if (registry != nullptr) {
    registry->gauge_callback(
        "certn_archiver_certn_budget_used",
        "Certn calls charged to the day's budget (UTC day; every replica's, as last heard).",
        [this] { return static_cast<double>(limiter_.budget().used); });
    registry->gauge_callback(
        "certn_archiver_certn_budget_remaining",
        "Certn calls left in the day's budget (-1: no daily budget).", [this] {
          const certn::rate_limiter::budget_view budget = limiter_.budget();
          return budget.per_day > 0 ? static_cast<double>(std::max(0, budget.per_day - budget.used))
                                    : -1.0;
        });
  }
  if (shared_limit_database != nullptr) {
    limiter_.share(shared_rate_limit(*shared_limit_database, io,
                                     rate_limit_name(settings.base_url, settings.account),
                                     settings.requests_per_minute));
  }
}

}  // namespace archiver::service
