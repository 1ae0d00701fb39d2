// One S3 request: the key's path encoding, SigV4 signing and sending (s3_store::impl::send), and
// how a failed request or an S3 error answer becomes a store_failure.
#include <algorithm>
#include <chrono>
#include <ctime>

#include "encoding/encoding.hpp"
#include "retry/table.hpp"
#include "storage/s3_detail.hpp"
#include "storage/s3_xml.hpp"

namespace archiver::storage {

std::string encode_key(const std::string& key) {
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = key.find('/', start);
    out += encoding::percent_encode(std::string_view(key).substr(start, slash - start));
    if (slash == std::string::npos) {
      return out;
    }
    out += '/';
    start = slash + 1;
  }
}

namespace s3_detail {

store_failure failure(std::string_view operation, const std::string& key, bool retryable,
                      const std::string& cause) {
  return store_failure{retryable, "s3 " + std::string(operation) + " " + key + ": " + cause};
}

store_failure fetch_failure(std::string_view operation, const std::string& key,
                            const http::fetch_result& result) {
  const bool retryable = retry::of_transport(result.error) == retry::failure_class::retryable;
  return failure(operation, key, retryable, result.message);
}

store_failure answer_failure(std::string_view operation, const std::string& key, int status,
                             std::string_view body) {
  const s3_xml::classification meaning = s3_xml::classify(status, body);
  return failure(operation, key, meaning.retryable, meaning.message);
}

std::optional<std::string> header_value(const http::response_head& head, std::string_view name) {
  for (const auto& [field, value] : head.headers) {
    if (beast::iequals(field, name)) {
      return value;
    }
  }
  return std::nullopt;
}

header_list encryption_headers(const config::s3_settings& s3) {
  header_list headers;
  if (s3.sse.empty()) {
    return headers;
  }
  headers.emplace_back("x-amz-server-side-encryption", s3.sse);
  if (s3.sse == "aws:kms" && !s3.sse_kms_key_id.empty()) {
    headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", s3.sse_kms_key_id);
  }
  return headers;
}

header_list object_lock_headers(const config::s3_settings& s3, const object_protection& protection,
                                std::chrono::sys_seconds now) {
  header_list headers;
  if (s3.object_lock_mode.empty()) {
    return headers;
  }
  std::chrono::sys_seconds until = now + std::chrono::days(1);
  if (!protection.retain_until) {
    until = now + std::chrono::days(s3.object_lock_days);
  } else if (*protection.retain_until > until) {
    until = *protection.retain_until;
  }
  headers.emplace_back("x-amz-object-lock-mode", s3.object_lock_mode);
  headers.emplace_back("x-amz-object-lock-retain-until-date", lock_date(until));
  if (protection.legal_hold) {
    headers.emplace_back("x-amz-object-lock-legal-hold", "ON");
  }
  return headers;
}

bool lock_extends(std::string_view current, std::string_view wanted) {
  constexpr std::size_t to_the_second = 19;  // "2027-12-07T11:00:00"
  return wanted.substr(0, to_the_second) > current.substr(0, to_the_second);
}

std::string lock_date(std::chrono::sys_seconds at) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S.000Z", &utc);
  return std::string(text, length);
}

std::optional<store_failure> check_encryption(std::string_view operation, const std::string& key,
                                              const config::s3_settings& s3,
                                              const http::response_head& head) {
  if (s3.sse.empty()) {
    return std::nullopt;
  }
  const auto said = header_value(head, "x-amz-server-side-encryption");
  if (said && *said != s3.sse) {
    return failure(operation, key, false,
                   "the store encrypted the object with " + *said + ", not " + s3.sse +
                       " as storage.s3.sse asks");
  }
  if (s3.sse == "aws:kms" && !s3.sse_kms_key_id.empty()) {
    const auto kms_key = header_value(head, "x-amz-server-side-encryption-aws-kms-key-id");
    if (kms_key && *kms_key != s3.sse_kms_key_id &&
        kms_key->find(s3.sse_kms_key_id) == std::string::npos) {
      return failure(operation, key, false,
                     "the store encrypted the object with KMS key " + *kms_key + ", not " +
                         s3.sse_kms_key_id + " as storage.s3.sse_kms_key_id asks");
    }
  }
  return std::nullopt;
}

}  // namespace s3_detail

using namespace s3_detail;

awaitable<s3_answer> s3_store::impl::send(const s3_call& call, http::body_sink* sink) {
  // An empty key addresses the bucket itself ("/bucket" path-style, "/" virtual-host style).
  const std::string path = call.key.empty() && !base_path_.empty()
                               ? base_path_
                               : base_path_ + "/" + encode_key(call.key);
  sigv4::request signed_request;
  signed_request.method = call.method;
  signed_request.path = path;
  signed_request.query = call.query;
  signed_request.payload_hash = call.payload_hash;
  signed_request.headers = call.headers;
  const sigv4::scope where{sigv4::amz_date(clock_.wall_now()), s3_.region, "s3"};
  signed_request.headers.emplace_back("x-amz-date", where.amz_date);
  signed_request.headers.emplace_back("x-amz-content-sha256", call.payload_hash);

  http::request_options options;
  options.method = call.method;
  options.headers = signed_request.headers;
  // The client sends this same Host value (it derives it from the URL the same way).
  signed_request.headers.emplace_back("host", http::host_header(origin_));
  options.headers.emplace_back("Authorization",
                               sigv4::authorization(signed_request, credentials_, where));
  options.body = call.body;
  options.body_stream = call.stream;
  options.connect_timeout = std::min(s3_.timeout, std::chrono::milliseconds(10'000));
  options.read_timeout = std::min(s3_.timeout, std::chrono::milliseconds(60'000));
  options.total_timeout = s3_.timeout;

  const std::string url = origin_text_ + path + (call.query.empty() ? "" : "?" + call.query);
  s3_answer answer;
  http::string_sink collected(max_answer_bytes);
  if (sink != nullptr) {
    answer.fetch = co_await client_.fetch(url, options, *sink);
  } else {
    answer.fetch = co_await client_.fetch(url, options, collected);
    answer.body = collected.data();
  }
  co_return answer;
}

}  // namespace archiver::storage
