// The S3 store's construction (endpoint, bucket and part-size checks, TLS, the HTTP client held
// to the endpoint's host) and its small entry points: stage, describe, stale staging files.
// Puts are in s3_put.cpp and s3_multipart.cpp, reads in s3_read.cpp, requests in s3_request.cpp.
#include "storage/s3_store.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>

#include "encoding/encoding.hpp"
#include "http/proxy.hpp"
#include "storage/s3_detail.hpp"

namespace archiver::storage {

using namespace s3_detail;

namespace {

constexpr std::uint64_t min_part_bytes = 5ULL << 20;  // S3's minimum for every part but the last

std::string staging_stem(const std::string& key) {
  std::string stem = key.substr(key.find_last_of('/') + 1);
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      c = '_';
    }
  }
  stem.resize(std::min<std::size_t>(stem.size(), 64));
  return stem.empty() ? "object" : stem;
}

ssl::context make_tls(const std::string& ca_file) {
  ssl::context tls(ssl::context::tls_client);
  tls.set_default_verify_paths();
  if (!ca_file.empty()) {
    error_code ec;
    tls.load_verify_file(ca_file, ec);
    if (ec) {
      throw std::runtime_error("storage.s3.ca_file: cannot load " + ca_file + ": " + ec.message());
    }
  }
  return tls;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

http::url parse_origin(const config::s3_settings& s3) {
  const std::string endpoint =
      s3.endpoint.empty() ? "https://s3." + s3.region + ".amazonaws.com" : s3.endpoint;
  std::string error;
  std::optional<http::url> parsed = http::parse_url(endpoint, &error);
  if (!parsed) {
    throw std::invalid_argument("storage.s3.endpoint: " + error);
  }
  if (parsed->target != "/") {
    throw std::invalid_argument("storage.s3.endpoint: must have no path, got " + endpoint);
  }
  if (!s3.path_style) {
    if (is_ip_literal(parsed->host)) {
      throw std::invalid_argument(
          "storage.s3.path_style: must be true for an endpoint given as an IP address");
    }
    parsed->host = s3.bucket + "." + parsed->host;
  }
  return *parsed;
}

http::destination_policy policy_for(const http::url& origin) {
  http::destination_policy policy;
  // The operator named this endpoint: a private or loopback address (MinIO, s3rver) is intended.
  policy.allow_special_addresses = true;
  policy.allow_plain_http = origin.scheme == "http";
  policy.allowed_hosts = {origin.host};
  return policy;
}

http::client_settings client_settings_for(const config::s3_settings& s3) {
  http::client_settings settings;
  settings.max_connections_per_host = s3.max_parallel_parts + 1;
  settings.proxy = http::proxy_from_environment(config::from_environ());
  return settings;
}

const config::s3_settings& checked(const config::s3_settings& s3) {
  if (s3.bucket.empty()) {
    throw std::invalid_argument("storage.s3.bucket: required");
  }
  if (s3.part_size_bytes < min_part_bytes) {
    throw std::invalid_argument("storage.s3.part_size_bytes: at least 5 MiB (S3's minimum)");
  }
  if (s3.max_parallel_parts == 0) {
    throw std::invalid_argument("storage.s3.max_parallel_parts: at least 1");
  }
  return s3;
}

}  // namespace

s3_store::impl::impl(asio::io_context& io, const config::storage_settings& settings,
                     const ops::clock& clock)
    : io_(io),
      clock_(clock),
      s3_(checked(settings.s3)),
      prefix_(settings.prefix),
      staging_(settings.staging_path.empty() ? std::filesystem::path(settings.path) / ".staging"
                                             : std::filesystem::path(settings.staging_path)),
      origin_(parse_origin(settings.s3)),
      origin_text_(origin_.scheme + "://" + http::host_header(origin_)),
      base_path_(settings.s3.path_style ? "/" + encoding::percent_encode(settings.s3.bucket) : ""),
      credentials_{settings.s3.access_key_id, settings.s3.secret_access_key},
      tls_(make_tls(settings.s3.ca_file)),
      client_(io, policy_for(origin_), &tls_, client_settings_for(settings.s3)) {}

s3_store::s3_store(asio::io_context& io, const config::storage_settings& settings,
                   const ops::clock& clock)
    : impl_(std::make_unique<impl>(io, settings, clock)) {}

s3_store::~s3_store() = default;

std::unique_ptr<staged_file> s3_store::stage(const std::string& key, std::uint64_t max_bytes) {
  return std::make_unique<staged_file>(impl_->staging_, staging_stem(key), max_bytes);
}

awaitable<std::size_t> s3_store::remove_stale_staging(std::chrono::seconds older_than) {
  const std::filesystem::path staging = impl_->staging_;
  const std::size_t removed = co_await impl_->threads_.run(
      [&] { return remove_stale_staging_files(staging, false, older_than); });
  co_return removed;
}

std::string s3_store::describe() const { return "s3 " + impl_->origin_text_ + impl_->base_path_; }

void s3_store::set_credentials(std::string access_key_id, std::string secret_access_key) {
  impl_->credentials_ = {std::move(access_key_id), std::move(secret_access_key)};
}

}  // namespace archiver::storage
